//! Samples of the `ghost` aggregate.

use super::{
    GHOST, GHOST_EVENT, MOVEMENT_ANALYSIS, ROUTE, USER, WALL, analyzer, id, media, morphology,
};
use crate::events::{
    DomainEvent, GhostFailed, GhostGenerated, GhostKeyframe, GhostRequested, Point,
};

pub(super) fn samples() -> Vec<DomainEvent> {
    let generator = analyzer("ghost", 1, "ik-planner-2026.03");
    vec![
        DomainEvent::GhostRequested(GhostRequested {
            ghost_id: id(GHOST),
            user_id: id(USER),
            route_id: id(ROUTE),
            wall_id: id(WALL),
            reference_analysis_id: Some(id(MOVEMENT_ANALYSIS)),
            morphology: Some(morphology()),
            requested_analyzer_version: Some(1),
        }),
        DomainEvent::GhostGenerated(GhostGenerated {
            ghost_id: id(GHOST),
            user_id: id(USER),
            route_id: id(ROUTE),
            input_event_id: id(GHOST_EVENT),
            analyzer: generator.clone(),
            morphology: morphology(),
            keyframes: vec![
                keyframe(0, ["h3", "h3", "h9"], Point { x: 0.2, y: 0.78 }),
                keyframe(2_400, ["h7", "h3", "h9"], Point { x: 0.33, y: 0.61 }),
                keyframe(5_100, ["h7", "h12", "h9"], Point { x: 0.52, y: 0.42 }),
            ],
            duration_ms: 5_100,
            feasibility: 0.74,
            pose_track: Some(media("ghosts/0196/50/pose.jsonl", '1')),
            video: Some(media("ghosts/0196/50/ghost.mp4", '2')),
        }),
        DomainEvent::GhostFailed(GhostFailed {
            ghost_id: id(GHOST),
            user_id: id(USER),
            input_event_id: id(GHOST_EVENT),
            analyzer: generator,
            reason: "finish hold h12 is out of reach from every stance for this arm span".into(),
        }),
    ]
}

/// Left hand, right hand and right foot on holds; the left foot smears (free) except at
/// the start.
fn keyframe(t_ms: i64, [left, right, foot]: [&str; 3], center_of_mass: Point) -> GhostKeyframe {
    GhostKeyframe {
        t_ms,
        left_hand: Some(left.into()),
        right_hand: Some(right.into()),
        left_foot: (t_ms == 0).then(|| foot.into()),
        right_foot: Some(foot.into()),
        center_of_mass,
    }
}
