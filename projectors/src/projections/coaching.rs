//! The `coaching` projection: ghosts, routines and completed workouts, goals and injuries —
//! what the app shows a climber about their training.

use cruxlog_schemas::DomainEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::{json, symbol};
use crate::projection::{Applied, Projection};

pub struct Coaching;

const DDL: &str = "
create table ghosts (
    ghost_id         uuid primary key,
    user_id          uuid not null,
    route_id         uuid,
    status           text not null check (status in ('requested', 'generated', 'failed')),
    analyzer_name    text,
    analyzer_version integer,
    model_id         text,
    keyframes        jsonb,
    duration_ms      bigint,
    feasibility      double precision,
    media            jsonb,
    failure_reason   text,
    requested_at     timestamptz,
    finished_at      timestamptz
);
create index ghosts_user on ghosts (user_id, requested_at desc);

create table routines (
    routine_id       uuid primary key,
    user_id          uuid not null,
    status           text not null check (status in ('requested', 'generated', 'failed')),
    weeks_requested  integer,
    analyzer_name    text,
    analyzer_version integer,
    model_id         text,
    plan             jsonb,
    failure_reason   text,
    requested_at     timestamptz,
    finished_at      timestamptz
);
create index routines_user on routines (user_id, requested_at desc);

create table workouts (
    routine_id   uuid not null,
    workout_id   text not null,
    user_id      uuid not null,
    completed_at timestamptz not null,
    duration_ms  bigint,
    rpe          integer,
    exercises    jsonb not null,
    event_id     uuid primary key
);
create index workouts_user on workouts (user_id, completed_at desc);

create table goals (
    goal_id      uuid primary key,
    user_id      uuid not null,
    kind         text not null,
    grade_system text,
    grade_label  text,
    difficulty   integer,
    route_id     uuid,
    target_date  timestamptz,
    status       text not null,
    set_at       timestamptz not null,
    closed_at    timestamptz
);
create index goals_user on goals (user_id);

create table injuries (
    injury_id   uuid primary key,
    user_id     uuid not null,
    details     jsonb not null,
    reported_at timestamptz not null,
    resolved_at timestamptz
);
create index injuries_user on injuries (user_id);
";

impl Projection for Coaching {
    fn name(&self) -> &'static str {
        "coaching"
    }

    fn version(&self) -> i32 {
        1
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["ghost", "routine", "user"]
    }

    fn ddl(&self) -> &'static str {
        DDL
    }

    fn exposed(&self) -> &'static [&'static str] {
        &["ghosts", "routines", "workouts", "goals", "injuries"]
    }

    fn apply<'a>(
        &'a self,
        connection: &'a mut PgConnection,
        batch: &'a [Applied],
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        Box::pin(async move {
            for applied in batch {
                apply_one(connection, applied).await?;
            }
            Ok(())
        })
    }
}

async fn apply_one(connection: &mut PgConnection, applied: &Applied) -> sqlx::Result<()> {
    let at = applied.event.envelope.occurred_at;
    let query = match &applied.event.event {
        DomainEvent::GhostRequested(e) => sqlx::query(
            "insert into ghosts (ghost_id, user_id, route_id, status, requested_at)
             values ($1, $2, $3, 'requested', $4) on conflict do nothing",
        )
        .bind(e.ghost_id)
        .bind(e.user_id)
        .bind(e.route_id)
        .bind(at),
        DomainEvent::GhostGenerated(e) => sqlx::query(
            "insert into ghosts (ghost_id, user_id, route_id, status, analyzer_name, analyzer_version, model_id,
                keyframes, duration_ms, feasibility, media, requested_at, finished_at)
             values ($1, $2, $3, 'generated', $4, $5, $6, $7, $8, $9, $10, $11, $11)
             on conflict (ghost_id) do update set status = 'generated', analyzer_name = excluded.analyzer_name,
                analyzer_version = excluded.analyzer_version, model_id = excluded.model_id,
                keyframes = excluded.keyframes, duration_ms = excluded.duration_ms,
                feasibility = excluded.feasibility, media = excluded.media, finished_at = excluded.finished_at",
        )
        .bind(e.ghost_id)
        .bind(e.user_id)
        .bind(e.route_id)
        .bind(&e.analyzer.name)
        .bind(e.analyzer.version)
        .bind(&e.analyzer.model_id)
        .bind(json(&e.keyframes)?)
        .bind(e.duration_ms)
        .bind(e.feasibility)
        .bind(serde_json::json!({"video": json(&e.video)?, "pose_track": json(&e.pose_track)?}))
        .bind(at),
        DomainEvent::GhostFailed(e) => sqlx::query(
            "insert into ghosts (ghost_id, user_id, status, analyzer_name, analyzer_version, model_id,
                failure_reason, requested_at, finished_at)
             values ($1, $2, 'failed', $3, $4, $5, $6, $7, $7)
             on conflict (ghost_id) do update set status = 'failed', failure_reason = excluded.failure_reason,
                finished_at = excluded.finished_at",
        )
        .bind(e.ghost_id)
        .bind(e.user_id)
        .bind(&e.analyzer.name)
        .bind(e.analyzer.version)
        .bind(&e.analyzer.model_id)
        .bind(&e.reason)
        .bind(at),
        DomainEvent::RoutineRequested(e) => sqlx::query(
            "insert into routines (routine_id, user_id, status, weeks_requested, requested_at)
             values ($1, $2, 'requested', $3, $4) on conflict do nothing",
        )
        .bind(e.routine_id)
        .bind(e.user_id)
        .bind(e.weeks)
        .bind(at),
        DomainEvent::RoutineGenerated(e) => sqlx::query(
            "insert into routines (routine_id, user_id, status, analyzer_name, analyzer_version, model_id, plan,
                requested_at, finished_at)
             values ($1, $2, 'generated', $3, $4, $5, $6, $7, $7)
             on conflict (routine_id) do update set status = 'generated', analyzer_name = excluded.analyzer_name,
                analyzer_version = excluded.analyzer_version, model_id = excluded.model_id, plan = excluded.plan,
                finished_at = excluded.finished_at",
        )
        .bind(e.routine_id)
        .bind(e.user_id)
        .bind(&e.analyzer.name)
        .bind(e.analyzer.version)
        .bind(&e.analyzer.model_id)
        .bind(json(&e.weeks)?)
        .bind(at),
        DomainEvent::RoutineFailed(e) => sqlx::query(
            "insert into routines (routine_id, user_id, status, analyzer_name, analyzer_version, model_id,
                failure_reason, requested_at, finished_at)
             values ($1, $2, 'failed', $3, $4, $5, $6, $7, $7)
             on conflict (routine_id) do update set status = 'failed', failure_reason = excluded.failure_reason,
                finished_at = excluded.finished_at",
        )
        .bind(e.routine_id)
        .bind(e.user_id)
        .bind(&e.analyzer.name)
        .bind(e.analyzer.version)
        .bind(&e.analyzer.model_id)
        .bind(&e.reason)
        .bind(at),
        DomainEvent::WorkoutCompleted(e) => sqlx::query(
            "insert into workouts (routine_id, workout_id, user_id, completed_at, duration_ms, rpe, exercises, event_id)
             values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing",
        )
        .bind(e.routine_id)
        .bind(&e.workout_id)
        .bind(e.user_id)
        .bind(e.completed_at)
        .bind(e.duration_ms)
        .bind(e.rpe)
        .bind(json(&e.exercises)?)
        .bind(applied.event.envelope.event_id),
        DomainEvent::GoalSet(e) => sqlx::query(
            "insert into goals (goal_id, user_id, kind, grade_system, grade_label, difficulty, route_id,
                target_date, status, set_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9) on conflict do nothing",
        )
        .bind(e.goal_id)
        .bind(e.user_id)
        .bind(symbol(&e.kind))
        .bind(e.target_grade.as_ref().map(|g| symbol(&g.system)))
        .bind(e.target_grade.as_ref().map(|g| g.label.clone()))
        .bind(e.target_grade.as_ref().and_then(|g| g.difficulty().ok()))
        .bind(e.route_id)
        .bind(e.target_date)
        .bind(at),
        DomainEvent::GoalClosed(e) => sqlx::query("update goals set status = $2, closed_at = $3 where goal_id = $1")
            .bind(e.goal_id)
            .bind(symbol(&e.outcome))
            .bind(at),
        DomainEvent::InjuryReported(e) => sqlx::query(
            "insert into injuries (injury_id, user_id, details, reported_at) values ($1, $2, $3, $4)
             on conflict do nothing",
        )
        .bind(e.injury_id)
        .bind(e.user_id)
        .bind(json(&e.details)?)
        .bind(at),
        DomainEvent::InjuryResolved(e) => sqlx::query("update injuries set resolved_at = $2 where injury_id = $1")
            .bind(e.injury_id)
            .bind(at),
        // Erasure: personal rows of the user go; what remains in the log is unreadable.
        DomainEvent::UserErased(e) => sqlx::query(
            "with g as (delete from ghosts where user_id = $1), r as (delete from routines where user_id = $1),
                  w as (delete from workouts where user_id = $1), o as (delete from goals where user_id = $1)
             delete from injuries where user_id = $1",
        )
        .bind(e.user_id),
        _ => return Ok(()),
    };
    query.execute(connection).await?;
    Ok(())
}
