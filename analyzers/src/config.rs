//! The analyzers' configuration (`CRUXLOG_<SECTION>__<KEY>`).

use cruxlog_runtime::{blobs::BlobConfig, kafka::KafkaConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub admin: AdminConfig,
    pub kafka: KafkaConfig,
    pub worker: WorkerConfig,
    pub analyzer: AnalyzerConfig,
    pub blobs: BlobConfig,
    pub movement: MovementConfig,
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
    /// Its arguments, split on spaces.
    pub args: String,
    /// Worker processes in the pool; 0 means one per CPU core.
    pub pool_size: usize,
    /// Bound on one warm-up call; a worker that overruns it is killed (A4). Movement calls
    /// have their own bound (`movement.timeout_ms`).
    pub call_timeout_ms: u64,
    /// Tries per input before it becomes a failure event (A4).
    pub max_attempts: u32,
    /// First and longest pause between tries, and while no worker is alive (A3).
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// Idle workers are pinged this often; missing ones are started.
    pub ping_interval_ms: u64,
    /// Bound on a worker's start-up (its `hello`).
    pub start_timeout_ms: u64,
    /// Enables the worker's `debug.*` methods (tests only).
    pub debug: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            python: "python3".into(),
            args: "-m cruxlog_vision.worker".into(),
            pool_size: 0,
            call_timeout_ms: 30_000,
            max_attempts: 3,
            retry_base_ms: 200,
            retry_max_ms: 10_000,
            ping_interval_ms: 5_000,
            start_timeout_ms: 30_000,
            debug: false,
        }
    }
}

impl WorkerConfig {
    pub fn pool_size(&self) -> usize {
        match self.pool_size {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            size => size,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MovementConfig {
    pub enabled: bool,
    /// The analyzer version this deployment serves: its consumer group, the pinned requests
    /// it takes, and the version its worker must report.
    pub version: i32,
    /// A call's bound is `timeout_ms + timeout_per_mib_ms × video size in MiB`.
    pub timeout_ms: u64,
    pub timeout_per_mib_ms: u64,
    /// Scratch space for videos and artifacts; empty means the system temp directory.
    pub scratch_dir: String,
}

impl Default for MovementConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            version: crate::movement::VERSION,
            timeout_ms: 120_000,
            timeout_per_mib_ms: 2_000,
            scratch_dir: String::new(),
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
