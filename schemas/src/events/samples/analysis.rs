//! Samples of the `analysis` aggregate.

use std::collections::BTreeMap;

use super::{
    ATTEMPT, HOLDS_ANALYSIS, MOVEMENT_ANALYSIS, PHOTO, PHOTO_EVENT, SESSION, SESSION_EVENT, USER,
    VIDEO, VIDEO_EVENT, WALL, WARMUP_ANALYSIS, analyzer, id, media, morphology,
};
use crate::events::{
    AnalysisCompleted, AnalysisFailed, AnalysisInput, AnalysisKind, AnalysisReason,
    AnalysisRequested, BoundingBox, DetectedHold, DomainEvent, Finding, FindingKind, HoldColour,
    HoldKind, HoldsDetected, InputKind, MovementSummary, Point, Rgb, WarmupPlanned, WarmupStep,
};

pub(super) fn samples() -> Vec<DomainEvent> {
    let movement = analyzer("movement", 3, "rtmpose-m-body7-v1.1+rules-2026.03");
    vec![
        DomainEvent::AnalysisRequested(AnalysisRequested {
            analysis_id: id(MOVEMENT_ANALYSIS),
            user_id: id(USER),
            kind: AnalysisKind::Movement,
            input_event_id: id(VIDEO_EVENT),
            inputs: inputs(),
            requested_analyzer_version: Some(3),
            reason: AnalysisReason::Replay,
        }),
        DomainEvent::AnalysisCompleted(AnalysisCompleted {
            analysis_id: id(MOVEMENT_ANALYSIS),
            user_id: id(USER),
            kind: AnalysisKind::Movement,
            input_event_id: id(VIDEO_EVENT),
            inputs: inputs(),
            analyzer: movement.clone(),
            metrics: BTreeMap::from([
                ("hip_wall_distance_mean_ratio".to_owned(), 0.31),
                ("straight_arm_time_ratio".to_owned(), 0.58),
                ("foot_readjustments_per_move".to_owned(), 1.4),
            ]),
            summary: Some(MovementSummary {
                climb_duration_ms: Some(38_900),
                move_count: Some(14),
                rest_count: Some(2),
                rest_ms: Some(6_200),
                smoothness: Some(0.71),
                reached_top: Some(true),
            }),
            findings: vec![
                Finding {
                    code: "HIPS_AWAY_FROM_WALL".into(),
                    kind: FindingKind::Error,
                    start_ms: 12_400,
                    end_ms: 15_100,
                    severity: 0.6,
                    explanation:
                        "Your hips drift away from the wall on the crux; turn your left hip in."
                            .into(),
                },
                Finding {
                    code: "QUIET_FEET".into(),
                    kind: FindingKind::Strength,
                    start_ms: 2_000,
                    end_ms: 11_800,
                    severity: 0.8,
                    explanation: "Precise, silent foot placements on the start.".into(),
                },
            ],
            morphology: Some(morphology()),
            annotated_video: Some(media("analyses/0196/40/annotated.mp4", 'c')),
            summary_image: Some(media("analyses/0196/40/summary.png", 'd')),
            pose_track: Some(media("analyses/0196/40/pose.jsonl", 'f')),
        }),
        DomainEvent::HoldsDetected(holds_detected()),
        DomainEvent::WarmupPlanned(WarmupPlanned {
            analysis_id: id(WARMUP_ANALYSIS),
            session_id: id(SESSION),
            user_id: id(USER),
            input_event_id: id(SESSION_EVENT),
            analyzer: analyzer("warmup", 1, "warmup-rules-v1"),
            steps: vec![
                WarmupStep {
                    name: "pulse raiser".into(),
                    minutes: 5,
                    cue: "Skipping or easy jog until warm.".into(),
                },
                WarmupStep {
                    name: "easy boulders".into(),
                    minutes: 10,
                    cue: "Four problems three grades below your max.".into(),
                },
            ],
            total_minutes: 15,
        }),
        DomainEvent::AnalysisFailed(AnalysisFailed {
            analysis_id: id(MOVEMENT_ANALYSIS),
            user_id: id(USER),
            input_event_id: id(VIDEO_EVENT),
            analyzer: movement,
            reason: "no climber visible in the first 10 s of the video".into(),
        }),
    ]
}

fn inputs() -> Vec<AnalysisInput> {
    vec![
        AnalysisInput {
            kind: InputKind::Video,
            id: id(VIDEO),
            media: Some(media("videos/0196/attempt-21.mp4", 'b')),
        },
        AnalysisInput {
            kind: InputKind::Attempt,
            id: id(ATTEMPT),
            media: None,
        },
    ]
}

fn holds_detected() -> HoldsDetected {
    let hold = |hold_id: &str, (x, y): (f64, f64), colour, kind| DetectedHold {
        hold_id: hold_id.into(),
        polygon: vec![
            Point {
                x: x - 0.02,
                y: y - 0.015,
            },
            Point {
                x: x + 0.02,
                y: y - 0.015,
            },
            Point {
                x: x + 0.02,
                y: y + 0.015,
            },
            Point {
                x: x - 0.02,
                y: y + 0.015,
            },
        ],
        bbox: BoundingBox {
            min_x: x - 0.02,
            min_y: y - 0.015,
            max_x: x + 0.02,
            max_y: y + 0.015,
        },
        center: Point { x, y },
        area: 0.0012,
        colour,
        rgb: Rgb {
            r: 231,
            g: 84,
            b: 160,
        },
        kind,
        confidence: 0.91,
    };
    HoldsDetected {
        analysis_id: id(HOLDS_ANALYSIS),
        user_id: id(USER),
        input_event_id: id(PHOTO_EVENT),
        wall_id: id(WALL),
        photo_id: id(PHOTO),
        analyzer: analyzer("holds", 2, "yolov8s-seg-holds-2026.02"),
        image_width_px: 4032,
        image_height_px: 3024,
        holds: vec![
            hold("h3", (0.18, 0.72), HoldColour::Pink, HoldKind::Jug),
            hold("h7", (0.41, 0.44), HoldColour::Pink, HoldKind::Pinch),
            hold("h9", (0.37, 0.81), HoldColour::Pink, HoldKind::Foothold),
            hold("h12", (0.66, 0.21), HoldColour::Pink, HoldKind::Sloper),
        ],
    }
}
