//! The consume-apply-commit loop of one projection.
//!
//! Start: become the active instance (advisory lock), read stored offsets, assign every
//! partition of the event topics at those offsets. Loop: take a batch, decode, apply it and
//! its offsets in one transaction, commit. A batch that fails to commit (database down) is
//! retried as is with back-off; an event that cannot be decoded goes to the dead-letter topic
//! with its reason and origin before its offset is passed (R4).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::Context as _;
use cruxlog_runtime::{
    admin::{self, Readiness, Status},
    kafka::ensure_topics,
};
use cruxlog_schemas::topics::TopicSpec;
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer as _, StreamConsumer},
    message::{Header, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
};
use sqlx::{Connection as _, PgConnection, PgPool, postgres::PgPoolOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{PROJECTION, apply::apply, config::Config, metrics::Metrics, store};

pub struct Projector {
    config: Arc<Config>,
    db: PgPool,
    consumer: StreamConsumer,
    dead_letters: FutureProducer,
    dead_letter_topic: String,
    topics: Vec<String>,
    metrics: Metrics,
    /// Taken when serving starts.
    admin: Option<TcpListener>,
}

impl Projector {
    /// Connects, migrates the read models, ensures topics exist and binds the admin port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = PgPoolOptions::new()
            .max_connections(config.database.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(config.database.url.expose())
            .await
            .context("connecting to PostgreSQL")?;
        store::MIGRATOR
            .run(&db)
            .await
            .context("migrating the read models")?;
        let topics = config
            .kafka
            .ensure_event_topics()
            .await
            .context("creating event topics")?;
        let dead_letter_topic = config
            .kafka
            .topics()
            .dead_letters(&format!("projector-{PROJECTION}"));
        let spec = TopicSpec {
            name: dead_letter_topic.clone(),
            partitions: 1,
            config: vec![("retention.ms", "-1"), ("cleanup.policy", "delete")],
        };
        ensure_topics(
            &config.kafka.brokers,
            &[spec],
            config.kafka.replication_factor,
        )
        .await
        .context("creating the dead-letter topic")?;
        let group = format!(
            "{}cruxlog-projector-{PROJECTION}",
            config.kafka.topic_prefix
        );
        let consumer: StreamConsumer = config
            .kafka
            .consumer(&group)
            .create()
            .context("creating the consumer")?;
        let dead_letters: FutureProducer = config
            .kafka
            .producer()
            .create()
            .context("creating the producer")?;
        let admin = TcpListener::bind(&config.admin.addr)
            .await
            .context("binding the admin address")?;
        let metrics = Metrics::new().context("registering metrics")?;
        Ok(Self {
            config: Arc::new(config),
            db,
            consumer,
            dead_letters,
            dead_letter_topic,
            topics,
            metrics,
            admin: Some(admin),
        })
    }

    pub fn admin_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match &self.admin {
            Some(listener) => listener.local_addr(),
            None => Err(std::io::Error::other("admin server already started")),
        }
    }

    /// Runs until `shutdown`; the batch in flight is finished first.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let db = self.db.clone();
        let readiness = move || {
            let db = db.clone();
            async move {
                let ok = sqlx::query("select 1").execute(&db).await.is_ok();
                let checks = BTreeMap::from([(
                    "postgres".to_owned(),
                    if ok { "ok" } else { "unreachable" }.to_owned(),
                )]);
                Readiness {
                    status: if ok {
                        Status::Ready
                    } else {
                        Status::Unavailable
                    },
                    checks,
                }
            }
        };
        let admin_app = admin::router(self.metrics.registry.clone(), readiness);
        let listener = self.admin.take().context("run called twice")?;
        let admin = tokio::spawn(admin::serve(listener, admin_app, shutdown.clone()));

        let Some(_lock) = acquire_lock(&self.config, &shutdown).await? else {
            return Ok(());
        };
        let offsets = store::stored_offsets(&self.db, PROJECTION)
            .await
            .context("reading stored offsets")?;
        assign(&self.consumer, &self.topics, &offsets)?;
        tracing::info!(projection = PROJECTION, topics = ?self.topics, "projector assigned");

        let mut loop_state = Loop {
            projector: &self,
            pending: Vec::new(),
        };
        while !shutdown.is_cancelled() {
            let batch = loop_state.next_batch(&shutdown).await?;
            if !batch.is_empty() {
                loop_state.commit(batch, &shutdown).await;
            }
        }
        admin.await.ok();
        Ok(())
    }
}

/// Holds the advisory lock on a dedicated connection; `None` if shut down while waiting.
async fn acquire_lock(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<PgConnection>> {
    let mut connection = PgConnection::connect(config.database.url.expose())
        .await
        .context("connecting for the projection lock")?;
    loop {
        if store::try_lock(&mut connection, PROJECTION).await? {
            return Ok(Some(connection));
        }
        tracing::info!(
            projection = PROJECTION,
            "another instance is active; standing by"
        );
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn assign(
    consumer: &StreamConsumer,
    topics: &[String],
    offsets: &store::Offsets,
) -> anyhow::Result<()> {
    let mut assignment = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| format!("fetching metadata of {topic}"))?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let offset = offsets
                .get(&(topic.clone(), partition.id()))
                .map_or(Offset::Beginning, |&next| Offset::Offset(next));
            assignment.add_partition_offset(topic, partition.id(), offset)?;
        }
    }
    consumer
        .assign(&assignment)
        .context("assigning partitions")?;
    Ok(())
}

struct Loop<'a> {
    projector: &'a Projector,
    /// Messages received but not yet committed (kept across a failed commit).
    pending: Vec<OwnedMessage>,
}

impl Loop<'_> {
    async fn next_batch(
        &mut self,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Vec<OwnedMessage>> {
        let config = &self.projector.config.projector;
        let mut batch = std::mem::take(&mut self.pending);
        let linger = Duration::from_millis(config.batch_linger_ms);
        while batch.len() < config.batch_size {
            let wait = if batch.is_empty() {
                Duration::from_millis(200)
            } else {
                linger
            };
            tokio::select! {
                () = shutdown.cancelled(), if batch.is_empty() => break,
                received = tokio::time::timeout(wait, self.projector.consumer.recv()) => match received {
                    Ok(Ok(message)) => batch.push(message.detach()),
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "kafka receive error");
                        break;
                    }
                    Err(_) => break,
                },
            }
        }
        Ok(batch)
    }

    /// Applies a batch in one transaction, retrying with back-off until it commits or the
    /// service shuts down (then the batch is simply re-read on the next start).
    async fn commit(&mut self, batch: Vec<OwnedMessage>, shutdown: &CancellationToken) {
        let mut pause = Duration::from_millis(100);
        loop {
            let timer = self.projector.metrics.batch_seconds.start_timer();
            match self.try_commit(&batch).await {
                Ok(()) => {
                    timer.observe_duration();
                    return;
                }
                Err(error) => {
                    timer.stop_and_discard();
                    self.projector
                        .metrics
                        .batch_failures
                        .with_label_values(&[PROJECTION])
                        .inc();
                    tracing::warn!(error = %format!("{error:#}"), retry_in_ms = pause.as_millis() as u64, "batch failed; retrying");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    async fn try_commit(&self, batch: &[OwnedMessage]) -> anyhow::Result<()> {
        let projector = self.projector;
        let mut tx = projector.db.begin().await?;
        let mut offsets = store::Offsets::new();
        let (mut applied, mut dead) = (0i64, 0i64);
        let mut applied_types: BTreeMap<&'static str, u64> = BTreeMap::new();
        for message in batch {
            match cruxlog_schemas::decode(message.payload().unwrap_or_default()) {
                Ok(decoded) => {
                    apply(&mut tx, &decoded).await?;
                    applied += 1;
                    *applied_types.entry(decoded.event.name()).or_default() += 1;
                }
                Err(error) => {
                    projector.dead_letter(message, &error.to_string()).await?;
                    dead += 1;
                }
            }
            offsets.insert(
                (message.topic().to_owned(), message.partition()),
                message.offset() + 1,
            );
        }
        store::save_progress(&mut tx, PROJECTION, &offsets, applied, dead).await?;
        tx.commit().await?;
        for (event_type, count) in applied_types {
            projector
                .metrics
                .applied
                .with_label_values(&[PROJECTION, event_type])
                .inc_by(count);
        }
        projector
            .metrics
            .dead_letters
            .with_label_values(&[PROJECTION])
            .inc_by(dead as u64);
        let mut committed = TopicPartitionList::new();
        for ((topic, partition), next) in &offsets {
            projector
                .metrics
                .next_offset
                .with_label_values(&[PROJECTION, topic, &partition.to_string()])
                .set(*next);
            committed.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
        }
        // Kafka's copy of the offsets is advisory (lag tools read it); PostgreSQL's is the truth.
        if let Err(error) = projector.consumer.commit(&committed, CommitMode::Async) {
            tracing::debug!(%error, "advisory offset commit failed");
        }
        Ok(())
    }
}

impl Projector {
    /// Sends an undecodable record to the dead-letter topic, with why and where from.
    async fn dead_letter(&self, message: &OwnedMessage, reason: &str) -> anyhow::Result<()> {
        let (partition, offset) = (
            message.partition().to_string(),
            message.offset().to_string(),
        );
        tracing::warn!(
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            reason,
            "dead-lettering an event"
        );
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "dlq_reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "dlq_origin_topic",
                value: Some(message.topic()),
            })
            .insert(Header {
                key: "dlq_origin_partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "dlq_origin_offset",
                value: Some(&offset),
            })
            .insert(Header {
                key: "dlq_projection",
                value: Some(PROJECTION),
            });
        let mut record = FutureRecord::to(&self.dead_letter_topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.dead_letters
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(error, _)| anyhow::anyhow!("dead-letter append failed: {error}"))?;
        Ok(())
    }
}
