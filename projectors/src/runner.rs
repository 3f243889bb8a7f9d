//! The consume-apply-commit loop of one build of one projection.
//!
//! Start: read the build's stored offsets, assign every partition of the projection's topics
//! there. Loop: take a batch; decode; set aside events of aggregates parked behind a dead
//! letter; apply the rest in one transaction together with the offsets (checked against what
//! this instance last wrote) and counters. A batch the database refuses for a reason of the
//! data is re-applied event by event to find the poison, which goes to the dead-letter topic
//! and parks its aggregate; anything else rolls back and is retried with back-off.

use std::{collections::HashSet, sync::Arc, time::Duration};

use anyhow::Context as _;
use cruxlog_runtime::kafka::KafkaConfig;
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer as _, StreamConsumer},
    message::OwnedMessage,
};
use sqlx::{Acquire as _, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    builds::{self, Build},
    dead_letters::DeadLetters,
    metrics::Metrics,
    projection::{Applied, Projection, is_poison},
    service::Context,
    store::{self, AdvanceError, Offsets, Parking},
};

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Shutdown,
    /// Another build went live: this one must not be written any more.
    Retired,
    /// Every partition is at its head (rebuilds stop here).
    CaughtUp,
}

pub struct Runner {
    db: PgPool,
    projection: Arc<dyn Projection>,
    pub build: Build,
    consumer: Arc<StreamConsumer>,
    dead_letters: DeadLetters,
    metrics: Metrics,
    batch_size: usize,
    linger: Duration,
    /// The offsets stored for this build, as this instance last read or wrote them.
    expected: Offsets,
    /// A batch that failed to commit, retried before anything new.
    pending: Option<Prefetched>,
    /// Receives and decodes the next batches while this one commits.
    prefetch: Option<Prefetch>,
    /// Consumer positions when the last committed batch was formed.
    last_positions: Offsets,
}

/// A batch received and decoded ahead of its commit.
pub struct Prefetched {
    messages: Vec<OwnedMessage>,
    /// `decoded[i]` is `messages[i]` decoded; taken by a commit, refilled for a retry.
    decoded: Vec<Option<Result<Applied, String>>>,
    /// Consumer positions right after the batch was formed.
    positions: Offsets,
}

impl Prefetched {
    fn new(messages: Vec<OwnedMessage>, positions: Offsets) -> Self {
        let mut batch = Self {
            decoded: Vec::new(),
            messages,
            positions,
        };
        batch.redecode();
        batch
    }

    /// Decodes every message whose decoded form was taken by a failed commit.
    fn redecode(&mut self) {
        self.decoded.resize_with(self.messages.len(), || None);
        for (slot, message) in self.decoded.iter_mut().zip(&self.messages) {
            if slot.is_none() {
                *slot = Some(decode(message));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

fn decode(message: &OwnedMessage) -> Result<Applied, String> {
    cruxlog_schemas::decode(message.payload().unwrap_or_default())
        .map(|event| Applied {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            event,
        })
        .map_err(|error| error.to_string())
}

/// The receiving task and the channel it fills.
struct Prefetch {
    batches: tokio::sync::mpsc::Receiver<Prefetched>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Prefetch {
    fn start(consumer: Arc<StreamConsumer>, size: usize, linger: Duration) -> Self {
        // Two batches ahead at most: bounded memory, and enough to hide receiving and decoding
        // behind the database.
        let (sender, batches) = tokio::sync::mpsc::channel(2);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            loop {
                let mut messages = Vec::with_capacity(size.min(10_000));
                // A batch closes when full or `linger` after its first message: under a steady
                // trickle it must not wait to fill.
                let mut deadline: Option<tokio::time::Instant> = None;
                while messages.len() < size {
                    let wait = match deadline {
                        None => Duration::from_millis(200),
                        Some(deadline) => {
                            deadline.saturating_duration_since(tokio::time::Instant::now())
                        }
                    };
                    tokio::select! {
                        () = stopped.cancelled() => return,
                        received = tokio::time::timeout(wait, consumer.recv()) => match received {
                            Ok(Ok(message)) => {
                                messages.push(message.detach());
                                deadline.get_or_insert_with(|| tokio::time::Instant::now() + linger);
                            }
                            Ok(Err(error)) => {
                                tracing::warn!(%error, "kafka receive error");
                                break;
                            }
                            Err(_) => break,
                        },
                    }
                }
                let positions = positions(&consumer);
                let batch = tokio::task::block_in_place(|| Prefetched::new(messages, positions));
                // An empty batch tells the runner the log was quiet for a moment.
                if sender.send(batch).await.is_err() {
                    return;
                }
            }
        });
        Self {
            batches,
            stop,
            task,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.ok();
    }
}

/// A consumer of the projection's group (partitions are assigned by hand).
fn new_consumer(
    kafka: &KafkaConfig,
    projection: &dyn Projection,
) -> anyhow::Result<StreamConsumer> {
    let group = format!(
        "{}cruxlog-projector-{}",
        kafka.topic_prefix,
        projection.name()
    );
    kafka
        .consumer(&group)
        .create()
        .context("creating the consumer")
}

/// The consumer's positions (next offsets to fetch), where known.
fn positions(consumer: &StreamConsumer) -> Offsets {
    consumer
        .position()
        .map(|list| {
            list.elements()
                .iter()
                .filter_map(|e| {
                    e.offset()
                        .to_raw()
                        .filter(|o| *o >= 0)
                        .map(|o| ((e.topic().to_owned(), e.partition()), o))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub applied: i64,
    pub dead: i64,
}

enum Commit {
    Done(BatchOutcome),
    Retired,
    Conflict,
}

impl Runner {
    pub async fn new(
        context: &Context,
        projection: Arc<dyn Projection>,
        build: Build,
    ) -> anyhow::Result<Self> {
        let kafka = &context.config.kafka;
        let consumer = new_consumer(kafka, projection.as_ref())?;
        let mut runner = Self {
            db: context.db.clone(),
            dead_letters: context.dead_letters(projection.as_ref()),
            projection,
            build,
            consumer: Arc::new(consumer),
            metrics: context.metrics.clone(),
            batch_size: context.config.projector.batch_size,
            linger: Duration::from_millis(context.config.projector.batch_linger_ms),
            expected: Offsets::new(),
            pending: None,
            prefetch: None,
            last_positions: Offsets::new(),
        };
        runner.seek_to_stored(kafka).await?;
        Ok(runner)
    }

    pub fn topics(&self, kafka: &KafkaConfig) -> Vec<String> {
        let topics = kafka.topics();
        self.projection
            .aggregate_types()
            .iter()
            .map(|a| topics.for_aggregate(a))
            .collect()
    }

    /// (Re)assigns every partition at the stored offsets, dropping anything received since.
    /// A reassignment takes a fresh consumer: librdkafka 2.12 can abort the process when an
    /// assignment is replaced and the consumer dropped before the old one stopped
    /// (librdkafka#5573).
    async fn seek_to_stored(&mut self, kafka: &KafkaConfig) -> anyhow::Result<()> {
        if let Some(prefetch) = self.prefetch.take() {
            prefetch.stop().await;
            self.consumer = Arc::new(new_consumer(kafka, self.projection.as_ref())?);
        }
        self.expected = store::load_offsets(&self.db, self.build.build_id).await?;
        self.pending = None;
        self.last_positions.clear();
        let mut assignment = TopicPartitionList::new();
        for topic in self.topics(kafka) {
            let metadata = self
                .consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .with_context(|| format!("fetching metadata of {topic}"))?;
            for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
                let offset = self
                    .expected
                    .get(&(topic.clone(), partition.id()))
                    .map_or(Offset::Beginning, |&next| Offset::Offset(next));
                assignment.add_partition_offset(&topic, partition.id(), offset)?;
            }
        }
        self.consumer
            .assign(&assignment)
            .context("assigning partitions")?;
        self.prefetch = Some(Prefetch::start(
            self.consumer.clone(),
            self.batch_size,
            self.linger,
        ));
        Ok(())
    }

    /// Runs until shut down, retired, or (with `until_caught_up`) at the head of every
    /// partition. `on_batch` sees each committed batch (progress bars).
    pub async fn run(
        &mut self,
        kafka: &KafkaConfig,
        shutdown: &CancellationToken,
        until_caught_up: bool,
        mut on_batch: impl FnMut(&Runner, BatchOutcome),
    ) -> anyhow::Result<Stop> {
        let mut pause = Duration::from_millis(100);
        let mut lag_checked = std::time::Instant::now();
        loop {
            if shutdown.is_cancelled() {
                return Ok(Stop::Shutdown);
            }
            if lag_checked.elapsed() > Duration::from_secs(2) {
                lag_checked = std::time::Instant::now();
                if let Err(error) = self.lag().await {
                    tracing::debug!(error = %format!("{error:#}"), "lag check failed");
                }
            }
            let mut batch = self.next_batch(shutdown).await;
            if batch.is_empty() {
                // Everything received before this quiet moment has been committed.
                self.last_positions
                    .extend(std::mem::take(&mut batch.positions));
                // Idle checks that fail (database or broker briefly away) are retried, not
                // fatal: nothing is in flight.
                let checks = async {
                    let caught_up = until_caught_up && self.caught_up().await?;
                    anyhow::Ok((caught_up, self.still_current().await?))
                };
                match checks.await {
                    Ok((true, _)) => return Ok(Stop::CaughtUp),
                    Ok((false, false)) => return Ok(Stop::Retired),
                    Ok((false, true)) => {}
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "idle check failed; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => return Ok(Stop::Shutdown),
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
                continue;
            }
            let timer = self
                .metrics
                .batch_seconds
                .with_label_values(&[self.projection.name()])
                .start_timer();
            match self.commit(&mut batch).await {
                Ok(Commit::Done(outcome)) => {
                    timer.observe_duration();
                    pause = Duration::from_millis(100);
                    self.last_positions
                        .extend(std::mem::take(&mut batch.positions));
                    on_batch(self, outcome);
                    // A short batch means the head is near: a rebuild may be done.
                    if until_caught_up && batch.len() < self.batch_size && self.caught_up().await? {
                        return Ok(Stop::CaughtUp);
                    }
                }
                Ok(Commit::Retired) => return Ok(Stop::Retired),
                Ok(Commit::Conflict) => {
                    timer.stop_and_discard();
                    tracing::warn!(
                        projection = self.projection.name(),
                        build = self.build.build_id,
                        "offsets moved by another instance; re-seeking"
                    );
                    self.seek_to_stored(kafka).await?;
                }
                Err(error) => {
                    timer.stop_and_discard();
                    self.metrics
                        .batch_failures
                        .with_label_values(&[self.projection.name()])
                        .inc();
                    tracing::warn!(error = %format!("{error:#}"), retry_in_ms = pause.as_millis() as u64, "batch failed; retrying");
                    self.pending = Some(batch);
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(Stop::Shutdown),
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn next_batch(&mut self, shutdown: &CancellationToken) -> Prefetched {
        if let Some(mut batch) = self.pending.take() {
            batch.redecode();
            return batch;
        }
        let empty = || Prefetched::new(Vec::new(), Offsets::new());
        let Some(prefetch) = self.prefetch.as_mut() else {
            return empty();
        };
        tokio::select! {
            () = shutdown.cancelled() => empty(),
            batch = prefetch.batches.recv() => batch.unwrap_or_else(empty),
        }
    }

    /// Whether this build may still be written (not retired by a swap).
    async fn still_current(&self) -> sqlx::Result<bool> {
        let state: String =
            sqlx::query_scalar("select state from cruxlog.projection_builds where build_id = $1")
                .bind(self.build.build_id)
                .fetch_one(&self.db)
                .await?;
        Ok(state != "retired")
    }

    /// Every assigned partition has been read up to its high watermark.
    pub async fn caught_up(&self) -> anyhow::Result<bool> {
        Ok(self.lag().await?.iter().all(|(_, lag)| *lag <= 0))
    }

    /// Records behind the head, per partition (high watermark minus consumer position).
    pub async fn lag(&self) -> anyhow::Result<Vec<((String, i32), i64)>> {
        let consumer = self.consumer.clone();
        let stored = self.expected.clone();
        let positions = self.last_positions.clone();
        let lags =
            tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<((String, i32), i64)>> {
                let assignment = consumer.assignment()?;
                let mut lags = Vec::new();
                for element in assignment.elements() {
                    let (topic, partition) = (element.topic().to_owned(), element.partition());
                    let (_, high) =
                        consumer.fetch_watermarks(&topic, partition, Duration::from_secs(5))?;
                    // Where the consumer stood when the last committed batch was formed: it
                    // also steps over transaction markers, which no message carries.
                    let position = positions.get(&(topic.clone(), partition)).copied();
                    let next = stored
                        .get(&(topic.clone(), partition))
                        .copied()
                        .unwrap_or(0);
                    let at = position.map_or(next, |p| p.max(next));
                    lags.push(((topic, partition), (high - at).max(0)));
                }
                Ok(lags)
            })
            .await??;
        for ((topic, partition), lag) in &lags {
            self.metrics
                .lag
                .with_label_values(&[self.projection.name(), topic, &partition.to_string()])
                .set(*lag);
        }
        Ok(lags)
    }

    async fn commit(&mut self, prefetched: &mut Prefetched) -> anyhow::Result<Commit> {
        let build_id = self.build.build_id;
        // One round trip opens the transaction, points unqualified names at the build's schema
        // and drops the wait for the WAL flush. The log is the truth and the offsets commit
        // with the rows: a crash that loses the last few commits loses their offsets too, and
        // they are simply applied again.
        let mut tx = self
            .db
            .begin_with(sqlx::AssertSqlSafe(format!(
                "begin; set local search_path to {}, public; set local synchronous_commit to off",
                self.build.schema_name
            )))
            .await?;
        if builds::state_for_share(&mut tx, build_id).await? == "retired" {
            return Ok(Commit::Retired);
        }

        // Sort out, in log order, what applies and what waits. Keys are aggregate ids.
        let batch = &prefetched.messages;
        let mut ready = Vec::with_capacity(batch.len());
        let mut dead: Vec<(&OwnedMessage, String, bool)> = Vec::new();
        let keys: Vec<Option<Uuid>> = batch.iter().map(aggregate_key).collect();
        // Each aggregate once: a batch holds many events of few aggregates.
        let unique: HashSet<Uuid> = keys.iter().flatten().copied().collect();
        let unique: Vec<Uuid> = unique.into_iter().collect();
        let mut parked = store::parked_among(&mut tx, build_id, &unique).await?;
        for ((message, decoded), key) in batch.iter().zip(prefetched.decoded.iter_mut()).zip(keys) {
            if let Some(id) = key.filter(|id| parked.contains(id)) {
                dead.push((
                    message,
                    format!("waiting behind a dead letter of aggregate {id}"),
                    true,
                ));
                continue;
            }
            // Taken: a failed commit redecodes before its retry.
            match decoded.take().unwrap_or_else(|| decode(message)) {
                Ok(applied) => ready.push(applied),
                Err(error) => {
                    if let Some(id) = key {
                        park(&mut tx, build_id, id, message, &error).await?;
                        parked.insert(id);
                    }
                    dead.push((message, format!("undecodable: {error}"), false));
                }
            }
        }
        // The loop runs in log order, so an aggregate parked by an undecodable event blocks only
        // its later events; earlier ones stay in `ready`.

        let applied = self
            .apply(&mut tx, &ready, batch, &mut dead, &mut parked)
            .await?;

        let mut new = self.expected.clone();
        for message in batch {
            new.insert(
                (message.topic().to_owned(), message.partition()),
                message.offset() + 1,
            );
        }
        match store::advance_offsets(&mut tx, build_id, &self.expected, &new).await {
            Ok(()) => {}
            Err(AdvanceError::Conflict(_)) => return Ok(Commit::Conflict),
            Err(AdvanceError::Database(error)) => return Err(error.into()),
        }
        let outcome = BatchOutcome {
            applied,
            dead: dead.len() as i64,
        };
        store::count(&mut tx, build_id, outcome.applied, outcome.dead).await?;
        for (message, reason, blocked) in &dead {
            self.dead_letters.send(message, reason, *blocked).await?;
        }
        tx.commit().await?;

        self.record(batch, outcome, &new);
        Ok(Commit::Done(outcome))
    }

    /// Applies the ready events: all at once, or, when the data is refused, one by one to
    /// isolate the poison. Returns how many were applied.
    async fn apply<'m>(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        ready: &[Applied],
        batch: &'m [OwnedMessage],
        dead: &mut Vec<(&'m OwnedMessage, String, bool)>,
        parked: &mut HashSet<Uuid>,
    ) -> anyhow::Result<i64> {
        if ready.is_empty() {
            return Ok(0);
        }
        let mut savepoint = tx.begin().await?;
        match self.projection.apply(&mut savepoint, ready).await {
            Ok(()) => {
                savepoint.commit().await?;
                return Ok(ready.len() as i64);
            }
            Err(error) if is_poison(&error) => savepoint.rollback().await?,
            Err(error) => return Err(error.into()),
        }
        let mut applied = 0;
        for event in ready {
            let origin = batch.iter().find(|m| {
                m.offset() == event.offset
                    && m.partition() == event.partition
                    && m.topic() == event.topic
            });
            let aggregate = event.event.envelope.aggregate_id;
            if parked.contains(&aggregate) {
                if let Some(message) = origin {
                    dead.push((
                        message,
                        format!("waiting behind a dead letter of aggregate {aggregate}"),
                        true,
                    ));
                }
                continue;
            }
            let mut one = tx.begin().await?;
            match self
                .projection
                .apply(&mut one, std::slice::from_ref(event))
                .await
            {
                Ok(()) => {
                    one.commit().await?;
                    applied += 1;
                }
                Err(error) if is_poison(&error) => {
                    one.rollback().await?;
                    let reason = format!("breaks an invariant: {error}");
                    if let Some(message) = origin {
                        park(tx, self.build.build_id, aggregate, message, &reason).await?;
                        dead.push((message, reason, false));
                    }
                    parked.insert(aggregate);
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(applied)
    }

    fn record(&mut self, batch: &[OwnedMessage], outcome: BatchOutcome, new: &Offsets) {
        let name = self.projection.name();
        self.metrics
            .applied
            .with_label_values(&[name])
            .inc_by(outcome.applied as u64);
        self.metrics
            .dead_letters
            .with_label_values(&[name])
            .inc_by(outcome.dead as u64);
        let mut committed = TopicPartitionList::new();
        for ((topic, partition), next) in new {
            self.metrics
                .next_offset
                .with_label_values(&[name, topic, &partition.to_string()])
                .set(*next);
            committed
                .add_partition_offset(topic, *partition, Offset::Offset(*next))
                .ok();
        }
        // Kafka's copy of the offsets is advisory (lag tools read it); PostgreSQL's is the truth.
        if let Err(error) = self.consumer.commit(&committed, CommitMode::Async) {
            tracing::debug!(%error, "advisory offset commit failed");
        }
        tracing::debug!(
            projection = name,
            build = self.build.build_id,
            events = batch.len(),
            applied = outcome.applied,
            dead = outcome.dead,
            "batch committed"
        );
        self.expected = new.clone();
    }
}

fn aggregate_key(message: &OwnedMessage) -> Option<Uuid> {
    message
        .key()
        .and_then(|key| std::str::from_utf8(key).ok())
        .and_then(|key| Uuid::parse_str(key).ok())
}

async fn park(
    tx: &mut sqlx::PgConnection,
    build_id: i64,
    aggregate_id: Uuid,
    message: &OwnedMessage,
    reason: &str,
) -> sqlx::Result<()> {
    let parking = Parking {
        aggregate_id,
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        reason,
    };
    store::park(tx, build_id, &parking).await
}
