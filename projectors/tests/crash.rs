//! R1 under fire: the projector process is SIGKILLed repeatedly while a stream flows in, and
//! restarted each time. The read model must end equal to a fold of the log computed here,
//! independently: nothing lost, nothing doubled. One undecodable record rides along and must
//! end in the dead-letter topic, not stop the stream. A second test makes PostgreSQL lose its
//! last commits, as a database crash can with `synchronous_commit` off, and checks the same.

use std::{
    collections::HashMap,
    process::{Child, Command},
    time::{Duration, Instant},
};

use chrono::Utc;
use cruxlog_runtime::testkit::TestEnv;
use cruxlog_schemas::{
    Actor, EventMeta,
    events::{Discipline, SessionStarted},
};
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use uuid::Uuid;

const EVENTS: usize = 100_000;
const USERS: usize = 97;
const KILLS: usize = 12;
const PROJECTED: &str = "select coalesce(sum(events_applied + dead_letters), 0)::bigint from read.projection_health where state = 'live' and projection = 'sessions'";

fn start_projector(env: &TestEnv) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cruxlog-projectors"))
        .env("CRUXLOG_KAFKA__BROKERS", &env.kafka.brokers)
        .env("CRUXLOG_KAFKA__TOPIC_PREFIX", &env.kafka.topic_prefix)
        .env(
            "CRUXLOG_KAFKA__PARTITIONS",
            env.kafka.partitions.to_string(),
        )
        .env("CRUXLOG_DATABASE__URL", &env.database_url)
        .env("CRUXLOG_ADMIN__ADDR", "127.0.0.1:0")
        .env("CRUXLOG_PROJECTOR__BATCH_SIZE", "500")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("projector binary starts")
}

async fn produce(producer: &FutureProducer, topic: &str, events: &[(Uuid, Vec<u8>)]) {
    let sends = events.iter().map(|(key, bytes)| {
        let key = key.to_string();
        async move {
            producer
                .send(
                    FutureRecord::to(topic).key(&key).payload(bytes),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(error, _)| error)
        }
    });
    for result in join_all(sends).await {
        result.expect("append acknowledged");
    }
}

/// A count from the read model; 0 until the projector has created its tables.
async fn scalar(db: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>(sql)
        .fetch_one(db)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// The projector process, SIGKILLed when dropped so a failing test leaves nothing running.
struct Projector(Child);

impl Projector {
    fn start(env: &TestEnv) -> Self {
        Self(start_projector(env))
    }

    fn sigkill(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reaped");
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Encoded events keyed by aggregate.
type Records = Vec<(Uuid, Vec<u8>)>;

/// `count` encoded `SessionStarted` events spread over `USERS` users, keyed by session, and the
/// sessions each user started (the fold the read model must equal).
fn sessions_started(count: usize) -> (Records, HashMap<Uuid, i64>) {
    let users: Vec<Uuid> = (0..USERS).map(|_| Uuid::now_v7()).collect();
    let mut expected: HashMap<Uuid, i64> = HashMap::new();
    let events: Vec<(Uuid, Vec<u8>)> = (0..count)
        .map(|i| {
            let user = users[i % USERS];
            *expected.entry(user).or_default() += 1;
            let event = SessionStarted {
                session_id: Uuid::now_v7(),
                user_id: user,
                started_at: cruxlog_schemas::envelope::truncate_to_micros(Utc::now()),
                discipline: Discipline::ALL[i % 5],
                indoor: i % 3 != 0,
                location_name: (i % 2 == 0).then(|| format!("gym {}", i % 7)),
                planned_minutes: Some(30 + (i % 90) as i32),
            };
            let meta = EventMeta::new(event.session_id, 1, Actor::user(user));
            (
                event.session_id,
                cruxlog_schemas::encode(&meta, &event).expect("encodes"),
            )
        })
        .collect();
    (events, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_projector_ends_with_every_event_exactly_once() {
    let env = TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let topic = env.kafka.topics().for_aggregate("climbing_session");
    let producer: FutureProducer = env.kafka.producer().create().expect("producer");

    let (events, expected) = sessions_started(EVENTS);

    // First half, then a poison record, before the projector starts.
    let (first, second) = events.split_at(EVENTS / 2);
    produce(&producer, &topic, first).await;
    producer
        .send(
            FutureRecord::to(&topic)
                .key("poison")
                .payload(&b"\xC3\x01not an event"[..]),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(error, _)| error)
        .expect("poison appended");

    let db = PgPool::connect(&env.database_url).await.expect("db");
    let mut projector = Projector::start(&env);
    let mut second_half = Some(second);
    // SIGKILL once past each of KILLS progress points spread over the stream, each after a
    // pseudo-random delay (fixed seed, so a failure replays); the second half of the stream
    // arrives while it runs. Tied to progress, not time, so a fast machine gets every kill too.
    let mut seed: u64 = 0x5eed_c0ff_ee00_0001;
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    for point in 1..=KILLS as i64 {
        let threshold = point * EVENTS as i64 / (KILLS as i64 + 2);
        while scalar(&db, PROJECTED).await < threshold {
            assert!(
                Instant::now() < deadline,
                "projector made no progress to {threshold}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Some(rest) = second_half.take() {
            produce(&producer, &topic, rest).await;
        }
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        tokio::time::sleep(Duration::from_millis((seed >> 33) % 40)).await;
        projector.sigkill();
        kills += 1;
        projector = Projector::start(&env);
    }
    eprintln!("crash test: {kills} SIGKILLs while projecting {EVENTS} events");
    loop {
        let projected = scalar(&db, PROJECTED).await;
        if projected > EVENTS as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {projected} of {} records projected",
            EVENTS + 1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let a doubled batch, if any, land before checking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    projector.sigkill();

    assert_eq!(
        scalar(&db, "select count(*) from read.sessions").await,
        EVENTS as i64
    );
    assert_eq!(
        scalar(
            &db,
            "select events_applied from read.projection_health where state = 'live' and projection = 'sessions'"
        )
        .await,
        EVENTS as i64,
        "an event was applied twice or lost"
    );
    assert_eq!(
        scalar(
            &db,
            "select dead_letters from read.projection_health where state = 'live' and projection = 'sessions'"
        )
        .await,
        1
    );
    let rows: Vec<(Uuid, i64)> =
        sqlx::query_as("select user_id, sessions_started from read.user_stats")
            .fetch_all(&db)
            .await
            .expect("stats");
    let folded: HashMap<Uuid, i64> = rows.into_iter().collect();
    assert_eq!(
        folded, expected,
        "per-user counts differ from the fold of the log"
    );
    let dead_letter_topic = env.kafka.topics().dead_letters("projector-sessions");
    // Dead letters are at least once: a kill between the dead-letter append and the batch
    // commit repeats the append (readers of that topic dedupe on the origin headers).
    assert!(
        env.records_in(&dead_letter_topic) >= 1,
        "the poison record is in the dead-letter topic"
    );
}

/// Batch transactions commit with `synchronous_commit` off (ADR 0011), so a crash of PostgreSQL
/// itself (not of the projector, which the test above kills) can lose the last commits. WAL
/// replay then restores a prefix of the committed transactions: rows, counters and offsets go
/// back together. This test makes the database go back like that by hand: a snapshot of the
/// build's tables and bookkeeping in one transaction while events flow, more commits after it,
/// the projector SIGKILLed, the snapshot restored, the projector restarted. The read model must
/// end equal to the fold of the log again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_loses_its_last_commits_is_caught_up_exactly() {
    const LOST_EVENTS: usize = 20_000;
    let env = TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let topic = env.kafka.topics().for_aggregate("climbing_session");
    let producer: FutureProducer = env.kafka.producer().create().expect("producer");
    let (events, expected) = sessions_started(LOST_EVENTS);
    let (first, second) = events.split_at(LOST_EVENTS / 2);
    produce(&producer, &topic, first).await;
    let db = PgPool::connect(&env.database_url).await.expect("db");
    let mut projector = Projector::start(&env);
    wait_for(&db, LOST_EVENTS as i64 / 2).await;

    let (build_id, schema): (i64, String) = sqlx::query_as(
        "select build_id, schema_name from cruxlog.projection_builds
         where projection = 'sessions' and state = 'live'",
    )
    .fetch_one(&db)
    .await
    .expect("live build");
    // One snapshot for every table: a consistent prefix of the commits, as WAL replay leaves.
    let snapshot = format!(
        "begin isolation level repeatable read;
         create table public.kept_sessions as select * from {schema}.sessions;
         create table public.kept_user_stats as select * from {schema}.user_stats;
         create table public.kept_offsets as
             select * from cruxlog.projection_offsets where build_id = {build_id};
         create table public.kept_stats as
             select * from cruxlog.projection_stats where build_id = {build_id};
         commit;"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(snapshot))
        .execute(&db)
        .await
        .expect("snapshot");
    produce(&producer, &topic, second).await;
    wait_for(&db, LOST_EVENTS as i64).await;
    projector.sigkill();

    // The commits after the snapshot are lost.
    let restore = format!(
        "begin;
         truncate {schema}.sessions, {schema}.user_stats;
         insert into {schema}.sessions select * from public.kept_sessions;
         insert into {schema}.user_stats select * from public.kept_user_stats;
         delete from cruxlog.projection_offsets where build_id = {build_id};
         insert into cruxlog.projection_offsets select * from public.kept_offsets;
         update cruxlog.projection_stats s set events_applied = k.events_applied,
             dead_letters = k.dead_letters from public.kept_stats k where s.build_id = k.build_id;
         commit;"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(restore))
        .execute(&db)
        .await
        .expect("restore");
    let kept = scalar(&db, PROJECTED).await;
    assert!(
        kept < LOST_EVENTS as i64,
        "the restore went back to {kept} events"
    );

    let projector = Projector::start(&env);
    wait_for(&db, LOST_EVENTS as i64).await;
    // Let a doubled batch, if any, land before checking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(projector);
    assert_eq!(
        scalar(&db, "select count(*) from read.sessions").await,
        LOST_EVENTS as i64
    );
    assert_eq!(scalar(&db, PROJECTED).await, LOST_EVENTS as i64);
    let rows: Vec<(Uuid, i64)> =
        sqlx::query_as("select user_id, sessions_started from read.user_stats")
            .fetch_all(&db)
            .await
            .expect("stats");
    let folded: HashMap<Uuid, i64> = rows.into_iter().collect();
    assert_eq!(
        folded, expected,
        "per-user counts differ from the fold of the log"
    );
}

/// Waits until the live build has seen `records` records.
async fn wait_for(db: &PgPool, records: i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while scalar(db, PROJECTED).await < records {
        assert!(
            Instant::now() < deadline,
            "projector made no progress to {records}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
