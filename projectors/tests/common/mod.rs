//! Shared set-up of the projector tests: a fresh database and topic prefix, the service in
//! process, and a producer of encoded events.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use cruxlog_projectors::{Projectors, config::Config, service::Context};
use cruxlog_runtime::{config::Secret, testkit::TestEnv};
use cruxlog_schemas::{DomainEvent, EventMeta, envelope::Actor};
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct Harness {
    pub env: TestEnv,
    pub config: Config,
    pub db: PgPool,
    pub producer: FutureProducer,
    pub shutdown: CancellationToken,
}

impl Harness {
    pub async fn new() -> Self {
        cruxlog_runtime::telemetry::init_for_tests();
        let env = TestEnv::new().await;
        env.kafka.ensure_event_topics().await.expect("topics");
        let mut config = Config::default();
        config.admin.addr = "127.0.0.1:0".into();
        config.kafka = env.kafka.clone();
        config.database.url = Secret::new(env.database_url.clone());
        let db = PgPool::connect(&env.database_url).await.expect("db");
        let producer = env.kafka.producer().create().expect("producer");
        Self {
            env,
            config,
            db,
            producer,
            shutdown: CancellationToken::new(),
        }
    }

    /// Starts the projectors service in this process.
    pub async fn start_service(&self) {
        let service = Projectors::build(self.config.clone())
            .await
            .expect("service builds");
        tokio::spawn(service.run(self.shutdown.clone()));
    }

    pub async fn context(&self) -> Context {
        Context::connect(self.config.clone())
            .await
            .expect("context")
    }

    pub fn topic(&self, aggregate: &str) -> String {
        self.env.kafka.topics().for_aggregate(aggregate)
    }

    /// Appends records (key, value) and waits for every acknowledgement.
    pub async fn produce(&self, topic: &str, records: &[(String, Vec<u8>)]) {
        let sends = records.iter().map(|(key, bytes)| async move {
            self.producer
                .send(
                    FutureRecord::to(topic).key(key).payload(bytes),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(error, _)| error)
        });
        for result in join_all(sends).await {
            result.expect("append acknowledged");
        }
    }

    pub async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, Option<i64>>(sql)
            .fetch_one(&self.db)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// Waits until the live builds have seen `records` records (applied or dead-lettered).
    pub async fn wait_projected(&self, records: i64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let seen = self
                .scalar("select coalesce(sum(events_applied + dead_letters), 0)::bigint from read.projection_health where state = 'live'")
                .await;
            if seen >= records {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {seen} of {records} records projected"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Encodes an event keyed by its aggregate, as the command API would.
pub fn record(event: &DomainEvent, aggregate_id: Uuid, version: i64) -> (String, Vec<u8>) {
    let meta = EventMeta::new(aggregate_id, version, Actor::system());
    (
        aggregate_id.to_string(),
        event.encode(&meta).expect("encodes"),
    )
}
