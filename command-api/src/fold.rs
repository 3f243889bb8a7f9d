//! Each aggregate the API writes through a head, as a left fold of its events: the state a
//! head holds is the one its decisions return, and [`Aggregate::evolve`] rebuilds that same
//! state from the log. Property tests (`tests/fold_properties.rs`) hold the two together.
//!
//! The fold settles heads from the log (`cruxlog-command-api settle-heads`, after a restore of
//! PostgreSQL older than the log); partition owners would have folded it on takeover
//! (ADR 0014, rejected for the 2-core box). It needs no user's key: a state keeps a sealed field sealed, as its event has it.

use cruxlog_schemas::{DomainEvent, events::aggregate};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::{
    coaching::domain::RoutineState,
    domain::SessionState,
    user_domain::UserState,
    walls::domain::{GymState, RouteState, WallState},
};

/// A state a head holds, and how an event of its aggregate changes it.
pub trait Aggregate: Serialize + DeserializeOwned + Sized {
    /// The envelope's `aggregate_type`.
    const TYPE: &'static str;

    /// The state after `event`, whose envelope's id is `event_id`. Events are facts: one the
    /// decisions would no longer take (a correction of an attempt deleted since) still folds;
    /// only an event that cannot belong to this state is refused.
    fn evolve(state: Option<Self>, event_id: Uuid, event: &DomainEvent)
    -> Result<Self, Unfoldable>;
}

/// An event that cannot be folded into the state before it: the log is not what the
/// decisions wrote (another writer's bug, or records out of order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unfoldable {
    #[error("{event} before the {aggregate} was created")]
    NotCreated {
        aggregate: &'static str,
        event: &'static str,
    },
    #[error("{event} on a {aggregate} that was already created")]
    CreatedTwice {
        aggregate: &'static str,
        event: &'static str,
    },
    #[error("{event} is not an event of a {aggregate}")]
    Foreign {
        aggregate: &'static str,
        event: &'static str,
    },
    #[error("aggregate type {0:?} has no head")]
    NoHead(String),
    #[error("the {aggregate} state does not decode: {reason}")]
    BadState {
        aggregate: &'static str,
        reason: String,
    },
}

impl Unfoldable {
    pub(crate) fn not_created<A: Aggregate>(event: &DomainEvent) -> Self {
        Self::NotCreated {
            aggregate: A::TYPE,
            event: event.name(),
        }
    }

    pub(crate) fn created_twice<A: Aggregate>(event: &DomainEvent) -> Self {
        Self::CreatedTwice {
            aggregate: A::TYPE,
            event: event.name(),
        }
    }

    pub(crate) fn foreign<A: Aggregate>(event: &DomainEvent) -> Self {
        Self::Foreign {
            aggregate: A::TYPE,
            event: event.name(),
        }
    }
}

/// The existing state, or [`Unfoldable::NotCreated`].
pub(crate) fn existing<A: Aggregate>(
    state: Option<A>,
    event: &DomainEvent,
) -> Result<A, Unfoldable> {
    state.ok_or_else(|| Unfoldable::not_created::<A>(event))
}

/// No state yet, or [`Unfoldable::CreatedTwice`].
pub(crate) fn absent<A: Aggregate>(
    state: Option<&A>,
    event: &DomainEvent,
) -> Result<(), Unfoldable> {
    match state {
        Some(_) => Err(Unfoldable::created_twice::<A>(event)),
        None => Ok(()),
    }
}

/// The aggregate types whose commands go through a head.
pub const HEADED: [&str; 6] = [
    aggregate::USER,
    aggregate::GYM,
    aggregate::WALL,
    aggregate::ROUTE,
    aggregate::CLIMBING_SESSION,
    aggregate::ROUTINE,
];

/// [`Aggregate::evolve`] on a state as the head stores it (JSON), for the aggregate type an
/// envelope names.
pub fn evolve_json(
    aggregate_type: &str,
    state: Option<&serde_json::Value>,
    event_id: Uuid,
    event: &DomainEvent,
) -> Result<serde_json::Value, Unfoldable> {
    fn typed<A: Aggregate>(
        state: Option<&serde_json::Value>,
        event_id: Uuid,
        event: &DomainEvent,
    ) -> Result<serde_json::Value, Unfoldable> {
        let bad = |error: serde_json::Error| Unfoldable::BadState {
            aggregate: A::TYPE,
            reason: error.to_string(),
        };
        let state: Option<A> = state.map(A::deserialize).transpose().map_err(bad)?;
        serde_json::to_value(A::evolve(state, event_id, event)?).map_err(bad)
    }
    match aggregate_type {
        aggregate::USER => typed::<UserState>(state, event_id, event),
        aggregate::GYM => typed::<GymState>(state, event_id, event),
        aggregate::WALL => typed::<WallState>(state, event_id, event),
        aggregate::ROUTE => typed::<RouteState>(state, event_id, event),
        aggregate::CLIMBING_SESSION => typed::<SessionState>(state, event_id, event),
        aggregate::ROUTINE => typed::<RoutineState>(state, event_id, event),
        other => Err(Unfoldable::NoHead(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_headed_type_has_a_topic_and_others_have_no_head() {
        for headed in HEADED {
            assert!(cruxlog_schemas::topics::AGGREGATE_TYPES.contains(&headed));
        }
        let event = cruxlog_schemas::events::samples::all()
            .into_iter()
            .next()
            .expect("a sample");
        assert_eq!(
            evolve_json(aggregate::ANALYSIS, None, Uuid::nil(), &event),
            Err(Unfoldable::NoHead(aggregate::ANALYSIS.into()))
        );
    }
}
