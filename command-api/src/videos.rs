//! Videos of attempts: `POST /v1/sessions/{s}/attempts/{a}/videos` streams one to the object
//! store (see [`crate::uploads`]), appends `VideoAttached` and, unless `?analyze=false`,
//! requests its movement analysis; `POST /v1/sessions/{s}/videos/{v}/analyses` requests one
//! again (e.g. after a failure, or pinned to an analyzer version).

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse as _, Response},
    routing::post,
};
use cruxlog_schemas::events::{
    AnalysisInput, AnalysisKind, AnalysisReason, AnalysisRequested, InputKind, Sealed,
    VideoAttached, aggregate, analysis_id, sealed::MediaRef,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState,
    auth::Caller,
    command::{self, Command, expected_version},
    domain::{self, SessionState},
    error::{ApiError, Result},
    json::{ValidJson, ValidQuery, path_id as id},
    uploads, writer,
};

/// The analyzer that reads climbing videos (see `analyzers/src/movement`).
pub const MOVEMENT: &str = "movement";

/// The upload reads its body as a stream; [`uploads`] enforces the size limits itself.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/sessions/{session_id}/attempts/{attempt_id}/videos",
            post(upload),
        )
        .route(
            "/v1/sessions/{session_id}/videos/{video_id}/analyses",
            post(request_analysis),
        )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadParams {
    /// Request the movement analysis right away (default true).
    analyze: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VideoStored {
    pub video_id: Uuid,
    pub sha256: String,
    pub size_bytes: i64,
    pub duration_ms: i64,
    pub analysis_id: Option<Uuid>,
    /// The session's version now.
    pub version: i64,
    pub position: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{session_id}/attempts/{attempt_id}/videos",
    tag = "videos",
    summary = "Upload a video of an attempt (MP4/MOV, H.264/HEVC)",
    params(("session_id" = Uuid, Path, description = "A session id"), ("attempt_id" = Uuid, Path, description = "An attempt id"), UploadParams),
    request_body(content = Vec<u8>, content_type = "video/mp4", description = "The video bytes, streamed"),
    responses((status = 201, body = VideoStored), (status = 404, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not an MP4/MOV H.264/HEVC video", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path((session_id, attempt_id)): Path<(String, String)>,
    ValidQuery(params): ValidQuery<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let (session_id, attempt_id) = (id(&session_id)?, id(&attempt_id)?);
    let expected = expected_version(&headers)?;
    // Refuse before reading a byte when the video could not be attached anyway.
    let current: Option<SessionState> =
        writer::peek(&state, aggregate::CLIMBING_SESSION, session_id).await?;
    domain::can_attach(current, caller.user_id, attempt_id)?;

    let (declared_type, declared_length) = uploads::declared(&headers);
    let video = uploads::receive_video(
        &state.blobs,
        &state.config.uploads,
        declared_type,
        declared_length,
        body,
    )
    .await?;

    let command = Command::new(caller.actor.clone(), &headers);
    let media = MediaRef {
        object_key: video.blob.key.clone(),
        sha256: video.blob.sha256.clone(),
    };
    let sealed = Sealed::dev(format!("user:{}", caller.user_id), &media);
    let event = VideoAttached {
        session_id,
        attempt_id,
        video_id: command.new_id("video"),
        user_id: caller.user_id,
        media: sealed.clone(),
        duration_ms: video.duration_ms,
        size_bytes: i64::try_from(video.blob.size).unwrap_or(i64::MAX),
        content_type: video.content_type.clone(),
        rotation_degrees: video.rotation_degrees,
        width_px: video.width_px,
        height_px: video.height_px,
        frame_rate: video.frame_rate,
        recorded_at: video.recorded_at,
    };
    let written = writer::execute(
        &state,
        &command,
        aggregate::CLIMBING_SESSION,
        session_id,
        expected,
        |s| domain::attach_video(s, &event),
    )
    .await?;
    let mut position = written.position.clone();
    let mut requested = None;
    if params.analyze.unwrap_or(true)
        && let Some(event_id) = written.event_ids.first()
    {
        let request = movement_request(
            caller.user_id,
            *event_id,
            event.video_id,
            sealed,
            None,
            AnalysisReason::Automatic,
        );
        position = Some(command::append(&state, &command, request.analysis_id, 1, &request).await?);
        requested = Some(request.analysis_id);
    }
    let body = VideoStored {
        video_id: event.video_id,
        sha256: video.blob.sha256,
        size_bytes: event.size_bytes,
        duration_ms: event.duration_ms,
        analysis_id: requested,
        version: written.version,
        position: position.as_ref().map(ToString::to_string),
    };
    let written = writer::Written {
        position,
        ..written
    };
    Ok(command::written_response(
        StatusCode::CREATED,
        body,
        &written,
        None,
    ))
}

/// `AnalysisRequested` for one video; its id is fixed by (video event, analyzer, version), so
/// asking twice is the same analysis (A1).
fn movement_request(
    user_id: Uuid,
    video_event_id: Uuid,
    video_id: Uuid,
    media: Sealed,
    version: Option<i32>,
    reason: AnalysisReason,
) -> AnalysisRequested {
    AnalysisRequested {
        analysis_id: analysis_id(video_event_id, MOVEMENT, version),
        user_id,
        kind: AnalysisKind::Movement,
        input_event_id: video_event_id,
        inputs: vec![AnalysisInput {
            kind: InputKind::Video,
            id: video_id,
            media: Some(media),
        }],
        requested_analyzer_version: version,
        reason,
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisRequest {
    /// Pin an analyzer version; the latest when absent.
    #[serde(default)]
    pub analyzer_version: Option<i32>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnalysisAccepted {
    pub analysis_id: Uuid,
    pub position: String,
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{session_id}/videos/{video_id}/analyses",
    tag = "videos",
    summary = "Request a movement analysis of a video",
    params(("session_id" = Uuid, Path, description = "A session id"), ("video_id" = Uuid, Path, description = "A video id")),
    request_body = AnalysisRequest,
    responses((status = 202, body = AnalysisAccepted), (status = 404, body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn request_analysis(
    State(state): State<AppState>,
    caller: Caller,
    Path((session_id, video_id)): Path<(String, String)>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<AnalysisRequest>,
) -> Result<Response> {
    let (session_id, video_id) = (id(&session_id)?, id(&video_id)?);
    if body.analyzer_version.is_some_and(|v| v < 1) {
        return Err(ApiError::invalid("analyzer_version", "must be at least 1"));
    }
    let current: Option<SessionState> =
        writer::peek(&state, aggregate::CLIMBING_SESSION, session_id).await?;
    let video = current
        .filter(|s| s.owner == caller.user_id)
        .and_then(|s| s.videos.get(&video_id).cloned())
        .ok_or(ApiError::NotFound)?;
    let request = movement_request(
        caller.user_id,
        video.event_id,
        video_id,
        video.media,
        body.analyzer_version,
        AnalysisReason::UserRequest,
    );
    let command = Command::new(caller.actor.clone(), &headers);
    let position = command::append(&state, &command, request.analysis_id, 1, &request).await?;
    let response = (
        StatusCode::ACCEPTED,
        Json(AnalysisAccepted {
            analysis_id: request.analysis_id,
            position: position.to_string(),
        }),
    )
        .into_response();
    let location = format!("/v1/analyses/{}", request.analysis_id);
    Ok(command::with_position(response, &position, Some(&location)))
}
