//! The contract: `/openapi.json` is OpenAPI 3.1 and documents every route, and schemathesis
//! (from PyPI, installed by `infra/local/stack.sh`) fuzzes the live service against it: no
//! 5xx, no status, content type or body outside the schema.

mod helpers;

use std::process::Command;

use cruxlog_schemas::ActorRole;
use helpers::{TestApp, api_config};
use serde_json::Value;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_3_1_documents_every_route_and_the_swagger_ui_is_served() {
    let app = TestApp::api_only().await;
    let response = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.expect("json");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/v1/auth/register",
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/sessions",
        "/v1/sessions/{session_id}",
        "/v1/sessions/{session_id}/attempts",
        "/v1/sessions/{session_id}/attempts/{attempt_id}",
        "/v1/sessions/{session_id}/end",
        "/v1/sessions/{session_id}/attempts/{attempt_id}/videos",
        "/v1/sessions/{session_id}/videos/{video_id}/analyses",
        "/v1/me",
        "/v1/me/profile",
        "/v1/me/progress",
        "/v1/analyses/{analysis_id}",
        "/v1/analyses/{analysis_id}/media/{name}",
        "/v1/events",
        "/v1/admin/users",
        "/v1/admin/users/{user_id}",
        "/v1/admin/users/{user_id}/sessions",
        "/v1/admin/users/{user_id}/roles",
        "/v1/admin/users/{user_id}/roles/{role}",
        "/v1/admin/pipeline",
        "/v1/admin/analyses",
        "/v1/admin/users/{user_id}/analyses",
        "/v1/admin/audit",
        "/v1/gyms",
        "/v1/gyms/{gym_id}/walls",
        "/v1/walls/{wall_id}",
        "/v1/walls/{wall_id}/photos",
        "/v1/walls/{wall_id}/routes",
        "/v1/routes/{route_id}",
        "/v1/routes/{route_id}/confirm",
        "/v1/ghosts",
        "/v1/routines",
        "/v1/routines/{routine_id}",
        "/v1/routines/{routine_id}/workouts",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let problem = &doc["components"]["schemas"]["Problem"];
    assert!(problem["properties"]["errors"].is_object(), "{problem}");
    let docs = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .expect("request");
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.expect("html").contains("swagger"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_no_server_error_and_no_response_outside_the_schema() {
    let app = TestApp::full_stack().await;
    let user = Uuid::now_v7();
    let token = cruxlog_command_api::auth::TokenKeys::new(&api_config(&app.env).auth)
        .mint(user, ActorRole::Admin, 3600)
        .expect("token");
    // Something to find: a session of the caller.
    assert_eq!(
        app.post_session(&token, r#"{"discipline":"boulder","indoor":true}"#)
            .await
            .status(),
        201
    );
    let cli = helpers::python().replace("/bin/python", "/bin/schemathesis");
    let url = format!("{}/openapi.json", app.base);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(cli)
            .args(["run", &url])
            .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--max-examples", "15", "--workers", "2", "--request-timeout", "10"])
            .args(["--generation-deterministic", "--phases", "examples,fuzzing"])
            // The event stream never ends by design; it has its own test.
            .args(["--exclude-path", "/v1/events"])
            // Binary uploads: schemathesis generates no videos or images; tests/uploads.rs,
            // tests/videos.rs and tests/walls.rs cover those routes with real and broken files.
            .args(["--exclude-path-regex", "/(videos|photos)$"])
            .args(["--suppress-health-check", "all"])
            .output()
            .expect("schemathesis runs (installed by infra/local/stack.sh)")
    })
    .await
    .expect("joined");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}"
    );
}
