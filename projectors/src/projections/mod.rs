//! Every projection this service builds.
//!
//! Layout:
//! - [`sessions`]: climbing sessions, attempts, videos, warm-ups, per-user progress.
//! - [`analyses`]: every analysis of every analyzer version, and the latest per input.
//! - [`walls`]: gyms, walls, wall photos, detected holds, routes.
//! - [`coaching`]: ghosts, routines, workouts, goals, injuries.
//! - [`identity`]: users, roles, consents.
//! - [`audit`]: the admin audit log.

pub mod analyses;
pub mod audit;
pub mod coaching;
pub mod identity;
pub mod sessions;
pub mod walls;

use std::{mem::discriminant, sync::Arc};

use crate::projection::{Applied, Projection};

/// The projections, in start order.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(identity::Identity),
        Arc::new(sessions::Sessions),
        Arc::new(analyses::Analyses),
        Arc::new(walls::Walls),
        Arc::new(coaching::Coaching),
        Arc::new(audit::Audit),
    ]
}

pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}

/// Splits a batch into runs of consecutive events of one type, so each run becomes one
/// multi-row statement while the order between types is kept.
pub fn runs(batch: &[Applied]) -> impl Iterator<Item = &[Applied]> {
    batch.chunk_by(|a, b| discriminant(&a.event.event) == discriminant(&b.event.event))
}

/// A value as `jsonb` (nested lists of the events: steps, findings, plans).
pub fn json<T: serde::Serialize>(value: &T) -> sqlx::Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

/// The lower-case name of a serde enum symbol (`TOP_ROPE` -> `top_rope`).
pub fn symbol<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_ascii_lowercase))
        .unwrap_or_else(|| "unknown".to_owned())
}
