//! Heads settled from the log after a restore of PostgreSQL older than it (`settle-heads`):
//! heads written through the real writer, then damaged as a restore would leave them (gone,
//! behind, a stale state, one ahead), then settled from the real log. The damage a head
//! behind the log does if nobody settles it is injected too: the next command appends a
//! second version, and the settlement reports it.

mod helpers;

use std::time::Duration;

use axum::http::HeaderMap;
use cruxlog_command_api::{
    AppState,
    command::Command,
    domain,
    settle::{self, Anomaly, Settlement},
    user_domain, writer,
};
use cruxlog_schemas::{
    Actor, DomainEvent, EventMeta,
    events::{Role, RoleGranted, UserRegistered, VideoAttached, aggregate, samples},
};
use helpers::{TestApp, api_config};
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

type Heads = Vec<(Uuid, i64, serde_json::Value, String)>;

/// Every head, once no append is pending on any.
async fn heads(db: &PgPool) -> Heads {
    for _ in 0..200 {
        let pending: i64 = sqlx::query_scalar(
            "select count(*) from api.aggregate_heads where pending_version is not null",
        )
        .fetch_one(db)
        .await
        .expect("count");
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query(
        "select aggregate_id, version, state, last_position from api.aggregate_heads
          where pending_version is null order by aggregate_id",
    )
    .fetch_all(db)
    .await
    .expect("heads")
    .into_iter()
    .map(|row| {
        (
            row.get("aggregate_id"),
            row.get("version"),
            row.get("state"),
            row.get("last_position"),
        )
    })
    .collect()
}

async fn settle(state: &AppState, apply: bool) -> (Settlement, Vec<Anomaly>) {
    let folded = settle::read_log(
        &state.config.kafka,
        state.log.topics(),
        indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("reads the log");
    let settlement = settle::settle(&state.db, &folded, apply)
        .await
        .expect("settles");
    (settlement, folded.anomalies)
}

/// One command of `user` on their session, through the writer.
async fn on_session(
    state: &AppState,
    (user, session_id): (Uuid, Uuid),
    expected: Option<i64>,
    decide: impl Fn(Option<domain::SessionState>) -> writer::Decision<domain::SessionState>,
) -> writer::Written {
    let command = Command::new(Actor::user(user), &HeaderMap::new());
    writer::execute(
        state,
        &command,
        aggregate::CLIMBING_SESSION,
        session_id,
        expected,
        decide,
    )
    .await
    .expect("the command is taken")
}

/// A session of `user` with `attempts` attempts and, on the first, a video.
async fn session(state: &AppState, user: Uuid, attempts: usize) -> Uuid {
    let session_id = Uuid::now_v7();
    let started = helpers::events::session_started(session_id, user);
    on_session(state, (user, session_id), None, |s| {
        domain::start(s, &started)
    })
    .await;
    for index in 0..attempts {
        let logged = helpers::events::attempt_logged(session_id, user);
        on_session(state, (user, session_id), None, |s| {
            domain::log_attempt(s, &logged)
        })
        .await;
        if index == 0 {
            let sample = samples::all()
                .into_iter()
                .find_map(|event| match event {
                    DomainEvent::VideoAttached(event) => Some(event),
                    _ => None,
                })
                .expect("a sample");
            let attached = VideoAttached {
                session_id,
                attempt_id: logged.attempt_id,
                user_id: user,
                video_id: Uuid::now_v7(),
                ..sample
            };
            on_session(state, (user, session_id), None, |s| {
                domain::attach_video(s, &attached)
            })
            .await;
        }
    }
    session_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_behind_the_log_are_settled_up_to_it_and_none_goes_back() {
    let (app, state, admin_db) = api().await;
    let user = Uuid::now_v7();
    let command = Command::new(Actor::system(), &HeaderMap::new());
    let registered = samples::all()
        .into_iter()
        .find_map(|event| match event {
            DomainEvent::UserRegistered(event) => Some(UserRegistered {
                user_id: user,
                ..event
            }),
            _ => None,
        })
        .expect("a sample");
    writer::execute(&state, &command, aggregate::USER, user, None, |s| {
        user_domain::register(s, &registered)
    })
    .await
    .expect("registers");
    let granted = RoleGranted {
        user_id: user,
        role: Role::Admin,
    };
    writer::execute(&state, &command, aggregate::USER, user, None, |s| {
        user_domain::grant(s, &granted)
    })
    .await
    .expect("grants");
    let sessions = [
        session(&state, user, 3).await,
        session(&state, user, 2).await,
        session(&state, user, 4).await,
        session(&state, user, 1).await,
    ];
    let before = heads(&admin_db).await;
    assert_eq!(before.len(), 5);

    // Heads as the writers left them are what the log makes.
    let (dry, anomalies) = settle(&state, false).await;
    assert_eq!(anomalies, []);
    assert_eq!(
        dry,
        Settlement {
            checked: 5,
            unchanged: 5,
            ..Settlement::default()
        }
    );

    // A restore older than the log: one head gone, one behind, one at its version with an
    // older state, and one ahead (the log lost its records).
    let [gone, behind, stale, ahead] = sessions;
    let damage = [
        "delete from api.aggregate_heads where aggregate_id = $1",
        "update api.aggregate_heads set version = 1, state = jsonb_set(state, '{attempts}', '{}')
          where aggregate_id = $1",
        "update api.aggregate_heads set state = jsonb_set(state, '{ended}', 'true')
          where aggregate_id = $1",
        "update api.aggregate_heads set version = version + 5 where aggregate_id = $1",
    ];
    for (sql, aggregate_id) in damage.into_iter().zip([gone, behind, stale, ahead]) {
        sqlx::query(sql)
            .bind(aggregate_id)
            .execute(&admin_db)
            .await
            .expect("damages");
    }
    let ahead_version = before
        .iter()
        .find(|head| head.0 == ahead)
        .map(|head| head.1 + 5);

    let expected = Settlement {
        checked: 5,
        unchanged: 1,
        created: 1,
        moved: 1,
        restated: 1,
        raced: 0,
        ahead: vec![(
            ahead,
            ahead_version.expect("a head"),
            ahead_version.expect("a head") - 5,
        )],
        tainted: vec![],
    };
    let (dry, _) = settle(&state, false).await;
    assert_eq!(dry, expected);
    assert_ne!(heads(&admin_db).await, before, "a dry run changes nothing");

    let (settled, anomalies) = settle(&state, true).await;
    assert_eq!(settled, expected);
    assert_eq!(anomalies, []);
    let after = heads(&admin_db).await;
    for head in &before {
        let now = after.iter().find(|h| h.0 == head.0).expect("a head");
        if head.0 == ahead {
            assert_eq!(
                now.1,
                head.1 + 5,
                "a head ahead of the log is not moved back"
            );
        } else {
            assert_eq!(now, head, "settled to what the writers had written");
        }
    }
    let (again, _) = settle(&state, false).await;
    assert_eq!(again.unchanged, 4, "settling twice changes nothing more");

    // The settled head takes the next command at the right version.
    let next = AppState::connect(api_config(&app.env))
        .await
        .expect("a fresh instance, as after the restore");
    let logged = helpers::events::attempt_logged(behind, user);
    let expected = before.iter().find(|h| h.0 == behind).map(|h| h.1);
    let written = on_session(&next, (user, behind), expected, |s| {
        domain::log_attempt(s, &logged)
    })
    .await;
    assert_eq!(written.event_ids.len(), 1);
    let (_, anomalies) = settle(&next, false).await;
    assert_eq!(anomalies, [], "no version twice");

    // The operator's command says the same.
    heads(&admin_db).await;
    let config = api_config(&app.env);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_cruxlog-command-api"))
        .args(["settle-heads", "--dry-run"])
        .env("CRUXLOG_KAFKA__BROKERS", &config.kafka.brokers)
        .env("CRUXLOG_KAFKA__TOPIC_PREFIX", &config.kafka.topic_prefix)
        .env(
            "CRUXLOG_KAFKA__PARTITIONS",
            config.kafka.partitions.to_string(),
        )
        .env("CRUXLOG_DATABASE__URL", config.database.url.expose())
        .env("CRUXLOG_AUTH__ALLOW_DEV_SECRET", "true")
        .env("CRUXLOG_BLOBS__URL", &config.blobs.url)
        .output()
        .await
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("5 aggregates: 4 unchanged; 0 created, 0 moved up to the log, 0 restated would be; 0 raced with a writer; 1 ahead of the log; 0 with events that do not fold; 0 anomalies"),
        "{stdout}"
    );
}

/// An API, a writer's state of its own (as another instance), and a superuser pool to damage
/// heads with.
async fn api() -> (TestApp, AppState, PgPool) {
    let app = TestApp::api_only().await;
    let state = AppState::connect(api_config(&app.env))
        .await
        .expect("state");
    let admin_db = PgPool::connect(&app.env.database_url)
        .await
        .expect("database");
    (app, state, admin_db)
}

/// An API with a new user's session of `attempts` attempts written through it, its head
/// then set back to `version` as a restore would leave it: (app, its state, a superuser
/// pool, the user, the session).
async fn session_set_back(
    attempts: usize,
    version: i64,
) -> (TestApp, AppState, PgPool, Uuid, Uuid) {
    let (app, state, admin_db) = api().await;
    let user = Uuid::now_v7();
    let session_id = session(&state, user, attempts).await;
    heads(&admin_db).await;
    sqlx::query("update api.aggregate_heads set version = $2 where aggregate_id = $1")
        .bind(session_id)
        .bind(version)
        .execute(&admin_db)
        .await
        .expect("sets back");
    (app, state, admin_db, user, session_id)
}

/// What settling prevents: a head left behind the log takes the next command at a version
/// the log already has. The settlement reports the second copy (and folds both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_left_behind_appends_a_version_twice_and_the_settlement_reports_it() {
    let (app, _, admin_db, user, session_id) = session_set_back(2, 2).await;
    let restored = AppState::connect(api_config(&app.env))
        .await
        .expect("a fresh instance");
    let logged = helpers::events::attempt_logged(session_id, user);
    let written = on_session(&restored, (user, session_id), None, |s| {
        domain::log_attempt(s, &logged)
    })
    .await;
    assert_eq!(
        written.version, 3,
        "version 3 again: the log already had it"
    );
    // And an event that cannot fold: a role for a user never registered.
    let stranger = Uuid::now_v7();
    let granted = DomainEvent::RoleGranted(RoleGranted {
        user_id: stranger,
        role: Role::Admin,
    });
    restored
        .log
        .append_domain(&EventMeta::new(stranger, 1, Actor::system()), &granted)
        .await
        .expect("appends");
    let (settlement, anomalies) = settle(&restored, true).await;
    // Topics are read one after the other (users first): order the anomalies by kind.
    let duplicates: Vec<_> = anomalies
        .iter()
        .filter_map(|anomaly| match anomaly {
            Anomaly::Duplicate {
                aggregate_id,
                version,
                ..
            } => Some((*aggregate_id, *version)),
            _ => None,
        })
        .collect();
    assert_eq!(duplicates, [(session_id, 3)], "{anomalies:?}");
    let unreadable = anomalies
        .iter()
        .filter(|anomaly| matches!(anomaly, Anomaly::Unreadable { .. }))
        .count();
    assert_eq!((anomalies.len(), unreadable), (2, 1), "{anomalies:?}");
    assert_eq!(settlement.tainted, [(stranger, 1)], "reported");
    let head: Option<i64> =
        sqlx::query_scalar("select version from api.aggregate_heads where aggregate_id = $1")
            .bind(stranger)
            .fetch_optional(&admin_db)
            .await
            .expect("reads");
    assert_eq!(
        head, None,
        "an aggregate whose events do not fold is left alone"
    );
}

/// A head a writer marks between the settlement's read and its update keeps the writer's
/// mark: the update is a compare-and-set on the version and the pending mark read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_marked_while_settling_is_left_to_its_writer() {
    let (_app, state, admin_db, _, session_id) = session_set_back(1, 1).await;
    let folded = settle::read_log(
        &state.config.kafka,
        state.log.topics(),
        indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("reads the log");
    let stored = settle::StoredHeads::read(&state.db).await.expect("reads");
    // A writer marks it after the settlement read it, before the update.
    sqlx::query(
        "update api.aggregate_heads
            set pending_version = 2, pending_state = state, pending_since = now()
          where aggregate_id = $1",
    )
    .bind(session_id)
    .execute(&admin_db)
    .await
    .expect("marks");
    let settlement = settle::settle_against(&state.db, &folded, stored, true)
        .await
        .expect("settles");
    assert_eq!((settlement.raced, settlement.moved), (1, 0));
    let pending: Option<i64> = sqlx::query_scalar(
        "select pending_version from api.aggregate_heads where aggregate_id = $1",
    )
    .bind(session_id)
    .fetch_one(&admin_db)
    .await
    .expect("reads");
    assert_eq!(pending, Some(2), "the writer's mark stays");
}
