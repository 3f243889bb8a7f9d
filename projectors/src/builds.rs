//! Builds of a projection: each one a PostgreSQL schema of its own, `building` while it
//! catches up, then `live` (the `read` views point at it), then `retired`. The swap is one
//! transaction, so readers see the old tables or the new ones, never a mix.

use sqlx::{Acquire as _, AssertSqlSafe, PgConnection, PgPool, Postgres, Transaction};

use crate::projection::Projection;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Build {
    pub build_id: i64,
    pub projection: String,
    pub version: i32,
    pub schema_name: String,
    pub state: String,
}

impl Build {
    pub fn is_live(&self) -> bool {
        self.state == "live"
    }
}

pub async fn live(db: &PgPool, projection: &str) -> sqlx::Result<Option<Build>> {
    sqlx::query_as(
        "select build_id, projection, version, schema_name, state from cruxlog.projection_builds
         where projection = $1 and state = 'live'",
    )
    .bind(projection)
    .fetch_optional(db)
    .await
}

/// A build still catching up for this version, if one exists (resumed after a restart).
pub async fn building(db: &PgPool, projection: &str, version: i32) -> sqlx::Result<Option<Build>> {
    sqlx::query_as(
        "select build_id, projection, version, schema_name, state from cruxlog.projection_builds
         where projection = $1 and version = $2 and state = 'building'
         order by build_id desc limit 1",
    )
    .bind(projection)
    .bind(version)
    .fetch_optional(db)
    .await
}

pub async fn all(db: &PgPool) -> sqlx::Result<Vec<Build>> {
    sqlx::query_as(
        "select build_id, projection, version, schema_name, state from cruxlog.projection_builds
         order by projection, build_id",
    )
    .fetch_all(db)
    .await
}

/// The state of a build, read in the caller's transaction and locked against a concurrent
/// swap until it commits.
pub async fn state_for_share(tx: &mut PgConnection, build_id: i64) -> sqlx::Result<String> {
    sqlx::query_scalar("select state from cruxlog.projection_builds where build_id = $1 for share")
        .bind(build_id)
        .fetch_one(tx)
        .await
}

/// Creates a new build's schema and tables, in state `building`.
pub async fn create(db: &PgPool, projection: &dyn Projection) -> sqlx::Result<Build> {
    let mut tx = db.begin().await?;
    let build_id: i64 =
        sqlx::query_scalar("select nextval('cruxlog.projection_builds_build_id_seq')")
            .fetch_one(&mut *tx)
            .await?;
    let schema_name = format!(
        "p_{}_v{}_b{build_id}",
        projection.name(),
        projection.version()
    );
    sqlx::query(
        "insert into cruxlog.projection_builds (build_id, projection, version, schema_name, state)
         values ($1, $2, $3, $4, 'building')",
    )
    .bind(build_id)
    .bind(projection.name())
    .bind(projection.version())
    .bind(&schema_name)
    .execute(&mut *tx)
    .await?;
    sqlx::query("insert into cruxlog.projection_stats (build_id) values ($1)")
        .bind(build_id)
        .execute(&mut *tx)
        .await?;
    // Identifiers are ours (name: [a-z_]+, numbers), never user input.
    sqlx::raw_sql(AssertSqlSafe(format!("create schema {schema_name}")))
        .execute(&mut *tx)
        .await?;
    set_search_path(&mut tx, &schema_name).await?;
    sqlx::raw_sql(AssertSqlSafe(projection.ddl()))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Build {
        build_id,
        projection: projection.name().into(),
        version: projection.version(),
        schema_name,
        state: "building".into(),
    })
}

/// Points this transaction's unqualified names at a build's schema.
pub async fn set_search_path(
    tx: &mut Transaction<'_, Postgres>,
    schema_name: &str,
) -> sqlx::Result<()> {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "set local search_path to {schema_name}, public"
    )))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Makes `build` the live one: the old live build (if any) is retired and the `read` views
/// are re-pointed, all in one transaction.
///
/// Readers must never see the projection go back in time, so the swap happens only if `build`
/// has applied at least as much of every partition as the live build; otherwise it returns
/// `false` and the caller catches up some more. Locking the live build's row waits for its
/// batch in flight and holds the next one until the swap commits.
pub async fn swap(db: &PgPool, projection: &dyn Projection, build: &Build) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    // Serialises swaps of one projection.
    sqlx::query("select pg_advisory_xact_lock(hashtext('cruxlog-swap:' || $1))")
        .bind(projection.name())
        .execute(&mut *tx)
        .await?;
    let live: Option<i64> = sqlx::query_scalar(
        "select build_id from cruxlog.projection_builds where projection = $1 and state = 'live' for update",
    )
    .bind(projection.name())
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(live) = live.filter(|live| *live != build.build_id) {
        let behind: i64 = sqlx::query_scalar(
            "select count(*) from cruxlog.projection_offsets old
             left join cruxlog.projection_offsets new
               on new.build_id = $2 and new.topic = old.topic and new.partition = old.partition
             where old.build_id = $1 and old.next_offset > coalesce(new.next_offset, 0)",
        )
        .bind(live)
        .bind(build.build_id)
        .fetch_one(&mut *tx)
        .await?;
        if behind > 0 {
            tx.rollback().await?;
            return Ok(false);
        }
    }
    sqlx::query(
        "update cruxlog.projection_builds set state = 'retired', retired_at = now()
         where projection = $1 and state = 'live'",
    )
    .bind(projection.name())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update cruxlog.projection_builds set state = 'live', live_at = now() where build_id = $1",
    )
    .bind(build.build_id)
    .execute(&mut *tx)
    .await?;
    for table in projection.exposed() {
        let sql = format!(
            "drop view if exists read.{table}; create view read.{table} as select * from {}.{table}",
            build.schema_name
        );
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Drops the schemas of retired builds, and of builds left `building` that nobody runs (an
/// interrupted `rebuild`; a running build holds its lock and is kept).
pub async fn prune(db: &PgPool) -> sqlx::Result<Vec<String>> {
    let candidates: Vec<(i64, String, String)> = sqlx::query_as(
        "select build_id, schema_name, state from cruxlog.projection_builds
         where state in ('retired', 'building') order by build_id",
    )
    .fetch_all(db)
    .await?;
    let mut dropped = Vec::new();
    for (build_id, schema_name, state) in candidates {
        let mut connection = db.acquire().await?;
        if state == "building" && !crate::store::try_lock(&mut connection, build_id).await? {
            continue;
        }
        let mut tx = connection.begin().await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "drop schema if exists {schema_name} cascade"
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "delete from cruxlog.projection_builds where build_id = $1 and state <> 'live'",
        )
        .bind(build_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if state == "building" {
            crate::store::unlock(&mut connection, build_id).await?;
        }
        dropped.push(schema_name);
    }
    Ok(dropped)
}
