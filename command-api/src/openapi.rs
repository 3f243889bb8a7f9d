//! The API's contract: OpenAPI 3.1 at `GET /openapi.json`, generated from the handlers and
//! types themselves (utoipa), and the Swagger UI at `/docs` (served from the vendored bundle).

use axum::Router;
use serde::Serialize;
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    AppState, admin, admin_reads, attempts, coaching, error::FieldError, identity, live, profile,
    reads, sessions, videos, walls,
};

/// RFC 9457 problem details, as every error is sent (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `https://cruxlog.dev/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For 422: every invalid field, named.
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cruxlog API",
        description = "The climbing coach's REST API: sessions, attempts, videos and their analyses, profile, progress, admin. Commands answer once the event log acknowledged them; a position token makes the next read wait for them (read-your-writes).",
    ),
    modifiers(&BearerAuth),
    paths(
        identity::register, identity::login, identity::refresh, identity::logout,
        sessions::start, sessions::list, sessions::show,
        attempts::log, attempts::correct, attempts::delete, attempts::end,
        videos::upload, videos::request_analysis,
        reads::progress, reads::analysis, reads::media,
        profile::me, profile::update,
        admin::grant, admin::revoke,
        admin_reads::users, admin_reads::user, admin_reads::sessions, admin_reads::pipeline, admin_reads::analyses, admin_reads::user_analyses,
        admin_reads::audit,
        live::events,
        walls::gyms::register_gym, walls::gyms::register_wall, walls::reads::wall,
        walls::photos::upload, walls::routes::define, walls::routes::confirm, walls::reads::route,
        coaching::request_ghost, coaching::list_ghosts,
        coaching::routines::request, coaching::routines::list, coaching::routines::show,
        coaching::workouts::complete,
    ),
    components(schemas(Problem, FieldError)),
)]
pub struct ApiDoc;

/// `GET /openapi.json` and the Swagger UI at `/docs`.
pub fn router() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}
