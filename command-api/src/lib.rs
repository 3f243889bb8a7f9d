//! `cruxlog-command-api`: the only door into Cruxlog. It authenticates callers, validates
//! commands and appends the resulting events to Kafka, and it answers queries from the
//! PostgreSQL read models.
//!
//! Layout:
//! - [`config`]: typed configuration.
//! - [`auth`]: access-token verification and the [`auth::Caller`] extractor.
//! - [`json`]: the JSON body extractor that names bad fields.
//! - [`error`]: the HTTP error type (RFC 9457 problem details).
//! - [`append`]: appending events to Kafka.
//! - [`position`]: read-your-writes position tokens.
//! - [`read_models`]: queries on PostgreSQL.
//! - [`sessions`]: the climbing-session resource.
//! - [`metrics`]: Prometheus metrics and their middleware.

pub mod append;
pub mod auth;
pub mod config;
pub mod error;
pub mod json;
pub mod metrics;
pub mod position;
pub mod read_models;
pub mod sessions;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{Router, extract::DefaultBodyLimit, http::HeaderMap, middleware};
use cruxlog_runtime::{
    admin::{self, Readiness, Status},
    telemetry::TraceParent,
};
use rdkafka::producer::{FutureProducer, Producer as _};
use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::{append::EventLog, auth::TokenKeys, config::Config, error::ApiError, metrics::Metrics};

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub log: EventLog,
    pub db: PgPool,
    pub keys: TokenKeys,
    pub metrics: Metrics,
}

/// The public API router.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.http.max_body_bytes;
    Router::new()
        .merge(sessions::router())
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The trace context of a request: the caller's `traceparent` continued, or a new trace.
pub fn traceparent_of(headers: &HeaderMap) -> TraceParent {
    headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .and_then(TraceParent::parse)
        .map_or_else(TraceParent::new_root, |parent| parent.child())
}

/// A built service: listeners bound, clients created, not yet serving.
pub struct Application {
    http: TcpListener,
    admin: TcpListener,
    state: AppState,
}

impl Application {
    /// Binds the listeners (port 0 picks a free port) and creates the clients.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if config.auth.jwt_secret.expose() == config::DEV_JWT_SECRET
            && !config.auth.allow_dev_secret
        {
            anyhow::bail!(
                "CRUXLOG_AUTH__JWT_SECRET is the development default; set a secret or CRUXLOG_AUTH__ALLOW_DEV_SECRET=true"
            );
        }
        let mut producer_config = config.kafka.producer();
        producer_config.set(
            "message.timeout.ms",
            config.http.append_timeout_ms.to_string(),
        );
        let producer: FutureProducer = producer_config
            .create()
            .context("creating the Kafka producer")?;
        let db = PgPoolOptions::new()
            .max_connections(config.database.max_connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy(config.database.url.expose())
            .context("parsing the database url")?;
        let log = EventLog::new(
            producer,
            config.kafka.topics(),
            Duration::from_millis(config.http.append_timeout_ms),
        );
        let state = AppState {
            keys: TokenKeys::new(&config.auth),
            metrics: Metrics::new().context("registering metrics")?,
            log,
            db,
            config: Arc::new(config),
        };
        let http = TcpListener::bind(&state.config.http.addr)
            .await
            .context("binding the HTTP address")?;
        let admin = TcpListener::bind(&state.config.admin.addr)
            .await
            .context("binding the admin address")?;
        Ok(Self { http, admin, state })
    }

    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled; either server failing stops both.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let state = self.state.clone();
        let readiness = move || readiness(state.clone());
        let admin_app = admin::router(self.state.metrics.registry.clone(), readiness);
        let api = admin::serve(self.http, app(self.state.clone()), shutdown.clone());
        let admin = admin::serve(self.admin, admin_app, shutdown.clone());
        let result = tokio::try_join!(api, admin);
        shutdown.cancel();
        self.state.log.producer().flush(Duration::from_secs(5)).ok();
        result.map(|_| ()).context("serving HTTP")
    }
}

async fn readiness(state: AppState) -> Readiness {
    let mut checks = BTreeMap::new();
    let db_ok = sqlx::query("select 1").execute(&state.db).await.is_ok();
    checks.insert(
        "postgres".to_owned(),
        if db_ok { "ok" } else { "unreachable" }.to_owned(),
    );
    let producer = state.log.producer().clone();
    let kafka_ok = tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(None, Duration::from_secs(1))
            .is_ok()
    })
    .await
    .unwrap_or(false);
    checks.insert(
        "kafka".to_owned(),
        if kafka_ok { "ok" } else { "unreachable" }.to_owned(),
    );
    let status = match (kafka_ok, db_ok) {
        (true, true) => Status::Ready,
        // Commands still work without the read models, queries without Kafka.
        (true, false) | (false, true) => Status::Degraded,
        (false, false) => Status::Unavailable,
    };
    Readiness { status, checks }
}
