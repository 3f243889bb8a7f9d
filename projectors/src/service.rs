//! The projectors service: one supervised task per projection. Each task decides which build
//! to run: the live one, or, after a deploy that bumped the projection's version, a new build
//! that catches up beside the live one and is swapped in when at the head (blue/green, R2).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::Context as _;
use cruxlog_runtime::{
    admin::{self, Readiness, Status},
    kafka::ensure_topics,
};
use cruxlog_schemas::topics::TopicSpec;
use rdkafka::producer::FutureProducer;
use sqlx::{Connection as _, PgConnection, PgPool, postgres::PgPoolOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    builds::{self, Build},
    config::Config,
    dead_letters::DeadLetters,
    metrics::Metrics,
    projection::Projection,
    projections,
    runner::{Runner, Stop},
    store,
};

/// Shared clients of the service.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub producer: FutureProducer,
    pub metrics: Metrics,
}

impl Context {
    /// Connects, migrates the bookkeeping schema and ensures the topics exist.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let db = PgPoolOptions::new()
            .max_connections(config.database.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            // The pool already pings a connection when it comes back; a second ping on the
            // way out would cost every batch a round trip. A connection that dies while idle
            // fails its next batch, which is retried.
            .test_before_acquire(false)
            .connect(config.database.url.expose())
            .await
            .context("connecting to PostgreSQL")?;
        store::MIGRATOR
            .run(&db)
            .await
            .context("migrating the projector schema")?;
        config
            .kafka
            .ensure_event_topics()
            .await
            .context("creating event topics")?;
        let specs: Vec<TopicSpec> = projections::all()
            .iter()
            .map(|p| TopicSpec {
                name: dead_letter_topic(&config, p.as_ref()),
                partitions: 1,
                config: vec![("retention.ms", "-1"), ("cleanup.policy", "delete")],
            })
            .collect();
        ensure_topics(
            &config.kafka.brokers,
            &specs,
            config.kafka.replication_factor,
        )
        .await
        .context("creating dead-letter topics")?;
        let producer: FutureProducer = config
            .kafka
            .producer()
            .create()
            .context("creating the producer")?;
        Ok(Self {
            config: Arc::new(config),
            db,
            producer,
            metrics: Metrics::new().context("registering metrics")?,
        })
    }

    pub fn dead_letters(&self, projection: &dyn Projection) -> DeadLetters {
        DeadLetters::new(
            self.producer.clone(),
            dead_letter_topic(&self.config, projection),
            projection.name(),
        )
    }

    pub async fn runner(
        &self,
        projection: Arc<dyn Projection>,
        build: Build,
    ) -> anyhow::Result<Runner> {
        Runner::new(self, projection, build).await
    }
}

/// Gives every projection without one a live (empty) build, so the `read` views exist
/// before the first event; the service does the same on start.
pub async fn ensure_live(db: &PgPool) -> anyhow::Result<()> {
    store::MIGRATOR
        .run(db)
        .await
        .context("migrating the projector schema")?;
    for projection in projections::all() {
        if builds::live(db, projection.name()).await?.is_none() {
            let build = builds::create(db, projection.as_ref()).await?;
            builds::swap(db, projection.as_ref(), &build).await?;
        }
    }
    Ok(())
}

pub fn dead_letter_topic(config: &Config, projection: &dyn Projection) -> String {
    config
        .kafka
        .topics()
        .dead_letters(&format!("projector-{}", projection.name()))
}

pub struct Projectors {
    context: Context,
    admin: Option<TcpListener>,
}

impl Projectors {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let admin = TcpListener::bind(&config.admin.addr)
            .await
            .context("binding the admin address")?;
        Ok(Self {
            context: Context::connect(config).await?,
            admin: Some(admin),
        })
    }

    pub fn admin_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match &self.admin {
            Some(listener) => listener.local_addr(),
            None => Err(std::io::Error::other("admin server already started")),
        }
    }

    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Runs every projection until `shutdown`; the batches in flight finish first.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let db = self.context.db.clone();
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
        let listener = self.admin.take().context("run called twice")?;
        let admin_app = admin::router(self.context.metrics.registry.clone(), readiness);
        let admin = tokio::spawn(admin::serve(listener, admin_app, shutdown.clone()));
        let mut tasks = tokio::task::JoinSet::new();
        for projection in projections::all() {
            tasks.spawn(supervise(
                self.context.clone(),
                projection,
                shutdown.clone(),
            ));
        }
        let mut result = Ok(());
        while let Some(joined) = tasks.join_next().await {
            if let Err(error) = joined.context("projection task panicked").and_then(|r| r) {
                tracing::error!(error = %format!("{error:#}"), "projection stopped; shutting down");
                shutdown.cancel();
                result = Err(error);
            }
        }
        admin.await.ok();
        result
    }
}

/// Keeps one projection running on the right build until shutdown.
async fn supervise(
    context: Context,
    projection: Arc<dyn Projection>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let name = projection.name();
    while !shutdown.is_cancelled() {
        let live = builds::live(&context.db, name).await?;
        let (build, until_caught_up) = match live {
            None => {
                // A new projection has nothing to serve yet: it goes live at once.
                let build = builds::create(&context.db, projection.as_ref()).await?;
                builds::swap(&context.db, projection.as_ref(), &build).await?;
                tracing::info!(
                    projection = name,
                    build = build.build_id,
                    "new projection is live"
                );
                continue;
            }
            Some(live) if live.version == projection.version() => (live, false),
            Some(live) if live.version < projection.version() => {
                let build = match builds::building(&context.db, name, projection.version()).await? {
                    Some(build) => build,
                    None => builds::create(&context.db, projection.as_ref()).await?,
                };
                tracing::info!(
                    projection = name,
                    from = live.version,
                    to = projection.version(),
                    build = build.build_id,
                    "version changed: building beside the live tables"
                );
                (build, true)
            }
            Some(live) => {
                tracing::warn!(
                    projection = name,
                    live = live.version,
                    ours = projection.version(),
                    "a newer version is live; standing by"
                );
                if sleep_or_shutdown(Duration::from_secs(10), &shutdown).await {
                    continue;
                }
                return Ok(());
            }
        };
        let Some(_lock) = lock(&context, &build, &shutdown).await? else {
            return Ok(());
        };
        let mut runner = context.runner(projection.clone(), build.clone()).await?;
        match runner
            .run(&context.config.kafka, &shutdown, until_caught_up, |_, _| {})
            .await?
        {
            Stop::CaughtUp => {
                if !builds::swap(&context.db, projection.as_ref(), &build).await? {
                    // The live build moved on meanwhile: catch up again, then retry.
                    continue;
                }
                tracing::info!(
                    projection = name,
                    build = build.build_id,
                    "caught up; swapped in"
                );
            }
            Stop::Retired => tracing::info!(
                projection = name,
                build = build.build_id,
                "build retired; switching"
            ),
            Stop::Shutdown => return Ok(()),
        }
    }
    Ok(())
}

/// Holds the build's advisory lock on a dedicated connection; `None` on shutdown.
async fn lock(
    context: &Context,
    build: &Build,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<PgConnection>> {
    let mut connection = PgConnection::connect(context.config.database.url.expose())
        .await
        .context("connecting for the build lock")?;
    loop {
        if store::try_lock(&mut connection, build.build_id).await? {
            return Ok(Some(connection));
        }
        tracing::info!(
            build = build.build_id,
            "another instance runs this build; standing by"
        );
        if !sleep_or_shutdown(Duration::from_secs(1), shutdown).await {
            return Ok(None);
        }
    }
}

async fn sleep_or_shutdown(pause: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(pause) => true,
    }
}
