//! The database going away under an idle or a busy projector (connections killed, as in a
//! failover) is retried, not fatal: the service keeps projecting once it is back, and nothing
//! is lost or doubled.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Harness, record};
use cruxlog_schemas::{
    DomainEvent,
    envelope::truncate_to_micros,
    events::{Discipline, SessionStarted},
};
use uuid::Uuid;

fn sessions(count: usize) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|_| {
            let session_id = Uuid::now_v7();
            let event = DomainEvent::SessionStarted(SessionStarted {
                session_id,
                user_id: Uuid::now_v7(),
                started_at: truncate_to_micros(Utc::now()),
                discipline: Discipline::Board,
                indoor: true,
                location_name: None,
                planned_minutes: None,
            });
            record(&event, session_id, 1)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_database_connections_are_survived_without_loss_or_doubling() {
    let harness = Harness::new().await;
    let topic = harness.topic("climbing_session");
    harness.produce(&topic, &sessions(100)).await;
    harness.start_service().await;
    harness.wait_projected(100, Duration::from_secs(60)).await;

    // Kill every connection of the service to its database, several times, while idle and
    // while a new stream arrives.
    let kill = "select count(pg_terminate_backend(pid))::bigint from pg_stat_activity
                where datname = current_database() and pid <> pg_backend_pid()";
    let mut killed = 0;
    for round in 0..6 {
        if round == 3 {
            harness.produce(&topic, &sessions(500)).await;
        }
        killed += harness.scalar(kill).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(killed > 0, "no connection was killed");

    harness.wait_projected(600, Duration::from_secs(60)).await;
    assert_eq!(
        harness.scalar("select count(*) from read.sessions").await,
        600
    );
    assert_eq!(
        harness
            .scalar("select events_applied from read.projection_health where projection = 'sessions' and state = 'live'")
            .await,
        600,
        "an event was applied twice or lost"
    );
}
