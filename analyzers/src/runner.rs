//! The consume-analyze-produce loop. Each input is handled in one Kafka transaction that
//! holds the result event and the consumer offset, so one input gives at most one result
//! (A1) even across crashes. Workers that are missing put the service in degraded mode: the
//! input waits with back-off (A3). Crashes and timeouts are retried a bounded number of
//! times, then the input becomes a failure event (A4).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use cruxlog_runtime::{
    admin::{self, Readiness, Status},
    telemetry::TraceParent,
};
use cruxlog_schemas::{
    Actor, DecodedEvent, DomainEvent, Event, EventMeta,
    events::{AnalysisFailed, SessionStarted, WarmupPlanned, aggregate},
};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{Consumer as _, StreamConsumer},
    message::{Header, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord, Producer as _},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    config::Config,
    warmup,
    worker::{Worker, WorkerCommand, WorkerError},
};

const TXN_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Analyzer {
    config: Config,
    consumer: StreamConsumer,
    producer: FutureProducer,
    analysis_topic: String,
    admin: Option<TcpListener>,
    metrics: Metrics,
    worker_command: WorkerCommand,
    worker: Option<Worker>,
    workers_up: Arc<AtomicBool>,
}

#[derive(Clone)]
struct Metrics {
    registry: Registry,
    results: IntCounterVec,
    worker_failures: IntCounterVec,
    workers_alive: IntGauge,
}

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let results = IntCounterVec::new(
            Opts::new(
                "cruxlog_analyzer_results_total",
                "Result events by analyzer and outcome",
            ),
            &["analyzer", "outcome"],
        )?;
        let worker_failures = IntCounterVec::new(
            Opts::new(
                "cruxlog_analyzer_worker_failures_total",
                "Worker calls that failed, by kind",
            ),
            &["analyzer", "kind"],
        )?;
        let workers_alive =
            IntGauge::new("cruxlog_analyzer_workers_alive", "Python workers running")?;
        registry.register(Box::new(results.clone()))?;
        registry.register(Box::new(worker_failures.clone()))?;
        registry.register(Box::new(workers_alive.clone()))?;
        Ok(Self {
            registry,
            results,
            worker_failures,
            workers_alive,
        })
    }
}

impl Analyzer {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config
            .kafka
            .ensure_event_topics()
            .await
            .context("creating event topics")?;
        let topics = config.kafka.topics();
        let group = format!(
            "{}cruxlog-analyzer-{}-v{}",
            config.kafka.topic_prefix,
            warmup::NAME,
            warmup::VERSION
        );
        let consumer: StreamConsumer = config
            .kafka
            .consumer(&group)
            .create()
            .context("creating the consumer")?;
        consumer
            .subscribe(&[&topics.for_aggregate(aggregate::CLIMBING_SESSION)])
            .context("subscribing")?;
        let producer: FutureProducer = config
            .kafka
            .producer()
            .set(
                "transactional.id",
                format!("{group}-{}", config.analyzer.instance_id),
            )
            .create()
            .context("creating the producer")?;
        let init = producer.clone();
        tokio::task::spawn_blocking(move || init.init_transactions(Duration::from_secs(30)))
            .await?
            .context("initialising Kafka transactions")?;
        let mut worker_command = WorkerCommand::python(&config.worker.python);
        if config.worker.debug {
            worker_command
                .env
                .push(("CRUXLOG_WORKER_DEBUG".into(), "1".into()));
        }
        let admin = TcpListener::bind(&config.admin.addr)
            .await
            .context("binding the admin address")?;
        Ok(Self {
            analysis_topic: topics.for_aggregate(aggregate::ANALYSIS),
            config,
            consumer,
            producer,
            admin: Some(admin),
            metrics: Metrics::new().context("registering metrics")?,
            worker_command,
            worker: None,
            workers_up: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn admin_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match &self.admin {
            Some(listener) => listener.local_addr(),
            None => Err(std::io::Error::other("admin server already started")),
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let workers_up = self.workers_up.clone();
        let readiness = move || {
            let up = workers_up.load(Ordering::Relaxed);
            async move {
                let state = if up {
                    "ok"
                } else {
                    "no worker alive; inputs wait"
                };
                Readiness {
                    status: if up { Status::Ready } else { Status::Degraded },
                    checks: BTreeMap::from([("workers".to_owned(), state.to_owned())]),
                }
            }
        };
        let listener = self.admin.take().context("run called twice")?;
        let admin_app = admin::router(self.metrics.registry.clone(), readiness);
        let admin = tokio::spawn(admin::serve(listener, admin_app, shutdown.clone()));
        self.ensure_worker().await.ok();
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => break,
                received = self.consumer.recv() => received,
            };
            let message = match message {
                Ok(message) => message.detach(),
                Err(error) => {
                    tracing::warn!(%error, "kafka receive error");
                    continue;
                }
            };
            let (topic, partition, offset) = (
                message.topic().to_owned(),
                message.partition(),
                message.offset(),
            );
            let outcome = self.handle(&message, &shutdown).await?;
            drop(message);
            if let Some(record) = outcome {
                self.commit(record, &topic, partition, offset).await?;
            } else {
                // Shut down mid-input: the input is re-read on the next start.
                break;
            }
        }
        if let Some(worker) = self.worker.as_mut() {
            worker.kill().await;
        }
        admin.await.ok();
        Ok(())
    }

    /// Works out the record to emit for one input; `None` only on shutdown.
    async fn handle(
        &mut self,
        message: &OwnedMessage,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<Output>> {
        let decoded = match cruxlog_schemas::decode(message.payload().unwrap_or_default()) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::warn!(topic = message.topic(), offset = message.offset(), %error, "undecodable input skipped");
                return Ok(Some(Output::Nothing));
            }
        };
        let DomainEvent::SessionStarted(session) = &decoded.event else {
            return Ok(Some(Output::Nothing));
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
        let Some(result) = self
            .analyze(session, &decoded, shutdown)
            .instrument(span)
            .await
        else {
            return Ok(None);
        };
        let meta = |id| EventMeta::new(id, 1, Actor::system()).caused_by(&decoded.envelope);
        Ok(Some(match result {
            Ok(planned) => Output::event(&meta(planned.analysis_id), &planned)?,
            Err(failed) => Output::event(&meta(failed.analysis_id), &failed)?,
        }))
    }

    /// Calls the worker until it answers, the input is found permanently bad, or attempts
    /// run out. Waits (degraded) while no worker can be started.
    async fn analyze(
        &mut self,
        session: &SessionStarted,
        decoded: &DecodedEvent,
        shutdown: &CancellationToken,
    ) -> Option<Result<WarmupPlanned, AnalysisFailed>> {
        let input = decoded.envelope.event_id;
        let timeout = Duration::from_millis(self.config.worker.call_timeout_ms);
        let mut attempts = 0;
        let mut pause = Duration::from_millis(200);
        loop {
            let worker = match self.ensure_worker().await {
                Ok(worker) => worker,
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "no worker; waiting (degraded)");
                    if !sleep_or_shutdown(pause, shutdown).await {
                        return None;
                    }
                    pause = (pause * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            let error = match worker
                .call(warmup::METHOD, warmup::params(session), timeout)
                .await
            {
                Ok(result) => {
                    self.metrics
                        .results
                        .with_label_values(&[warmup::NAME, "completed"])
                        .inc();
                    return Some(
                        warmup::planned(session, input, result)
                            .map_err(|reason| warmup::failed(session, input, reason)),
                    );
                }
                Err(error) => error,
            };
            let kind = match &error {
                WorkerError::InvalidInput(_) => "invalid_input",
                WorkerError::Internal { .. } => "internal",
                WorkerError::Timeout(_) => "timeout",
                WorkerError::Crashed(_) => "crashed",
                WorkerError::Unavailable(_) => "unavailable",
            };
            self.metrics
                .worker_failures
                .with_label_values(&[warmup::NAME, kind])
                .inc();
            if matches!(error, WorkerError::Timeout(_) | WorkerError::Crashed(_)) {
                self.worker = None;
                self.set_workers_alive(false);
            }
            attempts += 1;
            if error.is_permanent() || attempts >= self.config.worker.max_attempts {
                tracing::warn!(%error, attempts, "analysis failed for good");
                self.metrics
                    .results
                    .with_label_values(&[warmup::NAME, "failed"])
                    .inc();
                return Some(Err(warmup::failed(session, input, error.to_string())));
            }
            tracing::warn!(%error, attempts, "analysis attempt failed; retrying");
            if !sleep_or_shutdown(pause, shutdown).await {
                return None;
            }
            pause = (pause * 2).min(Duration::from_secs(10));
        }
    }

    async fn ensure_worker(&mut self) -> Result<&mut Worker, WorkerError> {
        if self
            .worker
            .as_mut()
            .is_some_and(|worker| !worker.is_alive())
        {
            self.worker = None;
        }
        if self.worker.is_none() {
            match Worker::spawn(&self.worker_command).await {
                Ok(worker) => self.worker = Some(worker),
                Err(error) => {
                    self.set_workers_alive(false);
                    return Err(error);
                }
            }
        }
        self.set_workers_alive(true);
        self.worker
            .as_mut()
            .ok_or_else(|| WorkerError::Unavailable("no worker".into()))
    }

    fn set_workers_alive(&self, alive: bool) {
        self.workers_up.store(alive, Ordering::Relaxed);
        self.metrics.workers_alive.set(i64::from(alive));
    }

    /// Emits the output and the input's offset in one transaction.
    async fn commit(
        &self,
        output: Output,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> anyhow::Result<()> {
        let producer = self.producer.clone();
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(topic, partition, Offset::Offset(offset + 1))?;
        let group = self
            .consumer
            .group_metadata()
            .context("no consumer group metadata")?;
        let analysis_topic = self.analysis_topic.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            producer.begin_transaction()?;
            if let Output::Event {
                key,
                bytes,
                headers,
            } = &output
            {
                let record = FutureRecord::to(&analysis_topic)
                    .key(key)
                    .payload(bytes)
                    .headers(headers.clone());
                if let Err((error, _)) = producer.send_result(record) {
                    producer.abort_transaction(TXN_TIMEOUT).ok();
                    anyhow::bail!("enqueueing the result failed: {error}");
                }
            }
            let sent = producer
                .send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT)
                .and_then(|()| producer.commit_transaction(TXN_TIMEOUT));
            if let Err(error) = sent {
                producer.abort_transaction(TXN_TIMEOUT).ok();
                anyhow::bail!("committing the transaction failed: {error}");
            }
            Ok(())
        })
        .await?
    }
}

enum Output {
    Nothing,
    Event {
        key: String,
        bytes: Vec<u8>,
        /// Copies of envelope fields for tools that read headers only.
        headers: OwnedHeaders,
    },
}

impl Output {
    fn event<E: Event>(meta: &EventMeta, event: &E) -> anyhow::Result<Self> {
        let event_id = meta.event_id.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "event_type",
                value: Some(E::NAME),
            })
            .insert(Header {
                key: "event_id",
                value: Some(&event_id),
            });
        if let Some(traceparent) = &meta.traceparent {
            headers = headers.insert(Header {
                key: "traceparent",
                value: Some(traceparent),
            });
        }
        Ok(Self::Event {
            key: meta.aggregate_id.to_string(),
            bytes: cruxlog_schemas::encode(meta, event)?,
            headers,
        })
    }
}

async fn sleep_or_shutdown(pause: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(pause) => true,
    }
}
