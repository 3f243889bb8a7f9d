//! `POST /v1/gyms` and `POST /v1/gyms/{gym_id}/walls` (admins): `GymRegistered` and
//! `WallRegistered`, each through its aggregate's head.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use cruxlog_schemas::events::{GymRegistered, WallKind, WallRegistered, aggregate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Admin, Problems, domain, head, id, symbol, text, written_response};
use crate::{
    AppState,
    command::Command,
    error::{ApiError, Result},
    json::ValidJson,
    writer,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GymBody {
    pub name: String,
    #[serde(default)]
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `FR`.
    #[serde(default)]
    pub country_code: Option<String>,
    /// WGS 84 degrees; with `longitude`.
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
    /// IANA time zone, e.g. `Europe/Paris`.
    #[serde(default)]
    pub timezone: Option<String>,
}

impl GymBody {
    fn validate(self, gym_id: Uuid) -> Result<GymRegistered> {
        let mut problems = Problems::default();
        let name = text(&mut problems, "name", &self.name, 200);
        let city = self
            .city
            .map(|city| text(&mut problems, "city", &city, 100));
        let country_code = self
            .country_code
            .map(|code| code.trim().to_ascii_uppercase());
        if let Some(code) = &country_code
            && !(code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()))
        {
            problems.add("country_code", "must be two letters (ISO 3166-1 alpha-2)");
        }
        if self
            .latitude
            .is_some_and(|lat| !(-90.0..=90.0).contains(&lat))
        {
            problems.add("latitude", "must be between -90 and 90");
        }
        if self
            .longitude
            .is_some_and(|lon| !(-180.0..=180.0).contains(&lon))
        {
            problems.add("longitude", "must be between -180 and 180");
        }
        if self.latitude.is_some() != self.longitude.is_some() {
            problems.add("longitude", "latitude and longitude come together");
        }
        // No time-zone database here: the shape of an IANA name (`Area/City`, or `UTC`).
        if let Some(zone) = &self.timezone
            && !(zone == "UTC"
                || (zone.contains('/')
                    && zone.len() <= 64
                    && zone
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))))
        {
            problems.add("timezone", "must be an IANA time zone, e.g. Europe/Paris");
        }
        let event = GymRegistered {
            gym_id,
            name,
            city,
            country_code,
            latitude: self.latitude,
            longitude: self.longitude,
            timezone: self.timezone,
        };
        problems.finish(Some(event))
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GymCreated {
    pub gym_id: Uuid,
    pub position: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/gyms",
    tag = "walls",
    summary = "Register a gym (admins only)",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key replay the first response")),
    request_body = GymBody,
    responses((status = 201, body = GymCreated), (status = 403, description = "Not an admin", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, description = "A retry while the first request with this Idempotency-Key still runs", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn register_gym(
    State(state): State<AppState>,
    Admin(caller): Admin,
    headers: HeaderMap,
    ValidJson(body): ValidJson<GymBody>,
) -> Result<Response> {
    let command = Command::new(caller.actor.clone(), &headers);
    let gym_id = command.new_id("gym");
    let event = body.validate(gym_id)?;
    let written = writer::execute(&state, &command, aggregate::GYM, gym_id, None, |s| {
        domain::register_gym(s, &event)
    })
    .await?;
    let body = GymCreated {
        gym_id,
        position: written.position.as_ref().map(ToString::to_string),
    };
    Ok(written_response(StatusCode::CREATED, body, &written, None))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WallBody {
    pub name: String,
    /// boulder, lead, top_rope, board, spray_wall, training or other.
    pub kind: String,
    /// Degrees from vertical: positive overhanging, negative slab.
    #[serde(default)]
    pub angle_degrees: Option<f64>,
    #[serde(default)]
    pub height_m: Option<f64>,
}

impl WallBody {
    fn validate(self, wall_id: Uuid, gym_id: Uuid) -> Result<WallRegistered> {
        let mut problems = Problems::default();
        let name = text(&mut problems, "name", &self.name, 200);
        let kind: Option<WallKind> = symbol(&self.kind);
        if kind.is_none() {
            problems.add(
                "kind",
                "must be boulder, lead, top_rope, board, spray_wall, training or other",
            );
        }
        if self
            .angle_degrees
            .is_some_and(|a| !(-90.0..=90.0).contains(&a))
        {
            problems.add("angle_degrees", "must be between -90 and 90");
        }
        if self.height_m.is_some_and(|h| !(h > 0.0 && h <= 100.0)) {
            problems.add("height_m", "must be above 0 and at most 100");
        }
        let event = kind.map(|kind| WallRegistered {
            wall_id,
            gym_id,
            name,
            kind,
            angle_degrees: self.angle_degrees,
            height_m: self.height_m,
        });
        problems.finish(event)
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WallCreated {
    pub wall_id: Uuid,
    pub gym_id: Uuid,
    /// The wall's version; send it back as `If-Match: "<version>"`.
    pub version: i64,
    pub position: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/gyms/{gym_id}/walls",
    tag = "walls",
    summary = "Register a wall of a gym (admins only)",
    params(("gym_id" = Uuid, Path, description = "A gym id"), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key replay the first response")),
    request_body = WallBody,
    responses((status = 201, description = "Registered; Location names the wall", body = WallCreated), (status = 403, description = "Not an admin", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "No such gym", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, description = "A retry while the first request with this Idempotency-Key still runs", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn register_wall(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(gym_id): Path<String>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<WallBody>,
) -> Result<Response> {
    let gym_id = id(&gym_id)?;
    let command = Command::new(caller.actor.clone(), &headers);
    let wall_id = command.new_id("wall");
    let event = body.validate(wall_id, gym_id)?;
    if head::<domain::GymState>(&state, aggregate::GYM, gym_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound);
    }
    let written = writer::execute(&state, &command, aggregate::WALL, wall_id, None, |s| {
        domain::register_wall(s, &event)
    })
    .await?;
    let body = WallCreated {
        wall_id,
        gym_id,
        version: written.version,
        position: written.position.as_ref().map(ToString::to_string),
    };
    let location = format!("/v1/walls/{wall_id}");
    Ok(written_response(
        StatusCode::CREATED,
        body,
        &written,
        Some(&location),
    ))
}
