//! The movement analyzer against the real broker and real Python worker processes (the
//! package's protocol loop with a scripted `movement.analyze`, see
//! `fixtures/scripted_worker.py`): results with artifacts in the store (A5), one result per
//! analysis also when a request comes twice and across a restart (A1), a worker SIGKILLed
//! mid-video (A4), hangs, invalid and undecodable inputs (A4), a stop at any moment of start-up.

mod support;

use std::time::Duration;

use cruxlog_schemas::{
    DomainEvent,
    events::{AnalysisKind, FindingKind, sealed::MediaRef},
};
use serde_json::json;
use support::{Harness, read_records, results_for};

#[tokio::test]
async fn a_request_completes_with_its_artifacts_and_duplicates_give_one_result_also_after_a_restart()
 {
    let harness = Harness::new().await;
    let first = harness.script(json!({"sleep": 0.1})).await;
    let second = harness.script(json!({"sleep": 0.1})).await;
    // The first request is delivered twice before the analyzer even starts.
    harness.append(&first).await;
    harness.append(&first).await;
    harness.append(&second).await;
    let running = harness.start(harness.config.clone()).await;
    let events = harness
        .wait_for(Duration::from_secs(60), |events| {
            results_for(events, first.analysis_id).len() == 1
                && results_for(events, second.analysis_id).len() == 1
        })
        .await;
    let [DomainEvent::AnalysisCompleted(done)] = results_for(&events, first.analysis_id)[..] else {
        panic!("one completed result");
    };
    assert_eq!(done.kind, AnalysisKind::Movement);
    assert_eq!(
        (done.analyzer.name.as_str(), done.analyzer.version),
        ("movement", 1)
    );
    assert_eq!(done.analyzer.model_id, "scripted");
    assert_eq!(done.input_event_id, first.input_event_id);
    assert_eq!(done.findings[0].kind, FindingKind::Strength);
    assert_eq!(done.summary.as_ref().and_then(|s| s.move_count), Some(6));
    // Every artifact is in the store under its hash, sealed like the input.
    let scratch = tempfile::tempdir().expect("dir");
    for sealed in [&done.annotated_video, &done.summary_image, &done.pose_track] {
        let sealed = sealed.as_ref().expect("artifact");
        assert_eq!(
            sealed.key_id,
            first.inputs[0].media.as_ref().expect("media").key_id
        );
        let media: MediaRef = sealed.open_dev().expect("dev seal");
        assert!(
            media.object_key.starts_with("analyses/sha256/"),
            "{}",
            media.object_key
        );
        let path = scratch.path().join("artifact");
        let fetched = harness
            .blobs
            .get_to_file(&media.object_key, &path)
            .await
            .expect("fetched");
        assert_eq!(fetched.sha256, media.sha256);
        let text = std::fs::read_to_string(&path).expect("text");
        assert!(text.contains(&first.analysis_id.to_string()), "{text}");
    }
    assert!(
        running
            .metrics()
            .await
            .contains("cruxlog_analyzer_jobs_total{analyzer=\"movement\",outcome=\"duplicate\"} 1")
    );
    running.stop().await;

    // After a restart (the in-memory dedupe set is gone) the same request comes again.
    let third = harness.script(json!({"sleep": 0.1})).await;
    harness.append(&first).await;
    harness.append(&third).await;
    let running = harness.start(harness.config.clone()).await;
    let events = harness
        .wait_for(Duration::from_secs(60), |events| {
            results_for(events, third.analysis_id).len() == 1
        })
        .await;
    running.stop().await;
    assert_eq!(
        results_for(&events, first.analysis_id).len(),
        1,
        "still one result"
    );
    assert_eq!(results_for(&events, second.analysis_id).len(), 1);
}

#[tokio::test]
async fn a_worker_killed_mid_video_is_replaced_and_the_job_completes_once() {
    let harness = Harness::new().await;
    let request = harness.script(json!({"sleep": 3.0})).await;
    harness.append(&request).await;
    let running = harness.start(harness.config.clone()).await;
    let pid = loop {
        if let Some(pid) = running.pool.busy_pids().first() {
            break *pid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    assert!(
        killed.is_ok_and(|status| status.success()),
        "SIGKILL sent to {pid}"
    );
    let events = harness
        .wait_for(Duration::from_secs(60), |events| {
            !results_for(events, request.analysis_id).is_empty()
        })
        .await;
    assert!(matches!(
        results_for(&events, request.analysis_id)[..],
        [DomainEvent::AnalysisCompleted(_)]
    ));
    let metrics = running.metrics().await;
    assert!(
        metrics.contains("cruxlog_analyzer_worker_restarts_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "cruxlog_analyzer_worker_failures_total{analyzer=\"movement\",kind=\"crashed\"} 1"
    ));
    running.stop().await;
}

#[tokio::test]
async fn hangs_invalid_and_undecodable_inputs_become_failures_and_dead_letters_while_others_flow() {
    let harness = Harness::new().await;
    let mut config = harness.config.clone();
    config.movement.timeout_ms = 1_500;
    let hang = harness.script(json!({"hang": true})).await;
    let invalid = harness
        .script(json!({"invalid": "not a climbing video"}))
        .await;
    let mut fine = Vec::new();
    for _ in 0..4 {
        fine.push(harness.script(json!({"sleep": 0.2})).await);
    }
    harness.append(&hang).await;
    harness.append(&invalid).await;
    harness
        .append_raw(&harness.analysis_topic(), "garbage", b"\x00not an event")
        .await;
    for request in &fine {
        harness.append(request).await;
    }
    let running = harness.start(config).await;
    let events = harness
        .wait_for(Duration::from_secs(90), |events| {
            [&hang, &invalid]
                .into_iter()
                .chain(&fine)
                .all(|r| !results_for(events, r.analysis_id).is_empty())
        })
        .await;
    let [DomainEvent::AnalysisFailed(hung)] = results_for(&events, hang.analysis_id)[..] else {
        panic!("the hang fails");
    };
    assert!(
        hung.reason.contains("gave up after 3 attempts") && hung.reason.contains("timed out"),
        "{}",
        hung.reason
    );
    let [DomainEvent::AnalysisFailed(bad)] = results_for(&events, invalid.analysis_id)[..] else {
        panic!("the invalid input fails");
    };
    assert!(
        bad.reason.contains("not a climbing video"),
        "{}",
        bad.reason
    );
    // The videos on other partitions than the hang's finished before it was given up.
    let records = read_records(&harness.env, &harness.analysis_topic()).await;
    let partition_of = |id: uuid::Uuid| {
        records
            .iter()
            .find(|r| {
                cruxlog_schemas::decode(&r.payload).is_ok_and(|d| d.envelope.aggregate_id == id)
            })
            .map(|r| r.partition)
    };
    let finished_at = |id| {
        events
            .iter()
            .find(|e| {
                matches!(&e.event, DomainEvent::AnalysisCompleted(c) if c.analysis_id == id)
                    || matches!(&e.event, DomainEvent::AnalysisFailed(f) if f.analysis_id == id)
            })
            .map(|e| e.envelope.occurred_at)
    };
    let hang_partition = partition_of(hang.analysis_id);
    for request in fine
        .iter()
        .filter(|r| partition_of(r.analysis_id) != hang_partition)
    {
        assert!(finished_at(request.analysis_id) < finished_at(hang.analysis_id));
    }
    let letters = read_records(
        &harness.env,
        &harness.env.kafka.topics().dead_letters("analyzer-movement"),
    )
    .await;
    assert_eq!(
        letters.len(),
        3,
        "the hang, the invalid input and the undecodable record"
    );
    assert!(
        letters
            .iter()
            .all(|l| l.header("dlq_reason").is_some() && l.header("dlq_origin_offset").is_some())
    );
    assert!(letters.iter().any(|l| {
        l.header("dlq_reason")
            .is_some_and(|r| r.starts_with("undecodable"))
    }));
    assert!(running.metrics().await.contains(
        "cruxlog_analyzer_worker_failures_total{analyzer=\"movement\",kind=\"timeout\"} 3"
    ));
    running.stop().await;
}

/// Stopping the analyzer at any moment of its start-up (partitions being scanned, serving
/// consumers being assigned) ends it cleanly. librdkafka 2.12 aborted the whole process when
/// a consumer whose assignment had just been replaced was dropped (librdkafka#5573); each
/// consumer is now assigned once.
#[tokio::test]
async fn stopping_at_any_moment_of_start_up_ends_cleanly() {
    let harness = Harness::new().await;
    let request = harness.script(json!({"sleep": 0.05})).await;
    harness.append(&request).await;
    for round in 0..16_u64 {
        let running = harness.start(harness.config.clone()).await;
        tokio::time::sleep(Duration::from_millis(round * 20)).await;
        running.stop().await;
    }
    // Still serves afterwards: the request gets its one result.
    let running = harness.start(harness.config.clone()).await;
    let events = harness
        .wait_for(Duration::from_secs(60), |events| {
            !results_for(events, request.analysis_id).is_empty()
        })
        .await;
    assert_eq!(results_for(&events, request.analysis_id).len(), 1);
    running.stop().await;
}
