-- The `sessions` projection: climbing sessions and what analyzers said about them.
-- Owned by the projectors; the API's role only reads (see 0002 once roles exist).

create table projection_offsets (
    projection  text    not null,
    topic       text    not null,
    partition   integer not null,
    -- The next offset to read: stored in the same transaction as the rows (R1).
    next_offset bigint  not null,
    updated_at  timestamptz not null default now(),
    primary key (projection, topic, partition)
);

create table projection_stats (
    projection     text   primary key,
    -- Events applied, counted in the applying transaction: equals the log length exactly
    -- when nothing is lost or doubled.
    events_applied bigint not null default 0,
    dead_letters   bigint not null default 0,
    updated_at     timestamptz not null default now()
);

create table sessions (
    session_id      uuid primary key,
    user_id         uuid not null,
    started_at      timestamptz not null,
    discipline      text not null,
    indoor          boolean not null,
    location_name   text,
    planned_minutes integer,
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
