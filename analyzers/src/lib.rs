//! `cruxlog-analyzers`: Kafka consumers that hand inputs to a pool of Python workers and
//! append their results as events. Results carry the analyzer's name, version and model id
//! (A2); each analysis gives at most one result (A1); without workers, inputs wait (A3); a
//! crash or hang touches one job only, and an input that always fails becomes a failure event
//! and a dead letter (A4); video and artifact bytes live in the object store (A5).
//!
//! Layout:
//! - [`config`]: typed configuration.
//! - [`service`]: the service: pool, admin server, analyzers, one shutdown.
//! - [`worker`]: one Python worker process and the JSON-lines protocol.
//! - [`pool`]: the pool of workers: leases, restarts, health checks.
//! - [`warmup`] and [`runner`]: the warm-up analyzer and its consume loop.
//! - [`movement`]: the movement analyzer (one pipeline per partition, jobs, artifacts).
//! - [`txn`]: result events, dead letters and offsets in one Kafka transaction.
//! - [`replay`]: the `replay` command (history through an analyzer version).
//! - [`metrics`]: Prometheus metrics.

pub mod config;
pub mod metrics;
pub mod movement;
pub mod pool;
pub mod replay;
pub mod runner;
pub mod service;
pub mod txn;
pub mod warmup;
pub mod worker;

pub use service::Analyzer;
