//! R2 on deploy: when the code's projection version is newer than the live build's, the
//! service builds the new version beside the live tables, catches up, and swaps it in.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Harness, record};
use cruxlog_projectors::{builds, projection::Projection as _, projections::sessions::Sessions};
use cruxlog_schemas::{
    DomainEvent,
    envelope::truncate_to_micros,
    events::{Discipline, SessionStarted},
};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_projection_version_is_built_beside_the_live_one_and_swapped_in() {
    const EVENTS: usize = 2_000;
    let harness = Harness::new().await;
    let records: Vec<_> = (0..EVENTS)
        .map(|i| {
            let session_id = Uuid::now_v7();
            let event = DomainEvent::SessionStarted(SessionStarted {
                session_id,
                user_id: Uuid::now_v7(),
                started_at: truncate_to_micros(Utc::now()),
                discipline: Discipline::ALL[i % 5],
                indoor: true,
                location_name: None,
                planned_minutes: Some(45),
            });
            record(&event, session_id, 1)
        })
        .collect();
    harness
        .produce(&harness.topic("climbing_session"), &records)
        .await;

    // The live build was made by the previous release: one version older, and behind.
    cruxlog_projectors::service::ensure_live(&harness.db)
        .await
        .expect("read models");
    let old = builds::live(&harness.db, "sessions")
        .await
        .expect("query")
        .expect("live");
    sqlx::query("update cruxlog.projection_builds set version = $2 where build_id = $1")
        .bind(old.build_id)
        .bind(Sessions.version() - 1)
        .execute(&harness.db)
        .await
        .expect("made older");

    harness.start_service().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let new = loop {
        let live = builds::live(&harness.db, "sessions")
            .await
            .expect("query")
            .expect("live");
        if live.build_id != old.build_id {
            break live;
        }
        assert!(
            Instant::now() < deadline,
            "the new version was never swapped in"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(new.version, Sessions.version());
    assert_eq!(
        harness.scalar("select count(*) from read.sessions").await,
        EVENTS as i64
    );
    let state: String =
        sqlx::query_scalar("select state from cruxlog.projection_builds where build_id = $1")
            .bind(old.build_id)
            .fetch_one(&harness.db)
            .await
            .expect("old build");
    assert_eq!(state, "retired");
}
