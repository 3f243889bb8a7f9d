//! Events as the API's commands make them, for tests and benches that write through the
//! writer or a raw producer (`benches/load.rs` includes this file by path).

use cruxlog_schemas::{
    events::{
        AttemptDetails, AttemptLogged, AttemptResult, ClimbStyle, Discipline, SessionStarted,
    },
    grades::{Grade, GradeSystem},
};
use uuid::Uuid;

/// `user` starts bouldering indoors, planning 90 minutes.
pub(crate) fn session_started(session_id: Uuid, user: Uuid) -> SessionStarted {
    SessionStarted {
        session_id,
        user_id: user,
        started_at: cruxlog_schemas::envelope::truncate_to_micros(chrono::Utc::now()),
        discipline: Discipline::Boulder,
        indoor: true,
        location_name: None,
        planned_minutes: Some(90),
    }
}

/// A failed try at a 6b+ boulder with one fall, a new attempt id each time.
pub(crate) fn attempt_logged(session_id: Uuid, user: Uuid) -> AttemptLogged {
    AttemptLogged {
        session_id,
        attempt_id: Uuid::now_v7(),
        user_id: user,
        attempted_at: cruxlog_schemas::envelope::truncate_to_micros(chrono::Utc::now()),
        details: AttemptDetails {
            route_id: None,
            route_description: None,
            grade: Grade::parse(GradeSystem::Fontainebleau, "6b+").ok(),
            style: ClimbStyle::Boulder,
            result: AttemptResult::Fail,
            falls: 1,
            duration_ms: None,
            rpe: None,
            beta: Vec::new(),
            high_point_hold_id: None,
            notes: None,
        },
    }
}
