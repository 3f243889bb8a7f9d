//! Group commit for aggregate heads (W3, ADRs 0009 and 0012). Every command reads its
//! aggregate's head, marks it pending before its append and moves it after; done one
//! statement per command, those statements were most of the API's cost (the API without them
//! served 3.7 times the commands). Here the reads, the marks and the moves of the commands in
//! flight at the same moment go to PostgreSQL as one statement each over arrays: one round
//! trip, and for marks one commit and one WAL flush, for all of them.
//!
//! The read and the move are planned for each batch (unnamed statements): a plan cached while
//! the table was small (a sequential scan and a hash join) stayed in use as it grew, and the
//! load bench ran at a third of its rate whenever that happened.
//!
//! Nothing waits to fill a batch: a batch is whatever queued while the previous ones ran, so
//! an idle API sends batches of one, as before. Each row of a batch keeps its own
//! compare-and-set condition, so a batch decides exactly what the same rows would decide one
//! by one. Two marks of one aggregate in one batch are not sent together (one statement cannot
//! touch a row twice): the later one is answered "not marked", and its writer reads the head
//! again, as it would after losing the race to a writer in another instance.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use hashlink::LruCache;

use sqlx::Row as _;

use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

/// Batches at most this many rows (a few milliseconds of PostgreSQL work).
const MAX_BATCH: usize = 256;
/// Batches of one kind running at once: while one waits for its WAL flush the next can form.
const LANES: usize = 4;
/// Requests queued before callers wait for room.
const QUEUE: usize = 4096;
/// Heads this instance remembers having written: a head's state is 0.1-1 kB for most
/// aggregates, a session's grows by about 45 bytes an attempt (tens of MB in all, typically).
const CACHED_HEADS: usize = 50_000;

/// The batch (or the database) failed; the error was logged once for the whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadsUnavailable;

/// Handle to the two batchers; cheap to clone.
#[derive(Clone)]
pub struct Heads {
    reads: mpsc::Sender<Read>,
    marks: mpsc::Sender<Mark>,
    moves: mpsc::Sender<Move>,
    written: Arc<Mutex<LruCache<Uuid, (i64, serde_json::Value)>>>,
}

/// An aggregate's head as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// Last version Kafka acknowledged.
    pub version: i64,
    /// The state after `version`.
    pub state: Option<serde_json::Value>,
    /// A version being appended, if any.
    pub pending_version: Option<i64>,
    /// Whether that pending append is older than its writer could still be working on it.
    pub stale: bool,
}

struct Read {
    aggregate_id: Uuid,
    reply: oneshot::Sender<Result<Option<Head>, HeadsUnavailable>>,
}

struct Mark {
    aggregate_id: Uuid,
    aggregate_type: &'static str,
    version: i64,
    pending_version: i64,
    pending_state: serde_json::Value,
    writer: Uuid,
    reply: oneshot::Sender<Result<bool, HeadsUnavailable>>,
}

struct Move {
    aggregate_id: Uuid,
    version: i64,
    writer: Uuid,
    position: Option<String>,
    reply: oneshot::Sender<Result<bool, HeadsUnavailable>>,
}

impl Heads {
    /// Starts the batchers on the current runtime; they stop when the last handle is dropped.
    /// A pending mark older than `stale_after` is reported stale.
    pub fn start(db: sqlx::PgPool, rows: &prometheus::HistogramVec, stale_after: Duration) -> Self {
        let (reads, read_queue) = mpsc::channel(QUEUE);
        let (read_db, read_metrics) = (db.clone(), rows.with_label_values(&["read"]));
        tokio::spawn(collect(read_queue, move |batch| {
            read_batch(read_db.clone(), read_metrics.clone(), stale_after, batch)
        }));
        let (marks, mark_queue) = mpsc::channel(QUEUE);
        let (moves, move_queue) = mpsc::channel(QUEUE);
        let (mark_db, mark_metrics) = (db.clone(), rows.with_label_values(&["mark"]));
        let metrics = rows.with_label_values(&["move"]);
        tokio::spawn(collect(mark_queue, move |batch| {
            mark_batch(mark_db.clone(), mark_metrics.clone(), batch)
        }));
        tokio::spawn(collect(move_queue, move |batch| {
            move_batch(db.clone(), metrics.clone(), batch)
        }));
        Self {
            reads,
            marks,
            moves,
            written: Arc::new(Mutex::new(LruCache::new(CACHED_HEADS))),
        }
    }

    /// The version and state this instance last moved the head of `aggregate_id` to, if it
    /// remembers one. Only a hint: another instance may have moved the head since, which the
    /// compare-and-set of [`Heads::mark`] at this version finds out.
    pub fn written(&self, aggregate_id: Uuid) -> Option<(i64, serde_json::Value)> {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written.get(&aggregate_id).cloned()
    }

    /// Remembers that this instance moved the head of `aggregate_id` to `version`, `state`
    /// (after the append was acknowledged and the move succeeded).
    pub fn remember(&self, aggregate_id: Uuid, version: i64, state: serde_json::Value) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written.insert(aggregate_id, (version, state));
    }

    /// Forgets what this instance remembered of `aggregate_id` (it proved stale, or an append
    /// or a move of it failed).
    pub fn forget(&self, aggregate_id: Uuid) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written.remove(&aggregate_id);
    }

    /// The head of `aggregate_id`, if it has one.
    pub async fn read(&self, aggregate_id: Uuid) -> Result<Option<Head>, HeadsUnavailable> {
        let (reply, answer) = oneshot::channel();
        let read = Read {
            aggregate_id,
            reply,
        };
        self.reads.send(read).await.map_err(|_| HeadsUnavailable)?;
        answer.await.map_err(|_| HeadsUnavailable)?
    }

    /// Marks `pending_version` (with the state after it) pending on the head of
    /// `aggregate_id` for `writer` (a fresh id per command), only if the head is at `version`
    /// with nothing pending, or absent (then created at `version`). `Ok(false)`: it was not.
    pub async fn mark(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &'static str,
        (version, pending_version): (i64, i64),
        pending_state: serde_json::Value,
        writer: Uuid,
    ) -> Result<bool, HeadsUnavailable> {
        let (reply, answer) = oneshot::channel();
        let mark = Mark {
            aggregate_id,
            aggregate_type,
            version,
            pending_version,
            pending_state,
            writer,
            reply,
        };
        self.marks.send(mark).await.map_err(|_| HeadsUnavailable)?;
        answer.await.map_err(|_| HeadsUnavailable)?
    }

    /// Moves the head of `aggregate_id` to its pending version `version` (appended) and
    /// clears the mark, if the mark is still `writer`'s; `Ok(false)`: it was not (it was
    /// settled from the log meanwhile). Not flushed before it returns (`synchronous_commit`
    /// off): a move PostgreSQL loses in a crash leaves the mark, flushed before the append, to
    /// be settled from the log.
    pub async fn settle(
        &self,
        aggregate_id: Uuid,
        version: i64,
        writer: Uuid,
        position: Option<String>,
    ) -> Result<bool, HeadsUnavailable> {
        let (reply, answer) = oneshot::channel();
        let request = Move {
            aggregate_id,
            version,
            writer,
            position,
            reply,
        };
        self.moves
            .send(request)
            .await
            .map_err(|_| HeadsUnavailable)?;
        answer.await.map_err(|_| HeadsUnavailable)?
    }
}

/// Takes whatever is queued (at least one request, at most `MAX_BATCH`) whenever one of the
/// `LANES` is free, and runs `run` on it in its own task.
async fn collect<R, F, Fut>(mut queue: mpsc::Receiver<R>, run: F)
where
    R: Send + 'static,
    F: Fn(Vec<R>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let lanes = Arc::new(Semaphore::new(LANES));
    loop {
        let Ok(lane) = lanes.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let work = run(batch);
        tokio::spawn(async move {
            work.await;
            drop(lane);
        });
    }
}

async fn read_batch(
    db: sqlx::PgPool,
    metrics: prometheus::Histogram,
    stale_after: Duration,
    batch: Vec<Read>,
) {
    metrics.observe(batch.len() as f64);
    let ids: Vec<Uuid> = batch.iter().map(|r| r.aggregate_id).collect();
    let rows = sqlx::query(
        "select aggregate_id, version, state, pending_version,
                coalesce(pending_since < now() - make_interval(secs => $2), false) as stale
           from api.aggregate_heads where aggregate_id = any($1)",
    )
    .persistent(false)
    .bind(&ids)
    .bind(stale_after.as_secs_f64())
    .fetch_all(&db)
    .await;
    let heads: Result<HashMap<Uuid, Head>, sqlx::Error> = rows.and_then(|rows| {
        rows.iter()
            .map(|row| {
                let head = Head {
                    version: row.try_get("version")?,
                    state: row.try_get("state")?,
                    pending_version: row.try_get("pending_version")?,
                    stale: row.try_get("stale")?,
                };
                Ok((row.try_get("aggregate_id")?, head))
            })
            .collect()
    });
    match heads {
        Ok(heads) => {
            for read in batch {
                let _ = read.reply.send(Ok(heads.get(&read.aggregate_id).cloned()));
            }
        }
        Err(error) => {
            tracing::warn!(%error, rows = batch.len(), "reading heads failed");
            for read in batch {
                let _ = read.reply.send(Err(HeadsUnavailable));
            }
        }
    }
}

async fn mark_batch(db: sqlx::PgPool, metrics: prometheus::Histogram, batch: Vec<Mark>) {
    let mut seen = HashSet::with_capacity(batch.len());
    let (mut sent, mut later) = (Vec::with_capacity(batch.len()), Vec::new());
    for mark in batch {
        if seen.insert(mark.aggregate_id) {
            sent.push(mark);
        } else {
            later.push(mark);
        }
    }
    for mark in later {
        let _ = mark.reply.send(Ok(false));
    }
    // Every statement takes its row locks in id order, so two batches never wait on each
    // other's rows in opposite orders (a deadlock would fail both).
    sent.sort_unstable_by_key(|m| m.aggregate_id);
    metrics.observe(sent.len() as f64);
    let ids: Vec<Uuid> = sent.iter().map(|m| m.aggregate_id).collect();
    let types: Vec<&str> = sent.iter().map(|m| m.aggregate_type).collect();
    let versions: Vec<i64> = sent.iter().map(|m| m.version).collect();
    let pending: Vec<i64> = sent.iter().map(|m| m.pending_version).collect();
    let states: Vec<serde_json::Value> = sent
        .iter_mut()
        .map(|m| std::mem::take(&mut m.pending_state))
        .collect();
    let writers: Vec<Uuid> = sent.iter().map(|m| m.writer).collect();
    let marked: Result<Vec<Uuid>, sqlx::Error> = sqlx::query_scalar(
        "insert into api.aggregate_heads
                (aggregate_id, aggregate_type, version, pending_version, pending_state,
                 pending_since, pending_writer)
         select id, kind, version, pending, state, now(), writer
           from unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::jsonb[], $6::uuid[])
                as row_(id, kind, version, pending, state, writer)
          order by id
         on conflict (aggregate_id) do update
            set pending_version = excluded.pending_version,
                pending_state = excluded.pending_state, pending_since = now(),
                pending_writer = excluded.pending_writer
          where aggregate_heads.version = excluded.version
            and aggregate_heads.pending_version is null
         returning aggregate_id",
    )
    .bind(&ids)
    .bind(&types)
    .bind(&versions)
    .bind(&pending)
    .bind(&states)
    .bind(&writers)
    .fetch_all(&db)
    .await;
    match marked {
        Ok(marked) => {
            let marked: HashSet<Uuid> = marked.into_iter().collect();
            for mark in sent {
                let _ = mark.reply.send(Ok(marked.contains(&mark.aggregate_id)));
            }
        }
        Err(error) => {
            tracing::warn!(%error, rows = sent.len(), "marking heads pending failed");
            for mark in sent {
                let _ = mark.reply.send(Err(HeadsUnavailable));
            }
        }
    }
}

async fn move_batch(db: sqlx::PgPool, metrics: prometheus::Histogram, mut batch: Vec<Move>) {
    batch.sort_unstable_by_key(|m| m.aggregate_id);
    metrics.observe(batch.len() as f64);
    let ids: Vec<Uuid> = batch.iter().map(|m| m.aggregate_id).collect();
    let versions: Vec<i64> = batch.iter().map(|m| m.version).collect();
    let writers: Vec<Uuid> = batch.iter().map(|m| m.writer).collect();
    let positions: Vec<Option<String>> = batch.iter_mut().map(|m| m.position.take()).collect();
    // The rows are locked first, in id order (see `mark_batch`), then moved.
    let moved: Result<Vec<Uuid>, sqlx::Error> = sqlx::query_scalar(
        "with locked as materialized (
             select aggregate_id from api.aggregate_heads
              where aggregate_id = any($1) order by aggregate_id for update
         )
         update api.aggregate_heads as head
            set version = head.pending_version, state = head.pending_state,
                pending_version = null, pending_state = null, pending_since = null,
                pending_writer = null, last_position = row_.position, updated_at = now()
           from unnest($1::uuid[], $2::int8[], $3::uuid[], $4::text[])
                as row_(id, version, writer, position)
          where head.aggregate_id = row_.id
            and head.aggregate_id in (select aggregate_id from locked)
            and head.pending_version = row_.version and head.pending_writer = row_.writer
            and (select set_config('synchronous_commit', 'off', true)) = 'off'
          returning head.aggregate_id",
    )
    .persistent(false)
    .bind(&ids)
    .bind(&versions)
    .bind(&writers)
    .bind(&positions)
    .fetch_all(&db)
    .await;
    match moved {
        Ok(moved) => {
            let moved: HashSet<Uuid> = moved.into_iter().collect();
            for request in batch {
                let _ = request
                    .reply
                    .send(Ok(moved.contains(&request.aggregate_id)));
            }
        }
        Err(error) => {
            tracing::warn!(%error, rows = batch.len(), "moving heads failed");
            for request in batch {
                let _ = request.reply.send(Err(HeadsUnavailable));
            }
        }
    }
}
