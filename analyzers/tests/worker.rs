//! The worker protocol against the real Python worker: answers, timeouts (the worker is
//! killed), crashes, permanent input errors and a missing interpreter (A3, A4).

use std::time::{Duration, Instant};

use cruxlog_analyzers::worker::{Worker, WorkerCommand, WorkerError};
use serde_json::json;

fn command() -> WorkerCommand {
    let python = std::env::var("CRUXLOG_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.local/venv/bin/python").to_owned()
    });
    let mut command = WorkerCommand::python(python);
    command
        .env
        .push(("CRUXLOG_WORKER_DEBUG".into(), "1".into()));
    command
}

const CALL: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_worker_greets_then_answers_ping_and_plans_a_warmup() {
    let mut worker = Worker::spawn(&command()).await.expect("worker starts");
    assert_eq!(worker.hello.protocol, 1);
    assert!(worker.hello.methods.iter().any(|m| m == "warmup.plan"));
    assert_eq!(
        worker.call("ping", json!({}), CALL).await.expect("pong"),
        json!({"pong": true})
    );
    let plan = worker
        .call("warmup.plan", json!({"session_id": "s", "discipline": "sport", "indoor": false, "planned_minutes": 60}), CALL)
        .await
        .expect("plan");
    assert_eq!(
        plan["total_minutes"], 10,
        "60 planned minutes -> the 10-minute minimum"
    );
}

#[tokio::test]
async fn a_hung_worker_is_killed_at_the_timeout() {
    let mut worker = Worker::spawn(&command()).await.expect("worker starts");
    let started = Instant::now();
    let error = worker
        .call(
            "debug.sleep",
            json!({"seconds": 30}),
            Duration::from_millis(500),
        )
        .await
        .expect_err("hangs");
    assert!(matches!(error, WorkerError::Timeout(_)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !worker.is_alive(),
        "a timed-out worker is killed, not left running"
    );
}

#[tokio::test]
async fn a_crashing_worker_is_reported_and_not_retried_forever() {
    let mut worker = Worker::spawn(&command()).await.expect("worker starts");
    let error = worker
        .call("debug.crash", json!({}), CALL)
        .await
        .expect_err("crashes");
    assert!(matches!(error, WorkerError::Crashed(_)), "{error}");
    assert!(
        !error.is_permanent(),
        "a crash may be the worker's fault: retry a bounded number of times"
    );
}

#[tokio::test]
async fn invalid_input_is_permanent_and_the_worker_keeps_serving() {
    let mut worker = Worker::spawn(&command()).await.expect("worker starts");
    let error = worker
        .call(
            "warmup.plan",
            json!({"session_id": "s", "discipline": "ice", "indoor": true}),
            CALL,
        )
        .await
        .expect_err("invalid");
    assert!(error.is_permanent(), "{error}");
    assert!(error.to_string().contains("discipline"), "{error}");
    let error = worker
        .call("debug.raise", json!({"message": "boom"}), CALL)
        .await
        .expect_err("raises");
    assert!(
        matches!(error, WorkerError::Internal { .. }) && !error.is_permanent(),
        "{error}"
    );
    assert_eq!(
        worker
            .call("ping", json!({}), CALL)
            .await
            .expect("still alive"),
        json!({"pong": true})
    );
}

#[tokio::test]
async fn a_missing_interpreter_means_unavailable_not_a_panic() {
    let command = WorkerCommand::python("/nonexistent/python");
    let error = Worker::spawn(&command).await.err().expect("cannot start");
    assert!(matches!(error, WorkerError::Unavailable(_)), "{error}");
}
