//! The `climbing_session` aggregate (id = session id): a session, the attempts logged in it
//! and the videos of those attempts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Sealed, aggregate, events_of};
use crate::grades::Grade;

/// `cruxlog.session.Discipline`. Published in `SessionStarted` v1 without a default symbol,
/// so a new discipline needs a new schema version that every reader has first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Discipline {
    Boulder,
    Sport,
    Trad,
    TopRope,
    Board,
}

impl Discipline {
    pub const ALL: [Self; 5] = [
        Self::Boulder,
        Self::Sport,
        Self::Trad,
        Self::TopRope,
        Self::Board,
    ];

    /// The lower-case name used by the REST API, the read models and the Python workers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boulder => "boulder",
            Self::Sport => "sport",
            Self::Trad => "trad",
            Self::TopRope => "top_rope",
            Self::Board => "board",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|discipline| discipline.as_str() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStarted {
    pub session_id: Uuid,
    pub user_id: Uuid,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub started_at: DateTime<Utc>,
    pub discipline: Discipline,
    pub indoor: bool,
    pub location_name: Option<String>,
    pub planned_minutes: Option<i32>,
}

/// How an attempt was climbed (may differ from the session's discipline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClimbStyle {
    Boulder,
    Lead,
    TopRope,
    AutoBelay,
    Trad,
    Board,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttemptResult {
    /// First try, with beta.
    Flash,
    /// First try, without beta.
    Onsight,
    /// Sent after earlier tries.
    Redpoint,
    /// Sent again after a first send.
    Repeat,
    Fail,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Limb {
    LeftHand,
    RightHand,
    LeftFoot,
    RightFoot,
    Unknown,
}

/// One placement of one limb on one hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BetaMove {
    pub hold_id: String,
    pub limb: Limb,
}

/// Everything about an attempt that the climber can correct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptDetails {
    pub route_id: Option<Uuid>,
    /// When there is no `route_id`: describes the route, never the person.
    pub route_description: Option<String>,
    /// `None`: the route's grade.
    pub grade: Option<Grade>,
    pub style: ClimbStyle,
    pub result: AttemptResult,
    pub falls: i32,
    pub duration_ms: Option<i64>,
    /// Perceived effort 1..10.
    pub rpe: Option<i32>,
    /// Ordered placements as climbed; empty when not recorded.
    pub beta: Vec<BetaMove>,
    pub high_point_hold_id: Option<String>,
    /// Sealed [`super::sealed::Note`].
    pub notes: Option<Sealed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptLogged {
    pub session_id: Uuid,
    pub attempt_id: Uuid,
    pub user_id: Uuid,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub attempted_at: DateTime<Utc>,
    pub details: AttemptDetails,
}

/// Replaces the attempt's time and details wholesale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptCorrected {
    pub session_id: Uuid,
    pub attempt_id: Uuid,
    pub user_id: Uuid,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub attempted_at: DateTime<Utc>,
    pub details: AttemptDetails,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttemptDeletionReason {
    Mistake,
    Duplicate,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptDeleted {
    pub session_id: Uuid,
    pub attempt_id: Uuid,
    pub user_id: Uuid,
    pub reason: AttemptDeletionReason,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoAttached {
    pub session_id: Uuid,
    pub attempt_id: Uuid,
    pub video_id: Uuid,
    pub user_id: Uuid,
    /// Sealed [`super::sealed::MediaRef`].
    pub media: Sealed,
    pub duration_ms: i64,
    pub size_bytes: i64,
    pub content_type: String,
    /// Clockwise, to display upright: 0, 90, 180 or 270.
    pub rotation_degrees: i32,
    pub width_px: i32,
    pub height_px: i32,
    pub frame_rate: Option<f64>,
    #[serde(with = "chrono::serde::ts_microseconds_option", default)]
    pub recorded_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionEndReason {
    Climber,
    /// Closed automatically.
    Inactivity,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEnded {
    pub session_id: Uuid,
    pub user_id: Uuid,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub ended_at: DateTime<Utc>,
    pub rpe: Option<i32>,
    /// Sealed [`super::sealed::Note`].
    pub notes: Option<Sealed>,
    pub reason: SessionEndReason,
}

events_of!(aggregate::CLIMBING_SESSION, "cruxlog.session":
    SessionStarted,
    AttemptLogged,
    AttemptCorrected,
    AttemptDeleted,
    VideoAttached,
    SessionEnded,
);
