//! Coaching (issue #4 item 2): ghosts (a virtual climber with the caller's proportions on a
//! route), training routines and the workouts done from them. Requests are appended here;
//! the generators answer with `GhostGenerated` / `RoutineGenerated` (or a failure), read
//! back from the `coaching` projection. Everything is the caller's own: another user's
//! routine is 404, and ids in a body that are not the caller's are 422 like unknown ones.
//!
//! Layout:
//! - [`domain`]: the routine's decisions, pure.
//! - [`routines`]: requesting routines, recording workouts, reading them.
//! - [`workouts`]: a workout done from a routine's plan, checked against it.
//! - [`queries`]: the caller's ghosts, routines and workouts from `read.*`.

pub mod domain;
pub mod queries;
pub mod routines;
pub mod workouts;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse as _, Response},
    routing::post,
};
use cruxlog_schemas::events::{GhostRequested, aggregate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState,
    auth::Caller,
    command::{self, Command},
    error::Result,
    json::{ValidJson, ValidQuery},
    sessions::STALE_HEADER,
    walls::{Problems, caught_up, domain::RouteState, head},
};

/// The projection that serves these reads (see `projectors/`).
pub const PROJECTION: &str = "coaching";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/ghosts", post(request_ghost).get(list_ghosts))
        .merge(routines::router())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GhostBody {
    pub route_id: Uuid,
    /// One of the caller's movement analyses whose climb the ghost retargets; without it the
    /// ghost is planned from the route's holds alone.
    #[serde(default)]
    pub reference_analysis_id: Option<Uuid>,
    /// Pin a generator version; the latest when absent.
    #[serde(default)]
    pub analyzer_version: Option<i32>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GhostAccepted {
    pub ghost_id: Uuid,
    pub position: String,
}

#[utoipa::path(
    post,
    path = "/v1/ghosts",
    tag = "coaching",
    summary = "Request a ghost climber on a route",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key replay the first response")),
    request_body = GhostBody,
    responses((status = 202, description = "Requested; the generator answers asynchronously", body = GhostAccepted), (status = 409, description = "A retry while the first request with this Idempotency-Key still runs", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn request_ghost(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ValidJson(body): ValidJson<GhostBody>,
) -> Result<Response> {
    let mut problems = Problems::default();
    if body.analyzer_version.is_some_and(|v| v < 1) {
        problems.add("analyzer_version", "must be at least 1");
    }
    let route: Option<RouteState> = head(&state, aggregate::ROUTE, body.route_id).await?;
    if route.is_none() {
        problems.add("route_id", "no such route");
    }
    if let Some(analysis_id) = body.reference_analysis_id
        && !queries::owns_movement_analysis(&state.db, caller.user_id, analysis_id).await?
    {
        problems.add("reference_analysis_id", "no movement analysis of yours");
    }
    let route = problems.finish(route)?;
    let command = Command::new(caller.actor.clone(), &headers);
    let event = GhostRequested {
        ghost_id: command.new_id("ghost"),
        user_id: caller.user_id,
        route_id: body.route_id,
        wall_id: route.wall_id,
        reference_analysis_id: body.reference_analysis_id,
        // The generator fits the caller's latest morphology estimate itself when it has one.
        morphology: None,
        requested_analyzer_version: body.analyzer_version,
    };
    let position = command::append(&state, &command, event.ghost_id, 1, &event).await?;
    let response = (
        StatusCode::ACCEPTED,
        Json(GhostAccepted {
            ghost_id: event.ghost_id,
            position: position.to_string(),
        }),
    )
        .into_response();
    Ok(command::with_position(response, &position, None))
}

/// `?limit=` (1..=100, default 50) and `?after=<position>` (R3) of the lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// 1 to 100, default 50.
    limit: Option<i64>,
    /// A position token from a command's response (R3).
    after: Option<String>,
}

/// `GET /v1/ghosts`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GhostList {
    pub ghosts: Vec<queries::GhostView>,
}

impl ListParams {
    fn limit(&self) -> Result<i64> {
        crate::json::page_limit(self.limit, 50, 100)
    }
}

/// A list as JSON, marked stale when `?after=` timed out.
fn listed(view: impl Serialize, fresh: bool) -> Response {
    let mut response = Json(view).into_response();
    if !fresh {
        response
            .headers_mut()
            .insert(STALE_HEADER, HeaderValue::from_static("true"));
    }
    response
}

#[utoipa::path(
    get,
    path = "/v1/ghosts",
    tag = "coaching",
    summary = "My ghosts, newest request first",
    params(ListParams),
    responses((status = 200, body = GhostList), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Bad query string or position token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn list_ghosts(
    State(state): State<AppState>,
    caller: Caller,
    ValidQuery(params): ValidQuery<ListParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let limit = params.limit()?;
    let fresh = caught_up(&state, PROJECTION, params.after, &headers).await?;
    let ghosts = queries::ghosts(&state.db, caller.user_id, limit).await?;
    Ok(listed(GhostList { ghosts }, fresh))
}
