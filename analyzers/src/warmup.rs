//! The warm-up analyzer: a session started, plan its warm-up. The first analyzer, kept as
//! the real path every later one (movement, holds, ghost, routines) follows.

use cruxlog_schemas::events::{
    AnalysisFailed, AnalyzerInfo, SessionStarted, WarmupPlanned, WarmupStep,
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

pub const NAME: &str = "warmup";
pub const VERSION: i32 = 1;
pub const METHOD: &str = "warmup.plan";

/// Namespace of analysis ids, so one (input event, analyzer, version) has one id (A1).
const ANALYSIS_NAMESPACE: Uuid = Uuid::from_u128(0x6d1c_0b0e_5c4f_4a8e_9d7e_1e0f_3b2a_c001);

pub fn analysis_id(input_event_id: Uuid, analyzer: &str, version: i32) -> Uuid {
    Uuid::new_v5(
        &ANALYSIS_NAMESPACE,
        format!("{input_event_id}/{analyzer}/{version}").as_bytes(),
    )
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
        analysis_id: analysis_id(input_event_id, NAME, VERSION),
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
        analysis_id: analysis_id(input_event_id, NAME, VERSION),
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
    fn analysis_ids_are_stable_per_input_and_version() {
        let input = Uuid::now_v7();
        assert_eq!(analysis_id(input, NAME, 1), analysis_id(input, NAME, 1));
        assert_ne!(analysis_id(input, NAME, 1), analysis_id(input, NAME, 2));
        assert_ne!(
            analysis_id(input, NAME, 1),
            analysis_id(Uuid::now_v7(), NAME, 1)
        );
    }
}
