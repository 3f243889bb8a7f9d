//! W3 at the writer itself: many writers on one head at once, through two API states sharing
//! the database, as two instances would. Creating an aggregate skips reading its head (the
//! mark at version 0 checks it is absent), so creating one id many times at once must still
//! append once.

mod helpers;

use axum::http::HeaderMap;
use cruxlog_command_api::{AppState, command::Command, domain, writer};
use cruxlog_schemas::{Actor, events::aggregate};
use helpers::{TestApp, api_config};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_one_aggregate_many_times_at_once_appends_it_once() {
    let app = TestApp::api_only().await;
    let first = AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    let second = AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    let user = Uuid::now_v7();
    let session_id = Uuid::now_v7();
    let event = helpers::events::session_started(session_id, user);
    let command = Command::new(Actor::user(user), &HeaderMap::new());
    let tries = (0..10).map(|i| {
        let state = if i % 2 == 0 { &first } else { &second };
        writer::execute(
            state,
            &command,
            aggregate::CLIMBING_SESSION,
            session_id,
            None,
            |s| domain::start(s, &event),
        )
    });
    let written = futures::future::join_all(tries).await;
    let mut appended = 0;
    for written in written {
        let written = written.expect("every try succeeds");
        assert_eq!(written.version, 1);
        appended += written.event_ids.len();
    }
    assert_eq!(appended, 1, "one try appends, the others find it started");
    assert_eq!(app.env.records_in(&app.sessions_topic()), 1);
}
