//! `POST /v1/walls/{wall_id}/photos`: a photo of a wall, streamed to the object store (see
//! [`crate::uploads`]) and recorded as `WallPhotoUploaded` through the wall's head, so routes
//! can be drawn on it at once. Any signed-in user may add one: climbers photograph the walls
//! they climb.

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use cruxlog_schemas::events::{Sealed, WallPhotoUploaded, aggregate, sealed::MediaRef};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{domain, head, id, written_response};
use crate::{
    AppState,
    attempts::expected_version,
    auth::Caller,
    command::Command,
    error::{ApiError, Result},
    uploads, writer,
};

#[derive(Debug, Serialize, Deserialize)]
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

pub(super) async fn upload(
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
    let declared_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
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
