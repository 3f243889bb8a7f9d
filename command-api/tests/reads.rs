//! Reads through the projector: a session with its attempts after read-your-writes, progress
//! figures from the attempts, and isolation between users.

mod helpers;

use helpers::TestApp;
use serde_json::{Value, json};
use uuid::Uuid;

async fn log(app: &TestApp, token: &str, session: &str, body: Value) -> Value {
    let path = format!("/v1/sessions/{session}/attempts");
    let response = app
        .post_json(&path, Some(token), &[], &body.to_string())
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_shows_its_live_attempts_and_progress_counts_them() {
    let app = TestApp::full_stack().await;
    let user = Uuid::now_v7();
    let token = app.token(user);
    let started: Value = app
        .post_session(&token, r#"{"discipline":"boulder","indoor":true}"#)
        .await
        .json()
        .await
        .expect("json");
    let session = started["session_id"].as_str().expect("id").to_owned();
    let sent =
        json!({"style":"boulder","result":"flash","grade_system":"fontainebleau","grade":"6b+"});
    let failed = json!({"style":"boulder","result":"fail","falls":2,"grade_system":"fontainebleau","grade":"7a"});
    log(&app, &token, &session, sent.clone()).await;
    log(&app, &token, &session, sent).await;
    let mistake = log(&app, &token, &session, failed).await;
    let path = format!(
        "/v1/sessions/{session}/attempts/{}",
        mistake["attempt_id"].as_str().expect("id")
    );
    let deleted = app
        .client
        .delete(format!("{}{path}", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(deleted.status(), 200);
    let position = deleted.headers()["x-cruxlog-position"]
        .to_str()
        .expect("ascii")
        .to_owned();

    let shown = app
        .get(&format!("/v1/sessions/{session}?after={position}"), &token)
        .await;
    assert_eq!(shown.status(), 200);
    assert!(
        shown.headers().get("x-cruxlog-stale").is_none(),
        "caught up"
    );
    assert_eq!(shown.headers()["etag"], "\"5\"");
    let view: Value = shown.json().await.expect("json");
    let attempts = view["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "the deleted attempt is gone: {view}");
    assert!(
        attempts
            .iter()
            .all(|a| a["grade_label"] == "6B+" && a["sent"] == true)
    );

    let progress: Value = app
        .get("/v1/me/progress", &token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(progress["grade_pyramid"][0]["grade_label"], "6B+");
    assert_eq!(progress["grade_pyramid"][0]["sends"], 2);
    assert_eq!(progress["grade_pyramid"][0]["first_try_sends"], 2);
    assert_eq!(progress["weekly_volume"][0]["attempts"], 2);
    assert_eq!(progress["send_rate_by_style"][0]["style"], "boulder");
    assert_eq!(progress["send_rate_by_style"][0]["send_rate"], 1.0);

    // Session filters by the attempts' grade and result (deleted attempts do not count).
    for (query, expected) in [
        ("grade=6B%2B", 1),
        ("grade=6b%2B&result=flash", 1),
        ("grade=7a", 0),
        ("result=fail", 0),
        ("result=flash", 1),
    ] {
        let page: Value = app
            .get(&format!("/v1/sessions?{query}"), &token)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(
            page["sessions"].as_array().map(Vec::len),
            Some(expected),
            "{query}"
        );
    }
    for (query, field) in [("grade=9z", "grade"), ("result=maybe", "result")] {
        let refused = app.get(&format!("/v1/sessions?{query}"), &token).await;
        assert_eq!(refused.status(), 422, "{query}");
        let problem: Value = refused.json().await.expect("json");
        assert_eq!(problem["errors"][0]["field"], field);
    }

    // Someone else sees none of it.
    let stranger = app.token(Uuid::now_v7());
    assert_eq!(
        app.get(&format!("/v1/sessions/{session}"), &stranger)
            .await
            .status(),
        404
    );
    let theirs: Value = app
        .get("/v1/me/progress", &stranger)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(theirs["grade_pyramid"], json!([]));
    assert_eq!(
        app.get(&format!("/v1/analyses/{}", Uuid::now_v7()), &token)
            .await
            .status(),
        404
    );
}
