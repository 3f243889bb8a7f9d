//! Admin endpoints: roles granted and revoked through the user's head, 403 for non-admins,
//! every read of personal data audited before it is shown (and not shown when the audit
//! cannot be written), pipeline health with lag per partition.

mod helpers;

use std::time::Duration;

use cruxlog_schemas::ActorRole;
use helpers::{TestApp, api_config};
use serde_json::{Value, json};
use uuid::Uuid;

async fn register(app: &TestApp, email: &str) -> Value {
    let body =
        json!({"email": email, "password": "correct horse battery", "display_name": "Ondra"});
    let response = app
        .post_json("/v1/auth/register", None, &[], &body.to_string())
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.expect("json")
}

fn admin_token(app: &TestApp) -> String {
    cruxlog_command_api::auth::TokenKeys::new(&api_config(&app.env).auth)
        .mint(Uuid::now_v7(), ActorRole::Admin, 300)
        .expect("token")
}

async fn wait_for_user(app: &TestApp, admin: &str, user_id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let users: Value = app
            .get("/v1/admin/users", admin)
            .await
            .json()
            .await
            .expect("json");
        if users
            .as_array()
            .is_some_and(|u| u.iter().any(|l| l["user_id"] == user_id))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "user never projected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_grant_roles_and_read_personal_data_only_with_an_audit_trail() {
    let app = TestApp::full_stack().await;
    let admin = admin_token(&app);
    let user = register(&app, "adam@example.org").await;
    let user_id = user["user_id"].as_str().expect("id").to_owned();
    let user_token = user["access_token"].as_str().expect("token").to_owned();
    wait_for_user(&app, &admin, &user_id).await;

    // Not for users.
    for path in ["/v1/admin/users", "/v1/admin/pipeline", "/v1/admin/audit"] {
        assert_eq!(app.get(path, &user_token).await.status(), 403, "{path}");
    }
    let grant = format!("/v1/admin/users/{user_id}/roles");
    let refused = app
        .post_json(&grant, Some(&user_token), &[], r#"{"role":"admin"}"#)
        .await;
    assert_eq!(refused.status(), 403);

    // Personal data needs a reason, and leaves an audit event.
    let detail = format!("/v1/admin/users/{user_id}");
    assert_eq!(app.get(&detail, &admin).await.status(), 422);
    let audit_topic = app.env.kafka.topics().for_aggregate("audit");
    assert_eq!(app.env.records_in(&audit_topic), 0);
    let shown = app
        .get(
            &format!("{detail}?reason=support_request&reference=TICKET-42"),
            &admin,
        )
        .await;
    assert_eq!(shown.status(), 200);
    let shown: Value = shown.json().await.expect("json");
    assert_eq!(shown["email"], "adam@example.org");
    assert_eq!(app.env.records_in(&audit_topic), 1);
    let sessions = app
        .get(&format!("{detail}/sessions?reason=abuse_report"), &admin)
        .await;
    assert_eq!(sessions.status(), 200);
    assert_eq!(app.env.records_in(&audit_topic), 2);

    // Roles: granted once, seen by the read model, revoked.
    let granted = app
        .post_json(&grant, Some(&admin), &[], r#"{"role":"admin"}"#)
        .await;
    assert_eq!(granted.status(), 200);
    assert_eq!(granted.headers()["etag"], "\"2\"");
    let again = app
        .post_json(&grant, Some(&admin), &[], r#"{"role":"admin"}"#)
        .await;
    assert_eq!(again.headers()["etag"], "\"2\"", "nothing appended twice");
    let bad = app
        .post_json(&grant, Some(&admin), &[], r#"{"role":"root"}"#)
        .await;
    assert_eq!(bad.status(), 422);
    let revoke = app
        .client
        .delete(format!("{}{grant}/admin", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request");
    assert_eq!(revoke.status(), 200);
    assert_eq!(revoke.headers()["etag"], "\"3\"");
    let unknown = format!("/v1/admin/users/{}/roles", Uuid::now_v7());
    assert_eq!(
        app.post_json(&unknown, Some(&admin), &[], r#"{"role":"admin"}"#)
            .await
            .status(),
        404
    );

    // Analyses: the operational list is not audited; one user's results are.
    assert_eq!(
        app.get("/v1/admin/analyses?status=failed", &admin)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get("/v1/admin/analyses?status=odd", &admin)
            .await
            .status(),
        422
    );
    assert_eq!(
        app.get("/v1/admin/analyses", &user_token).await.status(),
        403
    );
    let before = app.env.records_in(&audit_topic);
    let theirs = app
        .get(
            &format!("/v1/admin/users/{user_id}/analyses?reason=support_request"),
            &admin,
        )
        .await;
    assert_eq!(theirs.status(), 200);
    assert_eq!(app.env.records_in(&audit_topic), before + 1);

    // The audit log and pipeline health answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let audit: Value = app
            .get(&format!("/v1/admin/audit?subject={user_id}"), &admin)
            .await
            .json()
            .await
            .expect("json");
        // Role changes are in the audit log too (their envelopes name the admin).
        let views: Vec<&Value> = audit
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|l| l["action"] == "personal_data_viewed")
                    .collect()
            })
            .unwrap_or_default();
        let roles = audit.as_array().map_or(0, |a| a.len() - views.len());
        if views.len() == 3 && roles == 2 {
            assert_eq!(views[2]["reference"], "TICKET-42");
            assert_eq!(views[2]["resource"], "contact");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "audit never projected: {audit}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pipeline: Value = app
        .get("/v1/admin/pipeline", &admin)
        .await
        .json()
        .await
        .expect("json");
    assert!(
        pipeline["projections"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    assert!(
        pipeline["lag"]
            .as_array()
            .is_some_and(|l| l.iter().all(|p| p["lag"].is_i64()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_log_unavailable_an_admin_read_shows_nothing() {
    let env = cruxlog_runtime::testkit::TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let mut down = api_config(&env);
    down.kafka.brokers = "127.0.0.1:1".into();
    down.http.append_timeout_ms = 800;
    let app = TestApp::start(env, down).await;
    let admin = admin_token(&app);
    let response = app
        .get(
            &format!("/v1/admin/users/{}?reason=support_request", Uuid::now_v7()),
            &admin,
        )
        .await;
    // Unknown user: 404 before anything is appended.
    assert_eq!(response.status(), 404);

    // A known user (written straight into the identity read model, as the projector would):
    // the audit append fails, so the answer is 503 and carries none of their data.
    let db = sqlx::PgPool::connect(&app.env.database_url)
        .await
        .expect("db");
    let user = Uuid::now_v7();
    let contact = json!({"key_id": "k", "algorithm": "PLAINTEXT_DEV", "nonce": [],
        "ciphertext": br#"{"email":"secret@example.org","display_name":"S"}"#.to_vec()});
    sqlx::query(
        "insert into read.users (user_id, contact, registered_at, updated_at)
         values ($1, $2, now(), now())",
    )
    .bind(user)
    .bind(contact)
    .execute(&db)
    .await
    .expect("a simple view is insertable");
    let refused = app
        .get(
            &format!("/v1/admin/users/{user}?reason=support_request"),
            &admin,
        )
        .await;
    assert_eq!(refused.status(), 503);
    let body = refused.text().await.expect("text");
    assert!(!body.contains("secret@example.org"), "{body}");
}
