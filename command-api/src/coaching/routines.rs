//! Training routines: `POST /v1/routines` requests one (`RoutineRequested`), `POST
//! /v1/routines/{id}/workouts` records a workout done from its plan (`WorkoutCompleted`),
//! `GET /v1/routines` and `GET /v1/routines/{id}` read them. Both commands go through the
//! routine's head: its owner is known at once, and workouts follow the request in version.

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
    events::{
        DayOfWeek, Equipment, RoutineRequested, Sealed, TrainingFocus, WeeklyAvailability,
        aggregate, sealed::Note,
    },
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ListParams, PROJECTION, domain, listed, queries, workouts};
use crate::{
    AppState,
    auth::Caller,
    command::Command,
    error::{ApiError, Result},
    json::{ValidJson, ValidQuery},
    walls::{
        Problems, caught_up, id,
        reads::{AfterParams, viewed},
        routes::grade_of,
        symbol, written_response,
    },
    writer,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/routines", post(request).get(list))
        .route("/v1/routines/{routine_id}", get(show))
        .route(
            "/v1/routines/{routine_id}/workouts",
            post(workouts::complete),
        )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityBody {
    /// 1 to 14.
    pub sessions_per_week: i32,
    /// 10 to 300.
    pub minutes_per_session: i32,
    /// Preferred days (monday..sunday); empty when any day suits.
    #[serde(default)]
    pub days: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutineBody {
    /// 1 to 16.
    pub weeks: i32,
    pub availability: AvailabilityBody,
    /// At least one of strength, power, endurance, power_endurance, technique, flexibility,
    /// mental, injury_prevention, general or other.
    pub focus: Vec<String>,
    /// What the climber can train with: hangboard, campus_board, system_board, ...
    #[serde(default)]
    pub equipment: Vec<String>,
    /// One of the caller's open goals.
    #[serde(default)]
    pub goal_id: Option<Uuid>,
    #[serde(default)]
    pub target_grade_system: Option<String>,
    #[serde(default)]
    pub target_grade: Option<String>,
    #[serde(default)]
    pub analyzer_version: Option<i32>,
}

/// Parses every element of a list of symbols, naming each bad one (and `refused`, a schema's
/// placeholder for values from newer writers) and skipping repeats.
fn symbols<T: for<'de> Deserialize<'de> + PartialEq>(
    problems: &mut Problems,
    field: &str,
    texts: &[String],
    refused: Option<T>,
) -> Vec<T> {
    let mut parsed = Vec::new();
    for (index, text) in texts.iter().enumerate() {
        match symbol::<T>(text).filter(|value| Some(value) != refused.as_ref()) {
            Some(value) if !parsed.contains(&value) => parsed.push(value),
            Some(_) => {}
            None => problems.add(format!("{field}[{index}]"), "not a known value"),
        }
    }
    parsed
}

impl RoutineBody {
    /// Every rule that needs no read model.
    fn validate(self, routine_id: Uuid, user_id: Uuid) -> (Problems, Option<RoutineRequested>) {
        let mut problems = Problems::default();
        if !(1..=16).contains(&self.weeks) {
            problems.add("weeks", "must be between 1 and 16");
        }
        let availability = &self.availability;
        if !(1..=14).contains(&availability.sessions_per_week) {
            problems.add("availability.sessions_per_week", "must be between 1 and 14");
        }
        if !(10..=300).contains(&availability.minutes_per_session) {
            problems.add(
                "availability.minutes_per_session",
                "must be between 10 and 300",
            );
        }
        let days = symbols(
            &mut problems,
            "availability.days",
            &availability.days,
            Some(DayOfWeek::Unknown),
        );
        let focus = symbols(&mut problems, "focus", &self.focus, None::<TrainingFocus>);
        if self.focus.is_empty() {
            problems.add("focus", "name at least one");
        }
        let equipment = symbols(
            &mut problems,
            "equipment",
            &self.equipment,
            None::<Equipment>,
        );
        let target_grade = match (&self.target_grade_system, &self.target_grade) {
            (None, None) => None,
            (Some(system), Some(label)) => grade_of(&mut problems, system, label),
            _ => {
                problems.add(
                    "target_grade",
                    "target_grade and target_grade_system come together",
                );
                None
            }
        };
        if self.analyzer_version.is_some_and(|v| v < 1) {
            problems.add("analyzer_version", "must be at least 1");
        }
        let event = RoutineRequested {
            routine_id,
            user_id,
            weeks: self.weeks,
            availability: WeeklyAvailability {
                sessions_per_week: availability.sessions_per_week,
                minutes_per_session: availability.minutes_per_session,
                days,
            },
            focus,
            equipment,
            goal_id: self.goal_id,
            target_grade,
            injuries: Vec::new(),
            requested_analyzer_version: self.analyzer_version,
        };
        (problems, Some(event))
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoutineAccepted {
    pub routine_id: Uuid,
    /// The routine's version; send it back as `If-Match: "<version>"`.
    pub version: i64,
    pub position: Option<String>,
}

/// `GET /v1/routines`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoutineList {
    pub routines: Vec<queries::RoutineView>,
}

#[utoipa::path(
    post,
    path = "/v1/routines",
    tag = "coaching",
    summary = "Request a training routine",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key replay the first response")),
    request_body = RoutineBody,
    responses((status = 202, description = "Requested; Location names the routine, generated asynchronously", body = RoutineAccepted), (status = 409, description = "A retry while the first request with this Idempotency-Key still runs", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn request(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ValidJson(body): ValidJson<RoutineBody>,
) -> Result<Response> {
    let command = Command::new(caller.actor.clone(), &headers);
    let routine_id = command.new_id("routine");
    let (mut problems, event) = body.validate(routine_id, caller.user_id);
    if let Some(goal_id) = event.as_ref().and_then(|e| e.goal_id)
        && !queries::owns_open_goal(&state.db, caller.user_id, goal_id).await?
    {
        problems.add("goal_id", "no open goal of yours");
    }
    let mut event = problems.finish(event)?;
    // The generator trains around what hurts now.
    event.injuries = queries::active_injuries(&state.db, caller.user_id).await?;
    let written = writer::execute(
        &state,
        &command,
        aggregate::ROUTINE,
        routine_id,
        None,
        |s| domain::request(s, &event),
    )
    .await?;
    let body = RoutineAccepted {
        routine_id,
        version: written.version,
        position: written.position.as_ref().map(ToString::to_string),
    };
    let location = format!("/v1/routines/{routine_id}");
    Ok(written_response(
        StatusCode::ACCEPTED,
        body,
        &written,
        Some(&location),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/routines",
    tag = "coaching",
    summary = "My routines, newest request first (without plans)",
    params(ListParams),
    responses((status = 200, body = RoutineList), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Bad query string or position token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ValidQuery(params): ValidQuery<ListParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let limit = params.limit()?;
    let fresh = caught_up(&state, PROJECTION, params.after, &headers).await?;
    let routines = queries::routines(&state.db, caller.user_id, limit).await?;
    Ok(listed(RoutineList { routines }, fresh))
}

#[utoipa::path(
    get,
    path = "/v1/routines/{routine_id}",
    tag = "coaching",
    summary = "One of my routines with its plan and completed workouts",
    params(("routine_id" = Uuid, Path, description = "A routine id"), AfterParams),
    responses((status = 200, description = "The routine; ETag is its version", body = queries::RoutineView), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Bad query string or position token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(routine_id): Path<String>,
    ValidQuery(params): ValidQuery<AfterParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let routine_id = id(&routine_id)?;
    let fresh = caught_up(&state, PROJECTION, params.after, &headers).await?;
    let routine = queries::routine(&state.db, caller.user_id, routine_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    viewed(&state, routine, routine_id, fresh).await
}

/// A note sealed under the caller's key (personal data).
pub(super) fn sealed_note(user_id: Uuid, text: String) -> Sealed {
    Sealed::dev(format!("user:{user_id}"), &Note { text })
}

/// Distinct, for exercise ids and the like.
pub(super) fn unique<'a>(items: impl IntoIterator<Item = &'a str>) -> bool {
    let mut seen = BTreeSet::new();
    items.into_iter().all(|item| seen.insert(item))
}

/// Defaults to now; never in the future.
pub(super) fn past(
    problems: &mut Problems,
    field: &str,
    at: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let now = Utc::now();
    let at = at.unwrap_or(now);
    if at > now + chrono::Duration::minutes(5) {
        problems.add(field, "must not be in the future");
    }
    truncate_to_micros(at)
}
