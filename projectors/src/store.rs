//! The projection's bookkeeping in PostgreSQL: stored offsets (read on start, written with
//! every batch, R1), the counters, and the lock that keeps one active instance per
//! projection (others wait as hot standbys).

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

/// (topic, partition) -> next offset to read.
pub type Offsets = BTreeMap<(String, i32), i64>;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn stored_offsets(db: &PgPool, projection: &str) -> sqlx::Result<Offsets> {
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(
        "select topic, partition, next_offset from projection_offsets where projection = $1",
    )
    .bind(projection)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(topic, partition, next)| ((topic, partition), next))
        .collect())
}

/// Records the batch's progress in the batch's own transaction.
pub async fn save_progress(
    tx: &mut Transaction<'_, Postgres>,
    projection: &str,
    offsets: &Offsets,
    applied: i64,
    dead_letters: i64,
) -> sqlx::Result<()> {
    for ((topic, partition), next) in offsets {
        sqlx::query(
            "insert into projection_offsets (projection, topic, partition, next_offset, updated_at)
             values ($1, $2, $3, $4, now())
             on conflict (projection, topic, partition)
             do update set next_offset = excluded.next_offset, updated_at = now()",
        )
        .bind(projection)
        .bind(topic)
        .bind(partition)
        .bind(next)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "insert into projection_stats (projection, events_applied, dead_letters, updated_at)
         values ($1, $2, $3, now())
         on conflict (projection) do update set
            events_applied = projection_stats.events_applied + excluded.events_applied,
            dead_letters = projection_stats.dead_letters + excluded.dead_letters,
            updated_at = now()",
    )
    .bind(projection)
    .bind(applied)
    .bind(dead_letters)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Tries to become the active instance of a projection. The lock lives as long as the
/// connection, so a crashed instance releases it at once.
pub async fn try_lock(connection: &mut PgConnection, projection: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("select pg_try_advisory_lock(hashtext('cruxlog-projection:' || $1))")
        .bind(projection)
        .fetch_one(connection)
        .await
}
