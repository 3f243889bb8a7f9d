//! Command-to-query latency (issue #5): the live API takes `POST /v1/sessions` at a fixed
//! rate (open loop, 1,000 commands/s by default) while a watcher polls the read model's
//! offsets every millisecond; for each command, the time from its 2xx to the moment its
//! position is applied (the row visible to queries) is recorded. Also prints the API's own
//! latency. Real broker, real database, services in this process.
//!
//! `cargo bench -p cruxlog-command-api --bench command_to_query` with the stack's
//! environment (`make bench`). `BENCH_RATE`, `BENCH_SECONDS` and `BENCH_WARMUP` (seconds sent
//! but not measured, default 1) change the load.
//! Goal: command-to-query p99 <= 50 ms at 1,000 commands/s.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use cruxlog_command_api::{Application, auth::TokenKeys, config::Config, position::Position};
use cruxlog_runtime::{config::Secret, testkit::TestEnv};
use cruxlog_schemas::ActorRole;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Pending {
    position: Position,
    acknowledged: Instant,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let rate: u64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let env = TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let shutdown = CancellationToken::new();

    let mut projector_config = cruxlog_projectors::config::Config::default();
    projector_config.admin.addr = "127.0.0.1:0".into();
    projector_config.kafka = env.kafka.clone();
    projector_config.database.url = Secret::new(env.database_url.clone());
    let projectors = cruxlog_projectors::Projectors::build(projector_config)
        .await
        .expect("projectors");
    tokio::spawn(projectors.run(shutdown.clone()));

    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".into();
    config.admin.addr = "127.0.0.1:0".into();
    config.kafka = env.kafka.clone();
    config.database.url = Secret::new(env.database_url.replacen(
        "://postgres@",
        "://cruxlog_api@",
        1,
    ));
    config.auth.allow_dev_secret = true;
    let keys = TokenKeys::new(&config.auth);
    let app = Application::build(config).await.expect("api");
    let url = format!("http://{}/v1/sessions", app.http_addr().expect("bound"));
    tokio::spawn(app.run(shutdown.clone()));
    let tokens: Vec<String> = (0..100)
        .map(|_| {
            keys.mint(Uuid::now_v7(), ActorRole::User, 3_600)
                .expect("token")
        })
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");

    // Wait until the projection is live (its offsets view answers).
    let db = PgPool::connect(&env.database_url).await.expect("db");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let pending: Arc<Mutex<Vec<Pending>>> = Arc::default();
    let visible: Arc<Mutex<Vec<f64>>> = Arc::default();
    let done = CancellationToken::new();
    let watcher = {
        let (pending, visible, done, db) =
            (pending.clone(), visible.clone(), done.clone(), db.clone());
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                let rows: Vec<(String, i32, i64)> = match sqlx::query_as(
                    "select topic, partition, next_offset from read.projection_offsets where projection = 'sessions'",
                )
                .fetch_all(&db)
                .await
                {
                    Ok(rows) => rows,
                    Err(_) => continue,
                };
                let now = Instant::now();
                let next: HashMap<(String, i32), i64> =
                    rows.into_iter().map(|(t, p, o)| ((t, p), o)).collect();
                let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
                let mut visible = visible.lock().unwrap_or_else(|e| e.into_inner());
                pending.retain(|p| {
                    let key = (p.position.topic.clone(), p.position.partition);
                    if next.get(&key).is_some_and(|n| *n > p.position.offset) {
                        visible.push((now - p.acknowledged).as_secs_f64() * 1_000.0);
                        false
                    } else {
                        true
                    }
                });
                if done.is_cancelled() && pending.is_empty() {
                    return;
                }
            }
        })
    };

    let api_latency: Arc<Mutex<Vec<f64>>> = Arc::default();
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // A warm-up second first (connections of the client and of the pools open, statements get
    // prepared): measured is the steady state, not the first connects.
    let warmup: u64 = std::env::var("BENCH_WARMUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let warm = rate * warmup;
    let total = rate * seconds + warm;
    let started = Instant::now();
    let mut interval = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..total {
        interval.tick().await;
        let (client, url, token) = (
            client.clone(),
            url.clone(),
            tokens[(i % 100) as usize].clone(),
        );
        let (pending, api_latency, errors) = (pending.clone(), api_latency.clone(), errors.clone());
        let measured = i >= warm;
        requests.spawn(async move {
            let sent = Instant::now();
            let response = client
                .post(&url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(r#"{"discipline":"boulder","indoor":true,"planned_minutes":90}"#)
                .send()
                .await;
            let acknowledged = Instant::now();
            let position = match response {
                Ok(response) if response.status().is_success() => response
                    .headers()
                    .get("x-cruxlog-position")
                    .and_then(|v| v.to_str().ok())
                    .and_then(Position::parse),
                _ => None,
            };
            match position {
                Some(_) if !measured => {}
                Some(position) => {
                    api_latency
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((acknowledged - sent).as_secs_f64() * 1_000.0);
                    pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Pending {
                            position,
                            acknowledged,
                        });
                }
                None => {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    while requests.join_next().await.is_some() {}
    let offered = started.elapsed();
    done.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), watcher).await;
    shutdown.cancel();

    let mut api = api_latency
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut seen = visible.lock().unwrap_or_else(|e| e.into_inner()).clone();
    api.sort_by(f64::total_cmp);
    seen.sort_by(f64::total_cmp);
    println!(
        "command-to-query: {total} commands at {rate}/s offered over {:.1} s, the first {warm} (a {warmup} s warm-up) not measured; {} measured, {} errors",
        offered.as_secs_f64(),
        api.len(),
        errors.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "  API 2xx latency      p50 {:6.1} ms  p99 {:6.1} ms  max {:6.1} ms",
        percentile(&api, 0.50),
        percentile(&api, 0.99),
        api.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  2xx to row visible   p50 {:6.1} ms  p99 {:6.1} ms  max {:6.1} ms  ({} of {} seen; watcher polls every 1 ms)",
        percentile(&seen, 0.50),
        percentile(&seen, 0.99),
        seen.last().copied().unwrap_or(f64::NAN),
        seen.len(),
        api.len()
    );
    let met = percentile(&seen, 0.99) <= 50.0 && seen.len() == api.len();
    println!(
        "goal (command-to-query p99 <= 50 ms at 1,000 commands/s): {}",
        if met { "met" } else { "NOT met" }
    );
}
