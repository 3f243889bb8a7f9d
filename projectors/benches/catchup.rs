//! Projector throughput, in one run on the real broker and database:
//! 1. catch-up: the service applies a pre-filled log of realistic session events (sessions
//!    started, attempts logged, sessions ended) into PostgreSQL;
//! 2. rebuild: `projectors rebuild sessions` over the same log, beside the live tables;
//! 3. baseline: a raw `COPY` of the same rows into tables of the same shape.
//!
//! `make bench-projectors` (or `cargo bench -p cruxlog-projectors --bench catchup` with the
//! stack's environment). `BENCH_EVENTS` sets the log size (default 1,000,000), `BENCH_BATCH`
//! the batch size (5,000).
//! Goals (issue #5): catch-up >= 50,000 events/s and >= 0.5x the raw COPY rate; rebuild of
//! 1M events <= 30 s.

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use cruxlog_projectors::{
    Projectors, config::Config, projection::Projection as _, rebuild, service::Context,
};
use cruxlog_runtime::{config::Secret, testkit::TestEnv};
use cruxlog_schemas::{
    Actor, DomainEvent, EventMeta,
    envelope::truncate_to_micros,
    events::{
        AttemptDetails, AttemptLogged, AttemptResult, ClimbStyle, Discipline, SessionEndReason,
        SessionEnded, SessionStarted,
    },
    grades::{Grade, GradeSystem},
};
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::{Connection as _, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const GRADES: [&str; 12] = [
    "5c", "6a", "6a+", "6b", "6b+", "6c", "6c+", "7a", "7a+", "7b", "7b+", "7c",
];

/// One climber's session: started, ~8 attempts, ended. Deterministic from `n`.
fn session_events(n: u64, at: DateTime<Utc>) -> Vec<(Uuid, DomainEvent)> {
    let session_id = Uuid::now_v7();
    let user_id = Uuid::from_u128(u128::from(n % 5_000) + 1);
    let mut events = vec![(
        session_id,
        DomainEvent::SessionStarted(SessionStarted {
            session_id,
            user_id,
            started_at: at,
            discipline: Discipline::ALL[(n % 5) as usize],
            indoor: !n.is_multiple_of(4),
            location_name: Some(format!("gym {}", n % 40)),
            planned_minutes: Some(60 + (n % 90) as i32),
        }),
    )];
    for i in 0..8u64 {
        let grade = GRADES[((n + i) % GRADES.len() as u64) as usize];
        events.push((
            session_id,
            DomainEvent::AttemptLogged(AttemptLogged {
                session_id,
                attempt_id: Uuid::now_v7(),
                user_id,
                attempted_at: at + chrono::Duration::minutes(i as i64 * 6),
                details: AttemptDetails {
                    route_id: None,
                    route_description: Some(format!("grey {}", (n + i) % 30)),
                    grade: Grade::parse(GradeSystem::French, grade).ok(),
                    style: if n.is_multiple_of(5) {
                        ClimbStyle::Boulder
                    } else {
                        ClimbStyle::Lead
                    },
                    result: [
                        AttemptResult::Flash,
                        AttemptResult::Redpoint,
                        AttemptResult::Fail,
                    ][((n + i) % 3) as usize],
                    falls: ((n + i) % 3) as i32,
                    duration_ms: Some(60_000 + ((n * 7 + i) % 240) as i64 * 1_000),
                    rpe: Some(5 + ((n + i) % 5) as i32),
                    beta: Vec::new(),
                    high_point_hold_id: None,
                    notes: None,
                },
            }),
        ));
    }
    events.push((
        session_id,
        DomainEvent::SessionEnded(SessionEnded {
            session_id,
            user_id,
            ended_at: at + chrono::Duration::minutes(60),
            rpe: Some(7),
            notes: None,
            reason: SessionEndReason::Climber,
        }),
    ));
    events
}

async fn fill(
    producer: &FutureProducer,
    topic: &str,
    total: usize,
) -> (Vec<(Uuid, DomainEvent)>, Duration) {
    let started = Instant::now();
    let at = truncate_to_micros(Utc::now());
    let mut all = Vec::with_capacity(total);
    let mut n = 0;
    while all.len() < total {
        all.extend(session_events(n, at));
        n += 1;
    }
    all.truncate(total);
    for chunk in all.chunks(20_000) {
        let records: Vec<(String, Vec<u8>)> = chunk
            .iter()
            .enumerate()
            .map(|(i, (aggregate, event))| {
                let meta = EventMeta::new(*aggregate, i as i64 + 1, Actor::system());
                (aggregate.to_string(), event.encode(&meta).expect("encodes"))
            })
            .collect();
        let sends = records.iter().map(|(key, bytes)| {
            producer.send(
                FutureRecord::to(topic).key(key).payload(bytes),
                Duration::from_secs(60),
            )
        });
        for result in join_all(sends).await {
            result
                .map_err(|(error, _)| error)
                .expect("append acknowledged");
        }
    }
    (all, started.elapsed())
}

/// The same rows the projection writes, COPYed straight into tables of the same shape.
async fn raw_copy(db_url: &str, events: &[(Uuid, DomainEvent)]) -> Duration {
    let mut connection = PgConnection::connect(db_url).await.expect("db");
    // The projection's own tables (same columns, keys and indexes), in a schema of their own.
    let ddl = format!(
        "create schema baseline; set search_path to baseline; {}",
        cruxlog_projectors::projections::sessions::Sessions.ddl()
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&mut connection)
        .await
        .expect("baseline tables");
    let (mut sessions, mut attempts) = (String::new(), String::new());
    for (_, event) in events {
        match event {
            DomainEvent::SessionStarted(e) => {
                let _ = writeln!(
                    sessions,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t\\N\t\\N\t{}\t{}",
                    e.session_id,
                    e.user_id,
                    e.started_at.to_rfc3339(),
                    e.discipline.as_str(),
                    e.indoor,
                    e.location_name.as_deref().unwrap_or("\\N"),
                    e.planned_minutes
                        .map_or("\\N".to_owned(), |m| m.to_string()),
                    Uuid::now_v7(),
                    e.started_at.to_rfc3339(),
                );
            }
            DomainEvent::AttemptLogged(e) => {
                let grade = e.details.grade.as_ref();
                let _ = writeln!(
                    attempts,
                    "{}\t{}\t{}\t{}\t\\N\t{}\tfrench\t{}\t{}\tlead\tflash\t{}\t{}\t{}\t{}\t[]\t\\N\t\\N\t{}",
                    e.attempt_id,
                    e.session_id,
                    e.user_id,
                    e.attempted_at.to_rfc3339(),
                    e.details.route_description.as_deref().unwrap_or("\\N"),
                    grade.map_or("\\N".to_owned(), |g| g.label.clone()),
                    grade
                        .and_then(|g| g.difficulty().ok())
                        .map_or("\\N".to_owned(), |d| d.to_string()),
                    e.details.result != AttemptResult::Fail,
                    e.details.falls,
                    e.details
                        .duration_ms
                        .map_or("\\N".to_owned(), |d| d.to_string()),
                    e.details.rpe.map_or("\\N".to_owned(), |r| r.to_string()),
                    e.attempted_at.to_rfc3339(),
                );
            }
            _ => {}
        }
    }
    let started = Instant::now();
    for (table, text) in [
        ("baseline.sessions", &sessions),
        ("baseline.attempts", &attempts),
    ] {
        let statement = format!("copy {table} from stdin");
        let mut copy = connection
            .copy_in_raw(&statement)
            .await
            .expect("copy starts");
        copy.send(text.as_bytes()).await.expect("copy data");
        copy.finish().await.expect("copy ends");
    }
    // Session ends have no rows of their own: the projection writes them into the session
    // rows (with the start when both are in one batch, else as an update); the baseline copies
    // the 900,000 rows only.
    started.elapsed()
}

async fn wait_applied(db: &PgPool, build_state: &str, total: i64) -> Duration {
    let started = Instant::now();
    loop {
        let seen: i64 = sqlx::query_scalar(
            "select coalesce(sum(events_applied + dead_letters), 0)::bigint from read.projection_health
             where projection = 'sessions' and state = $1",
        )
        .bind(build_state)
        .fetch_one(db)
        .await
        .expect("health");
        if seen >= total {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let env = TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let topic = env.kafka.topics().for_aggregate("climbing_session");
    let producer: FutureProducer = env
        .kafka
        .producer()
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .create()
        .expect("producer");
    println!("projector benchmark: {total} events on {topic}");
    let (events, filled) = fill(&producer, &topic, total).await;
    println!(
        "  filled the log: {:.1} s ({:.0} events/s appended)",
        filled.as_secs_f64(),
        total as f64 / filled.as_secs_f64()
    );

    let mut config = Config::default();
    config.admin.addr = "127.0.0.1:0".into();
    config.kafka = env.kafka.clone();
    config.database.url = Secret::new(env.database_url.clone());
    config.projector.batch_size = std::env::var("BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let db = PgPool::connect(&env.database_url).await.expect("db");
    let shutdown = CancellationToken::new();
    let service = Projectors::build(config.clone()).await.expect("service");
    let started = Instant::now();
    tokio::spawn(service.run(shutdown.clone()));
    wait_applied(&db, "live", total as i64).await;
    let catch_up = started.elapsed();
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let catch_up_rate = total as f64 / catch_up.as_secs_f64();
    println!(
        "  catch-up (service, empty tables): {:.1} s, {:.0} events/s",
        catch_up.as_secs_f64(),
        catch_up_rate
    );

    let context = Context::connect(config).await.expect("context");
    let rebuilt = rebuild::rebuild(&context, "sessions", &CancellationToken::new(), false)
        .await
        .expect("rebuild runs")
        .expect("rebuild completes");
    println!(
        "  rebuild (new build from offset 0, then swap): {} events in {:.1} s, {:.0} events/s",
        rebuilt.events,
        rebuilt.elapsed.as_secs_f64(),
        rebuilt.events as f64 / rebuilt.elapsed.as_secs_f64()
    );

    let batches = context
        .metrics
        .batch_seconds
        .with_label_values(&["sessions"]);
    println!(
        "    of which in batch transactions (decode, SQL, commit): {:.1} s over {} batches",
        batches.get_sample_sum(),
        batches.get_sample_count()
    );

    let copy = raw_copy(&env.database_url, &events).await;
    let rows = events
        .iter()
        .filter(|(_, e)| !matches!(e, DomainEvent::SessionEnded(_)))
        .count();
    let copy_rate = rows as f64 / copy.as_secs_f64();
    println!(
        "  baseline raw COPY of the same {rows} rows: {:.1} s, {:.0} rows/s",
        copy.as_secs_f64(),
        copy_rate
    );
    println!("  catch-up / raw COPY: {:.2}x", catch_up_rate / copy_rate);
    let rebuild_1m = rebuilt.elapsed.as_secs_f64() * 1_000_000.0 / rebuilt.events.max(1) as f64;
    let met = catch_up_rate >= 50_000.0 && catch_up_rate / copy_rate >= 0.5 && rebuild_1m <= 30.0;
    println!(
        "goal (catch-up >= 50k events/s and >= 0.5x COPY; 1M rebuilt <= 30 s, here {rebuild_1m:.1} s per 1M): {}",
        if met { "met" } else { "NOT met" }
    );
}
