//! `POST /v1/routines/{routine_id}/workouts`: a workout done from the caller's routine
//! (`WorkoutCompleted`). The workout and its exercises must be in the generated plan, read
//! from `read.routines` (the plan only exists once projected); the routine's head checks the
//! owner and `If-Match`.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use chrono::{DateTime, Utc};
use cruxlog_schemas::events::{ExerciseResult, WorkoutCompleted, aggregate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{domain, queries, routines};
use crate::{
    AppState,
    auth::Caller,
    command::Command,
    command::expected_version,
    error::{ApiError, Result},
    json::ValidJson,
    walls::{Problems, head, id, text, written_response},
    writer,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExerciseBody {
    pub exercise_id: String,
    /// 0 when skipped.
    pub sets_done: i32,
    #[serde(default)]
    pub reps_done: Option<i32>,
    /// Negative for assistance (a pulley).
    #[serde(default)]
    pub added_load_kg: Option<f64>,
    #[serde(default)]
    pub rpe: Option<i32>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkoutBody {
    /// A workout of the plan, e.g. `w1-s2`.
    pub workout_id: String,
    /// Defaults to now.
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub duration_ms: Option<i64>,
    /// Perceived effort, 1 to 10.
    #[serde(default)]
    pub rpe: Option<i32>,
    #[serde(default)]
    pub exercises: Vec<ExerciseBody>,
    #[serde(default)]
    pub notes: Option<String>,
}

fn check_rpe(problems: &mut Problems, field: &str, rpe: Option<i32>) {
    if rpe.is_some_and(|rpe| !(1..=10).contains(&rpe)) {
        problems.add(field, "must be between 1 and 10");
    }
}

impl WorkoutBody {
    /// Every rule that needs no read model.
    fn validate(self, routine_id: Uuid, user_id: Uuid) -> (Problems, WorkoutCompleted) {
        let mut problems = Problems::default();
        let workout_id = text(&mut problems, "workout_id", &self.workout_id, 64);
        let completed_at = routines::past(&mut problems, "completed_at", self.completed_at);
        if self
            .duration_ms
            .is_some_and(|ms| !(0..=24 * 3600 * 1000).contains(&ms))
        {
            problems.add("duration_ms", "must be between 0 and a day");
        }
        check_rpe(&mut problems, "rpe", self.rpe);
        if self.exercises.len() > 100 {
            problems.add("exercises", "at most 100 exercises");
        }
        if !routines::unique(self.exercises.iter().map(|e| e.exercise_id.as_str())) {
            problems.add("exercises", "an exercise is listed twice");
        }
        let mut exercises = Vec::new();
        for (index, exercise) in self.exercises.into_iter().enumerate() {
            let field = |name: &str| format!("exercises[{index}].{name}");
            let exercise_id = text(
                &mut problems,
                &field("exercise_id"),
                &exercise.exercise_id,
                64,
            );
            if !(0..=100).contains(&exercise.sets_done) {
                problems.add(field("sets_done"), "must be between 0 and 100");
            }
            if exercise
                .reps_done
                .is_some_and(|reps| !(0..=1000).contains(&reps))
            {
                problems.add(field("reps_done"), "must be between 0 and 1000");
            }
            if exercise
                .added_load_kg
                .is_some_and(|kg| !(-200.0..=500.0).contains(&kg))
            {
                problems.add(field("added_load_kg"), "must be between -200 and 500");
            }
            check_rpe(&mut problems, &field("rpe"), exercise.rpe);
            exercises.push(ExerciseResult {
                exercise_id,
                sets_done: exercise.sets_done,
                reps_done: exercise.reps_done,
                added_load_kg: exercise.added_load_kg,
                rpe: exercise.rpe,
            });
        }
        if self
            .notes
            .as_ref()
            .is_some_and(|n| n.chars().count() > 2000)
        {
            problems.add("notes", "must be at most 2000 characters");
        }
        let event = WorkoutCompleted {
            routine_id,
            user_id,
            workout_id,
            completed_at,
            duration_ms: self.duration_ms,
            rpe: self.rpe,
            exercises,
            notes: self.notes.map(|text| routines::sealed_note(user_id, text)),
        };
        (problems, event)
    }
}

/// The exercise ids of `workout_id` in a generated plan (`None`: no such workout).
fn exercises_of(plan: &serde_json::Value, workout_id: &str) -> Option<Vec<String>> {
    let workouts = plan
        .as_array()?
        .iter()
        .filter_map(|week| week["workouts"].as_array());
    let workout = workouts
        .flatten()
        .find(|workout| workout["workout_id"] == workout_id)?;
    let exercises = workout["exercises"].as_array()?;
    Some(
        exercises
            .iter()
            .filter_map(|e| e["exercise_id"].as_str().map(str::to_owned))
            .collect(),
    )
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkoutRecorded {
    pub routine_id: Uuid,
    pub workout_id: String,
    /// The routine's version now.
    pub version: i64,
    pub position: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/routines/{routine_id}/workouts",
    tag = "coaching",
    summary = "Record a workout done from my routine's plan",
    params(("routine_id" = Uuid, Path, description = "A routine id"), ("If-Match" = Option<String>, Header, description = "The ETag the change is based on; 409 when the resource moved on"), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key replay the first response")),
    request_body = WorkoutBody,
    responses((status = 201, body = WorkoutRecorded), (status = 404, description = "Not found, or not yours", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 409, description = "The routine has no plan yet, version conflict (If-Match), or a retry while the first request with this Idempotency-Key still runs", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 400, description = "Malformed JSON", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 415, description = "Not application/json", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid access token", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid fields, each named", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = 503, description = "Event log or database unavailable; retry after Retry-After", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    Path(routine_id): Path<String>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<WorkoutBody>,
) -> Result<Response> {
    let routine_id = id(&routine_id)?;
    let expected = expected_version(&headers)?;
    let owned = head::<domain::RoutineState>(&state, aggregate::ROUTINE, routine_id)
        .await?
        .is_some_and(|routine| routine.owner == caller.user_id);
    if !owned {
        return Err(ApiError::NotFound);
    }
    let (mut problems, event) = body.validate(routine_id, caller.user_id);
    let plan = match queries::plan(&state.db, caller.user_id, routine_id).await? {
        Some((status, Some(plan))) if status == "generated" => plan,
        _ => return Err(ApiError::Conflict("the routine has no plan yet".into())),
    };
    match exercises_of(&plan, &event.workout_id) {
        None => problems.add("workout_id", "not a workout of this routine"),
        Some(planned) => {
            for (index, done) in event.exercises.iter().enumerate() {
                if !planned.contains(&done.exercise_id) {
                    let field = format!("exercises[{index}].exercise_id");
                    problems.add(field, "not an exercise of this workout");
                }
            }
        }
    }
    let event = problems.finish(Some(event))?;
    let command = Command::new(caller.actor.clone(), &headers);
    let written = writer::execute(
        &state,
        &command,
        aggregate::ROUTINE,
        routine_id,
        expected,
        |s| domain::complete_workout(s, &event),
    )
    .await?;
    let body = WorkoutRecorded {
        routine_id,
        workout_id: event.workout_id.clone(),
        version: written.version,
        position: written.position.as_ref().map(ToString::to_string),
    };
    Ok(written_response(StatusCode::CREATED, body, &written, None))
}
