//! The analyzer service: one worker pool shared by the warm-up and movement analyzers, the
//! admin server (`/metrics`, `/healthz`, `/readyz`: `degraded` while no worker is alive), and
//! the pool's upkeep, all stopped by one token; a part that fails stops the others.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use cruxlog_runtime::{
    admin::{self, Readiness, Status},
    blobs::BlobStore,
    kafka::ensure_topics,
};
use cruxlog_schemas::{events::aggregate, topics::TopicSpec};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    metrics::Metrics,
    movement::{self, Movement, job::JobContext, job::JobSettings, partition::Shared},
    pool::{Pool, PoolSettings},
    runner::WarmupRunner,
    worker::WorkerCommand,
};

pub struct Analyzer {
    admin: Option<TcpListener>,
    metrics: Metrics,
    pool: Pool,
    warmup: WarmupRunner,
    movement: Option<(Movement, BlobStore)>,
}

impl Analyzer {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let kafka = &config.kafka;
        kafka
            .ensure_event_topics()
            .await
            .context("creating event topics")?;
        let metrics = Metrics::new().context("registering metrics")?;
        let pool = Pool::new(
            worker_command(&config),
            PoolSettings {
                size: config.worker.pool_size(),
                ping_interval: Duration::from_millis(config.worker.ping_interval_ms),
                ping_timeout: Duration::from_secs(5),
            },
            metrics.pool.clone(),
        );
        let warmup = WarmupRunner::build(
            kafka,
            &config.analyzer.instance_id,
            config.worker.clone(),
            pool.clone(),
            metrics.clone(),
        )
        .await?;
        let movement = match config.movement.enabled {
            true => {
                let blobs = BlobStore::open(&config.blobs).context("opening the blob store")?;
                let movement = build_movement(&config, &pool, &metrics, &blobs).await?;
                Some((movement, blobs))
            }
            false => None,
        };
        let admin = TcpListener::bind(&config.admin.addr)
            .await
            .context("binding the admin address")?;
        Ok(Self {
            admin: Some(admin),
            metrics,
            pool,
            warmup,
            movement,
        })
    }

    pub fn admin_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match &self.admin {
            Some(listener) => listener.local_addr(),
            None => Err(std::io::Error::other("admin server already started")),
        }
    }

    /// The worker pool, for operators and failure-injection tests (busy workers' pids).
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stop = shutdown.child_token();
        let listener = self.admin.take().context("run called twice")?;
        let pool = self.pool.clone();
        let readiness = move || {
            let (alive, size, error) = (pool.alive(), pool.size(), pool.last_spawn_error());
            async move {
                let (status, line) = match (alive, error) {
                    (0, Some(error)) => (
                        Status::Degraded,
                        format!("no worker alive ({error}); inputs wait"),
                    ),
                    (0, None) => (Status::Degraded, "no worker alive; inputs wait".to_owned()),
                    (alive, _) => (Status::Ready, format!("{alive}/{size} alive")),
                };
                Readiness {
                    status,
                    checks: BTreeMap::from([("workers".to_owned(), line)]),
                }
            }
        };
        let app = admin::router(self.metrics.registry.clone(), readiness);
        let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
        let admin_stop = stop.clone();
        tasks.spawn(async move { Ok(admin::serve(listener, app, admin_stop).await?) });
        let maintain = self.pool.clone().maintain(stop.clone());
        tasks.spawn(async move {
            maintain.await;
            Ok(())
        });
        tasks.spawn(self.warmup.run(stop.clone()));
        if let Some((movement, blobs)) = self.movement {
            tasks.spawn(movement.run(stop.clone()));
            tasks.spawn(sweep_staging(blobs, stop.clone()));
        }
        let mut outcome = Ok(());
        while let Some(joined) = tasks.join_next().await {
            if let Err(error) = joined.map_err(anyhow::Error::from).and_then(|r| r) {
                tracing::error!(
                    error = format!("{error:#}"),
                    "analyzer part failed; stopping"
                );
                stop.cancel();
                outcome = Err(error);
            } else if !stop.is_cancelled() {
                // A part ended without being asked to: stop the rest too.
                stop.cancel();
            }
        }
        outcome
    }
}

fn worker_command(config: &Config) -> WorkerCommand {
    let mut command = WorkerCommand::python(&config.worker.python);
    command.args = config
        .worker
        .args
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    command.start_timeout = Duration::from_millis(config.worker.start_timeout_ms);
    if config.worker.debug {
        command
            .env
            .push(("CRUXLOG_WORKER_DEBUG".into(), "1".into()));
    }
    command
}

async fn build_movement(
    config: &Config,
    pool: &Pool,
    metrics: &Metrics,
    blobs: &BlobStore,
) -> anyhow::Result<Movement> {
    let topics = config.kafka.topics();
    let version = config.movement.version;
    let dead_letter_topic = topics.dead_letters(&format!("analyzer-{}", movement::NAME));
    let spec = TopicSpec {
        name: dead_letter_topic.clone(),
        partitions: 1,
        config: vec![
            ("retention.ms", "-1"),
            ("retention.bytes", "-1"),
            ("cleanup.policy", "delete"),
        ],
    };
    ensure_topics(
        &config.kafka.brokers,
        &[spec],
        config.kafka.replication_factor,
    )
    .await
    .context("creating the dead-letter topic")?;
    let scratch_dir = match config.movement.scratch_dir.as_str() {
        "" => std::env::temp_dir(),
        dir => PathBuf::from(dir),
    };
    let job = JobContext {
        pool: pool.clone(),
        blobs: blobs.clone(),
        metrics: metrics.clone(),
        settings: JobSettings {
            version,
            max_attempts: config.worker.max_attempts,
            retry_base: Duration::from_millis(config.worker.retry_base_ms),
            retry_max: Duration::from_millis(config.worker.retry_max_ms),
            timeout_base: Duration::from_millis(config.movement.timeout_ms),
            timeout_per_mib: Duration::from_millis(config.movement.timeout_per_mib_ms),
            scratch_dir,
        },
    };
    Movement::build(Shared {
        kafka: config.kafka.clone(),
        topic: topics.for_aggregate(aggregate::ANALYSIS),
        dead_letter_topic,
        group: format!(
            "{}cruxlog-analyzer-{}-v{version}",
            config.kafka.topic_prefix,
            movement::NAME
        ),
        instance_id: config.analyzer.instance_id.clone(),
        job: Arc::new(job),
    })
    .await
}

/// Removes staging objects that killed uploads left (older than an hour, so never a running
/// upload's), every ten minutes; the API may sweep the same store, which is harmless.
async fn sweep_staging(blobs: BlobStore, stop: CancellationToken) -> anyhow::Result<()> {
    loop {
        match blobs.sweep_staging(Duration::from_secs(3_600)).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "stale staging objects removed"),
            Err(error) => tracing::warn!(%error, "staging sweep failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(600)) => {}
        }
    }
}
