//! One pipeline per partition of the analysis topic: its own consumer (assigned by hand, no
//! group rebalances) and its own transactional producer (`<group>-<instance>-p<partition>`),
//! so partitions run concurrently and a restarted instance fences its predecessor partition
//! by partition. Requests of one partition are handled in order, one at a time.
//!
//! At most one result per analysis id (A1): a result is keyed by its analysis id, like the
//! request, so it lands on the request's partition. Before handling anything the pipeline
//! reads its partition from the beginning to the end and remembers every analysis id that has
//! a result (`done`); it adds the ids it commits and the results it reads. A request whose id
//! is done is skipped, also when it was delivered twice or arrives again after a restart.

use std::{collections::HashSet, sync::Arc, time::Duration};

use anyhow::Context as _;
use cruxlog_runtime::{kafka::KafkaConfig, telemetry::TraceParent};
use cruxlog_schemas::{
    Actor, DecodedEvent, DomainEvent, EventMeta,
    envelope::Envelope,
    events::{AnalysisCompleted, AnalysisFailed},
};
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{Consumer as _, StreamConsumer},
    error::KafkaError,
    message::OwnedMessage,
    producer::{FutureProducer, Producer as _},
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use super::{
    NAME,
    job::{JobContext, Outcome},
    scan,
};
use crate::txn::{self, Record, TxnError};

/// What every partition pipeline of one deployment shares.
pub struct Shared {
    pub kafka: KafkaConfig,
    pub topic: String,
    pub dead_letter_topic: String,
    pub group: String,
    pub instance_id: String,
    pub job: Arc<JobContext>,
}

pub struct Pipeline {
    shared: Arc<Shared>,
    partition: i32,
    producer: FutureProducer,
    done: HashSet<Uuid>,
}

impl Pipeline {
    /// Creates the clients and fences the previous owner of this partition (its open
    /// transaction is aborted, so its half-done result never becomes visible).
    pub async fn start(shared: Arc<Shared>, partition: i32) -> anyhow::Result<Self> {
        let producer = transactional_producer(&shared, partition).await?;
        Ok(Self {
            shared,
            partition,
            producer,
            done: HashSet::new(),
        })
    }

    /// Serves the partition until shutdown. A producer left broken by a broker failure
    /// (a fatal transaction error other than being fenced) is replaced, and the partition is
    /// read again from the start: its `init_transactions` settles the broken transaction, and
    /// the scan shows whether its result landed, so nothing is lost or doubled.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut pause = Duration::from_millis(500);
        loop {
            let error = match self.serve(&shutdown).await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            let recoverable = error
                .downcast_ref::<TxnError>()
                .is_some_and(|e| matches!(e, TxnError::Fatal(_)) && !e.is_fenced());
            if !recoverable {
                return Err(error);
            }
            tracing::warn!(partition = self.partition, error = %error, "producer broken; replacing it and re-reading the partition");
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(10));
                match transactional_producer(&self.shared, self.partition).await {
                    Ok(producer) => {
                        self.producer = producer;
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "new producer not ready")
                    }
                }
            }
            self.done.clear();
        }
    }

    /// Each round of serving uses two fresh consumers, each assigned once and never
    /// reassigned: one reads the partition from the beginning to learn what is done, the
    /// other serves from the committed offset. (librdkafka 2.12 can abort the process when a
    /// consumer's assignment is replaced and then dropped before the first one has stopped,
    /// librdkafka#5573; one assignment per consumer never meets that.)
    async fn serve(&mut self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let scanner = self.assigned_consumer(Offset::Beginning)?;
        let scanned = scan::learn_done(
            &scanner,
            (&self.shared.topic, self.partition),
            &mut self.done,
            shutdown,
        )
        .await;
        drop(scanner);
        let Some(scanned) = scanned else {
            return Ok(());
        };
        tracing::info!(
            partition = self.partition,
            scanned,
            done = self.done.len(),
            "partition ready"
        );
        let consumer = self.assigned_consumer(Offset::Stored)?;
        let mut failing_since = None;
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                received = consumer.recv() => received,
            };
            let message = match received {
                Ok(message) => message.detach(),
                Err(KafkaError::PartitionEOF(_)) => continue,
                Err(error) => {
                    // librdkafka reconnects by itself; log an outage once, not every poll.
                    if failing_since.replace(std::time::Instant::now()).is_none() {
                        tracing::warn!(%error, partition = self.partition, "kafka receive error");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            failing_since = None;
            if !self.handle(&consumer, message, shutdown).await? {
                return Ok(());
            }
        }
    }

    /// A new consumer of the deployment's group, assigned this partition from `offset`.
    fn assigned_consumer(&self, offset: Offset) -> anyhow::Result<StreamConsumer> {
        let consumer: StreamConsumer = self
            .shared
            .kafka
            .consumer(&self.shared.group)
            .set("enable.partition.eof", "true")
            .create()
            .context("creating the consumer")?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&self.shared.topic, self.partition, offset)?;
        consumer.assign(&assignment)?;
        Ok(consumer)
    }

    /// Handles one record; false on shutdown mid-job.
    async fn handle(
        &mut self,
        consumer: &StreamConsumer,
        message: OwnedMessage,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<bool> {
        let decoded = match cruxlog_schemas::decode(message.payload().unwrap_or_default()) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::warn!(offset = message.offset(), %error, "undecodable record dead-lettered");
                let letter = self.dead_letter(&message, &format!("undecodable: {error}"));
                self.commit(consumer, vec![letter], &message, shutdown)
                    .await?;
                self.shared.job.metrics.job(NAME, "dead_lettered");
                return Ok(true);
            }
        };
        let request = match &decoded.event {
            DomainEvent::AnalysisCompleted(AnalysisCompleted { analysis_id, .. })
            | DomainEvent::AnalysisFailed(AnalysisFailed { analysis_id, .. }) => {
                self.done.insert(*analysis_id);
                return Ok(true);
            }
            DomainEvent::AnalysisRequested(request)
                if super::takes(request, self.shared.job.settings.version) =>
            {
                request
            }
            _ => return Ok(true),
        };
        if self.done.contains(&request.analysis_id) {
            tracing::info!(analysis_id = %request.analysis_id, offset = message.offset(), "duplicate request skipped");
            self.shared.job.metrics.job(NAME, "duplicate");
            return Ok(true);
        }
        let span = job_span(&decoded, &message);
        let Some(outcome) = self
            .shared
            .job
            .run(request, shutdown)
            .instrument(span.clone())
            .await
        else {
            return Ok(false);
        };
        let records = self.records(outcome, &decoded.envelope, &message)?;
        self.commit(consumer, records, &message, shutdown)
            .instrument(span)
            .await?;
        self.done.insert(request.analysis_id);
        Ok(true)
    }

    fn records(
        &self,
        outcome: Outcome,
        cause: &Envelope,
        message: &OwnedMessage,
    ) -> anyhow::Result<Vec<Record>> {
        let meta =
            |id| EventMeta::new(id, cause.aggregate_version + 1, Actor::system()).caused_by(cause);
        let metrics = &self.shared.job.metrics;
        Ok(match outcome {
            Outcome::Completed(event) => {
                metrics.job(NAME, "completed");
                metrics
                    .results
                    .with_label_values(&[NAME, "completed"])
                    .inc();
                vec![Record::event(
                    &self.shared.topic,
                    &meta(event.analysis_id),
                    event.as_ref(),
                )?]
            }
            Outcome::Failed(event) => {
                tracing::warn!(reason = %event.reason, "analysis failed for good; dead-lettered");
                metrics.job(NAME, "failed");
                metrics.results.with_label_values(&[NAME, "failed"]).inc();
                vec![
                    Record::event(&self.shared.topic, &meta(event.analysis_id), &event)?,
                    self.dead_letter(message, &event.reason),
                ]
            }
        })
    }

    fn dead_letter(&self, message: &OwnedMessage, reason: &str) -> Record {
        let consumer = format!("analyzer-{NAME}");
        Record::dead_letter(&self.shared.dead_letter_topic, &consumer, message, reason)
    }

    async fn commit(
        &self,
        consumer: &StreamConsumer,
        records: Vec<Record>,
        message: &OwnedMessage,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let group = consumer
            .group_metadata()
            .context("no consumer group metadata")?;
        let position = (message.topic(), message.partition(), message.offset() + 1);
        txn::commit(&self.producer, records, position, group, shutdown).await?;
        Ok(())
    }
}

fn job_span(decoded: &DecodedEvent, message: &OwnedMessage) -> tracing::Span {
    let trace_id = decoded
        .envelope
        .traceparent
        .as_deref()
        .and_then(TraceParent::parse)
        .map(|t| t.trace_id);
    tracing::info_span!(
        "analyze",
        analyzer = NAME,
        event_type = decoded.event.name(),
        event_id = %decoded.envelope.event_id,
        aggregate_id = %decoded.envelope.aggregate_id,
        trace_id = trace_id.as_deref().unwrap_or_default(),
        topic = message.topic(),
        partition = message.partition(),
        offset = message.offset(),
    )
}

/// A producer with this partition's transactional id, initialised (fencing older ones).
async fn transactional_producer(shared: &Shared, partition: i32) -> anyhow::Result<FutureProducer> {
    let producer: FutureProducer = shared
        .kafka
        .producer()
        .set(
            "transactional.id",
            format!("{}-{}-p{partition}", shared.group, shared.instance_id),
        )
        .create()
        .context("creating the producer")?;
    let init = producer.clone();
    tokio::task::spawn_blocking(move || init.init_transactions(Duration::from_secs(30)))
        .await?
        .context("initialising Kafka transactions")?;
    Ok(producer)
}
