//! Shared helpers of the analyzer's black-box tests: a per-test environment (own topics and
//! consumer groups on the real broker, own blob directory), the scripted worker, requests with
//! a video in the store, and reading results back.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{collections::HashSet, path::PathBuf, time::Duration};

use bytes::Bytes;
use cruxlog_analyzers::{Analyzer, config::Config, pool::Pool};
use cruxlog_runtime::{
    blobs::{BlobConfig, BlobStore},
    testkit::TestEnv,
};
use cruxlog_schemas::{
    Actor, DecodedEvent, DomainEvent, EventMeta,
    events::{
        AnalysisInput, AnalysisKind, AnalysisReason, AnalysisRequested, InputKind, Sealed,
        aggregate, analysis_id, sealed::MediaRef,
    },
};
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{Consumer as _, StreamConsumer},
    error::KafkaError,
    producer::{FutureProducer, FutureRecord},
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub fn python() -> String {
    std::env::var("CRUXLOG_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.local/venv/bin/python").to_owned()
    })
}

pub fn scripted_worker() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scripted_worker.py"
    )
    .to_owned()
}

pub struct Harness {
    pub env: TestEnv,
    pub blobs: BlobStore,
    pub blob_dir: tempfile::TempDir,
    pub config: Config,
}

impl Harness {
    /// A fresh environment and a config for the scripted worker with short bounds.
    pub async fn new() -> Self {
        Self::new_on(None).await
    }

    /// The same on another broker (a test's private one).
    pub async fn new_on(brokers: Option<String>) -> Self {
        cruxlog_runtime::telemetry::init_for_tests();
        let mut env = TestEnv::new().await;
        if let Some(brokers) = brokers {
            env.kafka.brokers = brokers;
        }
        env.kafka.ensure_event_topics().await.expect("topics");
        let blob_dir = tempfile::tempdir().expect("blob dir");
        let mut config = Config::default();
        config.admin.addr = "127.0.0.1:0".into();
        config.kafka = env.kafka.clone();
        config.blobs = BlobConfig {
            url: format!("file://{}", blob_dir.path().display()),
            ..BlobConfig::default()
        };
        config.worker.python = python();
        config.worker.args = scripted_worker();
        config.worker.pool_size = 2;
        config.worker.debug = true;
        config.worker.retry_base_ms = 100;
        config.worker.retry_max_ms = 1_000;
        config.worker.ping_interval_ms = 500;
        config.movement.timeout_ms = 4_000;
        config.movement.timeout_per_mib_ms = 0;
        let blobs = BlobStore::open(&config.blobs).expect("blobs");
        Self {
            env,
            blobs,
            blob_dir,
            config,
        }
    }

    pub fn analysis_topic(&self) -> String {
        self.env.kafka.topics().for_aggregate(aggregate::ANALYSIS)
    }

    /// Starts the analyzer; returns its pool, admin address and stop token.
    pub async fn start(&self, config: Config) -> Running {
        let analyzer = Analyzer::build(config).await.expect("analyzer builds");
        let admin = format!("http://{}", analyzer.admin_addr().expect("admin"));
        let pool = analyzer.pool();
        let stop = CancellationToken::new();
        let task = tokio::spawn(analyzer.run(stop.clone()));
        Running {
            pool,
            admin,
            stop,
            task,
        }
    }

    /// Stores a "video" (a script for the scripted worker, or real bytes) and returns a
    /// movement request for it (latest version, like an upload's automatic request).
    pub async fn request_for(&self, video: &[u8]) -> (AnalysisRequested, Uuid) {
        let stored = self
            .blobs
            .put_stream(
                "videos",
                futures::stream::iter([Ok::<_, std::io::Error>(Bytes::copy_from_slice(video))]),
                1 << 30,
            )
            .await
            .expect("video stored");
        let user = Uuid::now_v7();
        let input_event = Uuid::now_v7();
        let media = Sealed::dev(
            format!("user-{user}"),
            &MediaRef {
                object_key: stored.key,
                sha256: stored.sha256,
            },
        );
        let request = AnalysisRequested {
            analysis_id: analysis_id(input_event, "movement", None),
            user_id: user,
            kind: AnalysisKind::Movement,
            input_event_id: input_event,
            inputs: vec![AnalysisInput {
                kind: InputKind::Video,
                id: Uuid::now_v7(),
                media: Some(media),
            }],
            requested_analyzer_version: None,
            reason: AnalysisReason::Automatic,
        };
        (request, user)
    }

    pub async fn script(&self, script: serde_json::Value) -> AnalysisRequested {
        self.request_for(script.to_string().as_bytes()).await.0
    }

    /// Appends a request (again, if called twice) keyed by its analysis id.
    pub async fn append(&self, request: &AnalysisRequested) {
        let meta = EventMeta::new(request.analysis_id, 1, Actor::user(request.user_id));
        let bytes = cruxlog_schemas::encode(&meta, request).expect("encoded");
        self.append_raw(
            &self.analysis_topic(),
            &request.analysis_id.to_string(),
            &bytes,
        )
        .await;
    }

    pub async fn append_raw(&self, topic: &str, key: &str, bytes: &[u8]) {
        let producer: FutureProducer = self.env.kafka.producer().create().expect("producer");
        producer
            .send(
                FutureRecord::to(topic).key(key).payload(bytes),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .expect("appended");
    }

    /// Every committed event of a topic, in partition order.
    pub async fn read_all(&self, topic: &str) -> Vec<DecodedEvent> {
        read_all(&self.env, topic).await
    }

    /// Waits until `done` holds for the analysis topic's events; panics after `within`.
    pub async fn wait_for(
        &self,
        within: Duration,
        done: impl Fn(&[DecodedEvent]) -> bool,
    ) -> Vec<DecodedEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let events = self.read_all(&self.analysis_topic()).await;
            if done(&events) {
                return events;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not met within {within:?}; events: {:#?}",
                events.iter().map(|e| e.event.name()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

pub struct Running {
    pub pool: Pool,
    pub admin: String,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("analyzer stops in time")
            .expect("task joins")
            .expect("analyzer ends cleanly");
    }

    pub async fn readiness(&self) -> serde_json::Value {
        reqwest::get(format!("{}/readyz", self.admin))
            .await
            .expect("readyz answers")
            .json()
            .await
            .expect("json")
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("text")
    }
}

/// Results (completed or failed) for one analysis id.
pub fn results_for(events: &[DecodedEvent], id: Uuid) -> Vec<&DomainEvent> {
    events
        .iter()
        .map(|e| &e.event)
        .filter(|e| match e {
            DomainEvent::AnalysisCompleted(c) => c.analysis_id == id,
            DomainEvent::AnalysisFailed(f) => f.analysis_id == id,
            _ => false,
        })
        .collect()
}

pub async fn read_all(env: &TestEnv, topic: &str) -> Vec<DecodedEvent> {
    read_records(env, topic)
        .await
        .into_iter()
        .filter_map(|record| cruxlog_schemas::decode(&record.payload).ok())
        .collect()
}

/// One committed record.
pub struct Rec {
    pub partition: i32,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Rec {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every committed record of a topic.
pub async fn read_records(env: &TestEnv, topic: &str) -> Vec<Rec> {
    let consumer: StreamConsumer = env
        .kafka
        .consumer(&format!("{}test-reader", env.kafka.topic_prefix))
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&assignment).expect("assign");
    let mut at_end = HashSet::new();
    let mut records = Vec::new();
    while at_end.len() < partitions.len() {
        match tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .expect("records")
        {
            Err(KafkaError::PartitionEOF(p)) => {
                at_end.insert(p);
            }
            Err(error) => panic!("reading {topic}: {error}"),
            Ok(message) => {
                use rdkafka::message::Headers as _;
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                records.push(Rec {
                    partition: message.partition(),
                    headers,
                    payload: message.payload().unwrap_or_default().to_vec(),
                });
            }
        }
    }
    records
}

pub fn venv_has(method: &str) -> bool {
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/python/src/cruxlog_vision/worker.py"
    );
    std::fs::read_to_string(source).is_ok_and(|text| text.contains(method))
}

pub fn marker(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
