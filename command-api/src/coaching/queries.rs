//! Reads of the caller's coaching data from the `coaching` and `analyses` projections. Every
//! query is scoped by the caller's user id in SQL: another user's rows are never read.

use chrono::{DateTime, Utc};
use cruxlog_schemas::events::{ActiveInjury, Sealed};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{accounts::db_error, error::ApiError, error::Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct GhostView {
    pub ghost_id: Uuid,
    pub route_id: Option<Uuid>,
    /// requested, generated or failed.
    pub status: String,
    pub analyzer_name: Option<String>,
    pub analyzer_version: Option<i32>,
    pub model_id: Option<String>,
    pub keyframes: Option<serde_json::Value>,
    pub duration_ms: Option<i64>,
    pub feasibility: Option<f64>,
    pub failure_reason: Option<String>,
    pub requested_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RoutineView {
    pub routine_id: Uuid,
    /// requested, generated or failed.
    pub status: String,
    pub weeks_requested: Option<i32>,
    pub analyzer_name: Option<String>,
    pub analyzer_version: Option<i32>,
    pub model_id: Option<String>,
    /// The generated weeks (absent in lists).
    pub plan: Option<serde_json::Value>,
    pub failure_reason: Option<String>,
    pub requested_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Completed workouts, oldest first (absent in lists).
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workouts: Option<Vec<WorkoutView>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WorkoutView {
    pub workout_id: String,
    pub completed_at: DateTime<Utc>,
    pub duration_ms: Option<i64>,
    pub rpe: Option<i32>,
    pub exercises: serde_json::Value,
}

/// The caller's ghosts, newest request first.
pub async fn ghosts(db: &PgPool, owner: Uuid, limit: i64) -> Result<Vec<GhostView>> {
    sqlx::query_as(
        "select ghost_id, route_id, status, analyzer_name, analyzer_version, model_id, keyframes,
                duration_ms, feasibility, failure_reason, requested_at, finished_at
           from read.ghosts where user_id = $1
          order by requested_at desc nulls last, ghost_id desc limit $2",
    )
    .bind(owner)
    .bind(limit)
    .fetch_all(db)
    .await
    .map_err(db_error)
}

const ROUTINE_COLUMNS: &str = "routine_id, status, weeks_requested, analyzer_name,
    analyzer_version, model_id, failure_reason, requested_at, finished_at";

/// The caller's routines, newest request first, without their plans.
pub async fn routines(db: &PgPool, owner: Uuid, limit: i64) -> Result<Vec<RoutineView>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ROUTINE_COLUMNS}, null::jsonb as plan from read.routines where user_id = $1
          order by requested_at desc nulls last, routine_id desc limit $2"
    )))
    .bind(owner)
    .bind(limit)
    .fetch_all(db)
    .await
    .map_err(db_error)
}

/// One of the caller's routines with its plan and completed workouts.
pub async fn routine(db: &PgPool, owner: Uuid, routine_id: Uuid) -> Result<Option<RoutineView>> {
    let routine: Option<RoutineView> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ROUTINE_COLUMNS}, plan from read.routines where routine_id = $1 and user_id = $2"
    )))
    .bind(routine_id)
    .bind(owner)
    .fetch_optional(db)
    .await
    .map_err(db_error)?;
    let Some(mut routine) = routine else {
        return Ok(None);
    };
    let workouts = sqlx::query_as(
        "select workout_id, completed_at, duration_ms, rpe, exercises from read.workouts
          where routine_id = $1 and user_id = $2 order by completed_at, event_id",
    )
    .bind(routine_id)
    .bind(owner)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    routine.workouts = Some(workouts);
    Ok(Some(routine))
}

/// Whether the caller has a movement analysis with this id (a ghost's reference climb).
pub async fn owns_movement_analysis(db: &PgPool, owner: Uuid, analysis_id: Uuid) -> Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from read.analyses
                         where analysis_id = $1 and user_id = $2 and kind = 'movement')",
    )
    .bind(analysis_id)
    .bind(owner)
    .fetch_one(db)
    .await
    .map_err(db_error)
}

/// Whether the caller has an open goal with this id.
pub async fn owns_open_goal(db: &PgPool, owner: Uuid, goal_id: Uuid) -> Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from read.goals
                         where goal_id = $1 and user_id = $2 and status = 'open')",
    )
    .bind(goal_id)
    .bind(owner)
    .fetch_one(db)
    .await
    .map_err(db_error)
}

/// The caller's unresolved injuries, for the generator to train around.
pub async fn active_injuries(db: &PgPool, owner: Uuid) -> Result<Vec<ActiveInjury>> {
    let rows: Vec<(Uuid, serde_json::Value)> = sqlx::query_as(
        "select injury_id, details from read.injuries
          where user_id = $1 and resolved_at is null order by reported_at",
    )
    .bind(owner)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    rows.into_iter()
        .map(|(injury_id, details)| {
            let details: Sealed = serde_json::from_value(details)
                .map_err(|error| ApiError::Internal(error.into()))?;
            Ok(ActiveInjury { injury_id, details })
        })
        .collect()
}

/// The routine's status and plan when it is the caller's (`None` otherwise, or not projected
/// yet).
pub async fn plan(
    db: &PgPool,
    owner: Uuid,
    routine_id: Uuid,
) -> Result<Option<(String, Option<serde_json::Value>)>> {
    sqlx::query_as("select status, plan from read.routines where routine_id = $1 and user_id = $2")
        .bind(routine_id)
        .bind(owner)
        .fetch_optional(db)
        .await
        .map_err(db_error)
}
