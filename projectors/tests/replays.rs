//! Handlers are idempotent: the same event twice in the log (a producer retry, a redrive of
//! something already applied) changes nothing and is not mistaken for poison.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Harness, record};
use cruxlog_schemas::{
    DomainEvent,
    envelope::truncate_to_micros,
    events::{
        AttemptDetails, AttemptLogged, AttemptResult, ClimbStyle, Discipline, SessionStarted,
    },
};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_attempt_twice_is_one_attempt_and_no_dead_letter() {
    let harness = Harness::new().await;
    let (session_id, user_id) = (Uuid::now_v7(), Uuid::now_v7());
    let started = DomainEvent::SessionStarted(SessionStarted {
        session_id,
        user_id,
        started_at: truncate_to_micros(Utc::now()),
        discipline: Discipline::Boulder,
        indoor: true,
        location_name: None,
        planned_minutes: None,
    });
    let attempt = DomainEvent::AttemptLogged(AttemptLogged {
        session_id,
        attempt_id: Uuid::now_v7(),
        user_id,
        attempted_at: truncate_to_micros(Utc::now()),
        details: AttemptDetails {
            route_id: None,
            route_description: Some("blue arete".into()),
            grade: None,
            style: ClimbStyle::Boulder,
            result: AttemptResult::Flash,
            falls: 0,
            duration_ms: Some(40_000),
            rpe: Some(6),
            beta: Vec::new(),
            high_point_hold_id: None,
            notes: None,
        },
    });
    let logged = record(&attempt, session_id, 2);
    let topic = harness.topic("climbing_session");
    // In one batch, and again in a later one.
    harness
        .produce(
            &topic,
            &[
                record(&started, session_id, 1),
                logged.clone(),
                logged.clone(),
            ],
        )
        .await;
    harness.start_service().await;
    harness.wait_projected(3, Duration::from_secs(60)).await;
    harness.produce(&topic, &[logged]).await;
    harness.wait_projected(4, Duration::from_secs(60)).await;

    assert_eq!(
        harness.scalar("select count(*) from read.attempts").await,
        1
    );
    assert_eq!(
        harness
            .scalar("select dead_letters from read.projection_health where projection = 'sessions' and state = 'live'")
            .await,
        0
    );
}
