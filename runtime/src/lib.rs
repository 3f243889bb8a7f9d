//! Runtime plumbing every Cruxlog service shares, and nothing else: telemetry set-up,
//! configuration loading, Kafka client settings and topic creation, the admin HTTP server
//! (`/metrics`, `/healthz`, `/readyz`) and the shutdown signal. Domain code never lives here.
//!
//! Layout:
//! - [`config`]: typed config from defaults then `CRUXLOG_<SECTION>__<KEY>` variables.
//! - [`telemetry`]: tracing subscriber (JSON or pretty) and W3C trace context helpers.
//! - [`kafka`]: producer and consumer settings, idempotent topic creation.
//! - [`admin`]: the admin server with metrics and health.
//! - [`blobs`]: the content-addressed object store for video and image bytes (A5).
//! - [`shutdown`]: one cancellation token for SIGINT/SIGTERM.
//! - `testkit` (feature): a fresh database and topic prefix per test, on the real stack.

pub mod admin;
pub mod blobs;
pub mod config;
pub mod kafka;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
