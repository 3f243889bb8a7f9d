//! The caller's own reads beyond sessions: progress (`GET /v1/me/progress`), one analysis
//! (`GET /v1/analyses/{id}`) and its media, streamed from the object store
//! (`GET /v1/analyses/{id}/media/{name}`).

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse as _, Response},
    routing::get,
};
use futures::TryStreamExt as _;

use crate::{
    AppState,
    auth::Caller,
    error::{ApiError, Result},
    json::path_id as id,
    queries::{self, AnalysisView, Progress},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me/progress", get(progress))
        .route("/v1/analyses/{analysis_id}", get(analysis))
        .route("/v1/analyses/{analysis_id}/media/{name}", get(media))
}

#[utoipa::path(
    get,
    path = "/v1/me/progress",
    tag = "progress",
    summary = "My grade pyramid, weekly volume and send rate by style",
    responses((status = 200, body = Progress), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn progress(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Progress>> {
    Ok(Json(queries::progress(&state.db, caller.user_id).await?))
}

#[utoipa::path(
    get,
    path = "/v1/analyses/{analysis_id}",
    tag = "analyses",
    summary = "One of my analyses",
    params(("analysis_id" = Uuid, Path, description = "An analysis id")),
    responses((status = 200, body = AnalysisView), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn analysis(
    State(state): State<AppState>,
    caller: Caller,
    Path(analysis_id): Path<String>,
) -> Result<Json<AnalysisView>> {
    let (view, _) = queries::analysis(&state.db, caller.user_id, id(&analysis_id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(view))
}

/// Streams one of an analysis' media files; only its owner gets it.
#[utoipa::path(
    get,
    path = "/v1/analyses/{analysis_id}/media/{name}",
    tag = "analyses",
    summary = "A media file of an analysis (annotated video, summary image, pose track)",
    params(("analysis_id" = Uuid, Path, description = "An analysis id"), ("name" = String, Path, description = "annotated_video, summary_image or pose_track")),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn media(
    State(state): State<AppState>,
    caller: Caller,
    Path((analysis_id, name)): Path<(String, String)>,
) -> Result<Response> {
    if !queries::MEDIA_NAMES.contains(&name.as_str()) {
        return Err(ApiError::NotFound);
    }
    let (_, media) = queries::analysis(&state.db, caller.user_id, id(&analysis_id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    let key = media
        .as_ref()
        .and_then(|media| queries::media_key(&media[name.as_str()]))
        .ok_or(ApiError::NotFound)?;
    let (size, stream) = match state.blobs.get_stream(&key).await {
        Ok(found) => found,
        Err(cruxlog_runtime::blobs::BlobError::NotFound(_)) => return Err(ApiError::NotFound),
        Err(error) => return Err(ApiError::Internal(error.into())),
    };
    let content_type = match name.as_str() {
        "annotated_video" => "video/mp4",
        "summary_image" => "image/jpeg",
        _ => "application/json",
    };
    let mut response = Body::from_stream(stream.map_err(std::io::Error::other)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400, immutable"),
    );
    Ok(response)
}
