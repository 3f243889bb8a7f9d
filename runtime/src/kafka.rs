//! Kafka client settings every service shares, and idempotent topic creation.
//!
//! Producers: `acks=all` and idempotence (W1), bounded delivery time (W5). Consumers: manual
//! offset management and `read_committed`, so transactional outputs of analyzers are seen only
//! once committed.

use std::time::Duration;

use cruxlog_schemas::topics::{TopicSpec, Topics};
use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::{KafkaError, RDKafkaErrorCode},
};
use serde::{Deserialize, Serialize};

/// The `kafka` section of every service's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub brokers: String,
    /// Prepended to every topic name; isolates tests and environments on one cluster.
    pub topic_prefix: String,
    /// Partitions of event topics created by this deployment.
    pub partitions: i32,
    /// 1 on a single local broker, 3 on a real cluster.
    pub replication_factor: i32,
    /// Upper bound on one append, queueing and retries included (W5).
    pub delivery_timeout_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:19092".into(),
            topic_prefix: String::new(),
            partitions: cruxlog_schemas::topics::DEFAULT_PARTITIONS,
            replication_factor: 1,
            delivery_timeout_ms: 5_000,
        }
    }
}

impl KafkaConfig {
    pub fn topics(&self) -> Topics {
        Topics::new(self.topic_prefix.clone())
    }

    /// Settings of an idempotent `acks=all` producer.
    pub fn producer(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "1")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", self.delivery_timeout_ms.to_string())
            .set("socket.connection.setup.timeout.ms", "2000")
            // No Nagle: with several requests in flight on one connection, a request written
            // while the previous one is unacknowledged would wait for the broker's ACK.
            .set("socket.nagle.disable", "true")
            .set("reconnect.backoff.max.ms", "1000");
        config
    }

    /// Settings of a consumer that manages its own offsets.
    pub fn consumer(&self, group_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "50")
            .set("socket.connection.setup.timeout.ms", "2000");
        config
    }

    /// Creates the event topics if missing (never expiring, see `cruxlog_schemas::topics`).
    pub async fn ensure_event_topics(&self) -> Result<Vec<String>, KafkaError> {
        let specs = self.topics().event_topic_specs(self.partitions);
        ensure_topics(&self.brokers, &specs, self.replication_factor).await?;
        Ok(specs.into_iter().map(|spec| spec.name).collect())
    }
}

/// Creates topics, treating "already exists" as success.
pub async fn ensure_topics(
    brokers: &str,
    specs: &[TopicSpec],
    replication_factor: i32,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    // With acks=all, an append is acknowledged once this many replicas have it (W1): two on
    // a real cluster, so losing one broker loses nothing acknowledged.
    let min_insync = if replication_factor >= 3 { "2" } else { "1" };
    let topics: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|spec| {
            spec.config.iter().fold(
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(replication_factor),
                )
                .set("min.insync.replicas", min_insync),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                tracing::error!(topic, error = %code, "topic creation failed");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}
