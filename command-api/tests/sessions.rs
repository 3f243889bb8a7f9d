//! Black-box tests of the session endpoints on the real broker and database.

mod helpers;

use std::time::{Duration, Instant};

use helpers::{TestApp, api_config};
use serde_json::Value;
use uuid::Uuid;

const VALID: &str =
    r#"{"discipline":"boulder","indoor":true,"location_name":"Arkose","planned_minutes":120}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_session_reaches_the_read_model_and_its_warmup_comes_back() {
    let app = TestApp::full_stack().await;
    let user = Uuid::now_v7();
    let token = app.token(user);

    let response = app.post_session(&token, VALID).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    let session_id = created["session_id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let position = created["position"].as_str().expect("position").to_owned();

    // Read-your-writes: given the position, the query waits for the projection.
    let response = app
        .client
        .get(format!("{}/v1/sessions/{session_id}", app.base))
        .query(&[("after", &position)])
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("x-cruxlog-stale").is_none(),
        "projection should catch up within the bound"
    );
    let session: Value = response.json().await.expect("json");
    assert_eq!(session["user_id"], user.to_string());
    assert_eq!(session["discipline"], "boulder");
    assert_eq!(session["planned_minutes"], 120);

    // The analyzer's result, through Python and back through Kafka and the projector.
    let deadline = Instant::now() + Duration::from_secs(60);
    let warmup = loop {
        let session: Value = app
            .client
            .get(format!("{}/v1/sessions/{session_id}", app.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        if let Some(warmup) = session["warmups"].as_array().and_then(|w| w.first()) {
            break warmup.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no warm-up plan after 60 s: {session}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(warmup["analyzer"]["name"], "warmup");
    assert_eq!(warmup["analyzer"]["version"], 1);
    // 120 planned minutes -> a 20-minute warm-up (1/6, within 10..=25).
    assert_eq!(warmup["total_minutes"], 20);
    let steps = warmup["steps"].as_array().expect("steps");
    let sum: i64 = steps
        .iter()
        .map(|s| s["minutes"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(sum, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_problem_json_naming_the_field_and_appends_nothing() {
    let app = TestApp::api_only().await;
    let token = app.token(Uuid::now_v7());
    let cases: &[(&str, u16, Option<&str>)] = &[
        (r#"{"discipline": "boulder", "indoor": tru"#, 400, None),
        ("", 400, None),
        (r#"{"discipline": "boulder"}"#, 422, Some("indoor")),
        (r#"{"indoor": true}"#, 422, Some("discipline")),
        (
            r#"{"discipline": 7, "indoor": true}"#,
            422,
            Some("discipline"),
        ),
        (
            r#"{"discipline": "boulder", "indoor": "yes"}"#,
            422,
            Some("indoor"),
        ),
        (
            r#"{"discipline": "ice", "indoor": true}"#,
            422,
            Some("discipline"),
        ),
        (
            r#"{"discipline": "sport", "indoor": true, "planned_minutes": 100000}"#,
            422,
            Some("planned_minutes"),
        ),
        (
            r#"{"discipline": "sport", "indoor": true, "mood": "great"}"#,
            422,
            Some("mood"),
        ),
        (r#"["boulder", true]"#, 422, Some("(body)")),
    ];
    for (body, status, field) in cases {
        let response = app.post_session(&token, body).await;
        assert_eq!(response.status().as_u16(), *status, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
        let problem: Value = response.json().await.expect("problem json");
        assert_eq!(problem["status"], *status);
        if let Some(field) = field {
            assert_eq!(problem["errors"][0]["field"], *field, "{body}: {problem}");
        }
    }

    let response = app
        .client
        .post(format!("{}/v1/sessions", app.base))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(VALID)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 415);

    let huge = format!(
        r#"{{"discipline":"boulder","indoor":true,"location_name":"{}"}}"#,
        "x".repeat(100_000)
    );
    assert_eq!(app.post_session(&token, &huge).await.status(), 413);

    let response = app
        .client
        .post(format!("{}/v1/sessions", app.base))
        .header("content-type", "application/json")
        .body(VALID)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    assert_eq!(app.post_session("not-a-token", VALID).await.status(), 401);

    assert_eq!(
        app.env.records_in(&app.sessions_topic()),
        0,
        "rejected commands must append nothing"
    );
    assert_eq!(app.post_session(&token, VALID).await.status(), 201);
    assert_eq!(
        app.env.records_in(&app.sessions_topic()),
        1,
        "the valid command appends exactly one event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_session_is_not_found() {
    let app = TestApp::full_stack().await;
    let owner = app.token(Uuid::now_v7());
    let created: Value = app
        .post_session(&owner, VALID)
        .await
        .json()
        .await
        .expect("json");
    let url = format!(
        "{}/v1/sessions/{}",
        app.base,
        created["session_id"].as_str().expect("id")
    );
    let position = created["position"].as_str().expect("position");

    let mine = app
        .client
        .get(&url)
        .query(&[("after", position)])
        .bearer_auth(&owner)
        .send()
        .await
        .expect("request");
    assert_eq!(mine.status(), 200);
    let stranger = app.token(Uuid::now_v7());
    let theirs = app
        .client
        .get(&url)
        .bearer_auth(&stranger)
        .send()
        .await
        .expect("request");
    assert_eq!(theirs.status(), 404);
    let anonymous = app.client.get(&url).send().await.expect("request");
    assert_eq!(anonymous.status(), 401);
    for bad_id in ["not-a-uuid", "..%2F..%2Fetc%2Fpasswd", "1%27%20or%201%3D1"] {
        let response = app
            .client
            .get(format!("{}/v1/sessions/{bad_id}", app.base))
            .bearer_auth(&owner)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404, "{bad_id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_unreachable_a_command_gets_503_and_retry_after_within_the_bound() {
    let env = cruxlog_runtime::testkit::TestEnv::new().await;
    let mut config = api_config(&env);
    // Nothing listens on port 1: every append fails.
    config.kafka.brokers = "127.0.0.1:1".into();
    config.http.append_timeout_ms = 1_500;
    let app = TestApp::start(env, config).await;
    let token = app.token(Uuid::now_v7());
    let started = Instant::now();
    let response = app.post_session(&token, VALID).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(elapsed < Duration::from_millis(2_500), "took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_sessions_list_newest_first_in_pages_with_filters() {
    let app = TestApp::full_stack().await;
    let (me, stranger) = (app.token(Uuid::now_v7()), app.token(Uuid::now_v7()));
    let now = chrono::Utc::now();
    let mut last_position = String::new();
    for i in 0..5i64 {
        let discipline = if i % 2 == 0 { "boulder" } else { "sport" };
        let started_at = (now - chrono::Duration::hours(i + 1)).to_rfc3339();
        let body =
            format!(r#"{{"discipline":"{discipline}","indoor":true,"started_at":"{started_at}"}}"#);
        let created: Value = app
            .post_session(&me, &body)
            .await
            .json()
            .await
            .expect("json");
        last_position = created["position"].as_str().expect("position").to_owned();
    }
    assert_eq!(app.post_session(&stranger, VALID).await.status(), 201);
    let list = |query: &'static str, token: String| {
        let (client, base) = (app.client.clone(), app.base.clone());
        let position = last_position.clone();
        async move {
            client
                .get(format!("{base}/v1/sessions?{query}"))
                .header("x-cruxlog-position", position)
                .bearer_auth(token)
                .send()
                .await
                .expect("request")
        }
    };
    // Wait for the projection, then page through.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page: Value = list("limit=100", me.clone())
            .await
            .json()
            .await
            .expect("json");
        if page["sessions"].as_array().is_some_and(|s| s.len() == 5) {
            break;
        }
        assert!(Instant::now() < deadline, "sessions never listed: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..4 {
        let url = match &cursor {
            Some(cursor) => format!("{}/v1/sessions?limit=2&cursor={cursor}", app.base),
            None => format!("{}/v1/sessions?limit=2", app.base),
        };
        let page: Value = app
            .client
            .get(url)
            .bearer_auth(&me)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        for session in page["sessions"].as_array().expect("sessions") {
            seen.push(
                session["started_at"]
                    .as_str()
                    .expect("started_at")
                    .to_owned(),
            );
        }
        cursor = page["next"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 5, "every session once: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");

    let sport: Value = list("discipline=sport", me.clone())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(sport["sessions"].as_array().map(Vec::len), Some(2));
    // The stranger's session was appended last: wait for it too, then it is theirs alone.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let theirs: Value = list("limit=100", stranger.clone())
            .await
            .json()
            .await
            .expect("json");
        let count = theirs["sessions"].as_array().map_or(0, Vec::len);
        assert!(count <= 1, "only the caller's own sessions: {theirs}");
        if count == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "their session never listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("discipline=ice", "discipline"),
        ("cursor=nope", "cursor"),
        ("limit=many", "limit"),
    ] {
        let response = list(query, me.clone()).await;
        assert_eq!(response.status(), 422, "{query}");
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["errors"][0]["field"], field, "{query}");
    }
    assert_eq!(
        app.client
            .get(format!("{}/v1/sessions", app.base))
            .send()
            .await
            .expect("request")
            .status(),
        401
    );
}
