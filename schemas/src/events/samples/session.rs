//! Samples of the `climbing_session` aggregate.

use super::{ATTEMPT, ROUTE, SESSION, USER, VIDEO, at, grade, id, media, note};
use crate::{
    events::{
        AttemptCorrected, AttemptDeleted, AttemptDeletionReason, AttemptDetails, AttemptLogged,
        AttemptResult, BetaMove, ClimbStyle, Discipline, DomainEvent, Limb, SessionEndReason,
        SessionEnded, SessionStarted, VideoAttached,
    },
    grades::GradeSystem,
};

pub(super) fn samples() -> Vec<DomainEvent> {
    let (session_id, attempt_id, user_id) = (id(SESSION), id(ATTEMPT), id(USER));
    let corrected = AttemptDetails {
        result: AttemptResult::Redpoint,
        falls: 1,
        ..details()
    };
    vec![
        DomainEvent::SessionStarted(SessionStarted {
            session_id,
            user_id,
            started_at: at(0),
            discipline: Discipline::Boulder,
            indoor: true,
            location_name: Some("Arkose Nation".into()),
            planned_minutes: Some(120),
        }),
        DomainEvent::AttemptLogged(AttemptLogged {
            session_id,
            attempt_id,
            user_id,
            attempted_at: at(25),
            details: details(),
        }),
        DomainEvent::AttemptCorrected(AttemptCorrected {
            session_id,
            attempt_id,
            user_id,
            attempted_at: at(26),
            details: corrected,
        }),
        DomainEvent::AttemptDeleted(AttemptDeleted {
            session_id,
            attempt_id,
            user_id,
            reason: AttemptDeletionReason::Duplicate,
        }),
        DomainEvent::VideoAttached(VideoAttached {
            session_id,
            attempt_id,
            video_id: id(VIDEO),
            user_id,
            media: media("videos/0196/attempt-21.mp4", 'b'),
            duration_ms: 48_320,
            size_bytes: 61_440_000,
            content_type: "video/mp4".into(),
            rotation_degrees: 90,
            width_px: 1920,
            height_px: 1080,
            frame_rate: Some(29.97),
            recorded_at: Some(at(25)),
        }),
        DomainEvent::SessionEnded(SessionEnded {
            session_id,
            user_id,
            ended_at: at(115),
            rpe: Some(7),
            notes: Some(note("Fingers felt good, tired on the overhang by the end.")),
            reason: SessionEndReason::Climber,
        }),
    ]
}

fn details() -> AttemptDetails {
    AttemptDetails {
        route_id: Some(id(ROUTE)),
        route_description: Some("pink traverse in the cave".into()),
        grade: Some(grade(GradeSystem::Fontainebleau, "6C+")),
        style: ClimbStyle::Boulder,
        result: AttemptResult::Flash,
        falls: 0,
        duration_ms: Some(41_500),
        rpe: Some(8),
        beta: vec![
            beta("h3", Limb::LeftHand),
            beta("h3", Limb::RightHand),
            beta("h9", Limb::RightFoot),
            beta("h7", Limb::LeftHand),
            beta("h12", Limb::RightHand),
        ],
        high_point_hold_id: Some("h12".into()),
        notes: Some(note("Heel hook on h9 made the crux easy.")),
    }
}

fn beta(hold_id: &str, limb: Limb) -> BetaMove {
    BetaMove {
        hold_id: hold_id.into(),
        limb,
    }
}
