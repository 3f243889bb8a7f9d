//! Reads of the caller's own data from the `read.*` views: a session's attempts, videos and
//! analyses (every analyzer version), progress, ghosts and routines. Every query is scoped by
//! the caller's user id in SQL, so another user's data is never read, not only not shown.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{accounts::db_error, error::ApiError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt_id: Uuid,
    pub attempted_at: DateTime<Utc>,
    pub route_id: Option<Uuid>,
    pub route_description: Option<String>,
    pub grade_system: Option<String>,
    pub grade_label: Option<String>,
    pub style: String,
    pub result: String,
    pub sent: bool,
    pub falls: i32,
    pub duration_ms: Option<i64>,
    pub rpe: Option<i32>,
    #[sqlx(skip)]
    pub videos: Vec<VideoView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct VideoView {
    pub video_id: Uuid,
    #[serde(skip)]
    pub attempt_id: Uuid,
    pub duration_ms: i64,
    pub size_bytes: i64,
    pub content_type: String,
    pub rotation_degrees: i32,
    pub width_px: i32,
    pub height_px: i32,
    pub attached_at: DateTime<Utc>,
}

/// Live attempts of one of the caller's sessions, oldest first, each with its videos.
pub async fn attempts(
    db: &PgPool,
    session_id: Uuid,
    owner: Uuid,
) -> Result<Vec<AttemptView>, ApiError> {
    let mut attempts: Vec<AttemptView> = sqlx::query_as(
        "select attempt_id, attempted_at, route_id, route_description, grade_system, grade_label,
                style, result, sent, falls, duration_ms, rpe
           from read.attempts
          where session_id = $1 and user_id = $2 and deleted_at is null
          order by attempted_at, attempt_id",
    )
    .bind(session_id)
    .bind(owner)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    let videos: Vec<VideoView> = sqlx::query_as(
        "select video_id, attempt_id, duration_ms, size_bytes, content_type, rotation_degrees,
                width_px, height_px, attached_at
           from read.attempt_videos where session_id = $1 and user_id = $2
          order by attached_at",
    )
    .bind(session_id)
    .bind(owner)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    for video in videos {
        if let Some(attempt) = attempts
            .iter_mut()
            .find(|a| a.attempt_id == video.attempt_id)
        {
            attempt.videos.push(video);
        }
    }
    Ok(attempts)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnalysisView {
    pub analysis_id: Uuid,
    pub kind: String,
    /// requested, completed or failed.
    pub status: String,
    pub input_event_id: Uuid,
    pub analyzer: Option<crate::read_models::AnalyzerView>,
    pub metrics: Option<serde_json::Value>,
    pub summary: Option<serde_json::Value>,
    pub findings: Option<serde_json::Value>,
    /// Download paths of the annotated video, the summary image and the pose track.
    pub media: Vec<MediaLink>,
    pub failure_reason: Option<String>,
    pub requested_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MediaLink {
    /// annotated_video, summary_image or pose_track.
    pub name: String,
    pub href: String,
}

#[derive(sqlx::FromRow)]
struct AnalysisRow {
    analysis_id: Uuid,
    kind: String,
    status: String,
    input_event_id: Uuid,
    analyzer_name: Option<String>,
    analyzer_version: Option<i32>,
    model_id: Option<String>,
    metrics: Option<serde_json::Value>,
    summary: Option<serde_json::Value>,
    findings: Option<serde_json::Value>,
    media: Option<serde_json::Value>,
    failure_reason: Option<String>,
    requested_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

pub const MEDIA_NAMES: [&str; 3] = ["annotated_video", "summary_image", "pose_track"];

impl From<AnalysisRow> for AnalysisView {
    fn from(row: AnalysisRow) -> Self {
        let media = MEDIA_NAMES
            .iter()
            .filter(|name| {
                row.media
                    .as_ref()
                    .is_some_and(|media| !media[**name].is_null())
            })
            .map(|name| MediaLink {
                name: (*name).to_owned(),
                href: format!("/v1/analyses/{}/media/{name}", row.analysis_id),
            })
            .collect();
        let analyzer = match (row.analyzer_name, row.analyzer_version, row.model_id) {
            (Some(name), Some(version), Some(model_id)) => Some(crate::read_models::AnalyzerView {
                name,
                version,
                model_id,
            }),
            _ => None,
        };
        Self {
            analysis_id: row.analysis_id,
            kind: row.kind,
            status: row.status,
            input_event_id: row.input_event_id,
            analyzer,
            metrics: row.metrics,
            summary: row.summary,
            findings: row.findings,
            media,
            failure_reason: row.failure_reason,
            requested_at: row.requested_at,
            finished_at: row.finished_at,
        }
    }
}

const ANALYSIS_COLUMNS: &str = "analysis_id, kind, status, input_event_id, analyzer_name,
    analyzer_version, model_id, metrics, summary, findings, media, failure_reason, requested_at,
    finished_at";

/// The caller's analyses of the given inputs, every analyzer version, newest version first.
pub async fn analyses_of(
    db: &PgPool,
    owner: Uuid,
    input_event_ids: &[Uuid],
) -> Result<Vec<AnalysisView>, ApiError> {
    let rows: Vec<AnalysisRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ANALYSIS_COLUMNS} from read.analyses
          where user_id = $1 and input_event_id = any($2) and kind <> 'warmup'
          order by input_event_id, analyzer_version desc nulls last, requested_at desc"
    )))
    .bind(owner)
    .bind(input_event_ids)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    Ok(rows.into_iter().map(AnalysisView::from).collect())
}

/// A user's analyses, newest first (admin reads; see [`crate::admin_reads`]).
pub async fn analyses_by_user(
    db: &PgPool,
    owner: Uuid,
    limit: i64,
) -> Result<Vec<AnalysisView>, ApiError> {
    let rows: Vec<AnalysisRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ANALYSIS_COLUMNS} from read.analyses where user_id = $1
          order by requested_at desc nulls last limit $2"
    )))
    .bind(owner)
    .bind(limit)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    Ok(rows.into_iter().map(AnalysisView::from).collect())
}

pub async fn analysis(
    db: &PgPool,
    owner: Uuid,
    analysis_id: Uuid,
) -> Result<Option<(AnalysisView, Option<serde_json::Value>)>, ApiError> {
    let row: Option<AnalysisRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ANALYSIS_COLUMNS} from read.analyses where analysis_id = $1 and user_id = $2"
    )))
    .bind(analysis_id)
    .bind(owner)
    .fetch_optional(db)
    .await
    .map_err(db_error)?;
    Ok(row.map(|row| {
        let media = row.media.clone();
        (AnalysisView::from(row), media)
    }))
}

/// Opens a sealed value as the projections store it (the JSON of `Sealed`). Only
/// `PLAINTEXT_DEV` opens here until the key service lands; anything else is `None`.
pub fn open_projected<T: serde::de::DeserializeOwned>(sealed: &serde_json::Value) -> Option<T> {
    if sealed["algorithm"] != "PLAINTEXT_DEV" {
        return None;
    }
    let bytes: Vec<u8> = serde_json::from_value(sealed["ciphertext"].clone()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The object key of a projected sealed media reference.
pub fn media_key(sealed: &serde_json::Value) -> Option<String> {
    open_projected::<cruxlog_schemas::events::sealed::MediaRef>(sealed).map(|m| m.object_key)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PyramidStep {
    pub grade_system: String,
    pub grade_label: String,
    pub difficulty: i32,
    pub sends: i64,
    pub first_try_sends: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WeekVolume {
    pub week: DateTime<Utc>,
    pub attempts: i64,
    pub sends: i64,
    pub sessions: i64,
    pub climbing_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StyleRate {
    pub style: String,
    pub attempts: i64,
    pub sends: i64,
    pub send_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// Sends per grade, hardest first.
    pub grade_pyramid: Vec<PyramidStep>,
    /// Newest week first, at most 52.
    pub weekly_volume: Vec<WeekVolume>,
    pub send_rate_by_style: Vec<StyleRate>,
}

pub async fn progress(db: &PgPool, owner: Uuid) -> Result<Progress, ApiError> {
    let grade_pyramid = sqlx::query_as(
        "select grade_system, grade_label, difficulty, sends, first_try_sends
           from read.grade_pyramid where user_id = $1 order by difficulty desc, grade_system",
    )
    .bind(owner)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    let weekly_volume = sqlx::query_as(
        "select week, attempts, sends, sessions, climbing_ms::bigint as climbing_ms
           from read.weekly_volume where user_id = $1 order by week desc limit 52",
    )
    .bind(owner)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    let send_rate_by_style = sqlx::query_as(
        "select style, attempts, sends, send_rate::float8 as send_rate
           from read.send_rate_by_style where user_id = $1 order by style",
    )
    .bind(owner)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    Ok(Progress {
        grade_pyramid,
        weekly_volume,
        send_rate_by_style,
    })
}
