//! The projectors' Prometheus metrics (R5). Labels never carry ids.

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub applied: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub batch_seconds: HistogramVec,
    pub batch_failures: IntCounterVec,
    pub next_offset: IntGaugeVec,
    pub lag: IntGaugeVec,
    pub rebuild_progress: GaugeVec,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let applied = IntCounterVec::new(
            Opts::new(
                "cruxlog_projector_events_applied_total",
                "Events applied to read models",
            ),
            &["projection"],
        )?;
        let dead_letters = IntCounterVec::new(
            Opts::new(
                "cruxlog_projector_dead_letters_total",
                "Events sent to the dead-letter topic",
            ),
            &["projection"],
        )?;
        let batch_seconds = HistogramVec::new(
            HistogramOpts::new(
                "cruxlog_projector_batch_seconds",
                "Time to apply and commit one batch",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            ]),
            &["projection"],
        )?;
        let batch_failures = IntCounterVec::new(
            Opts::new(
                "cruxlog_projector_batch_failures_total",
                "Batches rolled back and retried",
            ),
            &["projection"],
        )?;
        let next_offset = IntGaugeVec::new(
            Opts::new(
                "cruxlog_projector_next_offset",
                "Next offset to apply, per partition",
            ),
            &["projection", "topic", "partition"],
        )?;
        let lag = IntGaugeVec::new(
            Opts::new(
                "cruxlog_projector_lag_records",
                "Records between the projection and the head of the log",
            ),
            &["projection", "topic", "partition"],
        )?;
        let rebuild_progress = GaugeVec::new(
            Opts::new(
                "cruxlog_projector_rebuild_progress_ratio",
                "Share of the log a running rebuild has applied",
            ),
            &["projection"],
        )?;
        registry.register(Box::new(applied.clone()))?;
        registry.register(Box::new(dead_letters.clone()))?;
        registry.register(Box::new(batch_seconds.clone()))?;
        registry.register(Box::new(batch_failures.clone()))?;
        registry.register(Box::new(next_offset.clone()))?;
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(rebuild_progress.clone()))?;
        Ok(Self {
            registry,
            applied,
            dead_letters,
            batch_seconds,
            batch_failures,
            next_offset,
            lag,
            rebuild_progress,
        })
    }
}
