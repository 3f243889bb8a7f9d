-- Versioned, rebuildable projections (R2). Each build of a projection lives in its own
-- PostgreSQL schema (p_<projection>_v<version>_b<build_id>); the API reads views in the
-- `read` schema that point at the live build, swapped atomically when a rebuild catches up.
-- Bookkeeping shared by every build lives in the `cruxlog` schema.

drop table if exists projection_offsets, projection_stats, sessions, warmup_plans,
    analysis_failures, user_stats;

create schema if not exists cruxlog;
create schema if not exists read;

create table cruxlog.projection_builds (
    build_id    bigserial primary key,
    projection  text        not null,
    version     integer     not null,
    schema_name text        not null unique,
    state       text        not null check (state in ('building', 'live', 'retired')),
    started_at  timestamptz not null default now(),
    live_at     timestamptz,
    retired_at  timestamptz
);
-- At most one live build per projection.
create unique index projection_builds_one_live on cruxlog.projection_builds (projection)
    where state = 'live';

create table cruxlog.projection_offsets (
    build_id    bigint  not null references cruxlog.projection_builds on delete cascade,
    topic       text    not null,
    partition   integer not null,
    -- The next offset to read: written in the same transaction as the rows (R1).
    next_offset bigint  not null,
    updated_at  timestamptz not null default now(),
    primary key (build_id, topic, partition)
);

create table cruxlog.projection_stats (
    build_id       bigint primary key references cruxlog.projection_builds on delete cascade,
    -- Counted in the applying transaction: equals the log length exactly when nothing is
    -- lost or doubled.
    events_applied bigint not null default 0,
    dead_letters   bigint not null default 0,
    updated_at     timestamptz not null default now()
);

-- Aggregates whose events wait behind a dead letter, so they never apply out of order (R4).
create table cruxlog.parked_aggregates (
    build_id     bigint not null references cruxlog.projection_builds on delete cascade,
    aggregate_id uuid   not null,
    topic        text   not null,
    partition    integer not null,
    first_offset bigint not null,
    reason       text   not null,
    parked_at    timestamptz not null default now(),
    primary key (build_id, aggregate_id)
);

-- What the API reads for read-your-writes (R3) and pipeline health: the live builds only.
create view read.projection_offsets as
    select b.projection, o.topic, o.partition, o.next_offset, o.updated_at
    from cruxlog.projection_offsets o join cruxlog.projection_builds b using (build_id)
    where b.state = 'live';

create view read.projection_health as
    select b.projection, b.version, b.build_id, b.state, b.started_at, b.live_at,
           coalesce(s.events_applied, 0) as events_applied,
           coalesce(s.dead_letters, 0) as dead_letters,
           (select count(*) from cruxlog.parked_aggregates p where p.build_id = b.build_id) as parked_aggregates,
           s.updated_at
    from cruxlog.projection_builds b left join cruxlog.projection_stats s using (build_id)
    where b.state in ('live', 'building');
