//! The admin server every service runs on its own port: Prometheus `/metrics`, `/healthz`
//! (the process is alive) and `/readyz` (its dependencies answer).

use std::{collections::BTreeMap, future::Future, pin::Pin, sync::Arc};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus::{Encoder as _, Registry, TextEncoder};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Overall readiness. `Degraded` still answers 200: the service works, with less.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ready,
    Degraded,
    Unavailable,
}

#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub status: Status,
    /// One line per dependency, e.g. `"kafka": "ok"`.
    pub checks: BTreeMap<String, String>,
}

type CheckFn = dyn Fn() -> Pin<Box<dyn Future<Output = Readiness> + Send>> + Send + Sync;

#[derive(Clone)]
struct AdminState {
    registry: Registry,
    readiness: Arc<CheckFn>,
}

/// The admin router, given the service's metrics registry and readiness check.
pub fn router<F, Fut>(registry: Registry, readiness: F) -> Router
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Readiness> + Send + 'static,
{
    let readiness: Arc<CheckFn> = Arc::new(move || Box::pin(readiness()));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(AdminState {
            registry,
            readiness,
        })
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let mut body = Vec::new();
    let families = state.registry.gather();
    match TextEncoder::new().encode(&families, &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [("content-type", "text/plain; version=0.0.4")],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "metrics encoding failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    let readiness = (state.readiness)().await;
    let code = match readiness.status {
        Status::Ready | Status::Degraded => StatusCode::OK,
        Status::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(readiness))
}

/// Serves a router until the token is cancelled, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
