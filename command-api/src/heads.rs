//! Group commit for aggregate heads (W3, ADRs 0009, 0012 and 0013). Every command reads its
//! aggregate's head, marks it pending before its append and moves it after; done one
//! statement per command, those statements were most of the API's cost (the API without them
//! served 3.7 times the commands). Here the reads of the commands in flight at the same moment
//! go to PostgreSQL as one statement, and their marks and moves together as another, over
//! arrays: one round trip, and for the writes one commit and one WAL flush, for all of them.
//!
//! The read is planned for each batch (an unnamed statement): a plan cached while the table
//! was small (a sequential scan) stayed in use as it grew, and the load bench ran at a third
//! of its rate whenever that happened. The write joins nothing and is prepared once.
//!
//! Nothing waits to fill a batch: a batch is whatever queued while the previous ones ran, so
//! an idle API sends batches of one, as before. Each row of a batch keeps its own
//! compare-and-set condition, so a batch decides exactly what the same rows would decide one
//! by one. Two writes of one aggregate in one batch are not sent together (one statement
//! cannot touch a row twice): a move goes first, and a second write, always a mark, is
//! answered "not marked"; its writer reads the head again, as it would after losing the race
//! to a writer in another instance.

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

/// Handle to the batchers (reads; marks and moves); cheap to clone.
#[derive(Clone)]
pub struct Heads {
    reads: mpsc::Sender<Read>,
    writes: mpsc::Sender<Write>,
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
        let (writes, write_queue) = mpsc::channel(QUEUE);
        let metrics = rows.with_label_values(&["write"]);
        tokio::spawn(collect(write_queue, move |batch| {
            write_batch(db.clone(), metrics.clone(), batch)
        }));
        Self {
            reads,
            writes,
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
        self.writes
            .send(Write::Mark(mark))
            .await
            .map_err(|_| HeadsUnavailable)?;
        answer.await.map_err(|_| HeadsUnavailable)?
    }

    /// Moves the head of `aggregate_id` to its pending version `version` (appended) and
    /// clears the mark, if the mark is still `writer`'s; `Ok(false)`: it was not (it was
    /// settled from the log meanwhile). It shares its statement and commit with the marks in
    /// flight; a move PostgreSQL loses in a crash would leave the mark, flushed before the
    /// append, to be settled from the log.
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
        self.writes
            .send(Write::Move(request))
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

/// A mark or a move, as [`write_batch`] sends it.
enum Write {
    Mark(Mark),
    Move(Move),
}

impl Write {
    fn aggregate_id(&self) -> Uuid {
        match self {
            Write::Mark(mark) => mark.aggregate_id,
            Write::Move(request) => request.aggregate_id,
        }
    }

    fn answer(self, answer: Result<bool, HeadsUnavailable>) {
        let _ = match self {
            Write::Mark(mark) => mark.reply.send(answer),
            Write::Move(request) => request.reply.send(answer),
        };
    }
}

/// One statement for the marks and the moves in flight: an `insert ... on conflict do update`
/// whose proposed row says which it is (a move proposes no pending version) and whose `where`
/// holds each row's own compare-and-set. Prepared once: it joins nothing, so its plan does not
/// depend on the table's size. One commit, flushed before it answers (a mark must be durable
/// before its append; a move rides along).
///
/// A move proposes `(version, pending_writer, last_position)` = (the version appended, its
/// writer, its position) and updates only a head whose pending mark is that writer's at that
/// version. A mark proposes the head it expects (`version`) and the pending version, state and
/// writer, and updates only a head at that version with nothing pending; an absent head is
/// inserted as proposed (the creation of an aggregate). Heads are not deleted while their
/// writers run, so a move finds its row; one that did not (a head erased meanwhile) would
/// insert its proposed row, which is told apart by `xmax = 0`, answered "not moved" and
/// deleted again.
async fn write_batch(db: sqlx::PgPool, metrics: prometheus::Histogram, batch: Vec<Write>) {
    // One statement cannot touch a row twice. A head has at most one move (one pending
    // writer); a mark beside it, or a second mark, is answered "not marked" without being
    // sent, and its writer reads the head again, as after losing to another instance.
    let mut seen = HashSet::with_capacity(batch.len());
    let (mut moves, mut marks, mut later) = (Vec::new(), Vec::new(), Vec::new());
    for write in batch {
        match write {
            Write::Move(request) => moves.push(request),
            Write::Mark(mark) => marks.push(mark),
        }
    }
    let mut sent: Vec<Write> = Vec::with_capacity(moves.len() + marks.len());
    for request in moves {
        seen.insert(request.aggregate_id);
        sent.push(Write::Move(request));
    }
    for mark in marks {
        if seen.insert(mark.aggregate_id) {
            sent.push(Write::Mark(mark));
        } else {
            later.push(mark);
        }
    }
    for mark in later {
        let _ = mark.reply.send(Ok(false));
    }
    // Every statement takes its row locks in id order, so two batches never wait on each
    // other's rows in opposite orders (a deadlock would fail both).
    sent.sort_unstable_by_key(Write::aggregate_id);
    metrics.observe(sent.len() as f64);
    let rows = sent.len();
    let (mut ids, mut types, mut versions) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    let (mut pending, mut states, mut writers, mut positions) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    for write in &mut sent {
        match write {
            Write::Mark(mark) => {
                ids.push(mark.aggregate_id);
                types.push(mark.aggregate_type);
                versions.push(mark.version);
                pending.push(Some(mark.pending_version));
                states.push(Some(std::mem::take(&mut mark.pending_state)));
                writers.push(mark.writer);
                positions.push(None);
            }
            Write::Move(request) => {
                ids.push(request.aggregate_id);
                types.push("");
                versions.push(request.version);
                pending.push(None);
                states.push(None);
                writers.push(request.writer);
                positions.push(request.position.take());
            }
        }
    }
    let written: Result<Vec<(Uuid, bool)>, sqlx::Error> = sqlx::query_as(
        "insert into api.aggregate_heads as head
                (aggregate_id, aggregate_type, version, pending_version, pending_state,
                 pending_since, pending_writer, last_position)
         select id, kind, version, pending, state,
                case when pending is null then null else now() end, writer, position
           from unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::jsonb[], $6::uuid[],
                       $7::text[])
                as row_(id, kind, version, pending, state, writer, position)
          order by id
         on conflict (aggregate_id) do update
            set version = case when excluded.pending_version is null
                               then head.pending_version else head.version end,
                state = case when excluded.pending_version is null
                             then head.pending_state else head.state end,
                pending_version = excluded.pending_version,
                pending_state = excluded.pending_state,
                pending_since = excluded.pending_since,
                pending_writer = case when excluded.pending_version is null
                                      then null else excluded.pending_writer end,
                last_position = case when excluded.pending_version is null
                                     then excluded.last_position else head.last_position end,
                updated_at = case when excluded.pending_version is null
                                  then now() else head.updated_at end
          where case when excluded.pending_version is null
                     then head.pending_version = excluded.version
                          and head.pending_writer = excluded.pending_writer
                     else head.version = excluded.version and head.pending_version is null
                end
         returning aggregate_id, xmax = 0 as inserted",
    )
    .bind(&ids)
    .bind(&types)
    .bind(&versions)
    .bind(&pending)
    .bind(&states)
    .bind(&writers)
    .bind(&positions)
    .fetch_all(&db)
    .await;
    match written {
        Ok(written) => {
            let written: HashMap<Uuid, bool> = written.into_iter().collect();
            let mut strays = Vec::new();
            for write in sent {
                let inserted = written.get(&write.aggregate_id()).copied();
                let done = match (&write, inserted) {
                    (Write::Move(request), Some(true)) => {
                        strays.push(request.aggregate_id);
                        false
                    }
                    (_, inserted) => inserted.is_some(),
                };
                write.answer(Ok(done));
            }
            if !strays.is_empty() {
                remove_strays(&db, &strays).await;
            }
        }
        Err(error) => {
            tracing::warn!(%error, rows, "writing heads failed");
            for write in sent {
                write.answer(Err(HeadsUnavailable));
            }
        }
    }
}

/// Deletes the rows that moves of vanished heads inserted (see [`write_batch`]); a row a mark
/// has claimed since (a pending version) is left alone.
async fn remove_strays(db: &sqlx::PgPool, ids: &[Uuid]) {
    let removed = sqlx::query(
        "delete from api.aggregate_heads
          where aggregate_id = any($1) and state is null and pending_version is null",
    )
    .bind(ids)
    .execute(db)
    .await;
    match removed {
        Ok(_) => tracing::warn!(heads = ids.len(), "moves found no head; nothing moved"),
        Err(error) => tracing::warn!(%error, "removing rows of moves that found no head failed"),
    }
}
