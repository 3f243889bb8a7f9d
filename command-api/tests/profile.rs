//! The caller's own account: profile snapshots through the user's head with `If-Match`,
//! validation naming fields, and `GET /v1/me` reading it back through the projector.

mod helpers;

use std::time::Duration;

use helpers::TestApp;
use serde_json::{Value, json};

async fn put_profile(
    app: &TestApp,
    token: &str,
    if_match: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .put(format!("{}/v1/me/profile", app.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("if-match", if_match)
        .body(body.to_string())
        .send()
        .await
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_is_changed_with_if_match_and_read_back_sealed_fields_opened() {
    let app = TestApp::full_stack().await;
    let registration = json!({"email": "janja@example.org", "password": "correct horse battery", "display_name": "Janja"});
    let user: Value = app
        .post_json("/v1/auth/register", None, &[], &registration.to_string())
        .await
        .json()
        .await
        .expect("json");
    let token = user["access_token"].as_str().expect("token").to_owned();
    let profile = json!({"display_name": "Janja G.", "birth_year": 1997, "height_cm": 164.0,
        "arm_span_cm": 168.5, "experience": "elite", "focus": ["power", "technique"],
        "equipment": ["hangboard"]});
    let changed = put_profile(&app, &token, "\"1\"", &profile).await;
    assert_eq!(changed.status(), 200, "{:?}", changed.text().await);
    assert_eq!(changed.headers()["etag"], "\"2\"");
    assert_eq!(
        put_profile(&app, &token, "\"1\"", &profile).await.status(),
        409
    );

    let bad =
        json!({"display_name": "", "height_cm": 20.0, "experience": "god", "focus": ["magic"]});
    let refused = put_profile(&app, &token, "\"2\"", &bad).await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.expect("json");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["display_name", "experience", "focus", "height_cm"]);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let me: Value = app.get("/v1/me", &token).await.json().await.expect("json");
        if me["profile"]["arm_span_cm"] == 168.5 {
            assert_eq!(me["email"], "janja@example.org");
            assert_eq!(me["profile"]["display_name"], "Janja G.");
            assert_eq!(me["profile"]["focus"], json!(["power", "technique"]));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "profile never projected: {me}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
