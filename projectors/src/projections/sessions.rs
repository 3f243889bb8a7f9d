//! The `sessions` projection: climbing sessions, their warm-up plans and analysis failures,
//! and per-user counters. Each run of same-typed events is one multi-row statement.

use cruxlog_schemas::DomainEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{Applied, Projection};

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
";

impl Projection for Sessions {
    fn name(&self) -> &'static str {
        "sessions"
    }

    fn version(&self) -> i32 {
        1
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["climbing_session", "analysis"]
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
        ]
    }

    fn apply<'a>(
        &'a self,
        connection: &'a mut PgConnection,
        batch: &'a [Applied],
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        Box::pin(async move {
            for run in super::runs(batch) {
                match &run[0].event.event {
                    DomainEvent::SessionStarted(_) => sessions_started(connection, run).await?,
                    DomainEvent::WarmupPlanned(_) => warmups_planned(connection, run).await?,
                    DomainEvent::AnalysisFailed(_) => analyses_failed(connection, run).await?,
                    DomainEvent::SessionEnded(_) => sessions_ended(connection, run).await?,
                    // Events of these topics that this projection does not show.
                    _ => {}
                }
            }
            Ok(())
        })
    }
}

async fn sessions_started(connection: &mut PgConnection, run: &[Applied]) -> sqlx::Result<()> {
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
    // Counters move only for rows actually inserted, so a replay changes nothing.
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

async fn warmups_planned(connection: &mut PgConnection, run: &[Applied]) -> sqlx::Result<()> {
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

async fn analyses_failed(connection: &mut PgConnection, run: &[Applied]) -> sqlx::Result<()> {
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

async fn sessions_ended(connection: &mut PgConnection, run: &[Applied]) -> sqlx::Result<()> {
    for applied in run {
        let DomainEvent::SessionEnded(event) = &applied.event.event else {
            continue;
        };
        // A session that was never started breaks an invariant: `fetch_one` finds no row.
        sqlx::query_scalar::<_, i32>(
            "update sessions set ended_at = $2, end_rpe = $3 where session_id = $1 returning 1",
        )
        .bind(event.session_id)
        .bind(event.ended_at)
        .bind(event.rpe)
        .fetch_one(&mut *connection)
        .await?;
    }
    Ok(())
}
