//! Security, black-box: the authorization matrix (every endpoint × anonymous / owner /
//! another user / admin), token tampering, oversized bodies, wrong content types, path
//! traversal in ids and injection strings.

mod helpers;

use cruxlog_schemas::ActorRole;
use helpers::{TestApp, api_config};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

struct Callers {
    owner: String,
    other: String,
    admin: String,
}

async fn register(app: &TestApp, email: &str) -> String {
    let body = json!({"email": email, "password": "correct horse battery", "display_name": "X"});
    let response: Value = app
        .post_json("/v1/auth/register", None, &[], &body.to_string())
        .await
        .json()
        .await
        .expect("json");
    response["access_token"].as_str().expect("token").to_owned()
}

async fn call(
    app: &TestApp,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> u16 {
    let mut request = app
        .client
        .request(method.clone(), format!("{}{path}", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    request.send().await.expect("request").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_each_kind_of_caller_as_the_matrix_says() {
    let app = TestApp::full_stack().await;
    let callers = Callers {
        owner: register(&app, "owner@example.org").await,
        other: register(&app, "other@example.org").await,
        admin: cruxlog_command_api::auth::TokenKeys::new(&api_config(&app.env).auth)
            .mint(Uuid::now_v7(), ActorRole::Admin, 300)
            .expect("token"),
    };
    let started: Value = app
        .post_session(&callers.owner, r#"{"discipline":"sport","indoor":false}"#)
        .await
        .json()
        .await
        .expect("json");
    let session = started["session_id"].as_str().expect("id").to_owned();
    let attempt_body = r#"{"style":"lead","result":"redpoint"}"#;
    let logged: Value = app
        .post_json(
            &format!("/v1/sessions/{session}/attempts"),
            Some(&callers.owner),
            &[],
            attempt_body,
        )
        .await
        .json()
        .await
        .expect("json");
    let attempt = logged["attempt_id"].as_str().expect("id").to_owned();
    let position = logged["position"].as_str().expect("position").to_owned();
    assert_eq!(
        call(
            &app,
            &Method::GET,
            &format!("/v1/sessions/{session}?after={position}"),
            Some(&callers.owner),
            None
        )
        .await,
        200
    );
    let owner_id = {
        let me: Value = app
            .get("/v1/me", &callers.owner)
            .await
            .json()
            .await
            .expect("json");
        me["user_id"].as_str().map(str::to_owned)
    };
    let owner_id = owner_id.unwrap_or_else(|| Uuid::now_v7().to_string());
    let profile = r#"{"display_name":"Someone"}"#;
    let sid = &session;
    // (method, path, body, [anonymous, owner, other user, admin]); destructive rows last.
    let rows: Vec<(Method, String, Option<&str>, [u16; 4])> = vec![
        (
            Method::GET,
            "/v1/sessions".into(),
            None,
            [401, 200, 200, 200],
        ),
        (
            Method::GET,
            format!("/v1/sessions/{sid}"),
            None,
            [401, 200, 404, 404],
        ),
        (
            Method::POST,
            format!("/v1/sessions/{sid}/attempts"),
            Some(attempt_body),
            [401, 201, 404, 404],
        ),
        (
            Method::PUT,
            format!("/v1/sessions/{sid}/attempts/{attempt}"),
            Some(attempt_body),
            [401, 200, 404, 404],
        ),
        (
            Method::GET,
            format!("/v1/analyses/{}", Uuid::now_v7()),
            None,
            [401, 404, 404, 404],
        ),
        (
            Method::GET,
            format!("/v1/analyses/{}/media/annotated_video", Uuid::now_v7()),
            None,
            [401, 404, 404, 404],
        ),
        (
            Method::POST,
            format!("/v1/sessions/{sid}/videos/{}/analyses", Uuid::now_v7()),
            Some("{}"),
            [401, 404, 404, 404],
        ),
        (
            Method::GET,
            "/v1/me/progress".into(),
            None,
            [401, 200, 200, 200],
        ),
        (Method::GET, "/v1/me".into(), None, [401, 200, 200, 404]),
        (
            Method::PUT,
            "/v1/me/profile".into(),
            Some(profile),
            [401, 200, 200, 404],
        ),
        (Method::GET, "/v1/ghosts".into(), None, [401, 200, 200, 200]),
        (
            Method::GET,
            "/v1/routines".into(),
            None,
            [401, 200, 200, 200],
        ),
        (
            Method::GET,
            "/v1/admin/users".into(),
            None,
            [401, 403, 403, 200],
        ),
        (
            Method::GET,
            format!("/v1/admin/users/{owner_id}?reason=support_request"),
            None,
            [401, 403, 403, 200],
        ),
        (
            Method::GET,
            format!("/v1/admin/users/{owner_id}/sessions?reason=support_request"),
            None,
            [401, 403, 403, 200],
        ),
        (
            Method::GET,
            "/v1/admin/pipeline".into(),
            None,
            [401, 403, 403, 200],
        ),
        (
            Method::GET,
            "/v1/admin/audit".into(),
            None,
            [401, 403, 403, 200],
        ),
        (
            Method::POST,
            format!("/v1/admin/users/{owner_id}/roles"),
            Some(r#"{"role":"admin"}"#),
            [401, 403, 403, 200],
        ),
        (
            Method::POST,
            "/v1/gyms".into(),
            Some(r#"{"name":"Arkose"}"#),
            [401, 403, 403, 201],
        ),
        (
            Method::DELETE,
            format!("/v1/sessions/{sid}/attempts/{attempt}"),
            None,
            [401, 200, 404, 404],
        ),
        (
            Method::POST,
            format!("/v1/sessions/{sid}/end"),
            Some("{}"),
            [401, 200, 404, 404],
        ),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, expected) in &rows {
        // Others first, so a destructive owner call does not change what they would see.
        let order = [
            (0, None),
            (2, Some(&callers.other)),
            (3, Some(&callers.admin)),
            (1, Some(&callers.owner)),
        ];
        for (index, token) in order {
            let got = call(&app, method, path, token.map(String::as_str), *body).await;
            if got != expected[index] {
                let who = ["anonymous", "owner", "other user", "admin"][index];
                wrong.push(format!(
                    "{method} {path} as {who}: {got}, expected {}",
                    expected[index]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "authorization matrix broken:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_tokens_big_bodies_wrong_types_traversal_and_injection_are_refused_cleanly() {
    let app = TestApp::full_stack().await;
    let keys = cruxlog_command_api::auth::TokenKeys::new(&api_config(&app.env).auth);
    let user = Uuid::now_v7();
    let valid = keys.mint(user, ActorRole::User, 300).expect("token");
    let claims = valid.split('.').nth(1).expect("claims");
    let other_key = cruxlog_command_api::config::AuthConfig {
        jwt_secret: cruxlog_runtime::config::Secret::new("someone else's key"),
        ..api_config(&app.env).auth
    };
    let wrong_audience = cruxlog_command_api::config::AuthConfig {
        audience: "another-app".into(),
        ..api_config(&app.env).auth
    };
    let tampered = [
        (
            "alg none",
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}."),
        ),
        (
            "wrong key",
            cruxlog_command_api::auth::TokenKeys::new(&other_key)
                .mint(user, ActorRole::Admin, 300)
                .expect("t"),
        ),
        (
            "expired",
            keys.mint(user, ActorRole::User, -120).expect("t"),
        ),
        (
            "wrong audience",
            cruxlog_command_api::auth::TokenKeys::new(&wrong_audience)
                .mint(user, ActorRole::User, 300)
                .expect("t"),
        ),
        ("garbage", "not.a.token".to_owned()),
        (
            "claims swapped",
            format!(
                "{}.{}.{}",
                valid.split('.').next().unwrap_or_default(),
                "eyJzdWIiOiJ4In0",
                valid.split('.').nth(2).unwrap_or_default()
            ),
        ),
    ];
    for (what, token) in &tampered {
        let response = app.get("/v1/sessions", token).await;
        assert_eq!(response.status(), 401, "{what}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{what}"
        );
    }

    let topic = app.env.kafka.topics().for_aggregate("climbing_session");
    let big = format!(
        r#"{{"discipline":"boulder","indoor":true,"location_name":"{}"}}"#,
        "x".repeat(200_000)
    );
    assert_eq!(app.post_session(&valid, &big).await.status(), 413);
    let as_text = app
        .client
        .post(format!("{}/v1/sessions", app.base))
        .bearer_auth(&valid)
        .header("content-type", "text/plain")
        .body(r#"{"discipline":"boulder","indoor":true}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(as_text.status(), 415);

    for path in [
        "/v1/sessions/..%2F..%2Fetc%2Fpasswd",
        "/v1/sessions/%00",
        "/v1/sessions/1'%20or%20'1'='1",
        "/v1/analyses/..%2f..%2fapi.accounts",
        "/v1/analyses/00000000-0000-0000-0000-000000000000/media/..%2F..%2Fetc%2Fpasswd",
    ] {
        let status = app.get(path, &valid).await.status();
        assert_eq!(status, 404, "{path}");
    }
    let injection = app
        .get("/v1/sessions?discipline=boulder'%20OR%20'1'='1", &valid)
        .await;
    assert_eq!(injection.status(), 422);
    assert_eq!(
        app.env.records_in(&topic),
        0,
        "nothing appended by any of it"
    );

    // NUL and other control characters in text never reach the log (PostgreSQL text refuses
    // NUL, so they would poison the projection).
    let nul = json!({"discipline": "boulder", "indoor": true, "location_name": "Arkose\u{0}"});
    let refused = app.post_session(&valid, &nul.to_string()).await;
    assert_eq!(refused.status(), 422);

    // Hostile strings are data: stored and returned as given, never interpreted.
    let hostile = "Robert'); drop table read.sessions; -- <script>alert(1)</script>";
    let body = json!({"discipline": "boulder", "indoor": true, "location_name": hostile});
    let created = app.post_session(&valid, &body.to_string()).await;
    assert_eq!(created.status(), 201);
    let position = created.headers()["x-cruxlog-position"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(app.env.records_in(&topic), 1);
    let created: Value = created.json().await.expect("json");
    let path = format!(
        "/v1/sessions/{}?after={position}",
        created["session_id"].as_str().expect("id")
    );
    let shown: Value = app.get(&path, &valid).await.json().await.expect("json");
    assert_eq!(shown["location_name"], hostile);
}
