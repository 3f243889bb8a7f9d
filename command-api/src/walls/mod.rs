//! Gyms, walls, wall photos and routes (issue #4 item 2). Gyms and walls are registered by
//! admins (gym staff); any signed-in user uploads wall photos and proposes routes, which an
//! admin confirms. Gym and route data is not personal: every signed-in user reads it.
//!
//! Gyms, walls and routes go through their heads ([`crate::writer`]): walls and routes are
//! changed by later commands (photos, confirmation, `If-Match`), and a gym's head lets a wall
//! be registered under it at once, without waiting for the projection.
//!
//! Layout:
//! - [`domain`]: the gym, wall and route decisions, pure.
//! - [`gyms`]: registering gyms and their walls (admins).
//! - [`photos`]: `POST /v1/walls/{id}/photos`, streamed to the object store.
//! - [`routes`]: defining and confirming routes.
//! - [`reads`]: a wall with its photos, holds and routes; a route.

pub mod domain;
pub mod gyms;
pub mod photos;
pub mod reads;
pub mod routes;

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, FromRequestParts},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse as _, Response},
    routing::{get, post},
};
use cruxlog_schemas::ActorRole;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState, attempts,
    auth::Caller,
    command,
    error::{ApiError, FieldError, Result},
    position::Position,
    read_models,
    sessions::POSITION_HEADER,
    writer::Written,
};

pub fn router(state: &AppState) -> Router<AppState> {
    let limit = usize::try_from(state.config.uploads.max_image_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/v1/gyms", post(gyms::register_gym))
        .route("/v1/gyms/{gym_id}/walls", post(gyms::register_wall))
        .route("/v1/walls/{wall_id}", get(reads::wall))
        .route(
            "/v1/walls/{wall_id}/photos",
            post(photos::upload).layer(DefaultBodyLimit::max(limit)),
        )
        .merge(routes::router())
}

/// A caller with the admin role; others get 403 before their body is read.
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.actor.role != ActorRole::Admin {
            return Err(ApiError::Forbidden("this needs the admin role"));
        }
        Ok(Self(caller))
    }
}

/// The state in an aggregate's head when it is of `aggregate_type` (`None` otherwise: an id
/// of another kind names nothing here, rather than failing to decode). Checked before
/// [`writer::execute`], whose decision would otherwise meet another aggregate's state.
pub(crate) async fn head<S: serde::de::DeserializeOwned>(
    state: &AppState,
    aggregate_type: &str,
    aggregate_id: Uuid,
) -> Result<Option<S>> {
    let current: Option<Option<serde_json::Value>> = sqlx::query_scalar(
        "select state from api.aggregate_heads where aggregate_id = $1 and aggregate_type = $2",
    )
    .bind(aggregate_id)
    .bind(aggregate_type)
    .fetch_optional(&state.db)
    .await
    .map_err(crate::accounts::db_error)?;
    current
        .flatten()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|error| ApiError::Internal(error.into()))
}

/// A schema enum from its lower-case name (`spray_wall` -> `SPRAY_WALL`).
pub(crate) fn symbol<T: for<'de> Deserialize<'de>>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_ascii_uppercase())).ok()
}

/// Path ids that are not UUIDs name nothing.
pub(crate) fn id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound)
}

/// Collects every broken rule of a body, so one 422 names them all (W4).
#[derive(Default)]
pub(crate) struct Problems(pub Vec<FieldError>);

impl Problems {
    pub(crate) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// `Ok(value)` when nothing is broken (and `value` was built), the 422 otherwise.
    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<T> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(ApiError::Validation(self.0)),
        }
    }
}

/// A text field: trimmed, 1 to `max` characters, none of them control characters (a NUL
/// could not even be stored: PostgreSQL's text and jsonb refuse it, in the head and in the
/// read models).
pub(crate) fn text(problems: &mut Problems, field: &str, value: &str, max: usize) -> String {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        problems.add(field, format!("must be 1 to {max} characters"));
    } else if trimmed.chars().any(char::is_control) {
        problems.add(field, "must not contain control characters");
    }
    trimmed.to_owned()
}

/// A command's response: `body`, the aggregate's `ETag`, the position token (R3) and, when
/// given, the new resource's location.
pub(crate) fn written_response(
    status: StatusCode,
    body: impl Serialize,
    written: &Written,
    location: Option<&str>,
) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, attempts::etag(written.version));
    match &written.position {
        Some(position) => command::with_position(response, position, location),
        None => response,
    }
}

/// Read-your-writes (R3): waits, bounded, until `projection` has applied the position given
/// as `?after=` or in the position header. Returns whether it caught up.
pub(crate) async fn caught_up(
    state: &AppState,
    projection: &str,
    after: Option<String>,
    headers: &HeaderMap,
) -> Result<bool> {
    let token = after.or_else(|| {
        headers
            .get(POSITION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let Some(token) = token else {
        return Ok(true);
    };
    let position = Position::parse(&token)
        .ok_or_else(|| ApiError::invalid("after", "not a position token"))?;
    let bound = Duration::from_millis(state.config.http.consistency_wait_ms);
    read_models::wait_for(&state.db, projection, &position, bound).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_are_trimmed_bounded_and_free_of_control_characters() {
        let mut problems = Problems::default();
        assert_eq!(text(&mut problems, "name", "  Arkose ", 10), "Arkose");
        assert!(problems.0.is_empty());
        text(&mut problems, "name", "a\0b", 10);
        text(&mut problems, "city", "a\nb", 10);
        text(&mut problems, "hold_id", "   ", 10);
        text(&mut problems, "wall", "elevenchars", 10);
        let fields: Vec<_> = problems.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["name", "city", "hold_id", "wall"]);
    }
}
