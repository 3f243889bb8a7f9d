//! The command API's configuration (`CRUXLOG_<SECTION>__<KEY>`, see `cruxlog_runtime::config`).

use cruxlog_runtime::blobs::BlobConfig;
use cruxlog_runtime::config::Secret;
use cruxlog_runtime::kafka::KafkaConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub http: HttpConfig,
    pub admin: AdminConfig,
    pub kafka: KafkaConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    /// Where uploaded videos and photos go (A5).
    pub blobs: BlobConfig,
    /// Limits on uploaded videos and photos.
    pub uploads: crate::uploads::UploadLimits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            admin: AdminConfig {
                addr: "127.0.0.1:9180".into(),
            },
            kafka: KafkaConfig::default(),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            blobs: BlobConfig::default(),
            uploads: crate::uploads::UploadLimits::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    pub addr: String,
    /// Bound on one append to Kafka; past it the API answers 503 with `Retry-After` (W5).
    pub append_timeout_ms: u64,
    /// How long the producer lets appends gather before it sends them (librdkafka
    /// `linger.ms`): a few milliseconds of latency for fewer, fuller produce requests, which
    /// is what the broker's CPU is spent on under load (docs/benchmarks.md).
    pub append_linger_ms: u64,
    /// Bound on a read-your-writes wait (R3); past it the answer comes marked stale.
    pub consistency_wait_ms: u64,
    pub max_body_bytes: usize,
    /// Event streams (`GET /v1/events`) open at once on this instance; each polls the read
    /// models twice a second. Past it: 429 with `Retry-After`.
    pub max_event_streams: usize,
    /// Event streams one user may hold open at once (a phone needs one).
    pub max_event_streams_per_user: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            append_timeout_ms: 2_000,
            append_linger_ms: 2,
            consistency_wait_ms: 2_000,
            max_body_bytes: 64 * 1024,
            max_event_streams: 2_000,
            max_event_streams_per_user: 4,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    /// `/metrics`, `/healthz`, `/readyz`.
    pub addr: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:9180".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// The API's role only reads the read models (DESIGN.md, least privilege).
    pub url: Secret,
    pub max_connections: u32,
    /// Aggregate-head statements of each kind (reads; marks and moves) that may run at once
    /// (ADR 0012): fewer make fuller batches, so fewer statements and commits per command.
    pub head_lanes: usize,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("postgres://postgres@127.0.0.1:15432/postgres"),
            max_connections: 16,
            head_lanes: 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// HMAC key for access tokens. The default is for local development only; the API
    /// refuses to start with it unless `allow_dev_secret` is set.
    pub jwt_secret: Secret,
    pub allow_dev_secret: bool,
    pub audience: String,
    pub issuer: String,
    /// HMAC key of the email index (`api.accounts`): lookups by email without storing it.
    /// Same development-default rule as `jwt_secret`.
    pub email_index_key: Secret,
    /// Lifetime of access tokens; short, since they cannot be revoked.
    pub access_ttl_seconds: i64,
    /// Lifetime of refresh tokens; each use rotates them (reuse revokes the family).
    pub refresh_ttl_seconds: i64,
    /// Authentication attempts per client address: one more every `rate_period_ms`, up to
    /// `rate_burst` at once. Answered 429 past it.
    pub rate_period_ms: u64,
    pub rate_burst: u32,
}

pub const DEV_EMAIL_INDEX_KEY: &str = "cruxlog-local-email-index-key-do-not-deploy";

pub const DEV_JWT_SECRET: &str = "cruxlog-local-development-secret-do-not-deploy";

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: Secret::new(DEV_JWT_SECRET),
            allow_dev_secret: false,
            audience: "cruxlog-app".into(),
            issuer: "cruxlog".into(),
            email_index_key: Secret::new(DEV_EMAIL_INDEX_KEY),
            access_ttl_seconds: 900,
            refresh_ttl_seconds: 30 * 24 * 3600,
            rate_period_ms: 2_000,
            rate_burst: 10,
        }
    }
}
