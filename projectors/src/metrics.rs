//! The projectors' Prometheus metrics. Labels never carry ids.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub applied: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub batch_seconds: Histogram,
    pub batch_failures: IntCounterVec,
    pub next_offset: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let applied = IntCounterVec::new(
            Opts::new(
                "cruxlog_projector_events_applied_total",
                "Events applied to read models",
            ),
            &["projection", "event_type"],
        )?;
        let dead_letters = IntCounterVec::new(
            Opts::new(
                "cruxlog_projector_dead_letters_total",
                "Events sent to the dead-letter topic",
            ),
            &["projection"],
        )?;
        let batch_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "cruxlog_projector_batch_seconds",
                "Time to apply and commit one batch",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            ]),
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
        registry.register(Box::new(applied.clone()))?;
        registry.register(Box::new(dead_letters.clone()))?;
        registry.register(Box::new(batch_seconds.clone()))?;
        registry.register(Box::new(batch_failures.clone()))?;
        registry.register(Box::new(next_offset.clone()))?;
        Ok(Self {
            registry,
            applied,
            dead_letters,
            batch_seconds,
            batch_failures,
            next_offset,
        })
    }
}
