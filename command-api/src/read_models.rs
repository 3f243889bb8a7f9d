//! Queries on the read models the projectors build. The API's database role only reads.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{error::ApiError, position::Position};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnalyzerView {
    pub name: String,
    pub version: i32,
    pub model_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WarmupView {
    pub analysis_id: Uuid,
    pub analyzer: AnalyzerView,
    pub steps: serde_json::Value,
    pub total_minutes: i32,
    pub planned_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionView {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub discipline: String,
    pub indoor: bool,
    pub location_name: Option<String>,
    pub planned_minutes: Option<i32>,
    pub warmups: Vec<WarmupView>,
    /// Live attempts, oldest first, with their videos.
    pub attempts: Vec<crate::queries::AttemptView>,
    /// Analyses of the session's videos, every analyzer version.
    pub analyses: Vec<crate::queries::AnalysisView>,
}

fn unavailable(error: sqlx::Error) -> ApiError {
    tracing::warn!(%error, "read model query failed");
    ApiError::ReadModelUnavailable
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    session_id: Uuid,
    user_id: Uuid,
    started_at: DateTime<Utc>,
    discipline: String,
    indoor: bool,
    location_name: Option<String>,
    planned_minutes: Option<i32>,
}

#[derive(sqlx::FromRow)]
struct WarmupRow {
    analysis_id: Uuid,
    analyzer_name: String,
    analyzer_version: i32,
    model_id: String,
    steps: serde_json::Value,
    total_minutes: i32,
    planned_at: DateTime<Utc>,
}

/// One of the caller's sessions; another user's session is `None`, as if it did not exist.
pub async fn session(
    db: &PgPool,
    session_id: Uuid,
    owner: Uuid,
) -> Result<Option<SessionView>, ApiError> {
    let row: Option<SessionRow> = sqlx::query_as(
        "select session_id, user_id, started_at, discipline, indoor, location_name, planned_minutes
         from read.sessions where session_id = $1 and user_id = $2",
    )
    .bind(session_id)
    .bind(owner)
    .fetch_optional(db)
    .await
    .map_err(unavailable)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let warmups: Vec<WarmupRow> = sqlx::query_as(
        "select analysis_id, analyzer_name, analyzer_version, model_id, steps, total_minutes, planned_at
         from read.warmup_plans where session_id = $1 order by analyzer_version, planned_at",
    )
    .bind(session_id)
    .fetch_all(db)
    .await
    .map_err(unavailable)?;
    let warmups = warmups
        .into_iter()
        .map(|w| WarmupView {
            analysis_id: w.analysis_id,
            analyzer: AnalyzerView {
                name: w.analyzer_name,
                version: w.analyzer_version,
                model_id: w.model_id,
            },
            steps: w.steps,
            total_minutes: w.total_minutes,
            planned_at: w.planned_at,
        })
        .collect();
    Ok(Some(SessionView {
        session_id: row.session_id,
        user_id: row.user_id,
        started_at: row.started_at,
        discipline: row.discipline,
        indoor: row.indoor,
        location_name: row.location_name,
        planned_minutes: row.planned_minutes,
        warmups,
        attempts: crate::queries::attempts(db, session_id, owner).await?,
        analyses: crate::queries::analyses_of(db, owner, &video_events(db, session_id).await?)
            .await?,
    }))
}

/// The events that attached the session's videos (analyses name them as their input), from
/// the session's head (see [`crate::writer`]).
async fn video_events(db: &PgPool, session_id: Uuid) -> Result<Vec<Uuid>, ApiError> {
    sqlx::query_scalar(
        "select (v.value->>'event_id')::uuid
           from api.aggregate_heads h, jsonb_each(coalesce(h.state->'videos', '{}')) v
          where h.aggregate_id = $1",
    )
    .bind(session_id)
    .fetch_all(db)
    .await
    .map_err(unavailable)
}

/// One line of a session list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SessionSummary {
    pub session_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub discipline: String,
    pub indoor: bool,
    pub location_name: Option<String>,
    pub planned_minutes: Option<i32>,
}

/// Keyset position in a list ordered by `started_at desc, session_id desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub started_at: DateTime<Utc>,
    pub session_id: Uuid,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}",
            self.started_at.timestamp_micros(),
            self.session_id.simple()
        )
    }
}

impl Cursor {
    pub fn parse(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('.')?;
        Some(Self {
            started_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            session_id: Uuid::try_parse(id).ok()?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct SessionFilter {
    pub owner: Uuid,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub discipline: Option<String>,
    pub after: Option<Cursor>,
    pub limit: i64,
    /// Only sessions with a live attempt at this grade (lower-cased label, any system).
    pub grade: Option<String>,
    /// Only sessions with a live attempt with this result (`flash`, `fail`, ...).
    pub result: Option<String>,
}

/// The caller's sessions, newest first, one page.
pub async fn sessions(
    db: &PgPool,
    filter: &SessionFilter,
) -> Result<Vec<SessionSummary>, ApiError> {
    sqlx::query_as(
        "select session_id, started_at, ended_at, discipline, indoor, location_name, planned_minutes
         from read.sessions
         where user_id = $1
           and ($2::timestamptz is null or started_at >= $2)
           and ($3::timestamptz is null or started_at < $3)
           and ($4::text is null or discipline = $4)
           and ($5::timestamptz is null or (started_at, session_id) < ($5, $6))
           and ($8::text is null and $9::text is null or exists (
                 select from read.attempts a
                  where a.session_id = sessions.session_id and a.deleted_at is null
                    and ($8::text is null or lower(a.grade_label) = $8)
                    and ($9::text is null or a.result = $9)))
         order by started_at desc, session_id desc
         limit $7",
    )
    .bind(filter.owner)
    .bind(filter.from)
    .bind(filter.to)
    .bind(&filter.discipline)
    .bind(filter.after.map(|c| c.started_at))
    .bind(filter.after.map(|c| c.session_id))
    .bind(filter.limit)
    .bind(&filter.grade)
    .bind(&filter.result)
    .fetch_all(db)
    .await
    .map_err(unavailable)
}

/// Read-your-writes (R3): waits, bounded, until `projection` has applied the position given
/// as `?after=` or in the position header. Returns whether it caught up (`true` without one).
pub async fn caught_up(
    state: &crate::AppState,
    projection: &str,
    after: Option<String>,
    headers: &axum::http::HeaderMap,
) -> Result<bool, ApiError> {
    let token = after.or_else(|| {
        headers
            .get(crate::sessions::POSITION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let Some(token) = token else {
        return Ok(true);
    };
    let position = Position::parse(&token)
        .ok_or_else(|| ApiError::invalid("after", "not a position token"))?;
    let bound = Duration::from_millis(state.config.http.consistency_wait_ms);
    wait_for(&state.db, projection, &position, bound).await
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
            "select next_offset from read.projection_offsets where projection = $1 and topic = $2 and partition = $3",
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
