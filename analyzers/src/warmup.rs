//! The warm-up analyzer: a session started, plan its warm-up. The first analyzer, kept as
//! the real path every later one (movement, holds, ghost, routines) follows.

use cruxlog_schemas::events::{
    self, AnalysisFailed, AnalyzerInfo, SessionStarted, WarmupPlanned, WarmupStep,
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

pub const NAME: &str = "warmup";
pub const VERSION: i32 = 1;
pub const METHOD: &str = "warmup.plan";

/// The warm-up's analysis id: one per (session started event, version) (A1).
pub fn analysis_id(input_event_id: Uuid) -> Uuid {
    events::analysis_id(input_event_id, NAME, Some(VERSION))
}

pub fn params(session: &SessionStarted) -> Value {
    json!({
        "session_id": session.session_id,
        "discipline": session.discipline.as_str(),
        "indoor": session.indoor,
        "planned_minutes": session.planned_minutes,
    })
}

#[derive(Debug, Deserialize)]
struct Plan {
    plan_id: String,
    steps: Vec<Step>,
    total_minutes: i32,
}

#[derive(Debug, Deserialize)]
struct Step {
    name: String,
    minutes: i32,
    cue: String,
}

/// Maps the worker's answer to the result event; a malformed answer is an error.
pub fn planned(
    session: &SessionStarted,
    input_event_id: Uuid,
    result: Value,
) -> Result<WarmupPlanned, String> {
    let plan: Plan = serde_json::from_value(result)
        .map_err(|error| format!("malformed warm-up plan: {error}"))?;
    Ok(WarmupPlanned {
        analysis_id: analysis_id(input_event_id),
        session_id: session.session_id,
        user_id: session.user_id,
        input_event_id,
        analyzer: AnalyzerInfo {
            name: NAME.into(),
            version: VERSION,
            model_id: plan.plan_id,
        },
        steps: plan
            .steps
            .into_iter()
            .map(|s| WarmupStep {
                name: s.name,
                minutes: s.minutes,
                cue: s.cue,
            })
            .collect(),
        total_minutes: plan.total_minutes,
    })
}

pub fn failed(session: &SessionStarted, input_event_id: Uuid, reason: String) -> AnalysisFailed {
    AnalysisFailed {
        analysis_id: analysis_id(input_event_id),
        user_id: session.user_id,
        input_event_id,
        analyzer: AnalyzerInfo {
            name: NAME.into(),
            version: VERSION,
            model_id: "n/a".into(),
        },
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_ids_are_the_ones_already_in_the_log() {
        let input = Uuid::from_u128(0x0190_a0c4_6c1e_7d2a_9b1f_3f9e_2a8d_7c01);
        // Computed by the code before the id function moved to `cruxlog-schemas`.
        let namespace = Uuid::from_u128(0x6d1c_0b0e_5c4f_4a8e_9d7e_1e0f_3b2a_c001);
        assert_eq!(
            analysis_id(input),
            Uuid::new_v5(&namespace, format!("{input}/warmup/1").as_bytes())
        );
        assert_ne!(analysis_id(input), analysis_id(Uuid::now_v7()));
    }
}
