//! W3: `If-Match` conflicts are 409, also with two API instances at once; failures injected:
//! concurrent writers on two instances, a writer that died after Kafka acknowledged, one that
//! died before appending, and a broker that refused an append.

mod helpers;

use cruxlog_command_api::AppState;
use cruxlog_schemas::{Actor, EventMeta};
use helpers::{TestApp, api_config};
use serde_json::Value;
use uuid::Uuid;

const ATTEMPT: &str =
    r#"{"style":"boulder","result":"fail","falls":1,"grade_system":"fontainebleau","grade":"6b+"}"#;

async fn start_session(app: &TestApp, token: &str) -> Uuid {
    let response = app
        .post_session(token, r#"{"discipline":"boulder","indoor":true}"#)
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let body: Value = response.json().await.expect("json");
    body["session_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid")
}

async fn log_attempt(
    app: &TestApp,
    token: &str,
    session: Uuid,
    if_match: Option<&str>,
) -> reqwest::Response {
    let path = format!("/v1/sessions/{session}/attempts");
    let headers: Vec<(&str, &str)> = if_match.map(|v| ("if-match", v)).into_iter().collect();
    app.post_json(&path, Some(token), &headers, ATTEMPT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_api_instances_racing_on_one_version_give_one_success_and_409s() {
    let env = cruxlog_runtime::testkit::TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let first = TestApp::start(env.clone(), api_config(&env)).await;
    let second = TestApp::start(env.clone(), api_config(&env)).await;
    let user = Uuid::now_v7();
    let token = first.token(user);
    let session = start_session(&first, &token).await;

    let tries = (0..12).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        log_attempt(app, &token, session, Some("\"1\""))
    });
    let responses = futures::future::join_all(tries).await;
    let mut created = 0;
    for response in responses {
        match response.status().as_u16() {
            201 => {
                created += 1;
                assert_eq!(response.headers()["etag"], "\"2\"");
            }
            409 => {
                let problem: Value = response.json().await.expect("json");
                assert_eq!(
                    problem["type"],
                    "https://cruxlog.dev/problems/version-conflict"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1, "exactly one writer wins version 2");
    let topic = env.kafka.topics().for_aggregate("climbing_session");
    assert_eq!(env.records_in(&topic), 2);

    // Without If-Match, commands on both instances are serialised, none lost, versions dense.
    let tries = (0..6).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        log_attempt(app, &token, session, None)
    });
    let mut etags: Vec<String> = futures::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| {
            assert_eq!(r.status(), 201);
            r.headers()["etag"].to_str().expect("ascii").to_owned()
        })
        .collect();
    etags.sort();
    assert_eq!(
        etags,
        ["\"3\"", "\"4\"", "\"5\"", "\"6\"", "\"7\"", "\"8\""]
    );
    assert_eq!(env.records_in(&topic), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_if_match_is_409_and_the_current_etag_works() {
    let app = TestApp::api_only().await;
    let user = Uuid::now_v7();
    let token = app.token(user);
    let session = start_session(&app, &token).await;
    let logged: Value = log_attempt(&app, &token, session, Some("\"1\""))
        .await
        .json()
        .await
        .expect("json");
    let attempt = logged["attempt_id"].as_str().expect("id");
    let path = format!("/v1/sessions/{session}/attempts/{attempt}");
    let put = |etag: &'static str| {
        app.client
            .put(format!("{}{path}", app.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("if-match", etag)
            .body(ATTEMPT)
            .send()
    };
    assert_eq!(put("\"1\"").await.expect("request").status(), 409);
    let corrected = put("\"2\"").await.expect("request");
    assert_eq!(corrected.status(), 200);
    assert_eq!(corrected.headers()["etag"], "\"3\"");
    assert_eq!(
        put("not-a-version").await.expect("request").status(),
        422,
        "a malformed If-Match names the header"
    );

    // Another user's session does not exist for them; an ended session takes no attempts.
    let stranger = app.token(Uuid::now_v7());
    assert_eq!(
        log_attempt(&app, &stranger, session, None).await.status(),
        404
    );
    let end = app
        .post_json(
            &format!("/v1/sessions/{session}/end"),
            Some(&token),
            &[],
            "{}",
        )
        .await;
    assert_eq!(end.status(), 200);
    assert_eq!(log_attempt(&app, &token, session, None).await.status(), 409);
}

/// What a writer that died mid-command leaves: the head marked pending since long ago.
async fn leave_pending(app: &TestApp, session: Uuid, pending: i64) {
    let db = sqlx::PgPool::connect(&app.env.database_url)
        .await
        .expect("db");
    // The move after the last command's answer may still be on its way (ADR 0013).
    for _ in 0..200 {
        let moving: bool = sqlx::query_scalar(
            "select pending_version is not null from api.aggregate_heads where aggregate_id = $1",
        )
        .bind(session)
        .fetch_one(&db)
        .await
        .expect("head");
        if !moving {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let marked = sqlx::query(
        "update api.aggregate_heads
            set pending_version = $2, pending_state = state,
                pending_since = now() - interval '1 minute'
          where aggregate_id = $1 and pending_version is null",
    )
    .bind(session)
    .bind(pending)
    .execute(&db)
    .await
    .expect("update");
    assert_eq!(marked.rows_affected(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_died_after_kafka_acknowledged_is_settled_from_the_log() {
    let app = TestApp::api_only().await;
    let user = Uuid::now_v7();
    let token = app.token(user);
    let session = start_session(&app, &token).await;

    // Died after the append of version 2 was acknowledged, before moving the head.
    leave_pending(&app, session, 2).await;
    let state = AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    let attempt = helpers::events::attempt_logged(session, user);
    let meta = EventMeta::new(session, 2, Actor::user(user));
    state.log.append(&meta, &attempt).await.expect("appended");

    // The log has version 2, so If-Match "1" is stale and "2" is current.
    assert_eq!(
        log_attempt(&app, &token, session, Some("\"1\""))
            .await
            .status(),
        409
    );
    let next = log_attempt(&app, &token, session, Some("\"2\"")).await;
    assert_eq!(next.status(), 201);
    assert_eq!(next.headers()["etag"], "\"3\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_died_before_appending_or_a_refused_append_gives_the_version_back() {
    let env = cruxlog_runtime::testkit::TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let app = TestApp::start(env.clone(), api_config(&env)).await;
    let token = app.token(Uuid::now_v7());
    let session = start_session(&app, &token).await;

    // Died before its append of version 2 reached Kafka.
    leave_pending(&app, session, 2).await;
    let next = log_attempt(&app, &token, session, Some("\"1\"")).await;
    assert_eq!(next.status(), 201, "version 2 was never appended");
    assert_eq!(next.headers()["etag"], "\"2\"");

    // An instance whose broker is unreachable: 503, and version 3 stays free.
    let mut down = api_config(&env);
    down.kafka.brokers = "127.0.0.1:1".into();
    down.http.append_timeout_ms = 800;
    let broken = TestApp::start(env.clone(), down).await;
    assert_eq!(
        log_attempt(&broken, &token, session, Some("\"2\""))
            .await
            .status(),
        503
    );
    let after = log_attempt(&app, &token, session, Some("\"2\"")).await;
    assert_eq!(after.status(), 201);
    assert_eq!(after.headers()["etag"], "\"3\"");
}
