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
    collections::{HashMap, hash_map::Entry},
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
    written: Arc<Mutex<LruCache<Uuid, Remembered>>>,
}

/// An aggregate's state as a head stores it: JSON text, shared (not copied) between a mark,
/// its statement and what the instance remembers. Serialised once per command from the typed
/// state and parsed back into it, never held as a `serde_json::Value` tree: building, writing
/// out and freeing such a tree (a session's holds every attempt id) cost a command more than
/// the text (issue #4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateJson(Arc<str>);

impl StateJson {
    /// The JSON text of `state`.
    pub fn of<S: serde::Serialize>(state: &S) -> serde_json::Result<Self> {
        Ok(Self(serde_json::to_string(state)?.into()))
    }

    /// The typed state back.
    pub fn parse<S: serde::de::DeserializeOwned>(&self) -> serde_json::Result<S> {
        serde_json::from_str(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<serde_json::Value> for StateJson {
    fn from(value: serde_json::Value) -> Self {
        Self(value.to_string().into())
    }
}

/// What this instance remembers of a head it wrote last: the version its append made and the
/// state after it. Only a hint: another instance may have moved the head since, which the
/// compare-and-set of the next mark at this version finds out.
#[derive(Debug, Clone, PartialEq)]
pub struct Remembered {
    pub version: i64,
    pub state: StateJson,
    /// Set while the move after that append may not have landed: the next mark may complete
    /// it (see [`Heads::mark_after`]).
    pub acked: Option<Acked>,
}

/// An append Kafka acknowledged whose move was sent without waiting for it: the mark's
/// writer and the append's position.
#[derive(Debug, Clone, PartialEq)]
pub struct Acked {
    pub writer: Uuid,
    pub position: Option<String>,
}

/// An aggregate's head as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub aggregate_type: String,
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
    pending_state: StateJson,
    writer: Uuid,
    /// The acknowledged append at `version` whose move this mark may complete.
    follows: Option<Acked>,
    reply: oneshot::Sender<Result<bool, HeadsUnavailable>>,
}

struct Move {
    aggregate_id: Uuid,
    version: i64,
    writer: Uuid,
    position: Option<String>,
    /// `None`: nobody waits for the answer ([`Heads::move_later`]).
    reply: Option<oneshot::Sender<Result<bool, HeadsUnavailable>>>,
}

impl Heads {
    /// Starts the batchers on the current runtime; they stop when the last handle is dropped.
    /// A pending mark older than `stale_after` is reported stale.
    /// `lanes` statements of each kind may run at once (while one waits for its WAL flush the
    /// next batch forms; fewer lanes make fuller batches).
    pub fn start(
        db: sqlx::PgPool,
        rows: &prometheus::HistogramVec,
        stale_after: Duration,
        lanes: usize,
    ) -> Self {
        let (reads, read_queue) = mpsc::channel(QUEUE);
        let (read_db, read_metrics) = (db.clone(), rows.with_label_values(&["read"]));
        tokio::spawn(collect(read_queue, lanes, move |batch| {
            read_batch(read_db.clone(), read_metrics.clone(), stale_after, batch)
        }));
        let (writes, write_queue) = mpsc::channel(QUEUE);
        let metrics = rows.with_label_values(&["write"]);
        tokio::spawn(collect(write_queue, lanes, move |batch| {
            write_batch(db.clone(), metrics.clone(), batch)
        }));
        Self {
            reads,
            writes,
            written: Arc::new(Mutex::new(LruCache::new(CACHED_HEADS))),
        }
    }

    /// What this instance remembers of the head of `aggregate_id`, if it wrote it last.
    pub fn written(&self, aggregate_id: Uuid) -> Option<Remembered> {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written.get(&aggregate_id).cloned()
    }

    /// Remembers that an append of this instance took the head of `aggregate_id` to `version`,
    /// `state` (after Kafka acknowledged it; `acked` while its move may still be on its way).
    pub fn remember(&self, aggregate_id: Uuid, remembered: Remembered) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written.insert(aggregate_id, remembered);
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
        pending_state: impl Into<StateJson>,
        writer: Uuid,
    ) -> Result<bool, HeadsUnavailable> {
        self.mark_after(
            aggregate_id,
            aggregate_type,
            (version, pending_version),
            pending_state,
            (writer, None),
        )
        .await
    }

    /// [`Heads::mark`], and also, with `follows`, when the head is still pending at `version`
    /// by the acknowledged append of `follows.writer`: the mark then moves the head to that
    /// version first (its state is the pending one, its position `follows.position`), in the
    /// same statement. Only the instance whose append Kafka acknowledged knows the move is
    /// due, so only it passes `follows`.
    pub async fn mark_after(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &'static str,
        (version, pending_version): (i64, i64),
        pending_state: impl Into<StateJson>,
        (writer, follows): (Uuid, Option<Acked>),
    ) -> Result<bool, HeadsUnavailable> {
        let (reply, answer) = oneshot::channel();
        let mark = Mark {
            aggregate_id,
            aggregate_type,
            version,
            pending_version,
            pending_state: pending_state.into(),
            writer,
            follows,
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
            reply: Some(reply),
        };
        self.writes
            .send(Write::Move(request))
            .await
            .map_err(|_| HeadsUnavailable)?;
        answer.await.map_err(|_| HeadsUnavailable)?
    }

    /// [`Heads::settle`] without waiting: the move is queued and its answer dropped. Until it
    /// lands, the head stays pending by `writer`; this instance completes the move with its
    /// next mark ([`Heads::mark_after`]), other instances wait for it (or, were it lost with
    /// the process, settle the mark from the log).
    pub async fn move_later(
        &self,
        aggregate_id: Uuid,
        version: i64,
        writer: Uuid,
        position: Option<String>,
    ) -> Result<(), HeadsUnavailable> {
        let request = Move {
            aggregate_id,
            version,
            writer,
            position,
            reply: None,
        };
        self.writes
            .send(Write::Move(request))
            .await
            .map_err(|_| HeadsUnavailable)
    }
}

/// Takes whatever is queued (at least one request, at most `MAX_BATCH`) whenever one of the
/// `lanes` is free, and runs `run` on it in its own task.
async fn collect<R, F, Fut>(mut queue: mpsc::Receiver<R>, lanes: usize, run: F)
where
    R: Send + 'static,
    F: Fn(Vec<R>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let lanes = Arc::new(Semaphore::new(lanes.max(1)));
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
        "select aggregate_id, aggregate_type, version, state, pending_version,
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
                    aggregate_type: row.try_get("aggregate_type")?,
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
        match self {
            Write::Mark(mark) => {
                let _ = mark.reply.send(answer);
            }
            Write::Move(request) => {
                if let Some(reply) = request.reply {
                    let _ = reply.send(answer);
                }
            }
        }
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
/// writer, and updates a head at that version with nothing pending, or, when it follows an
/// acknowledged append (`mark_follows`, `last_position`: that append's writer and position),
/// a head still pending at that version by that writer, which it moves first. An absent head
/// is inserted as proposed (the creation of an aggregate). In every case the head's version
/// and state become the pending ones when there were any (a move, or a mark completing one).
///
/// Heads are not deleted while their writers run, so a move finds its row; one that did not
/// (a head erased meanwhile) would insert its proposed row, which is told apart by
/// `xmax = 0`, answered "not moved" and deleted again.
async fn write_batch(db: sqlx::PgPool, metrics: prometheus::Histogram, batch: Vec<Write>) {
    // One statement cannot touch a row twice. Of two moves of one head (possible when the
    // queue is long: a mark completed the first and a later command moved on), only the
    // highest version can still match (of equal ones the last queued is kept), so the others
    // are answered "not moved" unsent. A mark that follows the remaining move's append
    // completes it, so the move rides on the mark and gets its answer; any other mark beside
    // a move, or a second mark, is answered "not marked" unsent, and its writer reads the head
    // again, as after losing to another instance.
    let mut marks_by_head: HashMap<Uuid, Vec<Mark>> = HashMap::new();
    let mut moves_by_head: HashMap<Uuid, Move> = HashMap::new();
    let mut superseded = Vec::new();
    for write in batch {
        match write {
            Write::Mark(mark) => marks_by_head
                .entry(mark.aggregate_id)
                .or_default()
                .push(mark),
            Write::Move(request) => match moves_by_head.entry(request.aggregate_id) {
                Entry::Occupied(mut kept) if request.version >= kept.get().version => {
                    superseded.push(kept.insert(request));
                }
                Entry::Occupied(_) => superseded.push(request),
                Entry::Vacant(slot) => {
                    slot.insert(request);
                }
            },
        }
    }
    for request in superseded {
        Write::Move(request).answer(Ok(false));
    }
    let mut sent: Vec<Write> = Vec::with_capacity(moves_by_head.len() + marks_by_head.len());
    let (mut refused, mut absorbed) = (Vec::new(), Vec::new());
    for (id, request) in moves_by_head {
        let mut marks = marks_by_head.remove(&id).unwrap_or_default();
        let completing = marks.iter().position(|mark| {
            mark.version == request.version
                && mark.follows.as_ref().map(|f| f.writer) == Some(request.writer)
        });
        match completing {
            Some(at) => {
                sent.push(Write::Mark(marks.swap_remove(at)));
                absorbed.push(request);
            }
            None => sent.push(Write::Move(request)),
        }
        refused.extend(marks);
    }
    for (_, mut marks) in marks_by_head {
        let first = marks.remove(0);
        sent.push(Write::Mark(first));
        refused.extend(marks);
    }
    for mark in refused {
        let _ = mark.reply.send(Ok(false));
    }
    // Every statement takes its row locks in id order, so two batches never wait on each
    // other's rows in opposite orders (a deadlock would fail both).
    sent.sort_unstable_by_key(Write::aggregate_id);
    metrics.observe(sent.len() as f64);
    let rows = sent.len();
    let mut ids = Vec::with_capacity(rows);
    let mut types = Vec::with_capacity(rows);
    let mut versions = Vec::with_capacity(rows);
    let mut pending = Vec::with_capacity(rows);
    let mut states = Vec::with_capacity(rows);
    let mut writers = Vec::with_capacity(rows);
    let mut positions = Vec::with_capacity(rows);
    let mut follows = Vec::with_capacity(rows);
    for write in &mut sent {
        match write {
            Write::Mark(mark) => {
                ids.push(mark.aggregate_id);
                types.push(mark.aggregate_type);
                versions.push(mark.version);
                pending.push(Some(mark.pending_version));
                states.push(Some(mark.pending_state.clone()));
                writers.push(mark.writer);
                let acked = mark.follows.as_mut();
                follows.push(acked.as_ref().map(|acked| acked.writer));
                positions.push(acked.and_then(|acked| acked.position.take()));
            }
            Write::Move(request) => {
                ids.push(request.aggregate_id);
                types.push("");
                versions.push(request.version);
                pending.push(None);
                states.push(None);
                writers.push(request.writer);
                follows.push(None);
                positions.push(request.position.take());
            }
        }
    }
    let written: Result<Vec<(Uuid, bool)>, sqlx::Error> = sqlx::query_as(
        "insert into api.aggregate_heads as head
                (aggregate_id, aggregate_type, version, pending_version, pending_state,
                 pending_since, pending_writer, last_position, mark_follows)
         select id, kind, version, pending, state::jsonb,
                case when pending is null then null else now() end, writer, position, follows
           from unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::uuid[],
                       $7::text[], $8::uuid[])
                as row_(id, kind, version, pending, state, writer, position, follows)
          order by id
         on conflict (aggregate_id) do update
            set version = coalesce(head.pending_version, head.version),
                state = case when head.pending_version is null
                             then head.state else head.pending_state end,
                pending_version = excluded.pending_version,
                pending_state = excluded.pending_state,
                pending_since = excluded.pending_since,
                pending_writer = case when excluded.pending_version is null
                                      then null else excluded.pending_writer end,
                last_position = coalesce(excluded.last_position, head.last_position),
                mark_follows = null,
                updated_at = case when head.pending_version is null
                                  then head.updated_at else now() end
          where case when excluded.pending_version is null
                     then head.pending_version = excluded.version
                          and head.pending_writer = excluded.pending_writer
                     else (head.version = excluded.version and head.pending_version is null)
                          or (head.pending_version = excluded.version
                              and head.pending_writer = excluded.mark_follows)
                end
         returning aggregate_id, xmax = 0 as inserted",
        // `xmax = 0`: the row version was inserted, not updated (an updated one carries the
        // locking transaction's id) — PostgreSQL's usual tell for `on conflict` upserts.
    )
    .bind(&ids)
    .bind(&types)
    .bind(&versions)
    .bind(&pending)
    .bind(
        states
            .iter()
            .map(|state| state.as_ref().map(StateJson::as_str))
            .collect::<Vec<_>>(),
    )
    .bind(&writers)
    .bind(&positions)
    .bind(&follows)
    .fetch_all(&db)
    .await;
    match written {
        Ok(written) => {
            let written: HashMap<Uuid, bool> = written.into_iter().collect();
            let strays: Vec<Uuid> = sent
                .iter()
                .filter(|write| matches!(write, Write::Move(_)))
                .map(Write::aggregate_id)
                .filter(|id| written.get(id) == Some(&true))
                .collect();
            if !strays.is_empty() {
                remove_strays(&db, &strays).await;
            }
            for request in absorbed {
                let moved = written.contains_key(&request.aggregate_id);
                Write::Move(request).answer(Ok(moved));
            }
            for write in sent {
                let done = match written.get(&write.aggregate_id()) {
                    Some(&inserted) => !(inserted && matches!(write, Write::Move(_))),
                    None => false,
                };
                write.answer(Ok(done));
            }
        }
        Err(error) => {
            tracing::warn!(%error, rows, "writing heads failed");
            for request in absorbed {
                Write::Move(request).answer(Err(HeadsUnavailable));
            }
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
          where aggregate_id in (
                select aggregate_id from api.aggregate_heads
                 where aggregate_id = any($1) and state is null and pending_version is null
                 order by aggregate_id for update)",
    )
    .bind(ids)
    .execute(db)
    .await;
    match removed {
        Ok(_) => tracing::warn!(heads = ids.len(), "moves found no head; nothing moved"),
        Err(error) => tracing::warn!(%error, "removing rows of moves that found no head failed"),
    }
}
