//! Degraded mode (A3): with a Python that cannot start workers, the analyzer keeps its Kafka
//! position, requests wait with back-off, `/readyz` says degraded; once workers can start
//! again everything completes, once.

mod support;

use std::{os::unix::fs::PermissionsExt as _, time::Duration};

use serde_json::json;
use support::{Harness, results_for};

#[tokio::test]
async fn without_workers_requests_wait_and_health_is_degraded_then_everything_completes() {
    let harness = Harness::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let fixed = dir.path().join("fixed");
    // A Python that is broken (exit 2 before hello, like a failed import) until `fixed` exists.
    let wrapper = dir.path().join("python");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ -f '{}' ] && exec '{}' \"$@\"\necho 'ImportError: broken install' >&2\nexit 2\n",
            fixed.display(),
            support::python()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut config = harness.config.clone();
    config.worker.python = wrapper.display().to_string();
    let requests = [
        harness.script(json!({"sleep": 0.1})).await,
        harness.script(json!({"sleep": 0.1})).await,
    ];
    for request in &requests {
        harness.append(request).await;
    }
    let running = harness.start(config).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let readiness = running.readiness().await;
    assert_eq!(readiness["status"], "degraded", "{readiness}");
    let workers = readiness["checks"]["workers"].as_str().unwrap_or_default();
    assert!(workers.contains("no worker alive"), "{workers}");
    let events = harness.read_all(&harness.analysis_topic()).await;
    assert!(
        requests
            .iter()
            .all(|r| results_for(&events, r.analysis_id).is_empty()),
        "nothing is given up while workers are missing"
    );
    let metrics = running.metrics().await;
    assert!(
        metrics.contains("cruxlog_analyzer_workers_alive 0"),
        "{metrics}"
    );
    assert!(!metrics.contains("cruxlog_analyzer_worker_spawn_failures_total 0"));

    std::fs::write(&fixed, b"").expect("fix python");
    let events = harness
        .wait_for(Duration::from_secs(60), |events| {
            requests
                .iter()
                .all(|r| !results_for(events, r.analysis_id).is_empty())
        })
        .await;
    for request in &requests {
        assert!(matches!(
            results_for(&events, request.analysis_id)[..],
            [cruxlog_schemas::DomainEvent::AnalysisCompleted(_)]
        ));
    }
    let readiness = running.readiness().await;
    assert_eq!(readiness["status"], "ready", "{readiness}");
    running.stop().await;
}
