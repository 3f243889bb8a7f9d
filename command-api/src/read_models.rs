//! Queries on the read models the projectors build. The API's database role only reads.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{error::ApiError, position::Position};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzerView {
    pub name: String,
    pub version: i32,
    pub model_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmupView {
    pub analysis_id: Uuid,
    pub analyzer: AnalyzerView,
    pub steps: serde_json::Value,
    pub total_minutes: i32,
    pub planned_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub discipline: String,
    pub indoor: bool,
    pub location_name: Option<String>,
    pub planned_minutes: Option<i32>,
    pub warmups: Vec<WarmupView>,
}

fn unavailable(error: sqlx::Error) -> ApiError {
    tracing::warn!(%error, "read model query failed");
    ApiError::ReadModelUnavailable
}

/// One of the caller's sessions; another user's session is `None`, as if it did not exist.
pub async fn session(
    db: &PgPool,
    session_id: Uuid,
    owner: Uuid,
) -> Result<Option<SessionView>, ApiError> {
    let row: Option<(
        Uuid,
        Uuid,
        DateTime<Utc>,
        String,
        bool,
        Option<String>,
        Option<i32>,
    )> = sqlx::query_as(
        "select session_id, user_id, started_at, discipline, indoor, location_name, planned_minutes
         from sessions where session_id = $1 and user_id = $2",
    )
    .bind(session_id)
    .bind(owner)
    .fetch_optional(db)
    .await
    .map_err(unavailable)?;
    let Some((session_id, user_id, started_at, discipline, indoor, location_name, planned_minutes)) =
        row
    else {
        return Ok(None);
    };
    let warmups: Vec<(Uuid, String, i32, String, serde_json::Value, i32, DateTime<Utc>)> = sqlx::query_as(
        "select analysis_id, analyzer_name, analyzer_version, model_id, steps, total_minutes, planned_at
         from warmup_plans where session_id = $1 order by analyzer_version, planned_at",
    )
    .bind(session_id)
    .fetch_all(db)
    .await
    .map_err(unavailable)?;
    let warmups = warmups
        .into_iter()
        .map(
            |(analysis_id, name, version, model_id, steps, total_minutes, planned_at)| WarmupView {
                analysis_id,
                analyzer: AnalyzerView {
                    name,
                    version,
                    model_id,
                },
                steps,
                total_minutes,
                planned_at,
            },
        )
        .collect();
    Ok(Some(SessionView {
        session_id,
        user_id,
        started_at,
        discipline,
        indoor,
        location_name,
        planned_minutes,
        warmups,
    }))
}

/// Waits until `projection` has applied the record at `position`, up to `bound`. Returns
/// whether it caught up (R3).
pub async fn wait_for(
    db: &PgPool,
    projection: &str,
    position: &Position,
    bound: Duration,
) -> Result<bool, ApiError> {
    let deadline = Instant::now() + bound;
    let mut pause = Duration::from_millis(5);
    loop {
        let next: Option<i64> = sqlx::query_scalar(
            "select next_offset from projection_offsets where projection = $1 and topic = $2 and partition = $3",
        )
        .bind(projection)
        .bind(&position.topic)
        .bind(position.partition)
        .fetch_optional(db)
        .await
        .map_err(unavailable)?;
        if next.is_some_and(|next| next > position.offset) {
            return Ok(true);
        }
        if Instant::now() + pause > deadline {
            return Ok(false);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
