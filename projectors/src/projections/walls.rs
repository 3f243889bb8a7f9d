//! The `walls` projection: gyms, walls, wall photos, the holds detected on each photo (every
//! analyzer version), and routes with their state.

use cruxlog_schemas::DomainEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::{json, symbol};
use crate::projection::{Applied, Projection};

pub struct Walls;

const DDL: &str = "
create table gyms (
    gym_id       uuid primary key,
    name         text not null,
    city         text,
    country_code text,
    latitude     double precision,
    longitude    double precision,
    timezone     text,
    created_at   timestamptz not null
);

create table walls (
    wall_id       uuid primary key,
    gym_id        uuid not null,
    name          text not null,
    kind          text not null,
    angle_degrees double precision,
    height_m      double precision,
    created_at    timestamptz not null
);
create index walls_gym on walls (gym_id);

create table wall_photos (
    photo_id     uuid primary key,
    wall_id      uuid not null,
    uploaded_by  uuid not null,
    media        jsonb not null,
    width_px     integer not null,
    height_px    integer not null,
    content_type text not null,
    size_bytes   bigint not null,
    taken_at     timestamptz,
    uploaded_at  timestamptz not null
);
create index wall_photos_wall on wall_photos (wall_id, uploaded_at desc);

create table holds (
    analysis_id      uuid not null,
    hold_id          text not null,
    wall_id          uuid not null,
    photo_id         uuid not null,
    analyzer_version integer not null,
    center_x         double precision not null,
    center_y         double precision not null,
    area             double precision not null,
    colour           text not null,
    rgb              integer[] not null,
    kind             text not null,
    confidence       double precision not null,
    bbox             jsonb not null,
    polygon          jsonb not null,
    primary key (analysis_id, hold_id)
);
create index holds_wall on holds (wall_id, photo_id);

create table routes (
    route_id           uuid primary key,
    wall_id            uuid not null,
    gym_id             uuid not null,
    name               text,
    colour             text not null,
    grade_system       text not null,
    grade_label        text not null,
    difficulty         integer,
    style_tags         text[] not null,
    wall_angle_degrees double precision not null,
    holds              jsonb not null,
    photo_id           uuid,
    status             text not null check (status in ('defined', 'confirmed', 'retired')),
    set_at             timestamptz,
    updated_at         timestamptz not null
);
create index routes_wall on routes (wall_id, status);
";

impl Projection for Walls {
    fn name(&self) -> &'static str {
        "walls"
    }

    fn version(&self) -> i32 {
        1
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["gym", "wall", "route", "analysis"]
    }

    fn ddl(&self) -> &'static str {
        DDL
    }

    fn exposed(&self) -> &'static [&'static str] {
        &["gyms", "walls", "wall_photos", "holds", "routes"]
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
    match &applied.event.event {
        DomainEvent::GymRegistered(e) => {
            sqlx::query(
                "insert into gyms (gym_id, name, city, country_code, latitude, longitude, timezone, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing",
            )
            .bind(e.gym_id)
            .bind(&e.name)
            .bind(&e.city)
            .bind(&e.country_code)
            .bind(e.latitude)
            .bind(e.longitude)
            .bind(&e.timezone)
            .bind(at)
            .execute(connection)
            .await?;
        }
        DomainEvent::WallRegistered(e) => {
            sqlx::query(
                "insert into walls (wall_id, gym_id, name, kind, angle_degrees, height_m, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7) on conflict do nothing",
            )
            .bind(e.wall_id)
            .bind(e.gym_id)
            .bind(&e.name)
            .bind(symbol(&e.kind))
            .bind(e.angle_degrees)
            .bind(e.height_m)
            .bind(at)
            .execute(connection)
            .await?;
        }
        DomainEvent::WallPhotoUploaded(e) => {
            sqlx::query(
                "insert into wall_photos (photo_id, wall_id, uploaded_by, media, width_px, height_px, content_type,
                    size_bytes, taken_at, uploaded_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) on conflict do nothing",
            )
            .bind(e.photo_id)
            .bind(e.wall_id)
            .bind(e.uploaded_by)
            .bind(json(&e.media)?)
            .bind(e.width_px)
            .bind(e.height_px)
            .bind(&e.content_type)
            .bind(e.size_bytes)
            .bind(e.taken_at)
            .bind(at)
            .execute(connection)
            .await?;
        }
        DomainEvent::HoldsDetected(e) => {
            for hold in &e.holds {
                sqlx::query(
                    "insert into holds (analysis_id, hold_id, wall_id, photo_id, analyzer_version, center_x, center_y,
                        area, colour, rgb, kind, confidence, bbox, polygon)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) on conflict do nothing",
                )
                .bind(e.analysis_id)
                .bind(&hold.hold_id)
                .bind(e.wall_id)
                .bind(e.photo_id)
                .bind(e.analyzer.version)
                .bind(hold.center.x)
                .bind(hold.center.y)
                .bind(hold.area)
                .bind(symbol(&hold.colour))
                .bind(vec![hold.rgb.r, hold.rgb.g, hold.rgb.b])
                .bind(symbol(&hold.kind))
                .bind(hold.confidence)
                .bind(json(&hold.bbox)?)
                .bind(json(&hold.polygon)?)
                .execute(&mut *connection)
                .await?;
            }
        }
        DomainEvent::RouteDefined(e) => {
            let tags: Vec<String> = e.style_tags.iter().map(symbol).collect();
            sqlx::query(
                "insert into routes (route_id, wall_id, gym_id, name, colour, grade_system, grade_label, difficulty,
                    style_tags, wall_angle_degrees, holds, photo_id, status, set_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'defined', $13, $14)
                 on conflict do nothing",
            )
            .bind(e.route_id)
            .bind(e.wall_id)
            .bind(e.gym_id)
            .bind(&e.name)
            .bind(symbol(&e.colour))
            .bind(symbol(&e.grade.system))
            .bind(&e.grade.label)
            .bind(e.grade.difficulty().ok())
            .bind(tags)
            .bind(e.wall_angle_degrees)
            .bind(json(&e.holds)?)
            .bind(e.photo_id)
            .bind(e.set_at)
            .bind(at)
            .execute(connection)
            .await?;
        }
        DomainEvent::RouteConfirmed(e) => {
            sqlx::query_scalar::<_, i32>(
                "update routes set status = 'confirmed', grade_system = $2, grade_label = $3, difficulty = $4,
                    updated_at = $5
                 where route_id = $1 and status <> 'retired' returning 1",
            )
            .bind(e.route_id)
            .bind(symbol(&e.grade.system))
            .bind(&e.grade.label)
            .bind(e.grade.difficulty().ok())
            .bind(at)
            .fetch_optional(connection)
            .await?;
        }
        DomainEvent::RouteRetired(e) => {
            sqlx::query(
                "update routes set status = 'retired', updated_at = $2 where route_id = $1",
            )
            .bind(e.route_id)
            .bind(at)
            .execute(connection)
            .await?;
        }
        _ => {}
    }
    Ok(())
}
