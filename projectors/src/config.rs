//! The projectors' configuration (`CRUXLOG_<SECTION>__<KEY>`).

use cruxlog_runtime::{config::Secret, kafka::KafkaConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub admin: AdminConfig,
    pub kafka: KafkaConfig,
    pub database: DatabaseConfig,
    pub projector: ProjectorConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    pub addr: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:9181".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// The projectors' role owns and writes the read models.
    pub url: Secret,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("postgres://postgres@127.0.0.1:15432/postgres"),
            max_connections: 4,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectorConfig {
    /// Most events applied in one transaction.
    pub batch_size: usize,
    /// How long a batch waits for more events once it has one.
    pub batch_linger_ms: u64,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            batch_linger_ms: 10,
        }
    }
}
