//! `POST /v1/walls/{wall_id}/photos`: a photo of a wall, streamed to the object store (see
//! [`crate::uploads`]) and recorded as `WallPhotoUploaded` through the wall's head, so routes
//! can be drawn on it at once. Any signed-in user may add one: climbers photograph the walls
//! they climb.

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use cruxlog_schemas::events::{Sealed, WallPhotoUploaded, aggregate, sealed::MediaRef};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{domain, head, id, written_response};
use crate::{
    AppState,
    auth::Caller,
    command::Command,
    command::expected_version,
    error::{ApiError, Result},
    uploads, writer,
};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhotoStored {
    pub photo_id: Uuid,
    pub wall_id: Uuid,
    pub sha256: String,
    pub size_bytes: i64,
    pub content_type: String,
    pub width_px: i32,
    pub height_px: i32,
    /// The wall's version now.
    pub version: i64,
    pub position: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/walls/{wall_id}/photos",
    tag = "walls",
    summary = "Upload a photo of a wall (JPEG or PNG)",
    params(("wall_id" = Uuid, Path, description = "A wall id"), ("If-Match" = Option<String>, Header, description = "The ETag the change is based on; 409 when the resource moved on"), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key replay the first response")),
    request_body(content = Vec<u8>, content_type = "image/jpeg", description = "The photo's bytes, JPEG or PNG (declare image/png for PNG), streamed"),
    responses((status = 201, body = PhotoStored), (status = 404, description = "No such wall", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, description = "Version conflict (If-Match), or a retry while the first request with this Idempotency-Key still runs", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not a JPEG or PNG image", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed request", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Unreadable image or bad If-Match", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log, object store or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(wall_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let wall_id = id(&wall_id)?;
    let expected = expected_version(&headers)?;
    // Refuse before reading a byte when there is no such wall.
    if head::<domain::WallState>(&state, aggregate::WALL, wall_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound);
    }
    let (declared_type, declared_length) = uploads::declared(&headers);
    let image = uploads::receive_image(
        &state.blobs,
        &state.config.uploads,
        declared_type,
        declared_length,
        body,
    )
    .await?;

    let command = Command::new(caller.actor.clone(), &headers);
    let media = MediaRef {
        object_key: image.blob.key.clone(),
        sha256: image.blob.sha256.clone(),
    };
    let event = WallPhotoUploaded {
        wall_id,
        photo_id: command.new_id("photo"),
        uploaded_by: caller.user_id,
        media: Sealed::dev(format!("user:{}", caller.user_id), &media),
        width_px: image.width_px,
        height_px: image.height_px,
        content_type: image.content_type.clone(),
        size_bytes: i64::try_from(image.blob.size).unwrap_or(i64::MAX),
        taken_at: image.taken_at,
    };
    let written = writer::execute(&state, &command, aggregate::WALL, wall_id, expected, |s| {
        domain::add_photo(s, &event)
    })
    .await?;
    let body = PhotoStored {
        photo_id: event.photo_id,
        wall_id,
        sha256: image.blob.sha256,
        size_bytes: event.size_bytes,
        content_type: event.content_type,
        width_px: event.width_px,
        height_px: event.height_px,
        version: written.version,
        position: written.position.as_ref().map(ToString::to_string),
    };
    Ok(written_response(StatusCode::CREATED, body, &written, None))
}
