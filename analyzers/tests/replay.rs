//! Replay (A2): history goes through a pinned analyzer version as REPLAY requests; running it
//! again appends nothing; a new version adds results and the old version's stay.

mod support;

use std::{os::unix::fs::PermissionsExt as _, time::Duration};

use chrono::{TimeZone as _, Utc};
use cruxlog_analyzers::replay::{self, ReplayArgs, ReplayReport};
use cruxlog_schemas::{
    Actor, DomainEvent, EventMeta,
    events::{AnalysisReason, VideoAttached, aggregate, analysis_id},
};
use serde_json::json;
use support::Harness;
use uuid::Uuid;

async fn attach_video(harness: &Harness, user: Uuid, at: Option<chrono::DateTime<Utc>>) -> Uuid {
    let request = harness.script(json!({"sleep": 0.05})).await;
    let media = request.inputs[0].media.clone().expect("media");
    let session = Uuid::now_v7();
    let event = VideoAttached {
        session_id: session,
        attempt_id: Uuid::now_v7(),
        video_id: Uuid::now_v7(),
        user_id: user,
        media,
        duration_ms: 4_000,
        size_bytes: 100,
        content_type: "video/mp4".into(),
        rotation_degrees: 0,
        width_px: 640,
        height_px: 480,
        frame_rate: Some(30.0),
        recorded_at: None,
    };
    let mut meta = EventMeta::new(session, 3, Actor::user(user));
    if let Some(at) = at {
        meta.occurred_at = at;
    }
    let bytes = cruxlog_schemas::encode(&meta, &event).expect("encoded");
    let topic = harness
        .env
        .kafka
        .topics()
        .for_aggregate(aggregate::CLIMBING_SESSION);
    harness
        .append_raw(&topic, &session.to_string(), &bytes)
        .await;
    meta.event_id
}

fn args(version: i32) -> ReplayArgs {
    ReplayArgs {
        analyzer: "movement".into(),
        version,
        since: None,
        user: None,
        progress: false,
    }
}

/// (input event, analyzer version) of every completed movement result.
fn results(events: &[cruxlog_schemas::DecodedEvent]) -> Vec<(Uuid, i32, Uuid)> {
    let mut found: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event {
            DomainEvent::AnalysisCompleted(c) => {
                Some((c.input_event_id, c.analyzer.version, c.analysis_id))
            }
            _ => None,
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn replay_requests_each_video_once_per_version_and_old_results_stay() {
    let harness = Harness::new().await;
    let (ada, bo) = (Uuid::now_v7(), Uuid::now_v7());
    let long_ago = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single();
    let recent = attach_video(&harness, ada, None).await;
    let others = [
        attach_video(&harness, bo, None).await,
        attach_video(&harness, ada, long_ago).await,
    ];
    let kafka = harness.env.kafka.clone();

    let filtered = ReplayArgs {
        user: Some(ada),
        since: replay::parse_since("2026-01-01").ok(),
        ..args(1)
    };
    let report = replay::replay(&kafka, &filtered).await.expect("replay");
    assert_eq!(
        (report.videos, report.requested),
        (1, 1),
        "only ada's recent video"
    );
    let report = replay::replay(&kafka, &args(1)).await.expect("replay");
    assert_eq!(
        report,
        ReplayReport {
            videos: 3,
            requested: 2,
            skipped: 1
        }
    );

    let running = harness.start(harness.config.clone()).await;
    let events = harness
        .wait_for(Duration::from_secs(60), |events| results(events).len() == 3)
        .await;
    running.stop().await;
    let requests: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event {
            DomainEvent::AnalysisRequested(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.reason == AnalysisReason::Replay
        && r.requested_analyzer_version == Some(1)
        && r.analysis_id == analysis_id(r.input_event_id, "movement", Some(1))));

    // Version 2: new requests, then a worker that reports version 2.
    let report = replay::replay(&kafka, &args(2)).await.expect("replay");
    assert_eq!(report.requested, 3);
    let dir = tempfile::tempdir().expect("dir");
    let wrapper = dir.path().join("python-v2");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nFAKE_MOVEMENT_VERSION=2 exec '{}' \"$@\"\n",
            support::python()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut v2 = harness.config.clone();
    v2.movement.version = 2;
    v2.worker.python = wrapper.display().to_string();
    let running = harness.start(v2).await;
    let events = harness
        .wait_for(Duration::from_secs(60), |events| results(events).len() == 6)
        .await;
    running.stop().await;
    let found = results(&events);
    for input in std::iter::once(recent).chain(others) {
        for version in [1, 2] {
            let id = analysis_id(input, "movement", Some(version));
            assert_eq!(
                found.iter().filter(|r| **r == (input, version, id)).count(),
                1,
                "one v{version} result for {input}"
            );
        }
    }

    // Running it again, through the binary, appends nothing.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_cruxlog-analyzers"))
        .args(["replay", "--analyzer", "movement", "--version", "2"])
        .env("CRUXLOG_KAFKA__BROKERS", &kafka.brokers)
        .env("CRUXLOG_KAFKA__TOPIC_PREFIX", &kafka.topic_prefix)
        .env("CRUXLOG_KAFKA__PARTITIONS", kafka.partitions.to_string())
        .output()
        .await
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("3 videos matched: 0 requests appended, 3 already"),
        "{stdout}"
    );
}
