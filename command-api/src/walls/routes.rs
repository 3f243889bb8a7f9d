//! Routes on a wall: `POST /v1/walls/{wall_id}/routes` proposes one (`RouteDefined`; any
//! signed-in user), `POST /v1/routes/{route_id}/confirm` confirms it, possibly at another
//! grade (`RouteConfirmed`; admins), `GET /v1/routes/{route_id}` reads it. Both commands go
//! through the route's head, so confirmation checks that the route exists and `If-Match`.

use std::collections::BTreeSet;

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use cruxlog_schemas::{
    envelope::truncate_to_micros,
    events::{HoldColour, HoldRole, RouteDefined, RouteHold, RouteStyle, aggregate},
    grades::{Grade, GradeSystem},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Admin, Problems, domain, head, id, reads, symbol, text, written_response};
use crate::{
    AppState, auth::Caller, command::Command, command::expected_version, error::ApiError,
    error::Result, json::ValidJson, writer,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/walls/{wall_id}/routes", post(define))
        .route("/v1/routes/{route_id}", get(reads::route))
        .route("/v1/routes/{route_id}/confirm", post(confirm))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    pub hold_id: String,
    /// start, hand, foot, any or finish.
    pub role: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteBody {
    #[serde(default)]
    pub name: Option<String>,
    /// The hold detection whose hold ids `holds` uses; every id is checked against it. Without
    /// it, hold ids are the app's own (holds marked by hand).
    #[serde(default)]
    pub holds_analysis_id: Option<Uuid>,
    /// A photo of this wall the route is drawn on.
    #[serde(default)]
    pub photo_id: Option<Uuid>,
    #[serde(default)]
    pub holds: Vec<HoldBody>,
    /// The tape or hold colour: red, orange, yellow, green, blue, purple, pink, white, black,
    /// grey, brown, multi or other.
    pub colour: String,
    /// `french`, `v_scale` or `fontainebleau`.
    pub grade_system: String,
    pub grade: String,
    #[serde(default)]
    pub style_tags: Vec<String>,
    /// Degrees from vertical; defaults to the wall's angle.
    #[serde(default)]
    pub wall_angle_degrees: Option<f64>,
    #[serde(default)]
    pub set_at: Option<DateTime<Utc>>,
}

/// A grade from its two fields, or the reason it is not one.
pub(crate) fn grade_of(problems: &mut Problems, system: &str, label: &str) -> Option<Grade> {
    let Some(system) = symbol::<GradeSystem>(system) else {
        problems.add("grade_system", "must be french, v_scale or fontainebleau");
        return None;
    };
    Grade::parse(system, label)
        .map_err(|error| problems.add("grade", error.to_string()))
        .ok()
}

impl RouteBody {
    /// Every rule that needs no read model; `wall` supplies the gym, photos and default angle.
    fn validate(
        self,
        route_id: Uuid,
        wall_id: Uuid,
        wall: &domain::WallState,
        now: DateTime<Utc>,
    ) -> (Problems, Option<RouteDefined>) {
        let mut problems = Problems::default();
        let name = self
            .name
            .map(|name| text(&mut problems, "name", &name, 100));
        if self.holds.len() > 200 {
            problems.add("holds", "at most 200 holds");
        }
        let mut seen = BTreeSet::new();
        let mut holds = Vec::new();
        for (index, hold) in self.holds.into_iter().enumerate() {
            let hold_id = text(
                &mut problems,
                &format!("holds[{index}].hold_id"),
                &hold.hold_id,
                64,
            );
            if !seen.insert(hold_id.clone()) {
                problems.add(format!("holds[{index}].hold_id"), "listed twice");
            }
            match symbol::<HoldRole>(&hold.role).filter(|role| *role != HoldRole::Unknown) {
                Some(role) => holds.push(RouteHold { hold_id, role }),
                None => problems.add(
                    format!("holds[{index}].role"),
                    "must be start, hand, foot, any or finish",
                ),
            }
        }
        let colour: Option<HoldColour> = symbol(&self.colour);
        if colour.is_none() {
            problems.add("colour", "must be red, orange, yellow, green, blue, purple, pink, white, black, grey, brown, multi or other");
        }
        let grade = grade_of(&mut problems, &self.grade_system, &self.grade);
        let mut style_tags = Vec::new();
        for (index, tag) in self.style_tags.iter().enumerate() {
            match symbol::<RouteStyle>(tag) {
                Some(tag) if !style_tags.contains(&tag) => style_tags.push(tag),
                Some(_) => {}
                None => problems.add(format!("style_tags[{index}]"), "not a route style"),
            }
        }
        if style_tags.len() > 10 {
            problems.add("style_tags", "at most 10 tags");
        }
        let angle = self.wall_angle_degrees.or(wall.angle_degrees);
        match angle {
            None => problems.add("wall_angle_degrees", "required: the wall has no angle"),
            Some(a) if !(-90.0..=90.0).contains(&a) => {
                problems.add("wall_angle_degrees", "must be between -90 and 90");
            }
            Some(_) => {}
        }
        if self
            .photo_id
            .is_some_and(|photo| !wall.photos.contains(&photo))
        {
            problems.add("photo_id", "not a photo of this wall");
        }
        if self
            .set_at
            .is_some_and(|at| at > now + chrono::Duration::minutes(5))
        {
            problems.add("set_at", "must not be in the future");
        }
        let event = match (colour, grade, angle) {
            (Some(colour), Some(grade), Some(wall_angle_degrees)) => Some(RouteDefined {
                route_id,
                wall_id,
                gym_id: wall.gym_id,
                name,
                holds_analysis_id: self.holds_analysis_id,
                photo_id: self.photo_id,
                holds,
                colour,
                grade,
                style_tags,
                wall_angle_degrees,
                set_at: self.set_at.map(truncate_to_micros),
            }),
            _ => None,
        };
        (problems, event)
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RouteChanged {
    pub route_id: Uuid,
    /// The route's version; send it back as `If-Match: "<version>"`.
    pub version: i64,
    pub position: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/walls/{wall_id}/routes",
    tag = "walls",
    summary = "Propose a route on a wall",
    params(("wall_id" = Uuid, Path, description = "A wall id"), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key replay the first response")),
    request_body = RouteBody,
    responses((status = 201, description = "Proposed; Location names the route", body = RouteChanged), (status = 404, description = "No such wall", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, description = "A retry while the first request with this Idempotency-Key still runs", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn define(
    State(state): State<AppState>,
    caller: Caller,
    Path(wall_id): Path<String>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<RouteBody>,
) -> Result<Response> {
    let wall_id = id(&wall_id)?;
    let wall: domain::WallState = head(&state, aggregate::WALL, wall_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let command = Command::new(caller.actor.clone(), &headers);
    let route_id = command.new_id("route");
    let (mut problems, event) = body.validate(route_id, wall_id, &wall, Utc::now());
    if let Some(event) = &event
        && let Some(analysis_id) = event.holds_analysis_id
    {
        check_holds(&state, &mut problems, wall_id, analysis_id, &event.holds).await?;
    }
    let event = problems.finish(event)?;
    let written = writer::execute(&state, &command, aggregate::ROUTE, route_id, None, |s| {
        domain::define_route(s, &event)
    })
    .await?;
    let body = RouteChanged {
        route_id,
        version: written.version,
        position: written.position.as_ref().map(ToString::to_string),
    };
    let location = format!("/v1/routes/{route_id}");
    Ok(written_response(
        StatusCode::CREATED,
        body,
        &written,
        Some(&location),
    ))
}

/// Every hold id must be one the detection found on this wall (`read.holds`: detections only
/// exist once projected, so there is nothing fresher to ask).
async fn check_holds(
    state: &AppState,
    problems: &mut Problems,
    wall_id: Uuid,
    analysis_id: Uuid,
    holds: &[RouteHold],
) -> Result<()> {
    let detected: Vec<String> = sqlx::query_scalar(
        "select hold_id from read.holds where analysis_id = $1 and wall_id = $2",
    )
    .bind(analysis_id)
    .bind(wall_id)
    .fetch_all(&state.db)
    .await
    .map_err(crate::accounts::db_error)?;
    if detected.is_empty() {
        problems.add("holds_analysis_id", "no holds detected on this wall by it");
        return Ok(());
    }
    for (index, hold) in holds.iter().enumerate() {
        if !detected.contains(&hold.hold_id) {
            problems.add(format!("holds[{index}].hold_id"), "not a detected hold");
        }
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The confirmed grade, with `grade`; the proposed one when both are absent.
    #[serde(default)]
    pub grade_system: Option<String>,
    #[serde(default)]
    pub grade: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/routes/{route_id}/confirm",
    tag = "walls",
    summary = "Confirm a proposed route, possibly at another grade (admins only)",
    params(("route_id" = Uuid, Path, description = "A route id"), ("If-Match" = Option<String>, Header, description = "The ETag the change is based on; 409 when the resource moved on"), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key replay the first response")),
    request_body = ConfirmBody,
    responses((status = 200, body = RouteChanged), (status = 403, description = "Not an admin", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 404, description = "No such route", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, description = "Version conflict (If-Match), or a retry while the first request with this Idempotency-Key still runs", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(route_id): Path<String>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<ConfirmBody>,
) -> Result<Response> {
    let route_id = id(&route_id)?;
    let expected = expected_version(&headers)?;
    let mut problems = Problems::default();
    let grade = match (&body.grade_system, &body.grade) {
        (None, None) => None,
        (Some(system), Some(label)) => grade_of(&mut problems, system, label),
        _ => {
            problems.add("grade", "grade and grade_system come together");
            None
        }
    };
    problems.finish(Some(()))?;
    if head::<domain::RouteState>(&state, aggregate::ROUTE, route_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound);
    }
    let command = Command::new(caller.actor.clone(), &headers);
    let written = writer::execute(
        &state,
        &command,
        aggregate::ROUTE,
        route_id,
        expected,
        |s| domain::confirm_route(s, route_id, grade.as_ref()),
    )
    .await?;
    let body = RouteChanged {
        route_id,
        version: written.version,
        position: written.position.as_ref().map(ToString::to_string),
    };
    Ok(written_response(StatusCode::OK, body, &written, None))
}
