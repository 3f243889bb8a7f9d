//! End to end with the real model: a generated video of a person climbing goes into the blob
//! store, its request onto the analysis topic, and the real `movement.analyze` worker's result
//! comes back as `AnalysisCompleted` whose artifacts are in the store.

mod support;

use std::time::Duration;

use cruxlog_schemas::{DomainEvent, events::sealed::MediaRef};
use support::{Harness, results_for};

#[tokio::test]
async fn a_generated_climbing_video_is_analysed_by_the_real_worker() {
    let harness = Harness::new().await;
    let scratch = tempfile::tempdir().expect("dir");
    let video = scratch.path().join("climb.mp4");
    let cli = std::path::Path::new(&support::python()).with_file_name("cruxlog-vision");
    let made = tokio::process::Command::new(&cli)
        .arg("make-test-video")
        .arg(&video)
        .args(["--seconds", "3"])
        .status()
        .await
        .expect("cruxlog-vision runs");
    assert!(made.success(), "make-test-video failed");
    let bytes = std::fs::read(&video).expect("video");
    let (request, _) = harness.request_for(&bytes).await;
    harness.append(&request).await;
    let mut config = harness.config.clone();
    config.worker.args = "-m cruxlog_vision.worker".into();
    config.worker.pool_size = 1;
    config.movement.timeout_ms = 180_000;
    let running = harness.start(config).await;
    let events = harness
        .wait_for(Duration::from_secs(240), |events| {
            !results_for(events, request.analysis_id).is_empty()
        })
        .await;
    let done = match results_for(&events, request.analysis_id)[..] {
        [DomainEvent::AnalysisCompleted(done)] => done,
        ref other => panic!("expected one completed result, got {other:#?}"),
    };
    assert_eq!(
        (done.analyzer.name.as_str(), done.analyzer.version),
        ("movement", 1)
    );
    assert!(!done.analyzer.model_id.is_empty());
    assert!(
        !done.findings.is_empty(),
        "the synthetic climb has findings"
    );
    assert!(!done.metrics.is_empty());
    for (sealed, what) in [
        (&done.annotated_video, "annotated video"),
        (&done.summary_image, "summary image"),
        (&done.pose_track, "analysis.json"),
    ] {
        let media: MediaRef = sealed.as_ref().expect(what).open_dev().expect("dev seal");
        let path = scratch.path().join("artifact");
        let fetched = harness
            .blobs
            .get_to_file(&media.object_key, &path)
            .await
            .expect(what);
        assert!(fetched.size > 0, "{what} is empty");
    }
    let metrics = running.metrics().await;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("cruxlog_analyzer_job_seconds_sum"))
    {
        eprintln!("3 s test video: {line}");
    }
    running.stop().await;
}
