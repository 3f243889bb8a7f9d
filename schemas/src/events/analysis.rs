//! The `analysis` aggregate (id = analysis id): a request and its one result (A1). Analyzers
//! write only here, never to the aggregates they read, so each aggregate keeps one writer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{DetectedHold, Sealed, aggregate, events_of};

/// Namespace of analysis ids (UUIDv5). Never change it: ids already in the log depend on it.
const ANALYSIS_NAMESPACE: Uuid = Uuid::from_u128(0x6d1c_0b0e_5c4f_4a8e_9d7e_1e0f_3b2a_c001);

/// The id of one analysis: the same (input event, analyzer, pinned version) always gives the
/// same id, so a retried or replayed request is the same analysis (A1). `None` asks for the
/// latest version and is a different analysis from any pinned one.
pub fn analysis_id(input_event_id: Uuid, analyzer: &str, version: Option<i32>) -> Uuid {
    let version = version.map_or_else(|| "latest".to_owned(), |v| v.to_string());
    Uuid::new_v5(
        &ANALYSIS_NAMESPACE,
        format!("{input_event_id}/{analyzer}/{version}").as_bytes(),
    )
}

/// Which analyzer produced a result, for replays through new versions (A2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzerInfo {
    pub name: String,
    pub version: i32,
    pub model_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AnalysisKind {
    /// Ends in [`AnalysisCompleted`].
    Movement,
    /// Ends in [`HoldsDetected`].
    Holds,
    /// Ends in [`AnalysisCompleted`] with `morphology`.
    Morphology,
    /// Ends in [`WarmupPlanned`].
    Warmup,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InputKind {
    Video,
    WallPhoto,
    Attempt,
    Session,
    Route,
    Wall,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisInput {
    pub kind: InputKind,
    pub id: Uuid,
    /// Sealed [`super::sealed::MediaRef`], copied from the upload event.
    pub media: Option<Sealed>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AnalysisReason {
    UserRequest,
    Automatic,
    /// History replayed through a new analyzer version (A2).
    Replay,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRequested {
    /// UUIDv5 of (input event, kind, pinned version): retries are the same analysis.
    pub analysis_id: Uuid,
    pub user_id: Uuid,
    pub kind: AnalysisKind,
    pub input_event_id: Uuid,
    pub inputs: Vec<AnalysisInput>,
    pub requested_analyzer_version: Option<i32>,
    pub reason: AnalysisReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FindingKind {
    Error,
    Strength,
    Unknown,
}

/// One technique error or strength in a time span of the input video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable machine code, e.g. `HIPS_AWAY_FROM_WALL`.
    pub code: String,
    pub kind: FindingKind,
    pub start_ms: i64,
    pub end_ms: i64,
    /// 0..1.
    pub severity: f64,
    pub explanation: String,
}

/// Metrics stable enough to be named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovementSummary {
    pub climb_duration_ms: Option<i64>,
    pub move_count: Option<i32>,
    pub rest_count: Option<i32>,
    pub rest_ms: Option<i64>,
    /// 0..1, 1 = no jerk.
    pub smoothness: Option<f64>,
    pub reached_top: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisCompleted {
    pub analysis_id: Uuid,
    pub user_id: Uuid,
    pub kind: AnalysisKind,
    pub input_event_id: Uuid,
    pub inputs: Vec<AnalysisInput>,
    pub analyzer: AnalyzerInfo,
    /// Keys snake_case with a unit suffix; never body measurements.
    pub metrics: BTreeMap<String, f64>,
    pub summary: Option<MovementSummary>,
    pub findings: Vec<Finding>,
    /// Sealed [`super::sealed::Morphology`].
    pub morphology: Option<Sealed>,
    /// Sealed [`super::sealed::MediaRef`]s.
    pub annotated_video: Option<Sealed>,
    pub summary_image: Option<Sealed>,
    pub pose_track: Option<Sealed>,
}

/// The result of a `HOLDS` analysis of a wall photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldsDetected {
    pub analysis_id: Uuid,
    pub user_id: Uuid,
    pub input_event_id: Uuid,
    pub wall_id: Uuid,
    pub photo_id: Uuid,
    pub analyzer: AnalyzerInfo,
    pub image_width_px: i32,
    pub image_height_px: i32,
    pub holds: Vec<DetectedHold>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmupStep {
    pub name: String,
    pub minutes: i32,
    pub cue: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmupPlanned {
    pub analysis_id: Uuid,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub input_event_id: Uuid,
    pub analyzer: AnalyzerInfo,
    pub steps: Vec<WarmupStep>,
    pub total_minutes: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisFailed {
    pub analysis_id: Uuid,
    pub user_id: Uuid,
    pub input_event_id: Uuid,
    pub analyzer: AnalyzerInfo,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_ids_are_stable_and_pinned_versions_differ_from_latest() {
        let input = Uuid::from_u128(0x0190_a0c4_6c1e_7d2a_9b1f_3f9e_2a8d_7c01);
        // Ids already in the log: v5 of "<input>/warmup/1" in the fixed namespace.
        assert_eq!(
            analysis_id(input, "warmup", Some(1)),
            Uuid::new_v5(&ANALYSIS_NAMESPACE, format!("{input}/warmup/1").as_bytes())
        );
        assert_ne!(
            analysis_id(input, "movement", Some(1)),
            analysis_id(input, "movement", None)
        );
        assert_ne!(
            analysis_id(input, "movement", Some(1)),
            analysis_id(input, "movement", Some(2))
        );
    }
}

events_of!(aggregate::ANALYSIS, "cruxlog.analysis":
    AnalysisRequested,
    AnalysisCompleted,
    HoldsDetected,
    WarmupPlanned,
    AnalysisFailed,
);
