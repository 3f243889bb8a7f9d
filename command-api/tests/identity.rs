//! Identity end to end on the real broker and database: register, log in, refresh rotation
//! with reuse detection, log out, rate limits, the first admin, and failures that must leave
//! nothing behind.

mod helpers;

use std::time::Duration;

use helpers::{TestApp, api_config};
use serde_json::{Value, json};

fn registration(email: &str) -> String {
    json!({"email": email, "password": "correct horse battery", "display_name": "Lynn"}).to_string()
}

async fn register(app: &TestApp, email: &str) -> Value {
    let response = app
        .post_json("/v1/auth/register", None, &[], &registration(email))
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json().await.expect("json")
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    let body = json!({"email": email, "password": password}).to_string();
    app.post_json("/v1/auth/login", None, &[], &body).await
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    let body = json!({ "refresh_token": token }).to_string();
    app.post_json("/v1/auth/refresh", None, &[], &body).await
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_user_logs_in_and_uses_the_api_and_wrong_passwords_are_401() {
    let app = TestApp::api_only().await;
    let registered = register(&app, "Lynn.Hill@Example.org").await;
    assert_eq!(registered["role"], "user");
    assert_eq!(registered["token_type"], "Bearer");
    assert_eq!(
        app.env
            .records_in(&app.env.kafka.topics().for_aggregate("user")),
        1
    );
    let access = str_of(&registered, "access_token");
    let started = app
        .post_session(access, r#"{"discipline":"sport","indoor":true}"#)
        .await;
    assert_eq!(started.status(), 201);

    // Emails compare without case or surrounding spaces.
    let ok = login(&app, " lynn.hill@example.ORG", "correct horse battery").await;
    assert_eq!(ok.status(), 200);
    let tokens: Value = ok.json().await.expect("json");
    assert_eq!(tokens["user_id"], registered["user_id"]);

    for (email, password) in [
        ("lynn.hill@example.org", "wrong horse battery"),
        ("nobody@example.org", "correct horse battery"),
    ] {
        let refused = login(&app, email, password).await;
        assert_eq!(refused.status(), 401);
        assert_eq!(
            refused.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = refused.json().await.expect("json");
        // The same answer whether or not the email exists.
        assert_eq!(problem["detail"], "unauthorized: invalid email or password");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_email_is_409_and_bad_registrations_are_422_with_nothing_appended() {
    let app = TestApp::api_only().await;
    register(&app, "alex@example.org").await;
    let taken = app
        .post_json(
            "/v1/auth/register",
            None,
            &[],
            &registration("ALEX@example.org"),
        )
        .await;
    assert_eq!(taken.status(), 409);
    assert_eq!(taken.headers()["content-type"], "application/problem+json");

    let bad = json!({"email": "alex", "password": "short", "display_name": ""}).to_string();
    let refused = app.post_json("/v1/auth/register", None, &[], &bad).await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.expect("json");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["email", "password", "display_name"]);
    assert_eq!(
        app.env
            .records_in(&app.env.kafka.topics().for_aggregate("user")),
        1,
        "only the first registration was appended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
    let app = TestApp::api_only().await;
    let first = register(&app, "chris@example.org").await;
    let original = str_of(&first, "refresh_token").to_owned();

    let rotated = refresh(&app, &original).await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.expect("json");
    let next = str_of(&rotated, "refresh_token").to_owned();
    assert_ne!(next, original);
    assert_eq!(rotated["user_id"], first["user_id"]);

    // The old token again: someone copied it. It fails, and so does the thief's or the
    // owner's newer token of the same family.
    let reused = refresh(&app, &original).await;
    assert_eq!(reused.status(), 401);
    assert_eq!(refresh(&app, &next).await.status(), 401);

    // Another family (a second log-in) is untouched, until it logs out.
    let other: Value = login(&app, "chris@example.org", "correct horse battery")
        .await
        .json()
        .await
        .expect("json");
    let other_token = str_of(&other, "refresh_token").to_owned();
    let body = json!({ "refresh_token": other_token }).to_string();
    let out = app.post_json("/v1/auth/logout", None, &[], &body).await;
    assert_eq!(out.status(), 204);
    assert_eq!(refresh(&app, &other_token).await.status(), 401);
    assert_eq!(refresh(&app, "not-a-token").await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_is_rate_limited_per_client_with_retry_after() {
    let env = cruxlog_runtime::testkit::TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let mut config = api_config(&env);
    config.auth.rate_burst = 3;
    config.auth.rate_period_ms = 60_000;
    let app = TestApp::start(env, config).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = login(&app, "who@example.org", "whatever-password").await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
            let wait: u64 = response.headers()["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!((1..=60).contains(&wait), "{wait}");
        }
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    // Other routes are not limited.
    let token = app.token(uuid::Uuid::now_v7());
    assert_eq!(app.get("/v1/sessions", &token).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_comes_from_the_operator_command_and_logs_in_as_admin() {
    let app = TestApp::full_stack().await;
    let state = cruxlog_command_api::AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    let admin = cruxlog_command_api::identity::create_admin(
        &state,
        "root@example.org".into(),
        "a long admin password".into(),
        "Root".into(),
    )
    .await
    .expect("admin created");
    // The role comes from the identity read model: wait for the projector.
    let db = sqlx::PgPool::connect(&app.env.database_url)
        .await
        .expect("db");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let granted: bool = sqlx::query_scalar(
            "select exists (select from read.user_roles where user_id = $1 and role = 'admin')",
        )
        .bind(admin)
        .fetch_one(&db)
        .await
        .expect("query");
        if granted {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "role never projected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = login(&app, "root@example.org", "a long admin password").await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.expect("json");
    assert_eq!(tokens["user_id"], admin.to_string());
    assert_eq!(tokens["role"], "admin");
    // Registration never grants admin.
    let user = register(&app, "someone@example.org").await;
    assert_eq!(user["role"], "user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_kafka_refused_frees_the_email_again() {
    let env = cruxlog_runtime::testkit::TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let mut down = api_config(&env);
    down.kafka.brokers = "127.0.0.1:1".into();
    down.http.append_timeout_ms = 1_000;
    let broken = TestApp::start(env.clone(), down).await;
    let refused = broken
        .post_json(
            "/v1/auth/register",
            None,
            &[],
            &registration("sam@example.org"),
        )
        .await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    drop(broken);

    let app = TestApp::start(env.clone(), api_config(&env)).await;
    // Not registered: no log-in, and the email can be taken now.
    assert_eq!(
        login(&app, "sam@example.org", "correct horse battery")
            .await
            .status(),
        401
    );
    register(&app, "sam@example.org").await;
}
