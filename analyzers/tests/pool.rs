//! The worker pool against real Python workers (their `debug.*` hooks): jobs run side by
//! side, a hung job is killed at its timeout while the other worker keeps serving, and a
//! worker that dies while idle is found by the health check and replaced (A3, A4).

use std::time::{Duration, Instant};

use cruxlog_analyzers::{
    metrics::Metrics,
    pool::{Pool, PoolSettings},
    worker::{WorkerCommand, WorkerError},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn pool(size: usize) -> (Pool, Metrics) {
    let python = std::env::var("CRUXLOG_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.local/venv/bin/python").to_owned()
    });
    let mut command = WorkerCommand::python(python);
    command
        .env
        .push(("CRUXLOG_WORKER_DEBUG".into(), "1".into()));
    let metrics = Metrics::new().expect("metrics");
    let settings = PoolSettings {
        size,
        ping_interval: Duration::from_millis(200),
        ping_timeout: Duration::from_secs(2),
    };
    (Pool::new(command, settings, metrics.pool.clone()), metrics)
}

async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_jobs_run_side_by_side_on_two_workers() {
    let (pool, _) = pool(2);
    let stop = CancellationToken::new();
    tokio::spawn(pool.clone().maintain(stop.clone()));
    until("the pool fills", || pool.alive() == 2).await;
    let started = Instant::now();
    let sleep = || {
        pool.call(
            "debug.sleep",
            json!({"seconds": 1.5}),
            Duration::from_secs(10),
        )
    };
    let (a, b) = tokio::join!(sleep(), sleep());
    assert!(a.is_ok() && b.is_ok());
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(2_500),
        "{elapsed:?}: not side by side"
    );
    stop.cancel();
}

#[tokio::test]
async fn a_hung_job_is_killed_at_its_timeout_while_the_other_worker_keeps_serving() {
    let (pool, metrics) = pool(2);
    let stop = CancellationToken::new();
    tokio::spawn(pool.clone().maintain(stop.clone()));
    until("the pool fills", || pool.alive() == 2).await;
    let hung = pool.call(
        "debug.sleep",
        json!({"seconds": 60}),
        Duration::from_secs(2),
    );
    let others = async {
        let mut answered = 0;
        for _ in 0..10 {
            let pong = pool.call("ping", json!({}), Duration::from_secs(1)).await;
            answered += usize::from(pong.is_ok());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        answered
    };
    let (hung, answered) = tokio::join!(hung, others);
    assert!(matches!(hung, Err(WorkerError::Timeout(_))), "{hung:?}");
    assert_eq!(answered, 10, "the other worker answered throughout");
    until("the killed worker is replaced", || pool.alive() == 2).await;
    assert_eq!(metrics.pool.restarts.get(), 1);
    stop.cancel();
}

#[tokio::test]
async fn a_worker_that_dies_while_idle_is_found_and_replaced() {
    let (pool, metrics) = pool(2);
    let stop = CancellationToken::new();
    tokio::spawn(pool.clone().maintain(stop.clone()));
    until("the pool fills", || pool.idle_pids().len() == 2).await;
    let victim = pool.idle_pids()[0];
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status();
    assert!(killed.is_ok_and(|s| s.success()));
    until("a fresh worker takes its place", || {
        let pids = pool.idle_pids();
        pids.len() == 2 && !pids.contains(&victim)
    })
    .await;
    assert_eq!(metrics.pool.restarts.get(), 1);
    assert_eq!(metrics.pool.workers_alive.get(), 2);
    stop.cancel();
}
