//! Handlers are idempotent: the same event twice in the log (a producer retry, a redrive of
//! something already applied) changes nothing and is not mistaken for poison, on the bulk
//! path as on the idempotent statements it falls back to.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Harness, record};
use cruxlog_schemas::{
    DomainEvent,
    envelope::truncate_to_micros,
    events::{
        AttemptDetails, AttemptLogged, AttemptResult, ClimbStyle, Discipline, SessionEndReason,
        SessionEnded, SessionStarted,
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

/// started_at, ended_at, end_rpe, discipline, location_name.
type SessionRow = (
    chrono::DateTime<Utc>,
    Option<chrono::DateTime<Utc>>,
    Option<i32>,
    String,
    Option<String>,
);

/// The bulk path inserts a session already ended when its end is in the same batch. A replay
/// of the start together with its end, after the start alone was applied, must still end the
/// session (the bulk path is refused by the key and the idempotent statements run), and count
/// the session once. Values written by the bulk path read back exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_start_with_its_end_ends_the_session_and_counts_once() {
    let harness = Harness::new().await;
    let user_id = Uuid::now_v7();
    let at = truncate_to_micros(Utc::now());
    let session = |session_id| {
        DomainEvent::SessionStarted(SessionStarted {
            session_id,
            user_id,
            started_at: at,
            discipline: Discipline::TopRope,
            indoor: false,
            location_name: Some("crag \t\"north\" ü".into()),
            planned_minutes: Some(90),
        })
    };
    let end = |session_id| {
        DomainEvent::SessionEnded(SessionEnded {
            session_id,
            user_id,
            ended_at: at + chrono::Duration::minutes(75),
            rpe: Some(8),
            notes: None,
            reason: SessionEndReason::Climber,
        })
    };
    let (fresh, replayed) = (Uuid::now_v7(), Uuid::now_v7());
    let topic = harness.topic("climbing_session");
    // Sessions of another user make each batch big enough for the bulk path.
    let filler = || -> Vec<(String, Vec<u8>)> {
        (0..70)
            .map(|_| {
                let id = Uuid::now_v7();
                let mut event = session(id);
                if let DomainEvent::SessionStarted(started) = &mut event {
                    started.user_id = Uuid::now_v7();
                }
                record(&event, id, 1)
            })
            .collect()
    };
    // Batch 1: a session started and ended together (bulk path), another only started.
    let mut first = filler();
    first.extend([
        record(&session(fresh), fresh, 1),
        record(&end(fresh), fresh, 2),
        record(&session(replayed), replayed, 1),
    ]);
    harness.produce(&topic, &first).await;
    harness.start_service().await;
    harness.wait_projected(73, Duration::from_secs(60)).await;
    // Batch 2: the second start again (a producer retry), with its end.
    let mut second = filler();
    second.extend([
        record(&session(replayed), replayed, 1),
        record(&end(replayed), replayed, 2),
    ]);
    harness.produce(&topic, &second).await;
    harness.wait_projected(145, Duration::from_secs(60)).await;

    let rows: Vec<SessionRow> = sqlx::query_as(
        "select started_at, ended_at, end_rpe, discipline, location_name
         from read.sessions where user_id = $1 order by session_id",
    )
    .bind(user_id)
    .fetch_all(&harness.db)
    .await
    .expect("sessions");
    assert_eq!(rows.len(), 2);
    for (started_at, ended_at, end_rpe, discipline, location) in &rows {
        assert_eq!(*started_at, at);
        assert_eq!(*ended_at, Some(at + chrono::Duration::minutes(75)));
        assert_eq!(*end_rpe, Some(8));
        assert_eq!(discipline, "top_rope");
        assert_eq!(location.as_deref(), Some("crag \t\"north\" ü"));
    }
    let counted: i64 =
        sqlx::query_scalar("select sessions_started from read.user_stats where user_id = $1")
            .bind(user_id)
            .fetch_one(&harness.db)
            .await
            .expect("counter");
    assert_eq!(counted, 2);
    assert_eq!(
        harness
            .scalar("select dead_letters from read.projection_health where projection = 'sessions' and state = 'live'")
            .await,
        0
    );
}
