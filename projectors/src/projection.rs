//! What a projection is: a name, a version, the topics it reads, the tables it owns and how
//! a batch of events changes them. Bumping `version` makes the next deploy build new tables
//! from offset 0 beside the live ones and swap when caught up (R2).

use cruxlog_schemas::DecodedEvent;
use futures::future::BoxFuture;
use sqlx::PgConnection;

/// One event of a batch, with where it came from.
#[derive(Debug, Clone)]
pub struct Applied {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub event: DecodedEvent,
}

pub trait Projection: Send + Sync + 'static {
    /// Stable name: `[a-z_]+`, part of schema names and metrics labels.
    fn name(&self) -> &'static str;

    /// Bump when the tables or the handlers change meaning.
    fn version(&self) -> i32;

    /// Aggregate types whose topics this projection reads.
    fn aggregate_types(&self) -> &'static [&'static str];

    /// `create table` statements with unqualified names; run with `search_path` set to the
    /// build's schema.
    fn ddl(&self) -> &'static str;

    /// Tables (and views) exposed to the API as `read.<name>`.
    fn exposed(&self) -> &'static [&'static str];

    /// Applies a batch in order, inside the caller's transaction, with `search_path` set to
    /// the build's schema. Must be idempotent: a replayed event changes nothing.
    fn apply<'a>(
        &'a self,
        connection: &'a mut PgConnection,
        batch: &'a [Applied],
    ) -> BoxFuture<'a, sqlx::Result<()>>;
}

/// Whether a database error is the data's fault (retrying the same event cannot help) or the
/// database's (retry the batch later).
pub fn is_poison(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            // Class 22: data exception; class 23: integrity constraint violation.
            db.code()
                .is_some_and(|code| code.starts_with("22") || code.starts_with("23"))
        }
        // An event that refers to a row that does not exist (handlers use `fetch_one`).
        sqlx::Error::RowNotFound => true,
        sqlx::Error::Encode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::TypeNotFound { .. } => true,
        _ => false,
    }
}
