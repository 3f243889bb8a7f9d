//! `cruxlog-analyzers`: Kafka consumers that hand inputs to Python workers and append their
//! results as events. Results carry the analyzer's name, version and model id (A2), and
//! each (input, analyzer version) gives at most one result (A1).
//!
//! Layout:
//! - [`config`]: typed configuration.
//! - [`worker`]: one Python worker process and the JSON-lines protocol.
//! - [`warmup`]: the warm-up analyzer (input, worker call, result events).
//! - [`runner`]: the consume-analyze-produce loop with Kafka transactions.

pub mod config;
pub mod runner;
pub mod warmup;
pub mod worker;

pub use runner::Analyzer;
