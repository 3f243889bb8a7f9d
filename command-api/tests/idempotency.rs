//! W2: a retry with the same `Idempotency-Key` replays the first response and appends
//! nothing, also after the API restarts; failures injected: a restart between the two tries,
//! concurrent duplicates, a key reused for another request, a crash before the response was
//! stored.

mod helpers;

use helpers::{TestApp, api_config};
use serde_json::Value;
use uuid::Uuid;

const BODY: &str = r#"{"discipline":"boulder","indoor":true}"#;

async fn post(app: &TestApp, token: &str, key: &str, body: &str) -> reqwest::Response {
    app.post_json(
        "/v1/sessions",
        Some(token),
        &[("idempotency-key", key)],
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_replays_the_first_response_and_appends_nothing_even_after_a_restart() {
    let env = cruxlog_runtime::testkit::TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let first_app = TestApp::start(env.clone(), api_config(&env)).await;
    let token = first_app.token(Uuid::now_v7());
    let first = post(&first_app, &token, "retry-1", BODY).await;
    assert_eq!(first.status(), 201);
    let position = first.headers()["x-cruxlog-position"].clone();
    let first_body: Value = first.json().await.expect("json");

    let again = post(&first_app, &token, "retry-1", BODY).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["x-cruxlog-position"], position);
    assert_eq!(again.json::<Value>().await.expect("json"), first_body);

    // The API restarts (a new process state; the store is PostgreSQL).
    drop(first_app);
    let app = TestApp::start(env.clone(), api_config(&env)).await;
    let after_restart = post(&app, &token, "retry-1", BODY).await;
    assert_eq!(after_restart.status(), 201);
    assert_eq!(after_restart.headers()["idempotent-replayed"], "true");
    assert_eq!(
        after_restart.json::<Value>().await.expect("json"),
        first_body
    );

    let topic = env.kafka.topics().for_aggregate("climbing_session");
    assert_eq!(env.records_in(&topic), 1, "one append for three tries");

    // Keys are per caller: another user's same key is a new command.
    let other = app.token(Uuid::now_v7());
    assert!(
        post(&app, &other, "retry-1", BODY)
            .await
            .headers()
            .get("idempotent-replayed")
            .is_none()
    );
    assert_eq!(env.records_in(&topic), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_for_another_request_is_422_and_concurrent_duplicates_append_once() {
    let app = TestApp::api_only().await;
    let token = app.token(Uuid::now_v7());
    assert_eq!(post(&app, &token, "k", BODY).await.status(), 201);
    let other_body = r#"{"discipline":"sport","indoor":false}"#;
    let reused = post(&app, &token, "k", other_body).await;
    assert_eq!(reused.status(), 422);
    let problem: Value = reused.json().await.expect("json");
    assert_eq!(
        problem["type"],
        "https://cruxlog.dev/problems/idempotency-key-reused"
    );

    // Eight tries of one key at once: one runs, the rest replay it or are told to wait.
    let tries = (0..8).map(|_| post(&app, &token, "burst", BODY));
    let responses = futures::future::join_all(tries).await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert!(
        statuses.iter().all(|s| [201, 409].contains(s)),
        "{statuses:?}"
    );
    for response in responses.iter().filter(|r| r.status() == 409) {
        assert_eq!(response.headers()["retry-after"], "1");
    }
    let topic = app.env.kafka.topics().for_aggregate("climbing_session");
    assert_eq!(app.env.records_in(&topic), 2, "one append per key");

    let bad = post(&app, &token, &"x".repeat(300), BODY).await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_rerun_after_a_crash_before_its_response_was_stored_creates_the_same_ids() {
    let app = TestApp::api_only().await;
    let user = Uuid::now_v7();
    let token = app.token(user);
    let first: Value = post(&app, &token, "crash-1", BODY)
        .await
        .json()
        .await
        .expect("json");

    // What a crash between Kafka's acknowledgement and storing the response leaves: the key
    // claimed, no response, the claim expired.
    let db = sqlx::PgPool::connect(&app.env.database_url)
        .await
        .expect("db");
    let updated = sqlx::query(
        "update api.idempotency_keys set status = null, body = null,
                locked_until = now() - interval '1 second'
          where caller = $1 and key = 'crash-1'",
    )
    .bind(user.to_string())
    .execute(&db)
    .await
    .expect("update");
    assert_eq!(updated.rows_affected(), 1);

    let rerun = post(&app, &token, "crash-1", BODY).await;
    assert_eq!(rerun.status(), 201);
    assert!(
        rerun.headers().get("idempotent-replayed").is_none(),
        "ran again"
    );
    let rerun: Value = rerun.json().await.expect("json");
    assert_eq!(
        rerun["session_id"], first["session_id"],
        "same id both times"
    );
    // From now on it replays.
    let replay = post(&app, &token, "crash-1", BODY).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_first_try_frees_the_key_for_a_real_retry() {
    let env = cruxlog_runtime::testkit::TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let mut down = api_config(&env);
    down.kafka.brokers = "127.0.0.1:1".into();
    down.http.append_timeout_ms = 800;
    let broken = TestApp::start(env.clone(), down).await;
    let token = broken.token(Uuid::now_v7());
    assert_eq!(post(&broken, &token, "flaky", BODY).await.status(), 503);
    drop(broken);

    let app = TestApp::start(env.clone(), api_config(&env)).await;
    let retried = post(&app, &token, "flaky", BODY).await;
    assert_eq!(retried.status(), 201);
    assert!(retried.headers().get("idempotent-replayed").is_none());
}
