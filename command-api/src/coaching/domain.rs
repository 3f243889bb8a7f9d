//! The routine aggregate's decisions, pure (STYLE.md). The API appends the request and the
//! completed workouts; the generator appends the plan in between. The head remembers the
//! owner, so a workout is recorded on the caller's own routine only, right after the request.

use cruxlog_schemas::{
    DomainEvent,
    events::{RoutineRequested, WorkoutCompleted, aggregate},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::ApiError,
    fold::{self, Aggregate, Unfoldable},
    writer::{Decision, NewEvent},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutineState {
    pub owner: Uuid,
    pub workouts_completed: u32,
}

impl RoutineState {
    fn requested(event: &RoutineRequested) -> Self {
        Self {
            owner: event.user_id,
            workouts_completed: 0,
        }
    }
}

impl Aggregate for RoutineState {
    const TYPE: &'static str = aggregate::ROUTINE;

    /// The generator's plan (or its failure) leaves the state as it was.
    fn evolve(state: Option<Self>, _: Uuid, event: &DomainEvent) -> Result<Self, Unfoldable> {
        if let DomainEvent::RoutineRequested(requested) = event {
            fold::absent(state.as_ref(), event)?;
            return Ok(Self::requested(requested));
        }
        let mut state = fold::existing(state, event)?;
        match event {
            DomainEvent::WorkoutCompleted(_) => state.workouts_completed += 1,
            DomainEvent::RoutineGenerated(_) | DomainEvent::RoutineFailed(_) => {}
            _ => return Err(Unfoldable::foreign::<Self>(event)),
        }
        Ok(state)
    }
}

pub fn request(state: Option<RoutineState>, event: &RoutineRequested) -> Decision<RoutineState> {
    match state {
        // The same keyed command run again: nothing more to append.
        Some(state) if state.owner == event.user_id => Ok((vec![], state)),
        Some(_) => Err(ApiError::Conflict("routine id taken".into())),
        None => Ok((
            vec![NewEvent::new(event.clone())],
            RoutineState::requested(event),
        )),
    }
}

/// Another user's routine looks absent (404). A workout may be done more than once.
pub fn complete_workout(
    state: Option<RoutineState>,
    event: &WorkoutCompleted,
) -> Decision<RoutineState> {
    let mut state = match state {
        Some(state) if state.owner == event.user_id => state,
        _ => return Err(ApiError::NotFound),
    };
    state.workouts_completed += 1;
    Ok((vec![NewEvent::new(event.clone())], state))
}

#[cfg(test)]
mod tests {
    use cruxlog_schemas::DomainEvent;

    use super::*;

    fn samples() -> (RoutineRequested, WorkoutCompleted) {
        let all = cruxlog_schemas::events::samples::all();
        let requested = all.iter().find_map(|e| match e {
            DomainEvent::RoutineRequested(e) => Some(e.clone()),
            _ => None,
        });
        let completed = all.iter().find_map(|e| match e {
            DomainEvent::WorkoutCompleted(e) => Some(e.clone()),
            _ => None,
        });
        (requested.expect("sample"), completed.expect("sample"))
    }

    #[test]
    fn workouts_go_only_on_the_owners_routine() {
        let (requested, completed) = samples();
        let (events, state) = request(None, &requested).expect("requests");
        assert_eq!(events.len(), 1);
        assert!(
            request(Some(state.clone()), &requested)
                .expect("again")
                .0
                .is_empty()
        );
        let stranger = WorkoutCompleted {
            user_id: Uuid::now_v7(),
            ..completed.clone()
        };
        assert!(matches!(
            complete_workout(Some(state.clone()), &stranger),
            Err(ApiError::NotFound)
        ));
        let mine = WorkoutCompleted {
            user_id: requested.user_id,
            ..completed
        };
        let (events, state) = complete_workout(Some(state), &mine).expect("completes");
        assert_eq!((events.len(), state.workouts_completed), (1, 1));
        assert!(matches!(
            complete_workout(None, &mine),
            Err(ApiError::NotFound)
        ));
    }
}
