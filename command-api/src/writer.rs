//! Optimistic concurrency on Kafka (W3, ADR 0009). Kafka cannot append "only if the stream
//! is at version N", so every command on an existing aggregate goes through its head row in
//! `api.aggregate_heads`, shared by all API instances:
//!
//! 1. read the head; a head with an append pending waits for it, or, when its writer died,
//!    is settled from the log ([`crate::log_scan`]) with the row locked;
//! 2. compare `If-Match` with the head's version (409 on mismatch), run the pure decision;
//! 3. mark the new version pending, in one statement that succeeds only if the head is still
//!    at the version read with nothing pending (else back to 1);
//! 4. append to Kafka (W1), answer, and move the head and clear the pending mark without
//!    waiting for it (ADR 0013): this instance's next mark on the aggregate completes the move
//!    if it has not landed, other instances wait for it.
//!
//! Two instances can therefore never both append version N + 1: the second one's mark fails
//! on the first one's pending mark or its new version. Two statement rows per command (a
//! mark and a move), none of them in a transaction; the marks and the moves of concurrent
//! commands share statements and commits ([`crate::heads`], ADRs 0012 and 0013).

use std::time::{Duration, Instant};

use cruxlog_schemas::DomainEvent;
use serde::{Serialize, de::DeserializeOwned};
use sqlx::Row as _;
use uuid::Uuid;

use crate::{
    AppState,
    accounts::db_error,
    command::Command,
    error::ApiError,
    heads::{Acked, Head, Remembered, StateJson},
    log_scan,
    position::Position,
};

/// The head after a command: its new version and where its last event went.
#[derive(Debug, Clone)]
pub struct Written {
    pub version: i64,
    /// Where the last event went; for a command that appended nothing, the head's last one.
    pub position: Option<Position>,
    pub event_ids: Vec<Uuid>,
}

/// One event the decision logic wants appended, with its envelope's event id chosen up front
/// so the state can remember it (e.g. the event a later analysis request names).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event: DomainEvent,
}

impl NewEvent {
    pub fn new(event: impl Into<DomainEvent>) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event: event.into(),
        }
    }
}

/// What the decision logic returns: the events to append (none: nothing to do, e.g. a
/// repeated command) and the state after them.
pub type Decision<S> = Result<(Vec<NewEvent>, S), ApiError>;

/// What [`reserve`] got: the version the new events follow, the events, the state after
/// them, and when the mark that reserved them was sent.
struct Reserved {
    base: i64,
    events: Vec<NewEvent>,
    next: StateJson,
    marked_at: Instant,
}

impl Reserved {
    fn new(base: i64, events: Vec<NewEvent>, next: StateJson, marked_at: Instant) -> Self {
        Self {
            base,
            events,
            next,
            marked_at,
        }
    }
}

/// How long a mark may take, from sending it to its answer, for the append to still be
/// allowed: the append is bounded by `append_timeout_ms`, and other writers settle a mark
/// from the log once it is `append_timeout_ms` + 1 s old, so the mark and the append together
/// must stay under that second (half of it, for margin).
const MARK_WINDOW: Duration = Duration::from_millis(500);

/// The current version of an aggregate the API writes (0 when unknown), for `ETag`s.
pub async fn version_of(state: &AppState, aggregate_id: Uuid) -> Result<i64, ApiError> {
    Ok(settled_head(state, aggregate_id)
        .await?
        .map_or(0, |head| head.version))
}

/// The aggregate's state as its head holds it, for checks made before a command's expensive
/// part (an upload) and not relied on after it. `None` when there is no such aggregate of
/// `aggregate_type` (an id of another kind names nothing here rather than failing to decode).
pub async fn peek<S: DeserializeOwned>(
    state: &AppState,
    aggregate_type: &str,
    aggregate_id: Uuid,
) -> Result<Option<S>, ApiError> {
    let Some(head) = settled_head(state, aggregate_id).await? else {
        return Ok(None);
    };
    if head.aggregate_type != aggregate_type {
        return Ok(None);
    }
    head.state
        .map(serde_json::from_value)
        .transpose()
        .map_err(|error| ApiError::Internal(error.into()))
}

/// How long a read waits for a young pending append: its move normally lands within a batch
/// or two of the command's answer. A head written without a pause (each mark completing the
/// move before it) stays pending, so the wait is bounded well below the settling time.
const READ_WAIT: Duration = Duration::from_millis(250);

/// The head of `aggregate_id` once no young append is pending on it. The move after an append
/// is sent after the command's answer (ADR 0013), so a read right after an answer would
/// otherwise see the version before it. Past [`READ_WAIT`] the version before the pending one
/// is answered; a mark whose writer is gone (stale) is settled from the log first, as a writer
/// would, so a lost move does not leave reads behind until the next command.
async fn settled_head(state: &AppState, aggregate_id: Uuid) -> Result<Option<Head>, ApiError> {
    let deadline = tokio::time::Instant::now() + READ_WAIT;
    let mut settled_once = false;
    loop {
        let Some(head) = state
            .heads
            .read(aggregate_id)
            .await
            .map_err(|_| ApiError::ReadModelUnavailable)?
        else {
            return Ok(None);
        };
        let pending = head.pending_version.is_some();
        // Tried once; without the log (Kafka down) the read answers the version before the
        // mark.
        if pending && head.stale && !settled_once {
            settled_once = true;
            if settle_stale(state, aggregate_id).await.is_ok() {
                continue;
            }
        }
        if pending && !head.stale && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        return Ok(Some(head));
    }
}

/// Runs `decide` against the aggregate's current state and appends what it decides.
/// `decide` gets `None` for an aggregate that does not exist yet.
pub async fn execute<S, F>(
    state: &AppState,
    command: &Command,
    aggregate_type: &'static str,
    aggregate_id: Uuid,
    expected: Option<i64>,
    decide: F,
) -> Result<Written, ApiError>
where
    S: Serialize + DeserializeOwned,
    F: Fn(Option<S>) -> Decision<S>,
{
    let writer = Uuid::now_v7();
    // Two appends are not atomic: a writer dying between them would leave a half-done command
    // that the log settlement (ADR 0009) cannot judge. No decision makes two; one that did is
    // refused before anything is marked.
    let decide = |current: Option<S>| {
        let (events, next) = decide(current)?;
        if events.len() > 1 {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "a command appends at most one event per aggregate"
            )));
        }
        Ok((events, next))
    };
    let reserving = Instant::now();
    let Reserved {
        base,
        events,
        next,
        marked_at,
    } = reserve(
        state,
        (aggregate_type, aggregate_id),
        writer,
        expected,
        decide,
    )
    .await?;
    let steps = &state.metrics.write_steps;
    steps.reserve.observe(reserving.elapsed().as_secs_f64());
    if !events.is_empty() && marked_at.elapsed() > MARK_WINDOW {
        // The mark took so long (a batch behind a locked row) that the append could end after
        // the mark looks stale to other writers, who would then settle it from a log that
        // does not have it yet. Do not append; let the next writer settle it now.
        tracing::warn!(%aggregate_id, elapsed_ms = marked_at.elapsed().as_millis(), "mark too slow; not appending");
        state.heads.forget(aggregate_id);
        expire_pending(state, aggregate_id, writer).await;
        return Err(ApiError::LogUnavailable);
    }
    if events.is_empty() {
        return Ok(Written {
            version: base,
            position: last_position(state, aggregate_id).await?,
            event_ids: Vec::new(),
        });
    }
    let mut position = None;
    let appending = Instant::now();
    for (index, new) in events.iter().enumerate() {
        let mut meta = command.meta(aggregate_id, base + 1 + index as i64);
        meta.event_id = new.event_id;
        match state.log.append_domain(&meta, &new.event).await {
            Ok(appended) => {
                state
                    .metrics
                    .appended
                    .with_label_values(&[new.event.name()])
                    .inc();
                position = Some(appended);
            }
            Err(error) => {
                tracing::warn!(%error, event_type = new.event.name(), "append failed");
                state
                    .metrics
                    .append_failures
                    .with_label_values(&[new.event.name()])
                    .inc();
                // Kafka may still have it ("possibly persisted"): leave the pending mark and
                // let the next writer settle it from the log, now rather than after a wait.
                state.heads.forget(aggregate_id);
                expire_pending(state, aggregate_id, writer).await;
                return Err(ApiError::LogUnavailable);
            }
        }
    }
    steps.append.observe(appending.elapsed().as_secs_f64());
    let version = base + events.len() as i64;
    // The command succeeded once Kafka acknowledged it; the move is sent without waiting for
    // it (ADR 0013). Until it lands, this instance's next mark on the aggregate completes it,
    // and other instances wait for it; a move that fails or is lost leaves the pending mark,
    // flushed before the append, to be settled from the log.
    let position_token = position.as_ref().map(ToString::to_string);
    state.heads.remember(
        aggregate_id,
        Remembered {
            version,
            state: next,
            acked: Some(Acked {
                writer,
                position: position_token.clone(),
            }),
        },
    );
    if state
        .heads
        .move_later(aggregate_id, version, writer, position_token)
        .await
        .is_err()
    {
        tracing::warn!(%aggregate_id, version, "moving the head failed after the append; the log settles it");
        state.heads.forget(aggregate_id);
    }
    Ok(Written {
        version,
        position,
        event_ids: events.iter().map(|new| new.event_id).collect(),
    })
}

async fn last_position(state: &AppState, aggregate_id: Uuid) -> Result<Option<Position>, ApiError> {
    let token: Option<Option<String>> =
        sqlx::query_scalar("select last_position from api.aggregate_heads where aggregate_id = $1")
            .bind(aggregate_id)
            .fetch_optional(&state.db)
            .await
            .map_err(db_error)?;
    Ok(token.flatten().as_deref().and_then(Position::parse))
}

/// Steps 1–3: returns the version the new events follow, the events and the state after
/// them.
///
/// A head this instance wrote last is decided on without reading it: the mark at its version
/// succeeds only if no one moved it since (the state of a version is the one its writer
/// stored), else the head is read as below. Refusals and no-ops are always decided on a head
/// read from the database, never on the remembered one.
///
/// No transaction and no row lock on the common path: the pending mark is a compare-and-set
/// on (version, no pending append), so of two writers that read the same head only one marks
/// it, and the other reads again. A version names one state, so a decision made on a head
/// read at version N is still right when the mark at N succeeds. Only settling a dead
/// writer's append locks the row (see [`settle_stale`]).
async fn reserve<S, F>(
    state: &AppState,
    (aggregate_type, aggregate_id): (&'static str, Uuid),
    writer: Uuid,
    expected: Option<i64>,
    decide: F,
) -> Result<Reserved, ApiError>
where
    S: Serialize + DeserializeOwned,
    F: Fn(Option<S>) -> Decision<S>,
{
    // A command that creates its aggregate (a new id) need not read a head that is not
    // there: decide on "absent" and mark version 0, which succeeds only if it is absent.
    if expected.is_none_or(|expected| expected == 0)
        && let Ok((events, next)) = decide(None)
        && !events.is_empty()
    {
        let next = to_json(&next)?;
        let marked_at = Instant::now();
        if mark(
            state,
            (aggregate_type, aggregate_id),
            (0, events.len()),
            &next,
            (writer, None),
        )
        .await?
        {
            return Ok(Reserved::new(0, events, next, marked_at));
        }
    }
    if let Some(Remembered {
        version,
        state: written,
        acked,
    }) = state.heads.written(aggregate_id)
        && expected.is_none_or(|expected| expected == version)
        && let Ok(current) = written.parse::<S>()
        && let Ok((events, next)) = decide(Some(current))
        && !events.is_empty()
    {
        let next = to_json(&next)?;
        let marked_at = Instant::now();
        let at = (version, events.len());
        if mark(
            state,
            (aggregate_type, aggregate_id),
            at,
            &next,
            (writer, acked),
        )
        .await?
        {
            return Ok(Reserved::new(version, events, next, marked_at));
        }
        state.heads.forget(aggregate_id);
    }
    let deadline =
        tokio::time::Instant::now() + settle_after(&state.config) + Duration::from_secs(2);
    loop {
        let head = state
            .heads
            .read(aggregate_id)
            .await
            .map_err(|_| ApiError::ReadModelUnavailable)?;
        let (mut version, mut current) = (0_i64, None::<serde_json::Value>);
        if let Some(head) = head {
            version = head.version;
            current = head.state;
            if head.pending_version.is_some() {
                if head.stale {
                    settle_stale(state, aggregate_id).await?;
                } else {
                    if tokio::time::Instant::now() > deadline {
                        return Err(ApiError::LogUnavailable);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                continue;
            }
        }
        if let Some(expected) = expected
            && expected != version
        {
            return Err(ApiError::VersionConflict {
                expected,
                current: version,
            });
        }
        let current: Option<S> = current
            .map(serde_json::from_value)
            .transpose()
            .map_err(|error| ApiError::Internal(error.into()))?;
        let (events, next) = decide(current)?;
        let next = to_json(&next)?;
        if events.is_empty() {
            return Ok(Reserved::new(version, events, next, Instant::now()));
        }
        let marked_at = Instant::now();
        let at = (version, events.len());
        if mark(
            state,
            (aggregate_type, aggregate_id),
            at,
            &next,
            (writer, None),
        )
        .await?
        {
            return Ok(Reserved::new(version, events, next, marked_at));
        }
        // Another writer marked or moved the head since we read it: read it again.
    }
}

/// Step 3, one statement: marks `count` events after `version` pending, only if the head is
/// still at `version` with nothing pending (or absent, for version 0), or pending at `version`
/// by the acknowledged append `follows` (this instance's last). `false`: it was not.
async fn mark(
    state: &AppState,
    (aggregate_type, aggregate_id): (&'static str, Uuid),
    (version, count): (i64, usize),
    next: &StateJson,
    (writer, follows): (Uuid, Option<Acked>),
) -> Result<bool, ApiError> {
    let versions = (version, version + count as i64);
    state
        .heads
        .mark_after(
            aggregate_id,
            aggregate_type,
            versions,
            next.clone(),
            (writer, follows),
        )
        .await
        .map_err(|_| ApiError::ReadModelUnavailable)
}

/// The state as the head stores it; shared, not copied, between the mark and what this
/// instance remembers.
fn to_json<S: Serialize>(state: &S) -> Result<StateJson, ApiError> {
    StateJson::of(state).map_err(|error| ApiError::Internal(error.into()))
}

/// Settles a stale pending append with the head locked, so one writer reads the log for it
/// and the others find it settled.
async fn settle_stale(state: &AppState, aggregate_id: Uuid) -> Result<(), ApiError> {
    let mut tx = state.db.begin().await.map_err(db_error)?;
    let stale: Option<Option<bool>> = sqlx::query_scalar(
        "select pending_since < now() - make_interval(secs => $2)
           from api.aggregate_heads where aggregate_id = $1 for update",
    )
    .bind(aggregate_id)
    .bind(settle_after(&state.config).as_secs_f64())
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    if stale.flatten() == Some(true) {
        settle(state, &mut tx, aggregate_id).await?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(())
}

/// A pending append whose writer is gone: was it appended? Reads the log to find out and
/// moves the head accordingly (in the caller's transaction, with the row locked).
async fn settle(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    aggregate_id: Uuid,
) -> Result<(i64, Option<serde_json::Value>), ApiError> {
    let row = sqlx::query(
        "select aggregate_type, version, state, pending_version, pending_state, pending_since
           from api.aggregate_heads where aggregate_id = $1",
    )
    .bind(aggregate_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_error)?;
    let aggregate_type: String = row.try_get("aggregate_type").map_err(db_error)?;
    let version: i64 = row.try_get("version").map_err(db_error)?;
    let pending: i64 = row.try_get("pending_version").map_err(db_error)?;
    let since: chrono::DateTime<chrono::Utc> = row.try_get("pending_since").map_err(db_error)?;
    let topic = state.log.topics().for_aggregate(&aggregate_type);
    let found = log_scan::highest_version(
        &state.config.kafka,
        &topic,
        aggregate_id,
        since - chrono::Duration::seconds(10),
    )
    .await
    .map_err(|error| {
        tracing::warn!(%error, "settling a pending append from the log failed");
        ApiError::LogUnavailable
    })?;
    let appended = found.is_some_and(|found| found >= pending);
    tracing::info!(%aggregate_id, pending, appended, "settled a pending append from the log");
    let (version, current) = if appended {
        (pending, row.try_get("pending_state").map_err(db_error)?)
    } else {
        (version, row.try_get("state").map_err(db_error)?)
    };
    sqlx::query(
        "update api.aggregate_heads
            set version = $2, state = $3, pending_version = null, pending_state = null,
                pending_since = null, updated_at = now()
          where aggregate_id = $1",
    )
    .bind(aggregate_id)
    .bind(version)
    .bind(&current)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    Ok((version, current))
}

/// After a failed append the producer has given up on the record (its delivery timeout has
/// passed), so the log can be read to settle it at once.
async fn expire_pending(state: &AppState, aggregate_id: Uuid, writer: Uuid) {
    let _ = sqlx::query(
        "update api.aggregate_heads set pending_since = now() - interval '1 hour'
          where aggregate_id = $1 and pending_writer = $2",
    )
    .bind(aggregate_id)
    .bind(writer)
    .execute(&state.db)
    .await;
}

/// How old a pending mark must be before another writer settles it: longer than any append
/// can take (the producer gives up on a record after the append bound).
pub(crate) fn settle_after(config: &crate::config::Config) -> Duration {
    Duration::from_millis(config.http.append_timeout_ms) + Duration::from_secs(1)
}
