//! What the wall and coaching tests share: admin tokens, a projector without the analyzer,
//! a photo made by ffmpeg, and a stand-in for the generators that append their results.

// Each test binary uses a subset.
#![allow(dead_code)]

use std::time::Duration;

use cruxlog_command_api::{append::EventLog, auth::TokenKeys, position::Position};
use cruxlog_schemas::{Actor, ActorRole, DomainEvent, EventMeta};
use rdkafka::producer::FutureProducer;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{self, TestApp};

/// The API and the projector (no analyzer: the generators are stood in for by [`append`]).
pub(crate) async fn with_projector() -> TestApp {
    let app = TestApp::api_only().await;
    let mut config = cruxlog_projectors::config::Config::default();
    config.admin.addr = "127.0.0.1:0".into();
    config.kafka = app.env.kafka.clone();
    config.database.url = cruxlog_runtime::config::Secret::new(app.env.database_url.clone());
    let projector = cruxlog_projectors::Projectors::build(config)
        .await
        .expect("projector builds");
    tokio::spawn(projector.run(app.shutdown.clone()));
    app
}

pub(crate) fn admin_token(app: &TestApp) -> String {
    TokenKeys::new(&helpers::api_config(&app.env).auth)
        .mint(Uuid::now_v7(), ActorRole::Admin, 300)
        .expect("token")
}

pub(crate) fn records(app: &TestApp, aggregate: &str) -> i64 {
    app.env
        .records_in(&app.env.kafka.topics().for_aggregate(aggregate))
}

/// Appends `event` as a generator would (system actor), so the projector shows its result.
pub(crate) async fn append(
    app: &TestApp,
    aggregate_id: Uuid,
    version: i64,
    event: DomainEvent,
) -> Position {
    let producer: FutureProducer = app.env.kafka.producer().create().expect("producer");
    let log = EventLog::new(producer, app.env.kafka.topics(), Duration::from_secs(10));
    let meta = EventMeta::new(aggregate_id, version, Actor::system());
    log.append_domain(&meta, &event).await.expect("appended")
}

/// A 640x480 PNG test card, made by Debian's ffmpeg.
pub(crate) fn png(dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("wall.png");
    let output = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x480",
        ])
        .args(["-frames:v", "1"])
        .arg(&path)
        .output()
        .expect("ffmpeg runs");
    assert!(output.status.success(), "{output:?}");
    std::fs::read(&path).expect("png")
}

/// The fields a 422 names, sorted.
pub(crate) async fn fields(response: reqwest::Response) -> Vec<String> {
    assert_eq!(response.status(), 422);
    let content_type = response.headers()["content-type"].clone();
    assert_eq!(content_type, "application/problem+json");
    let problem: Value = response.json().await.expect("json");
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect();
    fields.sort();
    fields
}

/// POSTs JSON and returns the status and body.
pub(crate) async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> (u16, Value) {
    post_with(app, path, token, &[], body).await
}

pub(crate) async fn post_with(
    app: &TestApp,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Value) {
    let response = app
        .post_json(path, Some(token), headers, &body.to_string())
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// GETs a path and returns the status, `ETag` and body.
pub(crate) async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Option<String>, Value) {
    let response = app.get(path, token).await;
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, etag, response.json().await.unwrap_or(Value::Null))
}
