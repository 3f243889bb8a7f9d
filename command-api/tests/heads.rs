//! Group commit of aggregate heads (ADR 0012) against the real database: concurrent marks
//! share statements and each row still gets its own compare-and-set answer; two marks of one
//! head in one batch give one winner; a batch that fails answers every request in it with an
//! error (the commands answer 503), never with a guess; a head an instance remembers having
//! written is read again once another instance has moved it.

mod helpers;

use std::time::Duration;

use axum::http::HeaderMap;
use cruxlog_command_api::{
    AppState, command::Command, domain, error::ApiError, heads::HeadsUnavailable, writer,
};
use cruxlog_schemas::{
    Actor,
    events::{
        AttemptDetails, AttemptLogged, AttemptResult, ClimbStyle, Discipline, SessionStarted,
        aggregate,
    },
    grades::{Grade, GradeSystem},
};
use helpers::{TestApp, api_config};
use serde_json::json;
use uuid::Uuid;

fn batch_rows(state: &AppState, kind: &str) -> (u64, f64) {
    let histogram = state.metrics.head_batch_rows.with_label_values(&[kind]);
    (histogram.get_sample_count(), histogram.get_sample_sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_marks_share_statements_and_each_gets_its_own_answer() {
    let app = TestApp::api_only().await;
    let state = AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    let heads = &state.heads;
    // 300 new aggregates at once: every mark at version 0 succeeds.
    let ids: Vec<Uuid> = (0..300).map(|_| Uuid::now_v7()).collect();
    let marks = ids
        .iter()
        .map(|&id| heads.mark(id, "climbing_session", 0, 1, json!({"n": 1})));
    let marked = futures::future::join_all(marks).await;
    assert!(marked.iter().all(|m| *m == Ok(true)), "{marked:?}");
    let (statements, rows) = batch_rows(&state, "mark");
    assert_eq!(rows, 300.0);
    assert!(
        statements < 300,
        "300 marks in {statements} statements: nothing shared"
    );
    // Every head is pending at 1; marking again at 0 fails, whatever the batch.
    let again = ids
        .iter()
        .map(|&id| heads.mark(id, "climbing_session", 0, 1, json!({})));
    assert!(
        futures::future::join_all(again)
            .await
            .iter()
            .all(|m| *m == Ok(false))
    );
    // Moving every other head; the rest stay pending.
    let moves = ids
        .iter()
        .step_by(2)
        .map(|&id| heads.settle(id, 1, Some("p".into())));
    assert!(
        futures::future::join_all(moves)
            .await
            .iter()
            .all(Result::is_ok)
    );
    let reads = ids.iter().map(|&id| heads.read(id));
    let read = futures::future::join_all(reads).await;
    for (i, head) in read.into_iter().enumerate() {
        let head = head.expect("read").expect("a head");
        if i % 2 == 0 {
            assert_eq!((head.version, head.pending_version), (1, None));
            assert_eq!(head.state, Some(json!({"n": 1})));
        } else {
            assert_eq!((head.version, head.pending_version), (0, Some(1)));
            assert!(!head.stale);
        }
    }
    // A moved head marks at its new version, and not at a version it has passed.
    assert_eq!(
        heads
            .mark(ids[0], "climbing_session", 1, 2, json!({}))
            .await,
        Ok(true)
    );
    assert_eq!(
        heads
            .mark(ids[2], "climbing_session", 0, 1, json!({}))
            .await,
        Ok(false)
    );
    assert_eq!(heads.read(Uuid::now_v7()).await, Ok(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_marks_of_one_head_at_once_have_exactly_one_winner() {
    let app = TestApp::api_only().await;
    let first = AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    let second = AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    for round in 0..20 {
        let id = Uuid::now_v7();
        // Half through each of two instances: some share a batch, some race across batches.
        let marks = (0..40).map(|i| {
            let state = if i % 2 == 0 { &first } else { &second };
            state
                .heads
                .mark(id, "climbing_session", 0, 1, json!({ "writer": i }))
        });
        let marked = futures::future::join_all(marks).await;
        let winners = marked.iter().filter(|m| **m == Ok(true)).count();
        assert_eq!(winners, 1, "round {round}: {marked:?}");
        assert!(marked.iter().all(Result::is_ok));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_answers_every_request_with_an_error() {
    let app = TestApp::api_only().await;
    let state = AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    // Heads against a database that is gone: a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let broken = cruxlog_command_api::heads::Heads::start(
        sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(500))
            .connect_lazy(&format!("postgres://cruxlog_api@127.0.0.1:{closed}/gone"))
            .expect("lazy pool"),
        &state.metrics.head_batch_rows,
        Duration::from_secs(3),
    );
    let ids: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    let marks = ids
        .iter()
        .map(|&id| broken.mark(id, "climbing_session", 0, 1, json!({})));
    let marked = futures::future::join_all(marks).await;
    assert!(
        marked.iter().all(|m| *m == Err(HeadsUnavailable)),
        "{marked:?}"
    );
    assert_eq!(broken.read(ids[0]).await, Err(HeadsUnavailable));
    assert_eq!(broken.settle(ids[0], 1, None).await, Err(HeadsUnavailable));
    // Nothing was written: the working state sees no head.
    assert_eq!(state.heads.read(ids[0]).await, Ok(None));
}

fn attempt(session_id: Uuid, user: Uuid) -> AttemptLogged {
    AttemptLogged {
        session_id,
        attempt_id: Uuid::now_v7(),
        user_id: user,
        attempted_at: cruxlog_schemas::envelope::truncate_to_micros(chrono::Utc::now()),
        details: AttemptDetails {
            route_id: None,
            route_description: None,
            grade: Grade::parse(GradeSystem::Fontainebleau, "6a").ok(),
            style: ClimbStyle::Boulder,
            result: AttemptResult::Fail,
            falls: 0,
            duration_ms: None,
            rpe: None,
            beta: Vec::new(),
            high_point_hold_id: None,
            notes: None,
        },
    }
}

/// An instance decides on the head it wrote last without reading it; when another instance
/// has moved the head since, the mark at the remembered version fails and the head is read:
/// nothing written by the other instance is lost, and `If-Match` still answers 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_head_that_another_instance_moved_is_read_again() {
    let app = TestApp::api_only().await;
    let first = AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    let second = AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    let (user, session_id) = (Uuid::now_v7(), Uuid::now_v7());
    let command = Command::new(Actor::user(user), &HeaderMap::new());
    let started = SessionStarted {
        session_id,
        user_id: user,
        started_at: cruxlog_schemas::envelope::truncate_to_micros(chrono::Utc::now()),
        discipline: Discipline::Boulder,
        indoor: true,
        location_name: None,
        planned_minutes: None,
    };
    let log = |state: &AppState, expected: Option<i64>| {
        let event = attempt(session_id, user);
        let (state, command) = (state.clone(), command.clone());
        async move {
            writer::execute(
                &state,
                &command,
                aggregate::CLIMBING_SESSION,
                session_id,
                expected,
                |s| domain::log_attempt(s, &event),
            )
            .await
        }
    };
    let written = writer::execute(
        &first,
        &command,
        aggregate::CLIMBING_SESSION,
        session_id,
        None,
        |s| domain::start(s, &started),
    )
    .await
    .expect("started");
    assert_eq!(written.version, 1);
    assert_eq!(first.heads.written(session_id).map(|(v, _)| v), Some(1));
    assert_eq!(log(&first, None).await.expect("first logs").version, 2);
    // The second instance moves the head to 3; the first still remembers 2.
    assert_eq!(log(&second, Some(2)).await.expect("second logs").version, 3);
    assert_eq!(first.heads.written(session_id).map(|(v, _)| v), Some(2));
    // A stale If-Match is refused with the current version, not the remembered one.
    match log(&first, Some(2)).await {
        Err(ApiError::VersionConflict { expected, current }) => {
            assert_eq!((expected, current), (2, 3))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Without If-Match the first instance's remembered head fails its mark, is read again,
    // and the attempt goes on top of the second instance's.
    assert_eq!(
        log(&first, None).await.expect("first logs again").version,
        4
    );
    let head = first
        .heads
        .read(session_id)
        .await
        .expect("read")
        .expect("head");
    let state: domain::SessionState =
        serde_json::from_value(head.state.expect("state")).expect("session state");
    assert_eq!((head.version, state.attempts.len()), (4, 3));
    assert_eq!(app.env.records_in(&app.sessions_topic()), 4);
}
