//! R2: a rebuild builds new tables from offset 0 while the live ones keep answering, then
//! swaps them in atomically; queries never fail and never see fewer rows.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use common::{Harness, record};
use cruxlog_projectors::{builds, rebuild};
use cruxlog_schemas::{
    DomainEvent,
    envelope::truncate_to_micros,
    events::{Discipline, SessionStarted},
};
use uuid::Uuid;

fn sessions(count: usize) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let session_id = Uuid::now_v7();
            let event = DomainEvent::SessionStarted(SessionStarted {
                session_id,
                user_id: Uuid::now_v7(),
                started_at: truncate_to_micros(Utc::now()),
                discipline: Discipline::ALL[i % 5],
                indoor: i % 2 == 0,
                location_name: Some(format!("wall {}", i % 13)),
                planned_minutes: Some(60),
            });
            record(&event, session_id, 1)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_keep_answering_through_a_rebuild_and_its_swap() {
    const FIRST: usize = 20_000;
    const DURING: usize = 2_000;
    let harness = Harness::new().await;
    let topic = harness.topic("climbing_session");
    harness.produce(&topic, &sessions(FIRST)).await;
    harness.start_service().await;
    harness
        .wait_projected(FIRST as i64, Duration::from_secs(90))
        .await;
    let before = builds::live(&harness.db, "sessions")
        .await
        .expect("query")
        .expect("live");

    // Readers, as the API reads: never an error, never fewer rows than before.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, stop) = (harness.db.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut queries, mut errors, mut last, mut decreases) = (0u64, Vec::new(), 0i64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                match sqlx::query_scalar::<_, i64>("select count(*) from read.sessions")
                    .fetch_one(&db)
                    .await
                {
                    Ok(count) => {
                        decreases += u64::from(count < last);
                        last = count;
                    }
                    Err(error) => errors.push(error.to_string()),
                }
                queries += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (queries, errors, decreases)
        })
    };

    let context = harness.context().await;
    let produce_more = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        harness.produce(&topic, &sessions(DURING)).await;
    };
    let (rebuilt, ()) = tokio::join!(
        rebuild::rebuild(&context, "sessions", &harness.shutdown, false),
        produce_more
    );
    let rebuilt = rebuilt.expect("rebuild runs").expect("rebuild completes");
    assert!(
        rebuilt.events >= FIRST as u64,
        "rebuilt {} events",
        rebuilt.events
    );

    // The service moves to the new build and applies what arrived after the swap.
    harness
        .wait_projected((FIRST + DURING) as i64, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (queries, errors, decreases) = reader.await.expect("reader");

    let after = builds::live(&harness.db, "sessions")
        .await
        .expect("query")
        .expect("live");
    assert_ne!(
        after.build_id, before.build_id,
        "the rebuilt tables are live"
    );
    assert_eq!(after.build_id, rebuilt.build_id);
    assert_eq!(
        harness.scalar("select count(*) from read.sessions").await,
        (FIRST + DURING) as i64
    );
    assert!(
        errors.is_empty(),
        "queries failed during the rebuild: {errors:?}"
    );
    assert_eq!(
        decreases, 0,
        "a query saw fewer rows than the one before it"
    );
    assert!(
        queries >= 20,
        "only {queries} queries ran during the rebuild"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_never_moves_readers_back_in_time() {
    use cruxlog_projectors::{projections::sessions::Sessions, store};

    let harness = Harness::new().await;
    cruxlog_projectors::service::ensure_live(&harness.db)
        .await
        .expect("read models");
    let live = builds::live(&harness.db, "sessions")
        .await
        .expect("query")
        .expect("live");
    let behind = builds::create(&harness.db, &Sessions)
        .await
        .expect("new build");
    let offsets =
        |next: i64| store::Offsets::from([(("t.cruxlog.climbing_session".to_owned(), 0), next)]);
    let advance = |build_id: i64, from: store::Offsets, to: store::Offsets| {
        let db = harness.db.clone();
        async move {
            let mut tx = db.begin().await.expect("tx");
            store::advance_offsets(&mut tx, build_id, &from, &to)
                .await
                .expect("advance");
            tx.commit().await.expect("commit");
        }
    };
    advance(live.build_id, store::Offsets::new(), offsets(10)).await;
    advance(behind.build_id, store::Offsets::new(), offsets(5)).await;

    assert!(
        !builds::swap(&harness.db, &Sessions, &behind)
            .await
            .expect("swap"),
        "5 < 10: refused"
    );
    assert_eq!(
        builds::live(&harness.db, "sessions")
            .await
            .expect("query")
            .map(|b| b.build_id),
        Some(live.build_id)
    );

    advance(behind.build_id, offsets(5), offsets(10)).await;
    assert!(
        builds::swap(&harness.db, &Sessions, &behind)
            .await
            .expect("swap"),
        "caught up: swapped"
    );
    assert_eq!(
        builds::live(&harness.db, "sessions")
            .await
            .expect("query")
            .map(|b| b.build_id),
        Some(behind.build_id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_drops_retired_and_abandoned_builds_and_keeps_running_ones() {
    use cruxlog_projectors::{projections::sessions::Sessions, store};
    use sqlx::Connection as _;

    let harness = Harness::new().await;
    cruxlog_projectors::service::ensure_live(&harness.db)
        .await
        .expect("read models");
    let first = builds::live(&harness.db, "sessions")
        .await
        .expect("query")
        .expect("live");
    let second = builds::create(&harness.db, &Sessions).await.expect("build");
    assert!(
        builds::swap(&harness.db, &Sessions, &second)
            .await
            .expect("swap")
    );
    let abandoned = builds::create(&harness.db, &Sessions).await.expect("build");
    let running = builds::create(&harness.db, &Sessions).await.expect("build");
    let mut runner = sqlx::PgConnection::connect(&harness.env.database_url)
        .await
        .expect("connection");
    assert!(
        store::try_lock(&mut runner, running.build_id)
            .await
            .expect("lock")
    );

    let dropped = builds::prune(&harness.db).await.expect("prune");
    assert_eq!(
        dropped,
        [first.schema_name.clone(), abandoned.schema_name.clone()]
    );
    let left: Vec<i64> = builds::all(&harness.db)
        .await
        .expect("builds")
        .iter()
        .map(|b| b.build_id)
        .collect();
    assert!(
        left.contains(&second.build_id) && left.contains(&running.build_id),
        "{left:?}"
    );
    assert_eq!(
        harness.scalar("select count(*) from read.sessions").await,
        0,
        "the live views still answer"
    );
}
