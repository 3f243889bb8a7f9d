//! Every projection this service builds.
//!
//! Layout:
//! - [`sessions`]: climbing sessions, their attempts and warm-ups, per-user counters.

pub mod sessions;

use std::{mem::discriminant, sync::Arc};

use crate::projection::{Applied, Projection};

/// The projections, in start order.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![Arc::new(sessions::Sessions)]
}

pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}

/// Splits a batch into runs of consecutive events of one type, so each run becomes one
/// multi-row statement while the order between types is kept.
pub fn runs(batch: &[Applied]) -> impl Iterator<Item = &[Applied]> {
    batch.chunk_by(|a, b| discriminant(&a.event.event) == discriminant(&b.event.event))
}
