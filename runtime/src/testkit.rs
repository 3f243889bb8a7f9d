//! Test isolation on the real broker and database: each [`TestEnv`] gets its own PostgreSQL
//! database and its own topic prefix (so its own topics and consumer groups). The stack comes
//! from `infra/local/stack.sh` (`make test` starts it); addresses come from the usual
//! variables (`CRUXLOG_KAFKA__BROKERS`, `CRUXLOG_DATABASE__URL`) or the local defaults.

use std::time::Duration;

use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer as _},
};
use sqlx::{Connection as _, PgConnection};

use crate::kafka::KafkaConfig;

#[derive(Debug, Clone)]
pub struct TestEnv {
    pub name: String,
    pub database_url: String,
    pub kafka: KafkaConfig,
}

impl TestEnv {
    /// Creates a fresh database and picks a fresh topic prefix.
    pub async fn new() -> Self {
        let defaults = KafkaConfig::default();
        let brokers = std::env::var("CRUXLOG_KAFKA__BROKERS").unwrap_or(defaults.brokers.clone());
        let server = std::env::var("CRUXLOG_DATABASE__URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:15432/postgres".into());
        let name = format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut admin = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|error| {
                panic!("PostgreSQL at {server} is not reachable ({error}); run `make stack`")
            });
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|error| panic!("creating database {name}: {error}"));
        let base = server
            .rsplit_once('/')
            .map_or(server.as_str(), |(base, _)| base);
        Self {
            database_url: format!("{base}/{name}"),
            kafka: KafkaConfig {
                brokers,
                topic_prefix: format!("{name}."),
                partitions: 3,
                ..defaults
            },
            name,
        }
    }

    /// Total records ever appended to a topic (sum of high watermarks), 0 if it does not exist.
    pub fn records_in(&self, topic: &str) -> i64 {
        let consumer: BaseConsumer = match ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.brokers)
            .create()
        {
            Ok(consumer) => consumer,
            Err(error) => panic!("kafka client: {error}"),
        };
        let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
            return 0;
        };
        metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(move |p| (t.name(), p.id())))
            .filter_map(|(name, partition)| {
                consumer
                    .fetch_watermarks(name, partition, Duration::from_secs(5))
                    .ok()
            })
            .map(|(_, high)| high)
            .sum()
    }
}
