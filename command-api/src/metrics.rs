//! The command API's Prometheus metrics. Labels never carry ids.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::AppState;

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub appended: IntCounterVec,
    pub append_failures: IntCounterVec,
    pub logins: IntCounterVec,
    pub idempotent_replays: IntCounterVec,
    /// Rows per aggregate-head statement (group commit), by kind (read, write).
    pub head_batch_rows: HistogramVec,
    /// Seconds a command spends in each step of the write path: `reserve` (reading and
    /// marking its head), `append` (until Kafka acknowledged).
    pub write_step_seconds: HistogramVec,
    /// Its two series, resolved once (they are observed on every command).
    pub write_steps: WriteSteps,
}

#[derive(Clone)]
pub struct WriteSteps {
    pub reserve: Histogram,
    pub append: Histogram,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "cruxlog_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["method", "route", "status"],
        )?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("cruxlog_http_request_seconds", "HTTP request latency").buckets(
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )?;
        let appended = IntCounterVec::new(
            Opts::new(
                "cruxlog_events_appended_total",
                "Events acknowledged by Kafka",
            ),
            &["event_type"],
        )?;
        let append_failures = IntCounterVec::new(
            Opts::new(
                "cruxlog_append_failures_total",
                "Appends Kafka did not acknowledge in time",
            ),
            &["event_type"],
        )?;
        let logins = IntCounterVec::new(
            Opts::new(
                "cruxlog_auth_attempts_total",
                "Log-ins and refreshes by outcome (ok, refused, reuse)",
            ),
            &["outcome"],
        )?;
        let idempotent_replays = IntCounterVec::new(
            Opts::new(
                "cruxlog_idempotent_replays_total",
                "Requests answered from a stored Idempotency-Key response, by outcome",
            ),
            &["outcome"],
        )?;
        let head_batch_rows = HistogramVec::new(
            HistogramOpts::new(
                "cruxlog_api_head_batch_rows",
                "Rows per aggregate-head statement (commands sharing one commit)",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            &["kind"],
        )?;
        let write_step_seconds = HistogramVec::new(
            HistogramOpts::new(
                "cruxlog_api_write_step_seconds",
                "Time a command spends in each step of the write path (reserve, append)",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5, 2.0,
            ]),
            &["step"],
        )?;
        registry.register(Box::new(write_step_seconds.clone()))?;
        registry.register(Box::new(head_batch_rows.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(idempotent_replays.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        registry.register(Box::new(appended.clone()))?;
        registry.register(Box::new(append_failures.clone()))?;
        Ok(Self {
            registry,
            requests,
            request_seconds,
            appended,
            append_failures,
            logins,
            idempotent_replays,
            head_batch_rows,
            write_steps: WriteSteps {
                reserve: write_step_seconds.with_label_values(&["reserve"]),
                append: write_step_seconds.with_label_values(&["append"]),
            },
            write_step_seconds,
        })
    }
}

/// Middleware counting requests and timing them by matched route.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .requests
        .with_label_values(&[&method, &route, response.status().as_str()])
        .inc();
    metrics
        .request_seconds
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    response
}
