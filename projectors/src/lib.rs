//! `cruxlog-projectors`: Kafka consumers that fold the event log into PostgreSQL read
//! models. Offsets live in PostgreSQL, written in the same transaction as the rows (R1), so
//! a crash at any point neither loses nor doubles an effect. Every projection is versioned
//! and rebuilt beside the live tables, then swapped in atomically (R2).
//!
//! Layout:
//! - [`config`]: typed configuration.
//! - [`copy`]: rows in PostgreSQL's binary `COPY` format (the bulk path of catch-up).
//! - [`projection`]: what a projection is; [`projections`]: the ones built here.
//! - [`builds`]: build lifecycle (schema per build, atomic swap of the `read` views).
//! - [`store`]: offsets, counters, parked aggregates, the per-build lock, migrations.
//! - [`runner`]: the consume-apply-commit loop of one build.
//! - [`dead_letters`]: the dead-letter topic; [`dlq`]: listing and redriving it.
//! - [`rebuild`]: the rebuild command with its progress bar.
//! - [`service`]: the long-running service supervising every projection.
//! - [`metrics`]: Prometheus metrics.

pub mod builds;
pub mod config;
pub mod copy;
pub mod dead_letters;
pub mod dlq;
pub mod metrics;
pub mod projection;
pub mod projections;
pub mod rebuild;
pub mod runner;
pub mod service;
pub mod store;

pub use service::Projectors;
