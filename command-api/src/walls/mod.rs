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

use axum::{
    Router,
    routing::{get, post},
};

// The API's shared pieces, under the names this module's files use.
pub(crate) use crate::{
    admin::Admin,
    command::written_response,
    json::{path_id as id, symbol},
    read_models::caught_up,
    writer::peek as head,
};

use crate::{
    AppState,
    error::{ApiError, FieldError, Result},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/gyms", post(gyms::register_gym))
        .route("/v1/gyms/{gym_id}/walls", post(gyms::register_wall))
        .route("/v1/walls/{wall_id}", get(reads::wall))
        .route(
            "/v1/walls/{wall_id}/photos",
            // The body is read as a stream; `uploads` enforces the size limits itself.
            post(photos::upload),
        )
        .merge(routes::router())
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
