//! Offsets, counters and parked aggregates of a build, all written in the batch's own
//! transaction (R1); the single-active-instance lock.

use std::collections::{BTreeMap, HashSet};

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// (topic, partition) -> next offset to read.
pub type Offsets = BTreeMap<(String, i32), i64>;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Another instance moved this build's offsets: ours are stale, re-read and re-seek.
#[derive(Debug, thiserror::Error)]
#[error("offsets of build {build_id} were moved by another instance")]
pub struct OffsetConflict {
    pub build_id: i64,
}

pub async fn load_offsets(db: &PgPool, build_id: i64) -> sqlx::Result<Offsets> {
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(
        "select topic, partition, next_offset from cruxlog.projection_offsets where build_id = $1",
    )
    .bind(build_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(topic, partition, next)| ((topic, partition), next))
        .collect())
}

/// Moves offsets from `expected` (what this instance last read or wrote) to `new`, failing if
/// the stored values are not `expected`: a second writer can never interleave silently. One
/// statement for every partition: each row moves only from its expected value, and a
/// partition seen for the first time is inserted unless a row is already there.
pub async fn advance_offsets(
    tx: &mut PgConnection,
    build_id: i64,
    expected: &Offsets,
    new: &Offsets,
) -> Result<(), AdvanceError> {
    let mut topics = Vec::with_capacity(new.len());
    let mut partitions = Vec::with_capacity(new.len());
    let mut previous = Vec::with_capacity(new.len());
    let mut next = Vec::with_capacity(new.len());
    for (key @ (topic, partition), offset) in new {
        topics.push(topic.as_str());
        partitions.push(*partition);
        previous.push(expected.get(key).copied());
        next.push(*offset);
    }
    let moved: i64 = sqlx::query_scalar(
        "with wanted as (
            select * from unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[])
                as w(topic, partition, previous, next_offset)
         ),
         updated as (
            update cruxlog.projection_offsets o set next_offset = w.next_offset, updated_at = now()
            from wanted w
            where o.build_id = $1 and o.topic = w.topic and o.partition = w.partition
              and o.next_offset = w.previous
            returning 1
         ),
         inserted as (
            insert into cruxlog.projection_offsets (build_id, topic, partition, next_offset)
            select $1, topic, partition, next_offset from wanted where previous is null
            on conflict do nothing
            returning 1
         )
         select (select count(*) from updated) + (select count(*) from inserted)",
    )
    .bind(build_id)
    .bind(&topics)
    .bind(&partitions)
    .bind(&previous)
    .bind(&next)
    .fetch_one(&mut *tx)
    .await?;
    if moved != new.len() as i64 {
        return Err(AdvanceError::Conflict(OffsetConflict { build_id }));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum AdvanceError {
    #[error(transparent)]
    Conflict(#[from] OffsetConflict),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn count(
    tx: &mut PgConnection,
    build_id: i64,
    applied: i64,
    dead_letters: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "update cruxlog.projection_stats set events_applied = events_applied + $2,
            dead_letters = dead_letters + $3, updated_at = now()
         where build_id = $1",
    )
    .bind(build_id)
    .bind(applied)
    .bind(dead_letters)
    .execute(tx)
    .await?;
    Ok(())
}

/// Which of these aggregates wait behind a dead letter.
pub async fn parked_among(
    tx: &mut PgConnection,
    build_id: i64,
    ids: &[Uuid],
) -> sqlx::Result<HashSet<Uuid>> {
    let parked: Vec<Uuid> = sqlx::query_scalar(
        // `for share`: a redrive holding these rows waits for this batch, and the other way round.
        "select aggregate_id from cruxlog.parked_aggregates where build_id = $1 and aggregate_id = any($2)
         for share",
    )
    .bind(build_id)
    .bind(ids)
    .fetch_all(tx)
    .await?;
    Ok(parked.into_iter().collect())
}

pub struct Parking<'a> {
    pub aggregate_id: Uuid,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub reason: &'a str,
}

pub async fn park(tx: &mut PgConnection, build_id: i64, parking: &Parking<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into cruxlog.parked_aggregates (build_id, aggregate_id, topic, partition, first_offset, reason)
         values ($1, $2, $3, $4, $5, $6) on conflict do nothing",
    )
    .bind(build_id)
    .bind(parking.aggregate_id)
    .bind(parking.topic)
    .bind(parking.partition)
    .bind(parking.offset)
    .bind(parking.reason)
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn unpark(tx: &mut PgConnection, build_id: i64, aggregate_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("delete from cruxlog.parked_aggregates where build_id = $1 and aggregate_id = $2")
        .bind(build_id)
        .bind(aggregate_id)
        .execute(tx)
        .await?;
    Ok(())
}

/// Tries to become the active instance of a build. The lock lives as long as the connection;
/// correctness does not depend on it (see [`advance_offsets`]), it only avoids wasted work.
pub async fn try_lock(connection: &mut PgConnection, build_id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar("select pg_try_advisory_lock(hashtext('cruxlog-build'), $1::int)")
        .bind(i32::try_from(build_id).unwrap_or(i32::MAX))
        .fetch_one(connection)
        .await
}

/// Releases a lock taken with [`try_lock`] on this connection.
pub async fn unlock(connection: &mut PgConnection, build_id: i64) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_unlock(hashtext('cruxlog-build'), $1::int)")
        .bind(i32::try_from(build_id).unwrap_or(i32::MAX))
        .execute(connection)
        .await?;
    Ok(())
}
