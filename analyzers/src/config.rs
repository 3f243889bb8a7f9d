//! The analyzers' configuration (`CRUXLOG_<SECTION>__<KEY>`).

use cruxlog_runtime::kafka::KafkaConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub admin: AdminConfig,
    pub kafka: KafkaConfig,
    pub worker: WorkerConfig,
    pub analyzer: AnalyzerConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    pub addr: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:9182".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerConfig {
    /// The Python interpreter that has `cruxlog-vision` installed.
    pub python: String,
    /// Bound on one call; a worker that overruns it is killed (A4).
    pub call_timeout_ms: u64,
    /// Tries per input before it becomes a failure event (A4).
    pub max_attempts: u32,
    /// Enables the worker's `debug.*` methods (tests only).
    pub debug: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            python: "python3".into(),
            call_timeout_ms: 30_000,
            max_attempts: 3,
            debug: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalyzerConfig {
    /// Distinguishes instances' transactional ids; keep it stable across restarts.
    pub instance_id: String,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        Self {
            instance_id: "0".into(),
        }
    }
}
