//! Reads of gyms' walls and routes from the `walls` projection (`read.walls`,
//! `read.wall_photos`, `read.holds`, `read.routes`). Not personal data: any signed-in caller
//! reads them, and who uploaded a photo is left out. `?after=<position>` waits for a
//! command's effect (R3); the `ETag` is the aggregate's version for `If-Match`.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse as _, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::{caught_up, id};
use crate::{
    AppState,
    accounts::db_error,
    auth::Caller,
    error::{ApiError, Result},
    json::ValidQuery,
    sessions::STALE_HEADER,
    writer,
};

/// The projection that serves these reads (see `projectors/`).
pub const PROJECTION: &str = "walls";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AfterParams {
    /// A position token from a command's response (R3).
    pub(crate) after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WallView {
    pub wall_id: Uuid,
    pub gym_id: Uuid,
    pub name: String,
    pub kind: String,
    pub angle_degrees: Option<f64>,
    pub height_m: Option<f64>,
    pub created_at: DateTime<Utc>,
    #[sqlx(skip)]
    pub photos: Vec<PhotoView>,
    /// Holds of each photo from its newest detector version.
    #[sqlx(skip)]
    pub holds: Vec<HoldView>,
    /// Routes not retired, newest first.
    #[sqlx(skip)]
    pub routes: Vec<RouteView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PhotoView {
    pub photo_id: Uuid,
    pub width_px: i32,
    pub height_px: i32,
    pub content_type: String,
    pub size_bytes: i64,
    pub taken_at: Option<DateTime<Utc>>,
    pub uploaded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HoldView {
    pub analysis_id: Uuid,
    pub hold_id: String,
    pub photo_id: Uuid,
    pub analyzer_version: i32,
    pub center_x: f64,
    pub center_y: f64,
    pub area: f64,
    pub colour: String,
    pub rgb: Vec<i32>,
    pub kind: String,
    pub confidence: f64,
    pub bbox: serde_json::Value,
    pub polygon: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RouteView {
    pub route_id: Uuid,
    pub wall_id: Uuid,
    pub gym_id: Uuid,
    pub name: Option<String>,
    pub colour: String,
    pub grade_system: String,
    pub grade_label: String,
    pub difficulty: Option<i32>,
    pub style_tags: Vec<String>,
    pub wall_angle_degrees: f64,
    pub holds: serde_json::Value,
    pub photo_id: Option<Uuid>,
    /// defined (proposed), confirmed or retired.
    pub status: String,
    pub set_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

const ROUTE_COLUMNS: &str = "route_id, wall_id, gym_id, name, colour, grade_system, grade_label,
    difficulty, style_tags, wall_angle_degrees, holds, photo_id, status, set_at, updated_at";

async fn find_wall(db: &PgPool, wall_id: Uuid) -> Result<Option<WallView>> {
    let Some(mut wall): Option<WallView> = sqlx::query_as(
        "select wall_id, gym_id, name, kind, angle_degrees, height_m, created_at
           from read.walls where wall_id = $1",
    )
    .bind(wall_id)
    .fetch_optional(db)
    .await
    .map_err(db_error)?
    else {
        return Ok(None);
    };
    wall.photos = sqlx::query_as(
        "select photo_id, width_px, height_px, content_type, size_bytes, taken_at, uploaded_at
           from read.wall_photos where wall_id = $1 order by uploaded_at desc, photo_id",
    )
    .bind(wall_id)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    wall.holds = sqlx::query_as(
        "select analysis_id, hold_id, photo_id, analyzer_version, center_x, center_y, area,
                colour, rgb, kind, confidence, bbox, polygon
           from read.holds h
          where wall_id = $1
            and analyzer_version = (select max(analyzer_version) from read.holds
                                     where wall_id = $1 and photo_id = h.photo_id)
          order by photo_id, hold_id",
    )
    .bind(wall_id)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    wall.routes = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ROUTE_COLUMNS} from read.routes
          where wall_id = $1 and status <> 'retired' order by updated_at desc, route_id"
    )))
    .bind(wall_id)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    Ok(Some(wall))
}

/// A read's response: the view, its `ETag`, and a stale mark when `?after=` timed out.
pub(crate) async fn viewed(
    state: &AppState,
    view: impl Serialize,
    aggregate_id: Uuid,
    caught_up: bool,
) -> Result<Response> {
    let version = writer::version_of(state, aggregate_id).await?;
    let mut response = Json(view).into_response();
    let headers = response.headers_mut();
    headers.insert(header::ETAG, crate::command::etag(version));
    if !caught_up {
        headers.insert(STALE_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `GET /v1/walls/{wall_id}`: the wall, its photos, detected holds and routes.
#[utoipa::path(
    get,
    path = "/v1/walls/{wall_id}",
    tag = "walls",
    summary = "A wall with its photos, detected holds and routes",
    params(("wall_id" = Uuid, Path, description = "A wall id"), AfterParams),
    responses((status = 200, description = "The wall; ETag is its version, x-cruxlog-stale marks a read that did not catch up with `after`", body = WallView), (status = 404, description = "No such wall", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Bad query string or position token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn wall(
    State(state): State<AppState>,
    _caller: Caller,
    Path(wall_id): Path<String>,
    ValidQuery(params): ValidQuery<AfterParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let wall_id = id(&wall_id)?;
    let fresh = caught_up(&state, PROJECTION, params.after, &headers).await?;
    let wall = find_wall(&state.db, wall_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    viewed(&state, wall, wall_id, fresh).await
}

/// `GET /v1/routes/{route_id}`.
#[utoipa::path(
    get,
    path = "/v1/routes/{route_id}",
    tag = "walls",
    summary = "A route",
    params(("route_id" = Uuid, Path, description = "A route id"), AfterParams),
    responses((status = 200, description = "The route; ETag is its version", body = RouteView), (status = 404, description = "No such route", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Bad query string or position token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn route(
    State(state): State<AppState>,
    _caller: Caller,
    Path(route_id): Path<String>,
    ValidQuery(params): ValidQuery<AfterParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let route_id = id(&route_id)?;
    let fresh = caught_up(&state, PROJECTION, params.after, &headers).await?;
    let route: RouteView = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ROUTE_COLUMNS} from read.routes where route_id = $1"
    )))
    .bind(route_id)
    .fetch_optional(&state.db)
    .await
    .map_err(db_error)?
    .ok_or(ApiError::NotFound)?;
    viewed(&state, route, route_id, fresh).await
}
