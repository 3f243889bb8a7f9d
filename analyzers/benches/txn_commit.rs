//! What one analyzer transaction costs (A1: a job's result and its input's offset commit
//! together): `BENCH_COMMITS` single-record transactions committed one after the other
//! through `txn::commit`, as the warm-up runner commits one per input, next to the same
//! records appended by a plain idempotent producer one at a time, in the same run.
//!
//! A third line commits without first waiting for the records' acknowledgements, as
//! `txn::commit` did before: rdkafka's `commit_transaction` flushes first, and that flush sat
//! out a whole 100 ms poll of the producer's polling thread, which capped a runner at about
//! ten inputs a second.
//!
//! `cargo bench -p cruxlog-analyzers --bench txn_commit` with the stack's environment.

use std::time::{Duration, Instant};

use cruxlog_analyzers::txn::{self, Record};
use cruxlog_runtime::testkit::TestEnv;
use cruxlog_schemas::{Actor, EventMeta, events::aggregate};
use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
    message::OwnedHeaders,
    producer::{FutureProducer, FutureRecord, Producer as _},
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Latencies of one way of appending, in the order measured.
struct Figures {
    name: &'static str,
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    fn ms(&self, quantile: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() as f64 * quantile) as usize).min(sorted.len().saturating_sub(1));
        sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    }

    fn print(&self) {
        println!(
            "  {:<34} {:>7.1} commits/s  p50 {:7.2} ms  p99 {:7.2} ms  ({} in {:.2} s)",
            self.name,
            self.rate(),
            self.ms(0.5),
            self.ms(0.99),
            self.latencies.len(),
            self.wall.as_secs_f64()
        );
    }
}

fn record(topic: &str) -> Record {
    let meta = EventMeta::new(Uuid::now_v7(), 1, Actor::system());
    let event = cruxlog_schemas::events::samples::all()
        .into_iter()
        .find(|event| event.aggregate_type() == aggregate::ANALYSIS)
        .expect("an analysis sample");
    Record {
        topic: topic.to_owned(),
        key: meta.aggregate_id.to_string().into_bytes(),
        payload: event.encode(&meta).expect("encodes"),
        headers: OwnedHeaders::new(),
    }
}

fn transactional(env: &TestEnv, id: &str) -> FutureProducer {
    let mut config = env.kafka.producer();
    config.set("transactional.id", format!("{}-{id}", env.name));
    let producer: FutureProducer = config.create().expect("producer");
    producer
        .init_transactions(Duration::from_secs(10))
        .expect("init_transactions");
    producer
}

#[tokio::main]
async fn main() {
    let commits = env_or("BENCH_COMMITS", 300);
    let env = TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let topic = env.kafka.topics().for_aggregate(aggregate::ANALYSIS);
    let input = env
        .kafka
        .topics()
        .for_aggregate(aggregate::CLIMBING_SESSION);
    let consumer: BaseConsumer = env
        .kafka
        .consumer(&format!("{}-bench", env.name))
        .create()
        .expect("consumer");
    let group = || consumer.group_metadata().expect("group metadata");
    let shutdown = CancellationToken::new();
    println!("analyzer transactions: {commits} single-record commits one after the other");

    let plain: FutureProducer = env.kafka.producer().create().expect("producer");
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(commits);
    for _ in 0..commits {
        let sent = Instant::now();
        let record = record(&topic);
        let future = FutureRecord::to(&record.topic)
            .key(&record.key)
            .payload(&record.payload);
        plain
            .send(future, Duration::from_secs(10))
            .await
            .expect("appends");
        latencies.push(sent.elapsed());
    }
    let baseline = Figures {
        name: "plain idempotent append",
        latencies,
        wall: started.elapsed(),
    };

    let producer = transactional(&env, "txn");
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(commits);
    for offset in 0..commits {
        let sent = Instant::now();
        let position = (input.as_str(), 0, offset as i64 + 1);
        txn::commit(
            &producer,
            vec![record(&topic)],
            position,
            group(),
            &shutdown,
        )
        .await
        .expect("commits");
        latencies.push(sent.elapsed());
    }
    let committed = Figures {
        name: "txn::commit",
        latencies,
        wall: started.elapsed(),
    };

    // The former path, fewer times: it is slow.
    let unawaited = commits.min(30);
    let producer = transactional(&env, "flush");
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(unawaited);
    for offset in 0..unawaited {
        let sent = Instant::now();
        let record = record(&topic);
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&input, 1, Offset::Offset(offset as i64 + 1))
            .expect("offset");
        let group = group();
        let producer = producer.clone();
        tokio::task::spawn_blocking(move || {
            producer.begin_transaction()?;
            let future = FutureRecord::to(&record.topic)
                .key(&record.key)
                .payload(&record.payload);
            producer.send_result(future).map_err(|(error, _)| error)?;
            producer.send_offsets_to_transaction(&offsets, &group, Duration::from_secs(10))?;
            producer.commit_transaction(Duration::from_secs(10))
        })
        .await
        .expect("task")
        .expect("commits");
        latencies.push(sent.elapsed());
    }
    let former = Figures {
        name: "commit without awaiting delivery",
        latencies,
        wall: started.elapsed(),
    };

    for figures in [&baseline, &committed, &former] {
        figures.print();
    }
    println!(
        "  txn::commit: {:.2}x the plain append's rate, {:.1}x the former path's",
        committed.rate() / baseline.rate(),
        committed.rate() / former.rate()
    );
}
