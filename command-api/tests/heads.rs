//! Group commit of aggregate heads (ADR 0012) against the real database: concurrent marks
//! share statements and each row still gets its own compare-and-set answer; two marks of one
//! head in one batch give one winner; a batch that fails answers every request in it with an
//! error (the commands answer 503), never with a guess; a head an instance remembers having
//! written is read again once another instance has moved it; batches over the same heads in
//! any order never deadlock; a mark slower than its window is not followed by an append; a
//! decision with two events is refused before anything is written; marks and moves share
//! statements (a head touched once per statement), and a move whose head is gone moves
//! nothing.

mod helpers;

use std::time::Duration;

use axum::http::HeaderMap;
use cruxlog_command_api::{
    AppState,
    command::Command,
    domain,
    error::ApiError,
    heads::{Acked, HeadsUnavailable},
    writer::{self, Written},
};
use cruxlog_schemas::{Actor, events::aggregate};
use helpers::{TestApp, api_config};
use serde_json::json;
use uuid::Uuid;

/// A test environment and an API state on it.
async fn one_instance() -> (TestApp, AppState) {
    let app = TestApp::api_only().await;
    let state = AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    (app, state)
}

/// A test environment and two API states on it, as two instances would be.
async fn two_instances() -> (TestApp, AppState, AppState) {
    let (app, first) = one_instance().await;
    let second = AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    (app, first, second)
}

/// `count` new heads, each marked pending at version 1 with state `{"v": 1}` by a writer
/// whose id is the head's.
async fn pending_heads(state: &AppState, count: usize) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..count).map(|_| Uuid::now_v7()).collect();
    let marks = ids.iter().map(|&id| {
        state
            .heads
            .mark(id, "climbing_session", (0, 1), json!({"v": 1}), id)
    });
    let marked = futures::future::join_all(marks).await;
    assert!(marked.iter().all(|m| *m == Ok(true)), "{marked:?}");
    ids
}

fn batch_rows(state: &AppState, kind: &str) -> (u64, f64) {
    let histogram = state.metrics.head_batch_rows.with_label_values(&[kind]);
    (histogram.get_sample_count(), histogram.get_sample_sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_marks_share_statements_and_each_gets_its_own_answer() {
    let (_app, state) = one_instance().await;
    let heads = &state.heads;
    // 300 new aggregates at once: every mark at version 0 succeeds.
    let ids: Vec<Uuid> = (0..300).map(|_| Uuid::now_v7()).collect();
    let marks = ids
        .iter()
        .map(|&id| heads.mark(id, "climbing_session", (0, 1), json!({"n": 1}), id));
    let marked = futures::future::join_all(marks).await;
    assert!(marked.iter().all(|m| *m == Ok(true)), "{marked:?}");
    let (statements, rows) = batch_rows(&state, "write");
    assert_eq!(rows, 300.0);
    assert!(
        statements < 300,
        "300 marks in {statements} statements: nothing shared"
    );
    // Every head is pending at 1; marking again at 0 fails, whatever the batch.
    let again = ids
        .iter()
        .map(|&id| heads.mark(id, "climbing_session", (0, 1), json!({}), Uuid::now_v7()));
    assert!(
        futures::future::join_all(again)
            .await
            .iter()
            .all(|m| *m == Ok(false))
    );
    // A move names the mark's writer: another writer's move of the same version does nothing.
    assert_eq!(
        heads.settle(ids[1], 1, Uuid::now_v7(), None).await,
        Ok(false)
    );
    // Moving every other head (each mark's writer is its id here); the rest stay pending.
    let moves = ids
        .iter()
        .step_by(2)
        .map(|&id| heads.settle(id, 1, id, Some("p".into())));
    assert!(
        futures::future::join_all(moves)
            .await
            .iter()
            .all(|moved| *moved == Ok(true))
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
            .mark(
                ids[0],
                "climbing_session",
                (1, 2),
                json!({}),
                Uuid::now_v7()
            )
            .await,
        Ok(true)
    );
    assert_eq!(
        heads
            .mark(
                ids[2],
                "climbing_session",
                (0, 1),
                json!({}),
                Uuid::now_v7()
            )
            .await,
        Ok(false)
    );
    assert_eq!(heads.read(Uuid::now_v7()).await, Ok(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_and_moves_share_statements_and_a_head_is_written_once_per_statement() {
    let (_app, state) = one_instance().await;
    let heads = &state.heads;
    for round in 0..10 {
        let pending = pending_heads(&state, 100).await;
        let (statements_before, rows_before) = batch_rows(&state, "write");
        // At once: the 100 pending heads are moved, 100 new heads are marked, and each moved
        // head is marked again at version 1 (before its move lands, in its move's statement,
        // or after it).
        let fresh: Vec<Uuid> = (0..100).map(|_| Uuid::now_v7()).collect();
        let moves = futures::future::join_all(
            pending
                .iter()
                .map(|&id| heads.settle(id, 1, id, Some(format!("p{round}")))),
        );
        let new_marks = futures::future::join_all(
            fresh
                .iter()
                .map(|&id| heads.mark(id, "climbing_session", (0, 1), json!({}), id)),
        );
        let next_marks = futures::future::join_all(pending.iter().map(|&id| {
            heads.mark(
                id,
                "climbing_session",
                (1, 2),
                json!({"v": 2}),
                Uuid::now_v7(),
            )
        }));
        let (moved, marked, next) = tokio::join!(moves, new_marks, next_marks);
        assert!(moved.iter().all(|m| *m == Ok(true)), "{moved:?}");
        assert!(marked.iter().all(|m| *m == Ok(true)), "{marked:?}");
        assert!(next.iter().all(Result::is_ok), "{next:?}");
        let (statements, rows) = batch_rows(&state, "write");
        assert!(
            statements - statements_before < (rows - rows_before) as u64,
            "round {round}: nothing shared"
        );
        for (id, next) in pending.iter().zip(&next) {
            let head = heads.read(*id).await.expect("read").expect("a head");
            assert_eq!(head.version, 1, "round {round}: the move landed");
            assert_eq!(head.state, Some(json!({"v": 1})));
            let expected = if next == &Ok(true) { Some(2) } else { None };
            assert_eq!(head.pending_version, expected, "round {round}");
        }
    }
}

/// The answer to a command does not wait for its move (ADR 0013): the instance's next mark
/// on that head completes the move itself, whether the move landed before it, lands in the
/// same statement or comes after it. A mark naming another writer's append does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_after_an_acknowledged_append_completes_its_move_whenever_the_move_lands() {
    let (_app, state) = one_instance().await;
    let heads = &state.heads;
    let acked = |writer: Uuid| Acked {
        writer,
        position: Some(format!("p-{writer}")),
    };
    for round in 0..10 {
        let ids = pending_heads(&state, 100).await;
        // A mark naming the pending writer at another version is refused.
        assert_eq!(
            heads
                .mark_after(
                    ids[0],
                    "climbing_session",
                    (2, 3),
                    json!({"v": 3}),
                    (Uuid::now_v7(), Some(acked(ids[0]))),
                )
                .await,
            Ok(false)
        );
        // A mark naming an append that is not the pending one is refused.
        assert_eq!(
            heads
                .mark_after(
                    ids[0],
                    "climbing_session",
                    (1, 2),
                    json!({"v": 2}),
                    (Uuid::now_v7(), Some(acked(Uuid::now_v7()))),
                )
                .await,
            Ok(false)
        );
        // Every head's move is sent without waiting, and at once the next mark follows it.
        for &id in &ids {
            heads
                .move_later(id, 1, id, Some(format!("p-{id}")))
                .await
                .expect("queued");
        }
        let next = ids.iter().map(|&id| {
            heads.mark_after(
                id,
                "climbing_session",
                (1, 2),
                json!({"v": 2}),
                (Uuid::now_v7(), Some(acked(id))),
            )
        });
        let next = futures::future::join_all(next).await;
        assert!(
            next.iter().all(|m| *m == Ok(true)),
            "round {round}: {next:?}"
        );
        for &id in &ids {
            let head = heads.read(id).await.expect("read").expect("a head");
            assert_eq!(
                (head.version, head.state, head.pending_version),
                (1, Some(json!({"v": 1})), Some(2)),
                "round {round}"
            );
        }
        let position: Option<String> = sqlx::query_scalar(
            "select last_position from api.aggregate_heads where aggregate_id = $1",
        )
        .bind(ids[7])
        .fetch_one(&state.db)
        .await
        .expect("position");
        assert_eq!(position, Some(format!("p-{}", ids[7])));
    }
}

/// Two moves of one head can meet in a batch (a mark completed the first, a later command
/// moved on): only the latest is sent, and the batch does not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_moves_of_one_head_in_a_batch_send_only_the_latest() {
    let (_app, state) = one_instance().await;
    let heads = &state.heads;
    let ids: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
    let second: Vec<Uuid> = ids.iter().map(|_| Uuid::now_v7()).collect();
    for (&id, &writer) in ids.iter().zip(&second) {
        assert_eq!(
            heads
                .mark(id, "climbing_session", (0, 1), json!({"v": 1}), id)
                .await,
            Ok(true)
        );
        let follows = Acked {
            writer: id,
            position: None,
        };
        assert_eq!(
            heads
                .mark_after(
                    id,
                    "climbing_session",
                    (1, 2),
                    json!({"v": 2}),
                    (writer, Some(follows)),
                )
                .await,
            Ok(true)
        );
    }
    // Both moves of every head queued back to back: most pairs share a batch.
    for (&id, &writer) in ids.iter().zip(&second) {
        heads.move_later(id, 1, id, None).await.expect("queued");
        heads
            .move_later(id, 2, writer, Some("p2".into()))
            .await
            .expect("queued");
    }
    for &id in &ids {
        let mut head = heads.read(id).await.expect("read").expect("a head");
        for _ in 0..400 {
            if head.pending_version.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            head = heads.read(id).await.expect("read").expect("a head");
        }
        assert_eq!(
            (head.version, head.state, head.pending_version),
            (2, Some(json!({"v": 2})), None)
        );
    }
}

/// Reads wait for a young pending append only briefly (a head written without a pause stays
/// pending), and settle one whose writer is gone from the log, as a writer would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_wait_briefly_for_a_pending_append_and_settle_a_stale_one() {
    let (_app, state) = one_instance().await;
    let session = Session::start(&state).await;
    assert_eq!(
        writer::version_of(&state, session.id)
            .await
            .expect("version"),
        1
    );
    // A young pending mark, never moved: the read answers the version before it, soon.
    let (id, writer_id) = (session.id, Uuid::now_v7());
    assert_eq!(
        state
            .heads
            .mark(id, "climbing_session", (1, 2), json!({}), writer_id)
            .await,
        Ok(true)
    );
    let started = std::time::Instant::now();
    assert_eq!(writer::version_of(&state, id).await.expect("version"), 1);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    // Its writer gone (the mark back-dated, nothing in the log): the read settles it.
    sqlx::query(
        "update api.aggregate_heads set pending_since = now() - interval '1 hour'
          where aggregate_id = $1",
    )
    .bind(id)
    .execute(&state.db)
    .await
    .expect("back-date");
    assert_eq!(writer::version_of(&state, id).await.expect("version"), 1);
    let head = state.heads.read(id).await.expect("read").expect("a head");
    assert_eq!((head.version, head.pending_version), (1, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_of_a_head_that_is_gone_moves_nothing_and_leaves_no_row() {
    let (_app, state) = one_instance().await;
    let id = Uuid::now_v7();
    assert_eq!(
        state
            .heads
            .mark(id, "climbing_session", (0, 1), json!({}), id)
            .await,
        Ok(true)
    );
    // The head is erased while its writer appends.
    sqlx::query("delete from api.aggregate_heads where aggregate_id = $1")
        .bind(id)
        .execute(&state.db)
        .await
        .expect("delete");
    assert_eq!(state.heads.settle(id, 1, id, None).await, Ok(false));
    assert_eq!(state.heads.read(id).await, Ok(None));
    let rows: i64 =
        sqlx::query_scalar("select count(*) from api.aggregate_heads where aggregate_id = $1")
            .bind(id)
            .fetch_one(&state.db)
            .await
            .expect("count");
    assert_eq!(rows, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_marks_of_one_head_at_once_have_exactly_one_winner() {
    let (_app, first, second) = two_instances().await;
    for round in 0..20 {
        let id = Uuid::now_v7();
        // Half through each of two instances: some share a batch, some race across batches.
        let marks = (0..40).map(|i| {
            let state = if i % 2 == 0 { &first } else { &second };
            state.heads.mark(
                id,
                "climbing_session",
                (0, 1),
                json!({ "writer": i }),
                Uuid::now_v7(),
            )
        });
        let marked = futures::future::join_all(marks).await;
        let winners = marked.iter().filter(|m| **m == Ok(true)).count();
        assert_eq!(winners, 1, "round {round}: {marked:?}");
        assert!(marked.iter().all(Result::is_ok));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_answers_every_request_with_an_error() {
    let (_app, state) = one_instance().await;
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
        2,
    );
    let ids: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    let marks = ids
        .iter()
        .map(|&id| broken.mark(id, "climbing_session", (0, 1), json!({}), id));
    let marked = futures::future::join_all(marks).await;
    assert!(
        marked.iter().all(|m| *m == Err(HeadsUnavailable)),
        "{marked:?}"
    );
    assert_eq!(broken.read(ids[0]).await, Err(HeadsUnavailable));
    assert_eq!(
        broken.settle(ids[0], 1, ids[0], None).await,
        Err(HeadsUnavailable)
    );
    // Nothing was written: the working state sees no head.
    assert_eq!(state.heads.read(ids[0]).await, Ok(None));
}

/// One user's climbing session, written through `writer::execute` as the API does.
struct Session {
    user: Uuid,
    id: Uuid,
    command: Command,
}

impl Session {
    /// Starts a new session through `state`: its head is at version 1.
    async fn start(state: &AppState) -> Self {
        let (user, id) = (Uuid::now_v7(), Uuid::now_v7());
        let session = Self {
            user,
            id,
            command: Command::new(Actor::user(user), &HeaderMap::new()),
        };
        let started = helpers::events::session_started(id, user);
        let written = session
            .execute(state, None, |s| domain::start(s, &started))
            .await
            .expect("started");
        assert_eq!(written.version, 1);
        session
    }

    /// Logs a new attempt through `state`.
    async fn log(&self, state: &AppState, expected: Option<i64>) -> Result<Written, ApiError> {
        let event = helpers::events::attempt_logged(self.id, self.user);
        self.execute(state, expected, |s| domain::log_attempt(s, &event))
            .await
    }

    async fn execute(
        &self,
        state: &AppState,
        expected: Option<i64>,
        decide: impl Fn(Option<domain::SessionState>) -> writer::Decision<domain::SessionState>,
    ) -> Result<Written, ApiError> {
        let session = aggregate::CLIMBING_SESSION;
        writer::execute(state, &self.command, session, self.id, expected, decide).await
    }
}

/// An instance decides on the head it wrote last without reading it; when another instance
/// has moved the head since, the mark at the remembered version fails and the head is read:
/// nothing written by the other instance is lost, and `If-Match` still answers 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_head_that_another_instance_moved_is_read_again() {
    let (app, first, second) = two_instances().await;
    let session = Session::start(&first).await;
    let session_id = session.id;
    assert_eq!(first.heads.written(session_id).map(|r| r.version), Some(1));
    // Decided on the head it wrote: no read.
    let reads = batch_rows(&first, "read").0;
    assert_eq!(
        session.log(&first, None).await.expect("first logs").version,
        2
    );
    assert_eq!(
        batch_rows(&first, "read").0,
        reads,
        "the remembered head was read"
    );
    // The second instance moves the head to 3; the first still remembers 2.
    assert_eq!(
        session
            .log(&second, Some(2))
            .await
            .expect("second logs")
            .version,
        3
    );
    assert_eq!(first.heads.written(session_id).map(|r| r.version), Some(2));
    // A stale If-Match is refused with the current version, not the remembered one.
    match session.log(&first, Some(2)).await {
        Err(ApiError::VersionConflict { expected, current }) => {
            assert_eq!((expected, current), (2, 3))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Without If-Match the first instance reads the head (the refusal above was decided on a
    // read head, and it forgot the remembered one) and goes on top of the second instance's.
    assert_eq!(
        session
            .log(&first, None)
            .await
            .expect("first logs again")
            .version,
        4
    );
    // The move after the answer lands soon after it; `version_of` waits for it.
    assert_eq!(
        writer::version_of(&first, session_id)
            .await
            .expect("version"),
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

/// Batches from two instances over the same few aggregates, in every order: row locks are
/// taken in id order, so no two statements deadlock (PostgreSQL would fail one of them and
/// every command in it), and each version still has one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_over_the_same_heads_in_any_order_never_deadlock() {
    let (_app, first, second) = two_instances().await;
    let ids: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
    for round in 0..30_i64 {
        // Every writer tries every head at this round's version, in its own order.
        let tries = (0..16).flat_map(|writer| {
            let state = if writer % 2 == 0 { &first } else { &second };
            let mut order = ids.clone();
            order.rotate_left(writer % ids.len());
            if writer % 3 == 0 {
                order.reverse();
            }
            order.into_iter().map(move |id| {
                let token = Uuid::now_v7();
                async move {
                    let marked = state
                        .heads
                        .mark(id, "climbing_session", (round, round + 1), json!({}), token)
                        .await;
                    if marked == Ok(true) {
                        let moved = state.heads.settle(id, round + 1, token, None).await;
                        assert_eq!(moved, Ok(true));
                    }
                    (id, marked)
                }
            })
        });
        let results = futures::future::join_all(tries).await;
        for id in &ids {
            let answers: Vec<_> = results.iter().filter(|(i, _)| i == id).collect();
            assert!(
                answers.iter().all(|(_, m)| m.is_ok()),
                "round {round}: {answers:?}"
            );
            let winners = answers.iter().filter(|(_, m)| *m == Ok(true)).count();
            assert_eq!(winners, 1, "round {round}");
        }
    }
}

/// A mark that takes longer than its window (here: the head's row held locked by someone
/// else for 1.2 s) must not be followed by an append, since other writers may settle the mark
/// from the log before the append lands. The command answers 503; nothing is appended; the
/// next command settles the mark from the log (not appended) and takes the version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_slower_than_its_window_is_not_followed_by_an_append() {
    let (app, state) = one_instance().await;
    let session = Session::start(&state).await;
    let session_id = session.id;
    let log = || session.log(&state, None);
    let admin = sqlx::PgPool::connect(&app.env.database_url)
        .await
        .expect("db");
    let mut blocker = admin.begin().await.expect("begin");
    sqlx::query("select 1 from api.aggregate_heads where aggregate_id = $1 for update")
        .bind(session_id)
        .execute(&mut *blocker)
        .await
        .expect("lock");
    let slow = {
        let state = state.clone();
        let event = helpers::events::attempt_logged(session_id, session.user);
        let command = session.command.clone();
        tokio::spawn(async move {
            writer::execute(
                &state,
                &command,
                aggregate::CLIMBING_SESSION,
                session_id,
                None,
                |s| domain::log_attempt(s, &event),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    blocker.commit().await.expect("release");
    let answer = slow.await.expect("joins");
    assert!(
        matches!(answer, Err(ApiError::LogUnavailable)),
        "{answer:?}"
    );
    assert_eq!(
        app.env.records_in(&app.sessions_topic()),
        1,
        "nothing appended"
    );
    // The next command finds the expired mark, settles it from the log and logs at 2.
    assert_eq!(log().await.expect("logs").version, 2);
    assert_eq!(app.env.records_in(&app.sessions_topic()), 2);
}

/// Two appends are not atomic, so a decision that makes two events is refused before anything
/// is marked or appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_with_two_events_is_refused_before_anything_is_written() {
    let (app, state) = one_instance().await;
    let (user, id) = (Uuid::now_v7(), Uuid::now_v7());
    let command = Command::new(Actor::user(user), &HeaderMap::new());
    let started = helpers::events::session_started(id, user);
    let two = |s| {
        let (mut events, next) = domain::start(s, &started)?;
        events.push(writer::NewEvent::new(helpers::events::attempt_logged(
            id, user,
        )));
        Ok((events, next))
    };
    let refused =
        writer::execute(&state, &command, aggregate::CLIMBING_SESSION, id, None, two).await;
    assert!(matches!(refused, Err(ApiError::Internal(_))), "{refused:?}");
    assert_eq!(state.heads.read(id).await, Ok(None), "nothing marked");
    assert_eq!(
        app.env.records_in(&app.sessions_topic()),
        0,
        "nothing appended"
    );
}
