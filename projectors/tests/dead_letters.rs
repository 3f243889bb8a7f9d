//! R4: an event that cannot be decoded or breaks an invariant goes to the dead-letter topic
//! with its reason; later events of its aggregate wait behind it; everything else flows; a
//! redrive after the fix applies them, in order.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Harness, record};
use cruxlog_projectors::{builds, dlq};
use cruxlog_schemas::{
    DomainEvent,
    envelope::truncate_to_micros,
    events::{Discipline, SessionEndReason, SessionEnded, SessionStarted},
};
use uuid::Uuid;

fn started(session_id: Uuid, planned_minutes: i32) -> DomainEvent {
    DomainEvent::SessionStarted(SessionStarted {
        session_id,
        user_id: Uuid::now_v7(),
        started_at: truncate_to_micros(Utc::now()),
        discipline: Discipline::Sport,
        indoor: true,
        location_name: None,
        planned_minutes: Some(planned_minutes),
    })
}

fn ended(session_id: Uuid) -> DomainEvent {
    DomainEvent::SessionEnded(SessionEnded {
        session_id,
        user_id: Uuid::now_v7(),
        ended_at: truncate_to_micros(Utc::now()),
        rpe: Some(7),
        notes: None,
        reason: SessionEndReason::Climber,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letters_its_aggregate_waits_and_a_redrive_applies_it() {
    let harness = Harness::new().await;
    let topic = harness.topic("climbing_session");
    let (fine, poisoned, garbage, later) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    harness
        .produce(
            &topic,
            &[
                record(&started(fine, 90), fine, 1),
                // 100,000 planned minutes breaks the read model's check (an old writer's bug).
                record(&started(poisoned, 100_000), poisoned, 1),
                record(&ended(poisoned), poisoned, 2),
                (garbage.to_string(), b"\xC3\x01 not an event".to_vec()),
                record(&started(later, 60), later, 1),
                record(&ended(later), later, 2),
            ],
        )
        .await;
    harness.start_service().await;
    harness.wait_projected(6, Duration::from_secs(60)).await;

    assert_eq!(
        harness.scalar("select count(*) from read.sessions").await,
        2,
        "the others flowed"
    );
    assert_eq!(
        harness
            .scalar("select count(*) from read.sessions where ended_at is not null")
            .await,
        1
    );
    assert_eq!(
        harness
            .scalar(
                "select sum(dead_letters)::bigint from read.projection_health where state = 'live'"
            )
            .await,
        3
    );
    assert_eq!(harness.scalar("select sum(parked_aggregates)::bigint from read.projection_health where state = 'live'").await, 2);

    let context = harness.context().await;
    let letters = dlq::list(&context, "sessions").await.expect("list");
    let reasons: Vec<(String, bool)> = letters
        .iter()
        .filter_map(|l| l.origin.as_ref().map(|o| (o.reason.clone(), o.blocked)))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|(r, blocked)| r.contains("breaks an invariant") && !blocked),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(r, blocked)| r.contains("waiting behind") && *blocked),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|(r, _)| r.contains("undecodable")),
        "{reasons:?}"
    );

    // The fix: the read model accepts longer plans. Then redrive.
    let live = builds::live(&harness.db, "sessions")
        .await
        .expect("query")
        .expect("live build");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "alter table {}.sessions drop constraint sessions_planned_minutes_check",
        live.schema_name
    )))
    .execute(&harness.db)
    .await
    .expect("fix applied");
    let redriven = dlq::redrive(&context, "sessions").await.expect("redrive");
    assert_eq!(
        (redriven.applied, redriven.still_failing, redriven.released),
        (2, 1, 1),
        "{redriven:?}"
    );
    let ended_at: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("select ended_at from read.sessions where session_id = $1")
            .bind(poisoned)
            .fetch_one(&harness.db)
            .await
            .expect("the poisoned session is there now");
    assert!(
        ended_at.is_some(),
        "its later event was applied after it, in order"
    );

    // The letter that still fails was sent again with its original origin, not the
    // dead-letter topic's.
    let letters = dlq::list(&context, "sessions").await.expect("list");
    let last = letters
        .last()
        .and_then(|l| l.origin.clone())
        .expect("re-sent letter has an origin");
    assert_eq!(last.topic, topic, "{last:?}");

    // A second redrive only meets the garbage again.
    let again = dlq::redrive(&context, "sessions").await.expect("redrive");
    assert_eq!((again.applied, again.still_failing), (0, 1), "{again:?}");
}
