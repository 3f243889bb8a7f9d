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
//! - [`read_models`], [`queries`]: queries on PostgreSQL.
//! - [`videos`]: attempt videos and their analysis requests.
//! - [`admin`], [`admin_reads`]: roles, users, pipeline health and the audit log (admins).
//! - [`profile`]: the caller's own account and profile.
//! - [`openapi`]: the OpenAPI 3.1 contract and the Swagger UI.
//! - [`live`]: Server-Sent Events of the caller's new results.
//! - [`reads`]: the caller's progress, analyses and their media.
//! - [`command`]: envelope metadata and appends shared by every command.
//! - [`idempotency`]: `Idempotency-Key` replays (W2).
//! - [`identity`]: register, log in, refresh, log out, the first admin.
//! - [`accounts`]: the API's own state (email index, refresh tokens) in the `api` schema.
//! - [`passwords`]: Argon2id hashes and the keyed email index.
//! - [`rate_limit`]: per-client limits on authentication.
//! - [`sessions`]: the climbing-session resource.
//! - [`attempts`]: commands on a session: attempts, end.
//! - [`uploads`]: videos and photos streamed to the object store, checked from their bytes.
//! - [`domain`], [`user_domain`]: the session's and the user's decisions, pure.
//! - [`writer`]: optimistic concurrency on Kafka through aggregate heads (W3).
//! - [`log_scan`]: reading the log back to settle an append whose writer died.
//! - [`metrics`]: Prometheus metrics and their middleware.
//! - [`walls`]: gyms, walls, wall photos and routes.
//! - [`coaching`]: ghosts, training routines and completed workouts.

pub mod accounts;
pub mod admin;
pub mod admin_reads;
pub mod append;
pub mod attempts;
pub mod auth;
pub mod coaching;
pub mod command;
pub mod config;
pub mod domain;
pub mod error;
pub mod fold;
pub mod heads;
pub mod idempotency;
pub mod identity;
pub mod json;
pub mod live;
pub mod log_scan;
pub mod metrics;
pub mod openapi;
pub mod passwords;
pub mod position;
pub mod profile;
pub mod queries;
pub mod rate_limit;
pub mod read_models;
pub mod reads;
pub mod sessions;
pub mod settle;
pub mod uploads;
pub mod user_domain;
pub mod videos;
pub mod walls;
pub mod writer;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use axum::{Router, extract::DefaultBodyLimit, http::HeaderMap, middleware};
use cruxlog_runtime::{
    admin::{self as admin_server, Readiness, Status},
    blobs::BlobStore,
    telemetry::TraceParent,
};
use rdkafka::producer::{FutureProducer, Producer as _};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::{append::EventLog, auth::TokenKeys, config::Config, error::ApiError, metrics::Metrics};

/// Everything a request handler needs; one `Arc` to clone per request (axum clones the state
/// for every extractor, and the token keys, pools and metrics add up).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    pub config: Arc<Config>,
    pub log: EventLog,
    pub db: PgPool,
    pub keys: TokenKeys,
    pub metrics: Metrics,
    pub blobs: BlobStore,
    /// Aggregate heads, marked and moved in group commits (W3).
    pub heads: heads::Heads,
    /// Open event streams (`GET /v1/events`), capped.
    pub streams: Arc<live::Streams>,
    /// Cancelled when the service stops, so long-lived responses (event streams) end and
    /// the server can drain.
    pub closing: CancellationToken,
}

/// The public API router.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.http.max_body_bytes;
    Router::new()
        .merge(identity::router(&state))
        .merge(sessions::router())
        .merge(attempts::router())
        .merge(reads::router())
        .merge(live::router())
        .merge(openapi::router())
        .merge(profile::router())
        .merge(walls::router())
        .merge(coaching::router())
        .merge(admin::router())
        .merge(videos::router())
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::middleware,
        ))
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

impl AppState {
    /// Creates the clients (Kafka producer, database pool) and applies the API's migrations.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let dev_defaults = config.auth.jwt_secret.expose() == config::DEV_JWT_SECRET
            || config.auth.email_index_key.expose() == config::DEV_EMAIL_INDEX_KEY;
        if dev_defaults && !config.auth.allow_dev_secret {
            anyhow::bail!(
                "CRUXLOG_AUTH__JWT_SECRET or CRUXLOG_AUTH__EMAIL_INDEX_KEY is the development default; set secrets or CRUXLOG_AUTH__ALLOW_DEV_SECRET=true"
            );
        }
        let mut producer_config = config.kafka.producer();
        producer_config
            .set(
                "message.timeout.ms",
                config.http.append_timeout_ms.to_string(),
            )
            .set("linger.ms", config.http.append_linger_ms.to_string());
        let producer: FutureProducer = producer_config
            .create()
            .context("creating the Kafka producer")?;
        // `api` first: the API's own tables and its migration history live there.
        let options: PgConnectOptions = config
            .database
            .url
            .expose()
            .parse::<PgConnectOptions>()
            .context("parsing the database url")?
            .options([("search_path", "api")]);
        let db = PgPoolOptions::new()
            .max_connections(config.database.max_connections)
            .acquire_timeout(Duration::from_secs(2))
            // No ping before each acquire: it doubled the round trips of a command (a dead
            // connection fails its query, answered 5xx, and the pool drops it).
            .test_before_acquire(false)
            .connect_lazy_with(options);
        migrate(&db).await?;
        let log = EventLog::new(
            producer,
            config.kafka.topics(),
            Duration::from_millis(config.http.append_timeout_ms),
        );
        let blobs = BlobStore::open(&config.blobs).context("opening the object store")?;
        let metrics = Metrics::new().context("registering metrics")?;
        Ok(Self(Arc::new(Shared {
            closing: CancellationToken::new(),
            blobs,
            keys: TokenKeys::new(&config.auth),
            heads: heads::Heads::start(
                db.clone(),
                &metrics.head_batch_rows,
                writer::settle_after(&config),
                config.database.head_lanes,
            ),
            metrics,
            streams: Arc::default(),
            log,
            db,
            config: Arc::new(config),
        })))
    }
}

impl Application {
    /// Binds the listeners (port 0 picks a free port) and creates the clients.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let state = AppState::connect(config).await?;
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
        let admin_app = admin_server::router(self.state.metrics.registry.clone(), readiness);
        let api = serve(self.http, app(self.state.clone()), shutdown.clone());
        tokio::spawn(expire_idempotency_keys(
            self.state.clone(),
            shutdown.clone(),
        ));
        let admin = admin_server::serve(self.admin, admin_app, shutdown.clone());
        let result = tokio::try_join!(api, admin);
        shutdown.cancel();
        self.state.log.producer().flush(Duration::from_secs(5)).ok();
        result.map(|_| ()).context("serving HTTP")
    }
}

/// Forgets idempotency keys older than a day, every ten minutes.
async fn expire_idempotency_keys(state: AppState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {
                if let Err(error) = idempotency::expire(&state).await {
                    tracing::warn!(%error, "expiring idempotency keys failed");
                }
            }
        }
    }
}

/// Serves the API with each connection's peer address known (rate limits key on it).
async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // No Nagle on the app's connections: a response must not wait for the ACK of the last.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}

/// Applies the API's migrations (`command-api/migrations`, schema `api`). The schema itself
/// is created by the projectors' bootstrap migration, so at start-up this waits for it a
/// little (about 30 s) rather than failing on an ordering of process starts.
async fn migrate(db: &PgPool) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(100);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match sqlx::migrate!("./migrations").run(db).await {
            Ok(()) => return Ok(()),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(%error, "api migrations not applied yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(error) => return Err(error).context("applying the api migrations"),
        }
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
