//! The `ghost` aggregate (id = ghost id): a virtual climber with the user's proportions
//! climbing a route. The generator appends the result after the request.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AnalyzerInfo, Point, Sealed, aggregate, events_of};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GhostRequested {
    pub ghost_id: Uuid,
    pub user_id: Uuid,
    pub route_id: Uuid,
    pub wall_id: Uuid,
    /// A movement analysis whose climb the ghost retargets; `None`: planned from holds only.
    pub reference_analysis_id: Option<Uuid>,
    /// Sealed [`super::sealed::Morphology`] to fit; `None`: a default body.
    pub morphology: Option<Sealed>,
    pub requested_analyzer_version: Option<i32>,
}

/// One body position: the hold under each limb (`None`: free). Joint positions are only in
/// the sealed pose track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GhostKeyframe {
    pub t_ms: i64,
    pub left_hand: Option<String>,
    pub right_hand: Option<String>,
    pub left_foot: Option<String>,
    pub right_foot: Option<String>,
    pub center_of_mass: Point,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GhostGenerated {
    pub ghost_id: Uuid,
    pub user_id: Uuid,
    pub route_id: Uuid,
    pub input_event_id: Uuid,
    pub analyzer: AnalyzerInfo,
    /// Sealed [`super::sealed::Morphology`] the ghost used.
    pub morphology: Sealed,
    pub keyframes: Vec<GhostKeyframe>,
    pub duration_ms: i64,
    /// 0..1.
    pub feasibility: f64,
    /// Sealed [`super::sealed::MediaRef`]s.
    pub pose_track: Option<Sealed>,
    pub video: Option<Sealed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GhostFailed {
    pub ghost_id: Uuid,
    pub user_id: Uuid,
    pub input_event_id: Uuid,
    pub analyzer: AnalyzerInfo,
    pub reason: String,
}

events_of!(aggregate::GHOST, "cruxlog.ghost": GhostRequested, GhostGenerated, GhostFailed);
