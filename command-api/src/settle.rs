//! Settling the aggregate heads from the log: the log is the truth, the heads in PostgreSQL a
//! cache of it (ADR 0009). After PostgreSQL is restored from a backup older than the log, a
//! head can be behind it; the next command would then append a second version N + 1. This
//! reads every headed topic from its start to its end, folds each aggregate's events
//! ([`crate::fold`]) and brings each head that is behind up to the log.
//!
//! Run it with the API stopped (`cruxlog-command-api settle-heads`, `docs/runbooks/heads.md`).
//! Each update is still a compare-and-set on the version and pending mark it read, so a head
//! that a writer marked or moved meanwhile is left to that writer. A head is never moved
//! backwards: one ahead of the log (the log lost records, or the topics were recreated) is
//! reported, never touched; so is an aggregate with an event that does not fold.
//!
//! Memory grows with the number of aggregates (one state each): fine for a restore of this
//! product's scale; a bigger one would settle topic by topic.

use std::{collections::HashMap, time::Duration};

use anyhow::Context as _;
use cruxlog_runtime::kafka::KafkaConfig;
use cruxlog_schemas::{Envelope, topics::Topics};
use rdkafka::{
    Message as _,
    consumer::{BaseConsumer, Consumer as _},
};
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use crate::{
    fold::{self, Unfoldable},
    log_scan::{self, Span},
    position::Position,
};

/// An aggregate's head as its events in the log make it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogHead {
    pub aggregate_type: String,
    pub version: i64,
    pub state: serde_json::Value,
    /// Where its last event is.
    pub position: Position,
    /// Its last record's event id: the same record appended again folds once.
    pub last_event_id: Uuid,
    /// One of its events did not decode or fold: `state` may miss it, so settling leaves this
    /// head alone and reports it.
    pub tainted: bool,
}

/// Something in the log that is not as the writers keep it; reported, and folded around.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Anomaly {
    /// A version already folded, again: a command taken by a head behind the log. Folded
    /// all the same (it was answered, and projectors applied it); the version stays.
    #[error("{aggregate_id} has version {version} twice (again at {position})")]
    Duplicate {
        aggregate_id: Uuid,
        version: i64,
        position: Position,
    },
    /// Versions skipped: folded anyway at the version found.
    #[error("{aggregate_id} jumps from version {from} to {to} at {position}")]
    Gap {
        aggregate_id: Uuid,
        from: i64,
        to: i64,
        position: Position,
    },
    /// A record without a readable envelope: skipped. An event whose envelope reads but
    /// that does not decode or fold counts its version, and taints its aggregate.
    #[error("{position}: {reason}")]
    Unreadable { position: Position, reason: String },
}

/// The heads the log makes, and what did not fit.
#[derive(Debug, Default)]
pub struct Folded {
    pub heads: HashMap<Uuid, LogHead>,
    pub records: u64,
    pub anomalies: Vec<Anomaly>,
}

impl Folded {
    /// Folds one record, read in log order within its partition (an aggregate's records are
    /// all in one partition, keyed by its id).
    pub fn apply(&mut self, envelope: Result<Envelope, String>, position: Position) {
        self.records += 1;
        let envelope = match envelope {
            Ok(envelope) => envelope,
            Err(reason) => {
                self.anomalies
                    .push(Anomaly::Unreadable { position, reason });
                return;
            }
        };
        let aggregate_id = envelope.aggregate_id;
        let current = self.heads.get(&aggregate_id);
        if current.is_some_and(|head| head.last_event_id == envelope.event_id) {
            // The same record again (a producer's retry): one fact.
            return;
        }
        let from = current.map_or(0, |head| head.version);
        if envelope.aggregate_version <= from {
            // It happened (its command was answered, projectors applied it): fold it too.
            self.anomalies.push(Anomaly::Duplicate {
                aggregate_id,
                version: envelope.aggregate_version,
                position: position.clone(),
            });
        } else if envelope.aggregate_version != from + 1 {
            self.anomalies.push(Anomaly::Gap {
                aggregate_id,
                from,
                to: envelope.aggregate_version,
                position: position.clone(),
            });
        }
        let state = current.map(|head| &head.state);
        let folded = cruxlog_schemas::codec::decode_payload(&envelope)
            .map_err(|error| error.to_string())
            .and_then(|event| {
                fold::evolve_json(&envelope.aggregate_type, state, envelope.event_id, &event)
                    .map_err(|error| unfoldable(&error, aggregate_id))
            });
        let (state, tainted) = match folded {
            Ok(state) => (state, current.is_some_and(|head| head.tainted)),
            Err(reason) => {
                self.anomalies.push(Anomaly::Unreadable {
                    position: position.clone(),
                    reason,
                });
                (state.cloned().unwrap_or_default(), true)
            }
        };
        self.heads.insert(
            aggregate_id,
            LogHead {
                aggregate_type: envelope.aggregate_type,
                version: envelope.aggregate_version.max(from),
                state,
                position,
                last_event_id: envelope.event_id,
                tainted,
            },
        );
    }
}

fn unfoldable(error: &Unfoldable, aggregate_id: Uuid) -> String {
    format!("{aggregate_id}: {error}")
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Reads every headed topic from its start to the end it had when the read began, and folds
/// it. `progress` is told the number of records to read, then each record read.
pub async fn read_log(
    kafka: &KafkaConfig,
    topics: &Topics,
    progress: indicatif::ProgressBar,
) -> anyhow::Result<Folded> {
    let config = kafka.consumer(&format!("cruxlog-heads-settle-{}", Uuid::now_v7()));
    let topics: Vec<String> = fold::HEADED
        .iter()
        .map(|aggregate| topics.for_aggregate(aggregate))
        .collect();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create()?;
        read_topics(&consumer, &topics, &progress)
    })
    .await?
}

fn read_topics(
    consumer: &BaseConsumer,
    topics: &[String],
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Folded> {
    let mut spans = Vec::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (start, end) = consumer.fetch_watermarks(topic, partition.id(), TIMEOUT)?;
            spans.push(Span {
                topic: topic.clone(),
                partition: partition.id(),
                start,
                end,
            });
        }
    }
    let total: i64 = spans.iter().map(|span| span.end - span.start).sum();
    progress.set_length(u64::try_from(total).unwrap_or_default());
    let mut folded = Folded::default();
    log_scan::read_to_end(consumer, spans, TIMEOUT, None, |message| {
        let position = Position {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
        };
        let envelope = message
            .payload()
            .ok_or_else(|| "a record without a payload".to_owned())
            .and_then(|payload| {
                cruxlog_schemas::codec::decode_envelope(payload).map_err(|error| error.to_string())
            });
        folded.apply(envelope, position);
        progress.inc(1);
    })
    .with_context(|| {
        format!(
            "the log's end not reached: no record for {TIMEOUT:?} (Kafka down, or a \
             transaction left open?)"
        )
    })?;
    progress.finish_and_clear();
    Ok(folded)
}

/// What settling did (or, dry, would do) to the heads.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Settlement {
    /// Heads the log has.
    pub checked: usize,
    /// Already as the log makes them.
    pub unchanged: usize,
    /// Missing heads created.
    pub created: usize,
    /// Heads behind the log brought up to it (their pending marks cleared: the log has them).
    pub moved: usize,
    /// Heads at the log's version whose state differed, given the log's.
    pub restated: usize,
    /// Heads a writer changed while this ran, left to it (counted here only).
    pub raced: usize,
    /// Heads ahead of the log, untouched: (aggregate, head's version, log's version).
    pub ahead: Vec<(Uuid, i64, i64)>,
    /// Aggregates with an event that did not decode or fold, untouched: their state from the
    /// log may miss it. (aggregate, log's version.)
    pub tainted: Vec<(Uuid, i64)>,
}

/// What settling does to one head.
enum Change {
    Create,
    Move,
    Restate,
}

struct StoredHead {
    aggregate_type: String,
    version: i64,
    pending_version: Option<i64>,
    state: Option<serde_json::Value>,
    last_position: Option<String>,
}

/// The heads as PostgreSQL holds them, read once for [`settle_against`].
pub struct StoredHeads(HashMap<Uuid, StoredHead>);

impl StoredHeads {
    pub async fn read(db: &PgPool) -> anyhow::Result<Self> {
        let mut stored = HashMap::new();
        let rows = sqlx::query(
            "select aggregate_id, aggregate_type, version, pending_version, state, last_position
               from api.aggregate_heads where aggregate_type = any($1)",
        )
        .bind(fold::HEADED.to_vec())
        .fetch_all(db)
        .await?;
        for row in rows {
            stored.insert(
                row.try_get::<Uuid, _>("aggregate_id")?,
                StoredHead {
                    aggregate_type: row.try_get("aggregate_type")?,
                    version: row.try_get("version")?,
                    pending_version: row.try_get("pending_version")?,
                    state: row.try_get("state")?,
                    last_position: row.try_get("last_position")?,
                },
            );
        }
        Ok(Self(stored))
    }
}

/// Brings the heads up to `folded` (`apply`), or only says what it would do.
pub async fn settle(db: &PgPool, folded: &Folded, apply: bool) -> anyhow::Result<Settlement> {
    let stored = StoredHeads::read(db).await?;
    settle_against(db, folded, stored, apply).await
}

/// [`settle`] with the heads as read before: each update still checks that its head is as
/// read, so a head a writer changed since is counted `raced` and left to it.
pub async fn settle_against(
    db: &PgPool,
    folded: &Folded,
    StoredHeads(mut stored): StoredHeads,
    apply: bool,
) -> anyhow::Result<Settlement> {
    let mut settlement = Settlement {
        checked: folded.heads.len(),
        ..Settlement::default()
    };
    for (aggregate_id, log) in &folded.heads {
        let position = log.position.to_string();
        let head = stored.remove(aggregate_id);
        if log.tainted {
            settlement.tainted.push((*aggregate_id, log.version));
            continue;
        }
        let change = match &head {
            None => Change::Create,
            Some(head) if head.version > log.version => {
                settlement
                    .ahead
                    .push((*aggregate_id, head.version, log.version));
                continue;
            }
            Some(head) if head.version < log.version => Change::Move,
            Some(head)
                if head.state.as_ref() == Some(&log.state)
                    && head.aggregate_type == log.aggregate_type
                    && head.last_position.as_deref() == Some(position.as_str()) =>
            {
                settlement.unchanged += 1;
                continue;
            }
            Some(_) => Change::Restate,
        };
        if apply {
            let done = match &head {
                None => create(db, *aggregate_id, log, &position).await?,
                Some(head) => replace(db, *aggregate_id, head, log, &position).await?,
            };
            if !done {
                settlement.raced += 1;
                continue;
            }
        }
        match change {
            Change::Create => settlement.created += 1,
            Change::Move => settlement.moved += 1,
            Change::Restate => settlement.restated += 1,
        }
    }
    // Heads with no event in the log at all are ahead of it too.
    settlement.ahead.extend(
        stored
            .into_iter()
            .filter(|(_, head)| head.version > 0)
            .map(|(aggregate_id, head)| (aggregate_id, head.version, 0)),
    );
    settlement.ahead.sort_unstable();
    settlement.tainted.sort_unstable();
    Ok(settlement)
}

async fn create(
    db: &PgPool,
    aggregate_id: Uuid,
    log: &LogHead,
    position: &str,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "insert into api.aggregate_heads (aggregate_id, aggregate_type, version, state, last_position)
         values ($1, $2, $3, $4, $5) on conflict (aggregate_id) do nothing",
    )
    .bind(aggregate_id)
    .bind(&log.aggregate_type)
    .bind(log.version)
    .bind(&log.state)
    .bind(position)
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The head takes the log's version and state, only if it is still as read: at that version
/// with that pending mark (a writer marking it meanwhile keeps it).
async fn replace(
    db: &PgPool,
    aggregate_id: Uuid,
    read: &StoredHead,
    log: &LogHead,
    position: &str,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "update api.aggregate_heads
            set aggregate_type = $3, version = $4, state = $5, last_position = $6,
                pending_version = null, pending_state = null, pending_since = null,
                pending_writer = null, mark_follows = null, updated_at = now()
          where aggregate_id = $1 and version = $2
            and pending_version is not distinct from $7",
    )
    .bind(aggregate_id)
    .bind(read.version)
    .bind(&log.aggregate_type)
    .bind(log.version)
    .bind(&log.state)
    .bind(position)
    .bind(read.pending_version)
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use cruxlog_schemas::{Actor, DomainEvent, EventMeta, events::samples};

    use super::*;

    fn record(aggregate_id: Uuid, version: i64, event: DomainEvent) -> Result<Envelope, String> {
        let meta = EventMeta::new(aggregate_id, version, Actor::system());
        let bytes = event.encode(&meta).map_err(|e| e.to_string())?;
        cruxlog_schemas::codec::decode_envelope(&bytes).map_err(|e| e.to_string())
    }

    fn at(offset: i64) -> Position {
        Position {
            topic: "t.cruxlog.climbing_session".into(),
            partition: 0,
            offset,
        }
    }

    fn sample(name: &str) -> DomainEvent {
        samples::all()
            .into_iter()
            .find(|event| event.name().ends_with(name))
            .expect("a sample")
    }

    #[test]
    fn duplicates_and_gaps_fold_repeats_fold_once_and_bad_records_taint() {
        let session = Uuid::now_v7();
        let mut folded = Folded::default();
        folded.apply(record(session, 1, sample("SessionStarted")), at(0));
        let logged = record(session, 2, sample("AttemptLogged"));
        folded.apply(logged.clone(), at(1));
        // The same record again is one fact, not a duplicate version.
        folded.apply(logged, at(2));
        assert_eq!(folded.anomalies, []);
        // A second version 2 (a head behind the log took it) is reported, and folded: the
        // command was answered.
        folded.apply(record(session, 2, sample("SessionEnded")), at(2));
        assert_eq!(folded.heads[&session].version, 2);
        assert_eq!(folded.heads[&session].state["ended"], true);
        folded.apply(Err("garbage".into()), at(3));
        folded.apply(record(session, 5, sample("AttemptDeleted")), at(4));
        assert_eq!(folded.heads[&session].version, 5);
        assert_eq!(folded.heads[&session].position, at(4));
        let attempts = folded.heads[&session].state["attempts"].clone();
        assert_eq!(
            attempts
                .as_object()
                .map(|a| a.values().cloned().collect::<Vec<_>>()),
            Some(vec![serde_json::Value::Bool(true)]),
            "the logged attempt, deleted"
        );
        assert!(!folded.heads[&session].tainted);
        // An event of another aggregate type on this id does not fold: its version counts,
        // the state stays, and the aggregate is tainted (settling leaves it alone).
        let state = folded.heads[&session].state.clone();
        folded.apply(record(session, 6, sample("RoleGranted")), at(5));
        assert_eq!(folded.heads[&session].version, 6);
        assert_eq!(folded.heads[&session].state, state);
        assert!(folded.heads[&session].tainted);
        assert_eq!(folded.records, 7);
        let kinds: Vec<&str> = folded
            .anomalies
            .iter()
            .map(|anomaly| match anomaly {
                Anomaly::Duplicate { .. } => "duplicate",
                Anomaly::Gap { .. } => "gap",
                Anomaly::Unreadable { .. } => "unreadable",
            })
            .collect();
        assert_eq!(kinds, ["duplicate", "unreadable", "gap", "unreadable"]);
    }
}
