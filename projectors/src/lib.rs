//! `cruxlog-projectors`: Kafka consumers that fold the event log into PostgreSQL read
//! models. Offsets live in PostgreSQL, written in the same transaction as the rows (R1), so
//! a crash at any point neither loses nor doubles an effect.
//!
//! Layout:
//! - [`config`]: typed configuration.
//! - [`store`]: offsets, counters, migrations and the single-active-instance lock.
//! - [`apply`]: what each event does to the tables.
//! - [`projector`]: the consume-apply-commit loop and dead letters.
//! - [`metrics`]: Prometheus metrics.

pub mod apply;
pub mod config;
pub mod metrics;
pub mod projector;
pub mod store;

pub use projector::Projector;

/// The one projection this crate builds so far; read models are versioned per projection.
pub const PROJECTION: &str = "sessions";
