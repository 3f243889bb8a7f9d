//! The `sessions` projection: climbing sessions, their warm-up plans and analysis failures,
//! and per-user counters. New sessions and attempts go in by binary `COPY` (falling back to
//! idempotent statements when a replay meets a key); every other kind of event is one
//! multi-row statement per batch, or one statement per event where they are rare.

use std::collections::{BTreeMap, HashMap, HashSet};

use cruxlog_schemas::{
    DomainEvent,
    events::{AttemptResult, SessionEnded},
};
use futures::future::BoxFuture;
use sqlx::{Acquire as _, PgConnection};
use uuid::Uuid;

use super::{json, symbol};
use crate::{
    copy::CopyRows,
    projection::{Applied, Projection},
};

pub struct Sessions;

const DDL: &str = "
create table sessions (
    session_id      uuid primary key,
    user_id         uuid not null,
    started_at      timestamptz not null,
    discipline      text not null,
    indoor          boolean not null,
    location_name   text,
    planned_minutes integer check (planned_minutes between 1 and 1440),
    ended_at        timestamptz,
    end_rpe         integer,
    event_id        uuid not null,
    created_at      timestamptz not null
);
create index sessions_user_started on sessions (user_id, started_at desc);

create table warmup_plans (
    analysis_id      uuid primary key,
    session_id       uuid not null,
    user_id          uuid not null,
    input_event_id   uuid not null,
    analyzer_name    text not null,
    analyzer_version integer not null,
    model_id         text not null,
    steps            jsonb not null,
    total_minutes    integer not null,
    planned_at       timestamptz not null,
    unique (input_event_id, analyzer_name, analyzer_version)
);
create index warmup_plans_session on warmup_plans (session_id);

create table analysis_failures (
    analysis_id      uuid primary key,
    user_id          uuid not null,
    input_event_id   uuid not null,
    analyzer_name    text not null,
    analyzer_version integer not null,
    reason           text not null,
    failed_at        timestamptz not null
);

create table user_stats (
    user_id          uuid primary key,
    sessions_started bigint not null default 0
);

create table attempts (
    attempt_id        uuid primary key,
    session_id        uuid not null,
    user_id           uuid not null,
    attempted_at      timestamptz not null,
    route_id          uuid,
    route_description text,
    grade_system      text,
    grade_label       text,
    difficulty        integer,
    style             text not null,
    result            text not null,
    sent              boolean not null,
    falls             integer not null check (falls >= 0),
    duration_ms       bigint,
    rpe               integer,
    beta              jsonb not null,
    notes             jsonb,
    deleted_at        timestamptz,
    updated_at        timestamptz not null
);
create index attempts_session on attempts (session_id, attempted_at);
create index attempts_user on attempts (user_id, attempted_at desc);

create table attempt_videos (
    video_id         uuid primary key,
    attempt_id       uuid not null,
    session_id       uuid not null,
    user_id          uuid not null,
    media            jsonb not null,
    duration_ms      bigint not null,
    size_bytes       bigint not null,
    content_type     text not null,
    rotation_degrees integer not null,
    width_px         integer not null,
    height_px        integer not null,
    frame_rate       double precision,
    recorded_at      timestamptz,
    attached_at      timestamptz not null
);
create index attempt_videos_attempt on attempt_videos (attempt_id);

-- Progress read models, always consistent with the attempts they summarise.
create view grade_pyramid as
    select user_id, grade_system, grade_label, difficulty, count(*) as sends,
           count(*) filter (where result in ('flash', 'onsight')) as first_try_sends
    from attempts where sent and deleted_at is null and difficulty is not null
    group by user_id, grade_system, grade_label, difficulty;

create view weekly_volume as
    select a.user_id, date_trunc('week', a.attempted_at) as week, count(*) as attempts,
           count(*) filter (where a.sent) as sends, count(distinct a.session_id) as sessions,
           coalesce(sum(a.duration_ms), 0) as climbing_ms
    from attempts a where a.deleted_at is null
    group by a.user_id, date_trunc('week', a.attempted_at);

create view send_rate_by_style as
    select user_id, style, count(*) as attempts, count(*) filter (where sent) as sends,
           round(count(*) filter (where sent)::numeric / count(*), 3) as send_rate
    from attempts where deleted_at is null
    group by user_id, style;
";

impl Projection for Sessions {
    fn name(&self) -> &'static str {
        "sessions"
    }

    fn version(&self) -> i32 {
        // 3: attempts, videos and the progress views are exposed.
        3
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["climbing_session", "analysis", "user"]
    }

    fn ddl(&self) -> &'static str {
        DDL
    }

    fn exposed(&self) -> &'static [&'static str] {
        &[
            "sessions",
            "warmup_plans",
            "analysis_failures",
            "user_stats",
            "attempts",
            "attempt_videos",
            "grade_pyramid",
            "weekly_volume",
            "send_rate_by_style",
        ]
    }

    fn apply<'a>(
        &'a self,
        connection: &'a mut PgConnection,
        batch: &'a [Applied],
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        Box::pin(async move {
            // Kinds of event in causal order (a session is started before its attempts are
            // logged, corrected, deleted, and before it ends; erasure comes last); each kind in
            // log order.
            let mut phases: [Vec<&Applied>; PHASES] = Default::default();
            for applied in batch {
                if let Some(phase) = phase(&applied.event.event) {
                    phases[phase].push(applied);
                }
            }
            let [
                started,
                logged,
                corrected,
                videos,
                deleted,
                ended,
                warmups,
                failed,
                erased,
            ] = &phases;
            // New sessions and attempts in bulk; sessions that end in the batch that starts
            // them are inserted ended: one row written instead of a row and its update.
            let merged = new_rows(connection, started, logged, ended).await?;
            if !corrected.is_empty() {
                attempts(connection, corrected).await?;
            }
            for applied in videos.iter().chain(deleted) {
                other(connection, applied).await?;
            }
            let ended: Vec<&Applied> = ended
                .iter()
                .copied()
                .filter(|applied| match &applied.event.event {
                    DomainEvent::SessionEnded(e) => !merged.contains(&e.session_id),
                    _ => false,
                })
                .collect();
            if !ended.is_empty() {
                sessions_ended(connection, &ended).await?;
            }
            if !warmups.is_empty() {
                warmups_planned(connection, warmups).await?;
            }
            if !failed.is_empty() {
                analyses_failed(connection, failed).await?;
            }
            for applied in erased {
                other(connection, applied).await?;
            }
            Ok(())
        })
    }
}

const PHASES: usize = 9;

/// The phase an event is applied in; `None` for events this projection does not show.
fn phase(event: &DomainEvent) -> Option<usize> {
    Some(match event {
        DomainEvent::SessionStarted(_) => 0,
        DomainEvent::AttemptLogged(_) => 1,
        DomainEvent::AttemptCorrected(_) => 2,
        DomainEvent::VideoAttached(_) => 3,
        DomainEvent::AttemptDeleted(_) => 4,
        DomainEvent::SessionEnded(_) => 5,
        DomainEvent::WarmupPlanned(_) => 6,
        DomainEvent::AnalysisFailed(_) => 7,
        DomainEvent::UserErased(_) => 8,
        _ => return None,
    })
}

/// New sessions (with the ends among `ended` of those that start here) and new attempts, by
/// binary `COPY`: new rows are the rule (catch-up, live traffic). A replay meets a primary
/// key; then everything the fast path wrote is rolled back and the idempotent statements run
/// instead. Returns the sessions whose end was written with their start.
async fn new_rows(
    connection: &mut PgConnection,
    started: &[&Applied],
    logged: &[&Applied],
    ended: &[&Applied],
) -> sqlx::Result<HashSet<Uuid>> {
    if started.len() + logged.len() < BULK_MIN_ROWS {
        // A few rows (live traffic): one statement each, no savepoint, and no small `COPY`,
        // whose data and end message, written back to back, can wait on a delayed ACK.
        insert_idempotently(connection, started, logged).await?;
        return Ok(HashSet::new());
    }
    let mut savepoint = connection.begin().await?;
    match copy_new_rows(&mut savepoint, started, logged, ended).await {
        Ok(merged) => {
            savepoint.commit().await?;
            Ok(merged)
        }
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23505") => {
            savepoint.rollback().await?;
            insert_idempotently(connection, started, logged).await?;
            Ok(HashSet::new())
        }
        Err(error) => Err(error),
    }
}

/// Below this many new sessions and attempts in a batch, the idempotent statements are used
/// directly.
const BULK_MIN_ROWS: usize = 64;

async fn insert_idempotently(
    connection: &mut PgConnection,
    started: &[&Applied],
    logged: &[&Applied],
) -> sqlx::Result<()> {
    if !started.is_empty() {
        insert_new_sessions(connection, started).await?;
    }
    if !logged.is_empty() {
        insert_new_attempts(connection, &attempt_columns(logged)?).await?;
    }
    Ok(())
}

async fn copy_new_rows(
    connection: &mut PgConnection,
    started: &[&Applied],
    logged: &[&Applied],
    ended: &[&Applied],
) -> sqlx::Result<HashSet<Uuid>> {
    let mut merged = HashSet::new();
    if !started.is_empty() {
        // The latest end of each session, in log order.
        let mut ends: HashMap<Uuid, &SessionEnded> = HashMap::new();
        for applied in ended {
            if let DomainEvent::SessionEnded(e) = &applied.event.event {
                ends.insert(e.session_id, e);
            }
        }
        let mut rows = CopyRows::new();
        let mut per_user: BTreeMap<Uuid, i64> = BTreeMap::new();
        for applied in started {
            let DomainEvent::SessionStarted(e) = &applied.event.event else {
                continue;
            };
            let end = ends.get(&e.session_id);
            if end.is_some() {
                merged.insert(e.session_id);
            }
            *per_user.entry(e.user_id).or_default() += 1;
            rows.row(11)
                .field(&e.session_id)
                .field(&e.user_id)
                .field(&e.started_at)
                .field(e.discipline.as_str())
                .field(&e.indoor)
                .field(&e.location_name)
                .field(&e.planned_minutes)
                .field(&end.map(|end| end.ended_at))
                .field(&end.and_then(|end| end.rpe))
                .field(&applied.event.envelope.event_id)
                .field(&applied.event.envelope.occurred_at);
        }
        rows.copy_in(&mut *connection, COPY_SESSIONS).await?;
        // The copy succeeded, so every start is a new session and counts. Users in key
        // order: two transactions never wait on each other's counters in opposite orders.
        let (users, counts): (Vec<Uuid>, Vec<i64>) = per_user.into_iter().unzip();
        sqlx::query(
            "insert into user_stats (user_id, sessions_started)
             select * from unnest($1::uuid[], $2::bigint[])
             on conflict (user_id) do update
             set sessions_started = user_stats.sessions_started + excluded.sessions_started",
        )
        .bind(&users)
        .bind(&counts)
        .execute(&mut *connection)
        .await?;
    }
    if !logged.is_empty() {
        copy_attempts(&mut *connection, logged).await?;
    }
    Ok(merged)
}

const COPY_SESSIONS: &str = "copy sessions (session_id, user_id, started_at, discipline, indoor,
    location_name, planned_minutes, ended_at, end_rpe, event_id, created_at) from stdin (format binary)";

/// The sessions of a run not already there; counters move only for rows actually inserted,
/// so a replay changes nothing.
async fn insert_new_sessions(connection: &mut PgConnection, run: &[&Applied]) -> sqlx::Result<()> {
    let mut columns = SessionColumns::default();
    for applied in run {
        if let DomainEvent::SessionStarted(event) = &applied.event.event {
            columns.session_id.push(event.session_id);
            columns.user_id.push(event.user_id);
            columns.started_at.push(event.started_at);
            columns.discipline.push(event.discipline.as_str());
            columns.indoor.push(event.indoor);
            columns.location_name.push(event.location_name.clone());
            columns.planned_minutes.push(event.planned_minutes);
            columns.event_id.push(applied.event.envelope.event_id);
            columns.created_at.push(applied.event.envelope.occurred_at);
        }
    }
    sqlx::query(
        "with inserted as (
            insert into sessions (session_id, user_id, started_at, discipline, indoor, location_name,
                planned_minutes, event_id, created_at)
            select * from unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::bool[],
                $6::text[], $7::int[], $8::uuid[], $9::timestamptz[])
            on conflict (session_id) do nothing
            returning user_id
         )
         insert into user_stats (user_id, sessions_started)
         select user_id, count(*) from inserted group by user_id
         on conflict (user_id) do update set sessions_started = user_stats.sessions_started + excluded.sessions_started",
    )
    .bind(&columns.session_id)
    .bind(&columns.user_id)
    .bind(&columns.started_at)
    .bind(&columns.discipline)
    .bind(&columns.indoor)
    .bind(&columns.location_name)
    .bind(&columns.planned_minutes)
    .bind(&columns.event_id)
    .bind(&columns.created_at)
    .execute(connection)
    .await?;
    Ok(())
}

#[derive(Default)]
struct SessionColumns {
    session_id: Vec<Uuid>,
    user_id: Vec<Uuid>,
    started_at: Vec<chrono::DateTime<chrono::Utc>>,
    discipline: Vec<&'static str>,
    indoor: Vec<bool>,
    location_name: Vec<Option<String>>,
    planned_minutes: Vec<Option<i32>>,
    event_id: Vec<Uuid>,
    created_at: Vec<chrono::DateTime<chrono::Utc>>,
}

async fn warmups_planned(connection: &mut PgConnection, run: &[&Applied]) -> sqlx::Result<()> {
    for applied in run {
        let DomainEvent::WarmupPlanned(event) = &applied.event.event else {
            continue;
        };
        let steps =
            serde_json::to_value(&event.steps).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(
            "insert into warmup_plans (analysis_id, session_id, user_id, input_event_id, analyzer_name,
                analyzer_version, model_id, steps, total_minutes, planned_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             on conflict do nothing",
        )
        .bind(event.analysis_id)
        .bind(event.session_id)
        .bind(event.user_id)
        .bind(event.input_event_id)
        .bind(&event.analyzer.name)
        .bind(event.analyzer.version)
        .bind(&event.analyzer.model_id)
        .bind(steps)
        .bind(event.total_minutes)
        .bind(applied.event.envelope.occurred_at)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

async fn analyses_failed(connection: &mut PgConnection, run: &[&Applied]) -> sqlx::Result<()> {
    for applied in run {
        let DomainEvent::AnalysisFailed(event) = &applied.event.event else {
            continue;
        };
        sqlx::query(
            "insert into analysis_failures (analysis_id, user_id, input_event_id, analyzer_name,
                analyzer_version, reason, failed_at)
             values ($1, $2, $3, $4, $5, $6, $7)
             on conflict do nothing",
        )
        .bind(event.analysis_id)
        .bind(event.user_id)
        .bind(event.input_event_id)
        .bind(&event.analyzer.name)
        .bind(event.analyzer.version)
        .bind(&event.reason)
        .bind(applied.event.envelope.occurred_at)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

async fn sessions_ended(connection: &mut PgConnection, run: &[&Applied]) -> sqlx::Result<()> {
    let (mut ids, mut ended, mut rpe) = (Vec::new(), Vec::new(), Vec::new());
    for applied in run {
        if let DomainEvent::SessionEnded(event) = &applied.event.event {
            ids.push(event.session_id);
            ended.push(event.ended_at);
            rpe.push(event.rpe);
        }
    }
    let updated = sqlx::query(
        "update sessions s set ended_at = u.ended_at, end_rpe = u.rpe
         from unnest($1::uuid[], $2::timestamptz[], $3::int[]) as u(session_id, ended_at, rpe)
         where s.session_id = u.session_id",
    )
    .bind(&ids)
    .bind(&ended)
    .bind(&rpe)
    .execute(connection)
    .await?
    .rows_affected();
    // A session that was never started breaks an invariant; the runner then applies the run
    // event by event to find which one.
    if updated < ids.len() as u64 {
        return Err(sqlx::Error::RowNotFound);
    }
    Ok(())
}

/// New attempts, one binary `COPY` per run.
async fn copy_attempts(connection: &mut PgConnection, run: &[&Applied]) -> sqlx::Result<()> {
    let mut rows = CopyRows::new();
    for applied in run {
        let DomainEvent::AttemptLogged(e) = &applied.event.event else {
            continue;
        };
        let d = &e.details;
        let grade = d.grade.as_ref();
        rows.row(18)
            .field(&e.attempt_id)
            .field(&e.session_id)
            .field(&e.user_id)
            .field(&e.attempted_at)
            .field(&d.route_id)
            .field(&d.route_description)
            .field(&grade.map(|g| symbol(&g.system)))
            .field(&grade.map(|g| g.label.as_str()))
            .field(&grade.and_then(|g| g.difficulty().ok()))
            .field(&symbol(&d.style))
            .field(&symbol(&d.result))
            .field(&sent(&d.result))
            .field(&d.falls)
            .field(&d.duration_ms)
            .field(&d.rpe);
        rows.jsonb(&d.beta)?;
        match &d.notes {
            Some(notes) => rows.jsonb(notes)?,
            None => rows.null(),
        };
        rows.field(&applied.event.envelope.occurred_at);
    }
    rows.copy_in(connection, COPY_ATTEMPTS).await?;
    Ok(())
}

fn sent(result: &AttemptResult) -> bool {
    !matches!(result, AttemptResult::Fail | AttemptResult::Unknown)
}

const COPY_ATTEMPTS: &str = "copy attempts (attempt_id, session_id, user_id, attempted_at, route_id,
    route_description, grade_system, grade_label, difficulty, style, result, sent, falls, duration_ms,
    rpe, beta, notes, updated_at) from stdin (format binary)";

fn attempt_columns(run: &[&Applied]) -> sqlx::Result<AttemptColumns> {
    let mut c = AttemptColumns::default();
    for applied in run {
        let DomainEvent::AttemptLogged(e) = &applied.event.event else {
            continue;
        };
        let d = &e.details;
        c.attempt_id.push(e.attempt_id);
        c.session_id.push(e.session_id);
        c.user_id.push(e.user_id);
        c.attempted_at.push(e.attempted_at);
        c.route_id.push(d.route_id);
        c.route_description.push(d.route_description.clone());
        c.grade_system
            .push(d.grade.as_ref().map(|g| symbol(&g.system)));
        c.grade_label
            .push(d.grade.as_ref().map(|g| g.label.clone()));
        c.difficulty
            .push(d.grade.as_ref().and_then(|g| g.difficulty().ok()));
        c.style.push(symbol(&d.style));
        c.result.push(symbol(&d.result));
        c.sent.push(sent(&d.result));
        c.falls.push(d.falls);
        c.duration_ms.push(d.duration_ms);
        c.rpe.push(d.rpe);
        c.beta.push(json(&d.beta)?);
        c.notes.push(d.notes.as_ref().map(json).transpose()?);
        c.updated_at.push(applied.event.envelope.occurred_at);
    }
    Ok(c)
}

/// The attempts of a run not already there, each once.
async fn insert_new_attempts(
    connection: &mut PgConnection,
    c: &AttemptColumns,
) -> sqlx::Result<()> {
    sqlx::query(INSERT_ATTEMPTS_NEW)
        .bind(&c.attempt_id)
        .bind(&c.session_id)
        .bind(&c.user_id)
        .bind(&c.attempted_at)
        .bind(&c.route_id)
        .bind(&c.route_description)
        .bind(&c.grade_system)
        .bind(&c.grade_label)
        .bind(&c.difficulty)
        .bind(&c.style)
        .bind(&c.result)
        .bind(&c.sent)
        .bind(&c.falls)
        .bind(&c.duration_ms)
        .bind(&c.rpe)
        .bind(&c.beta)
        .bind(&c.notes)
        .bind(&c.updated_at)
        .execute(connection)
        .await?;
    Ok(())
}

const INSERT_ATTEMPTS_NEW: &str = "
    insert into attempts (attempt_id, session_id, user_id, attempted_at, route_id, route_description,
        grade_system, grade_label, difficulty, style, result, sent, falls, duration_ms, rpe, beta, notes,
        updated_at)
    select distinct on (attempt_id) * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[],
        $5::uuid[], $6::text[], $7::text[], $8::text[], $9::int[], $10::text[], $11::text[], $12::bool[],
        $13::int[], $14::bigint[], $15::int[], $16::jsonb[], $17::jsonb[], $18::timestamptz[]) as u(attempt_id)
    where not exists (select 1 from attempts a where a.attempt_id = u.attempt_id)";

#[derive(Default)]
struct AttemptColumns {
    attempt_id: Vec<Uuid>,
    session_id: Vec<Uuid>,
    user_id: Vec<Uuid>,
    attempted_at: Vec<chrono::DateTime<chrono::Utc>>,
    route_id: Vec<Option<Uuid>>,
    route_description: Vec<Option<String>>,
    grade_system: Vec<Option<String>>,
    grade_label: Vec<Option<String>>,
    difficulty: Vec<Option<i32>>,
    style: Vec<String>,
    result: Vec<String>,
    sent: Vec<bool>,
    falls: Vec<i32>,
    duration_ms: Vec<Option<i64>>,
    rpe: Vec<Option<i32>>,
    beta: Vec<serde_json::Value>,
    notes: Vec<Option<serde_json::Value>>,
    updated_at: Vec<chrono::DateTime<chrono::Utc>>,
}

/// Corrected attempts (and any logged one given here): the newest details win, by event time.
async fn attempts(connection: &mut PgConnection, run: &[&Applied]) -> sqlx::Result<()> {
    for applied in run {
        let (session_id, attempt_id, user_id, attempted_at, details) = match &applied.event.event {
            DomainEvent::AttemptLogged(e) => (
                e.session_id,
                e.attempt_id,
                e.user_id,
                e.attempted_at,
                &e.details,
            ),
            DomainEvent::AttemptCorrected(e) => (
                e.session_id,
                e.attempt_id,
                e.user_id,
                e.attempted_at,
                &e.details,
            ),
            _ => continue,
        };
        let sent = !matches!(details.result, AttemptResult::Fail | AttemptResult::Unknown);
        sqlx::query(
            "insert into attempts (attempt_id, session_id, user_id, attempted_at, route_id, route_description,
                grade_system, grade_label, difficulty, style, result, sent, falls, duration_ms, rpe, beta, notes,
                updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
             on conflict (attempt_id) do update set attempted_at = excluded.attempted_at,
                route_id = excluded.route_id, route_description = excluded.route_description,
                grade_system = excluded.grade_system, grade_label = excluded.grade_label,
                difficulty = excluded.difficulty, style = excluded.style, result = excluded.result,
                sent = excluded.sent, falls = excluded.falls, duration_ms = excluded.duration_ms,
                rpe = excluded.rpe, beta = excluded.beta, notes = excluded.notes, updated_at = excluded.updated_at
             where attempts.updated_at <= excluded.updated_at",
        )
        .bind(attempt_id)
        .bind(session_id)
        .bind(user_id)
        .bind(attempted_at)
        .bind(details.route_id)
        .bind(&details.route_description)
        .bind(details.grade.as_ref().map(|g| symbol(&g.system)))
        .bind(details.grade.as_ref().map(|g| g.label.clone()))
        .bind(details.grade.as_ref().and_then(|g| g.difficulty().ok()))
        .bind(symbol(&details.style))
        .bind(symbol(&details.result))
        .bind(sent)
        .bind(details.falls)
        .bind(details.duration_ms)
        .bind(details.rpe)
        .bind(json(&details.beta)?)
        .bind(details.notes.as_ref().map(json).transpose()?)
        .bind(applied.event.envelope.occurred_at)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

async fn other(connection: &mut PgConnection, applied: &Applied) -> sqlx::Result<()> {
    let at = applied.event.envelope.occurred_at;
    match &applied.event.event {
        DomainEvent::AttemptDeleted(e) => {
            sqlx::query(
                "update attempts set deleted_at = $2, updated_at = $2 where attempt_id = $1",
            )
            .bind(e.attempt_id)
            .bind(at)
            .execute(connection)
            .await?;
        }
        DomainEvent::VideoAttached(e) => {
            sqlx::query(
                "insert into attempt_videos (video_id, attempt_id, session_id, user_id, media, duration_ms,
                    size_bytes, content_type, rotation_degrees, width_px, height_px, frame_rate, recorded_at,
                    attached_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) on conflict do nothing",
            )
            .bind(e.video_id)
            .bind(e.attempt_id)
            .bind(e.session_id)
            .bind(e.user_id)
            .bind(json(&e.media)?)
            .bind(e.duration_ms)
            .bind(e.size_bytes)
            .bind(&e.content_type)
            .bind(e.rotation_degrees)
            .bind(e.width_px)
            .bind(e.height_px)
            .bind(e.frame_rate)
            .bind(e.recorded_at)
            .bind(at)
            .execute(connection)
            .await?;
        }
        // Erasure: the user's sessions, attempts and videos leave the read model.
        DomainEvent::UserErased(e) => {
            sqlx::query(
                "with v as (delete from attempt_videos where user_id = $1),
                      a as (delete from attempts where user_id = $1),
                      w as (delete from warmup_plans where user_id = $1),
                      u as (delete from user_stats where user_id = $1)
                 delete from sessions where user_id = $1",
            )
            .bind(e.user_id)
            .execute(connection)
            .await?;
        }
        _ => {}
    }
    Ok(())
}
