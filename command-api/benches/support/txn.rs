//! Appends through Kafka transactions, as the partition owners of ADR 0014 would make them:
//! the appends that arrive while a transaction commits wait for the next one (group commit),
//! and each is answered once its transaction has committed. The load bench runs these next
//! to the plain idempotent producer to price the transactions the design needs.

use std::time::Duration;

use rdkafka::{
    ClientConfig,
    message::OwnedHeaders,
    producer::{FutureProducer, FutureRecord, Producer as _},
};
use tokio::sync::{mpsc, oneshot};

fn env_or(name: &str, default: u64) -> String {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(default)
        .to_string()
}

/// One record to append, owned, and where to say whether it committed.
struct Pending {
    key: String,
    value: Vec<u8>,
    headers: OwnedHeaders,
    done: oneshot::Sender<bool>,
}

/// A transactional producer and its queue. Appends go to one fixed partition when
/// `partition` is set (an owner of that partition), else where the key hashes.
#[derive(Clone)]
pub(crate) struct TxnAppender {
    queue: mpsc::UnboundedSender<Pending>,
}

impl TxnAppender {
    /// Starts the producer (`init_transactions`) and its committing task.
    pub(crate) async fn start(
        mut config: ClientConfig,
        transactional_id: String,
        topic: String,
        partition: Option<i32>,
        timeout: Duration,
    ) -> Self {
        config
            .set("transactional.id", &transactional_id)
            .set("transaction.timeout.ms", "10000")
            // A commit flushes; waiting longer only delays it.
            .set("linger.ms", "0")
            // The first request of a transaction right after a commit is refused
            // (CONCURRENT_TRANSACTIONS) until the coordinator has written the commit's markers,
            // and retried after this backoff (librdkafka's default: 100 ms). Shorter waits
            // less but sends more retries; docs/benchmarks.md has the sweep.
            .set("retry.backoff.ms", env_or("BENCH_TXN_BACKOFF_MS", 2))
            .set(
                "retry.backoff.max.ms",
                env_or("BENCH_TXN_BACKOFF_MAX_MS", 5),
            );
        let producer: FutureProducer = config.create().expect("transactional producer");
        let init = producer.clone();
        tokio::task::spawn_blocking(move || init.init_transactions(Duration::from_secs(10)))
            .await
            .expect("init task")
            .expect("init_transactions");
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(commit_loop(producer, topic, partition, timeout, receiver));
        Self { queue }
    }

    /// Appends one record; `true` once its transaction committed.
    pub(crate) async fn append(&self, key: String, value: Vec<u8>, headers: OwnedHeaders) -> bool {
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            key,
            value,
            headers,
            done,
        };
        self.queue.send(pending).is_ok() && answer.await.unwrap_or(false)
    }
}

/// One transaction at a time, each holding every append queued when it began.
async fn commit_loop(
    producer: FutureProducer,
    topic: String,
    partition: Option<i32>,
    timeout: Duration,
    mut queue: mpsc::UnboundedReceiver<Pending>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while let Ok(next) = queue.try_recv() {
            batch.push(next);
        }
        let ok = commit(&producer, &topic, partition, timeout, &batch).await;
        for pending in batch {
            let _ = pending.done.send(ok);
        }
    }
}

async fn commit(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    timeout: Duration,
    batch: &[Pending],
) -> bool {
    if producer.begin_transaction().is_err() {
        return false;
    }
    let mut deliveries = Vec::with_capacity(batch.len());
    for pending in batch {
        let mut record = FutureRecord::to(topic)
            .key(&pending.key)
            .payload(&pending.value)
            .headers(pending.headers.clone());
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        match producer.send_result(record) {
            Ok(delivery) => deliveries.push(delivery),
            Err(_) => {
                abort(producer, timeout).await;
                return false;
            }
        }
    }
    // Every record acknowledged before the commit: rdkafka's `commit_transaction` first
    // flushes, and its flush, polling beside the producer's own polling thread, waits out a
    // whole 100 ms poll when records are still in flight (every commit took 100 ms).
    let mut delivered = true;
    for delivery in deliveries {
        delivered &= matches!(delivery.await, Ok(Ok(_)));
    }
    let committer = producer.clone();
    let committed = delivered
        && tokio::task::spawn_blocking(move || committer.commit_transaction(timeout))
            .await
            .is_ok_and(|result| result.is_ok());
    if !committed {
        abort(producer, timeout).await;
    }
    committed
}

async fn abort(producer: &FutureProducer, timeout: Duration) {
    let aborter = producer.clone();
    let _ = tokio::task::spawn_blocking(move || aborter.abort_transaction(timeout)).await;
}
