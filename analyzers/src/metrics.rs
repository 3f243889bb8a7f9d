//! The analyzers' Prometheus metrics (`/metrics` on the admin port). Labels name analyzers
//! and outcomes, never ids.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::pool::PoolMetrics;

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Result events by analyzer and outcome (`completed`, `failed`); the warm-up's name.
    pub results: IntCounterVec,
    /// Jobs by analyzer and outcome: `completed`, `failed`, `duplicate` (skipped, A1),
    /// `dead_lettered`.
    pub jobs: IntCounterVec,
    /// Wall time of one job, fetch and upload included, retries included.
    pub job_seconds: HistogramVec,
    pub worker_failures: IntCounterVec,
    pub pool: PoolMetrics,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let results = IntCounterVec::new(
            Opts::new(
                "cruxlog_analyzer_results_total",
                "Result events by analyzer and outcome",
            ),
            &["analyzer", "outcome"],
        )?;
        let jobs = IntCounterVec::new(
            Opts::new(
                "cruxlog_analyzer_jobs_total",
                "Analysis jobs by analyzer and outcome",
            ),
            &["analyzer", "outcome"],
        )?;
        let job_seconds = HistogramVec::new(
            HistogramOpts::new(
                "cruxlog_analyzer_job_seconds",
                "Wall time of one analysis job",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            ]),
            &["analyzer"],
        )?;
        let worker_failures = IntCounterVec::new(
            Opts::new(
                "cruxlog_analyzer_worker_failures_total",
                "Worker calls that failed, by kind",
            ),
            &["analyzer", "kind"],
        )?;
        let pool = PoolMetrics {
            workers_alive: IntGauge::new(
                "cruxlog_analyzer_workers_alive",
                "Python workers running",
            )?,
            restarts: IntCounter::new(
                "cruxlog_analyzer_worker_restarts_total",
                "Workers killed or found dead and replaced",
            )?,
            spawn_failures: IntCounter::new(
                "cruxlog_analyzer_worker_spawn_failures_total",
                "Worker starts that failed",
            )?,
        };
        registry.register(Box::new(results.clone()))?;
        registry.register(Box::new(jobs.clone()))?;
        registry.register(Box::new(job_seconds.clone()))?;
        registry.register(Box::new(worker_failures.clone()))?;
        registry.register(Box::new(pool.workers_alive.clone()))?;
        registry.register(Box::new(pool.restarts.clone()))?;
        registry.register(Box::new(pool.spawn_failures.clone()))?;
        Ok(Self {
            registry,
            results,
            jobs,
            job_seconds,
            worker_failures,
            pool,
        })
    }

    pub fn job_timer(&self, analyzer: &str) -> Histogram {
        self.job_seconds.with_label_values(&[analyzer])
    }

    pub fn job(&self, analyzer: &str, outcome: &str) {
        self.jobs.with_label_values(&[analyzer, outcome]).inc();
    }

    pub fn worker_failure(&self, analyzer: &str, kind: &str) {
        self.worker_failures
            .with_label_values(&[analyzer, kind])
            .inc();
    }
}
