//! The warm-up analyzer's consume-analyze-produce loop. Each `SessionStarted` is handled in
//! one Kafka transaction that holds the result event and the consumer offset, so one input
//! gives at most one result (A1) even across crashes. While no worker is alive the input
//! waits with back-off (A3); crashes and timeouts are retried a bounded number of times, then
//! the input becomes a failure event (A4).

use std::time::Duration;

use anyhow::Context as _;
use cruxlog_runtime::{kafka::KafkaConfig, telemetry::TraceParent};
use cruxlog_schemas::{
    Actor, DomainEvent, EventMeta,
    events::{AnalysisFailed, SessionStarted, WarmupPlanned, aggregate},
};
use rdkafka::{
    Message as _,
    consumer::{Consumer as _, StreamConsumer},
    message::OwnedMessage,
    producer::{FutureProducer, Producer as _},
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    config::WorkerConfig,
    metrics::Metrics,
    pool::Pool,
    txn::{self, Record},
    warmup,
    worker::WorkerError,
};

pub struct WarmupRunner {
    consumer: StreamConsumer,
    producer: FutureProducer,
    analysis_topic: String,
    pool: Pool,
    metrics: Metrics,
    worker: WorkerConfig,
}

impl WarmupRunner {
    pub async fn build(
        kafka: &KafkaConfig,
        instance_id: &str,
        worker: WorkerConfig,
        pool: Pool,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let topics = kafka.topics();
        let group = format!(
            "{}cruxlog-analyzer-{}-v{}",
            kafka.topic_prefix,
            warmup::NAME,
            warmup::VERSION
        );
        let consumer: StreamConsumer = kafka
            .consumer(&group)
            .create()
            .context("creating the consumer")?;
        consumer
            .subscribe(&[&topics.for_aggregate(aggregate::CLIMBING_SESSION)])
            .context("subscribing")?;
        let producer: FutureProducer = kafka
            .producer()
            .set("transactional.id", format!("{group}-{instance_id}"))
            .create()
            .context("creating the producer")?;
        let init = producer.clone();
        tokio::task::spawn_blocking(move || init.init_transactions(Duration::from_secs(30)))
            .await?
            .context("initialising Kafka transactions")?;
        Ok(Self {
            consumer,
            producer,
            analysis_topic: topics.for_aggregate(aggregate::ANALYSIS),
            pool,
            metrics,
            worker,
        })
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut failing = false;
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                received = self.consumer.recv() => received,
            };
            let message = match message {
                Ok(message) => message.detach(),
                Err(error) => {
                    // librdkafka reconnects by itself; log an outage once, not every poll.
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(%error, "kafka receive error");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            failing = false;
            let Some(records) = self.handle(&message, &shutdown).await? else {
                // Shut down mid-input: the input is re-read on the next start.
                return Ok(());
            };
            let group = self
                .consumer
                .group_metadata()
                .context("no consumer group metadata")?;
            let position = (message.topic(), message.partition(), message.offset() + 1);
            txn::commit(&self.producer, records, position, group, &shutdown).await?;
        }
    }

    /// Works out the records to emit for one input; `None` only on shutdown.
    async fn handle(
        &self,
        message: &OwnedMessage,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<Vec<Record>>> {
        let decoded = match cruxlog_schemas::decode(message.payload().unwrap_or_default()) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::warn!(topic = message.topic(), offset = message.offset(), %error, "undecodable input skipped");
                return Ok(Some(Vec::new()));
            }
        };
        let DomainEvent::SessionStarted(session) = &decoded.event else {
            return Ok(Some(Vec::new()));
        };
        let trace_id = decoded
            .envelope
            .traceparent
            .as_deref()
            .and_then(TraceParent::parse)
            .map(|t| t.trace_id);
        let span = tracing::info_span!(
            "analyze",
            analyzer = warmup::NAME,
            event_type = decoded.event.name(),
            event_id = %decoded.envelope.event_id,
            aggregate_id = %decoded.envelope.aggregate_id,
            trace_id = trace_id.as_deref().unwrap_or_default(),
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
        );
        let input = decoded.envelope.event_id;
        let timer = self.metrics.job_timer(warmup::NAME).start_timer();
        let Some(result) = self
            .analyze(session, input, shutdown)
            .instrument(span)
            .await
        else {
            timer.stop_and_discard();
            return Ok(None);
        };
        timer.observe_duration();
        let meta = |id| EventMeta::new(id, 1, Actor::system()).caused_by(&decoded.envelope);
        let record = match result {
            Ok(planned) => {
                Record::event(&self.analysis_topic, &meta(planned.analysis_id), &planned)?
            }
            Err(failed) => Record::event(&self.analysis_topic, &meta(failed.analysis_id), &failed)?,
        };
        Ok(Some(vec![record]))
    }

    /// Calls a worker until it answers, the input is found permanently bad, or attempts
    /// run out. Waits (degraded) while no worker can be started.
    async fn analyze(
        &self,
        session: &SessionStarted,
        input: uuid::Uuid,
        shutdown: &CancellationToken,
    ) -> Option<Result<WarmupPlanned, AnalysisFailed>> {
        let timeout = Duration::from_millis(self.worker.call_timeout_ms);
        let max_pause = Duration::from_millis(self.worker.retry_max_ms);
        let mut attempts = 0;
        let mut pause = Duration::from_millis(self.worker.retry_base_ms);
        loop {
            let call = self
                .pool
                .call(warmup::METHOD, warmup::params(session), timeout);
            let error = match call.await {
                Ok(result) => {
                    self.outcome("completed");
                    return Some(
                        warmup::planned(session, input, result)
                            .map_err(|reason| warmup::failed(session, input, reason)),
                    );
                }
                Err(error) => error,
            };
            self.metrics
                .worker_failure(warmup::NAME, failure_kind(&error));
            if matches!(error, WorkerError::Unavailable(_)) {
                tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "no worker; waiting (degraded)");
            } else {
                attempts += 1;
                if error.is_permanent() || attempts >= self.worker.max_attempts {
                    tracing::warn!(%error, attempts, "analysis failed for good");
                    self.outcome("failed");
                    return Some(Err(warmup::failed(session, input, error.to_string())));
                }
                tracing::warn!(%error, attempts, "analysis attempt failed; retrying");
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(max_pause);
        }
    }

    fn outcome(&self, outcome: &str) {
        self.metrics
            .results
            .with_label_values(&[warmup::NAME, outcome])
            .inc();
        self.metrics.job(warmup::NAME, outcome);
    }
}

pub fn failure_kind(error: &WorkerError) -> &'static str {
    match error {
        WorkerError::InvalidInput(_) => "invalid_input",
        WorkerError::Internal { .. } => "internal",
        WorkerError::Timeout(_) => "timeout",
        WorkerError::Crashed(_) => "crashed",
        WorkerError::Unavailable(_) => "unavailable",
    }
}
