//! Settling the aggregate heads from the log: the log is the truth, the heads in PostgreSQL a
//! cache of it (ADR 0009). After PostgreSQL is restored from a backup older than the log, a
//! head can be behind it; the next command would then append a second version N + 1. This
//! reads every headed topic from its start to its end, folds each aggregate's events
//! ([`crate::fold`]) and brings each head that is behind up to the log.
//!
//! Run it with the API stopped (`cruxlog-command-api heads settle`, runbook "Restore"). Each
//! update is still a compare-and-set on the version it read, so a head that a writer moved
//! meanwhile is left to that writer, and a head is never moved backwards: one ahead of the
//! log (the log lost records, or the topics were recreated) is reported, never touched.
//!
//! Memory grows with the number of aggregates (one state each): fine for a restore of this
//! product's scale; a bigger one would settle topic by topic.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use cruxlog_runtime::kafka::KafkaConfig;
use cruxlog_schemas::{DomainEvent, Envelope, topics::Topics};
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
};
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use crate::{
    fold::{self, Unfoldable},
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
    /// A record that does not decode, or an event that does not fold: skipped.
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
    pub fn apply(&mut self, record: Result<(Envelope, DomainEvent), String>, position: Position) {
        self.records += 1;
        let (envelope, event) = match record {
            Ok(decoded) => decoded,
            Err(reason) => {
                self.anomalies
                    .push(Anomaly::Unreadable { position, reason });
                return;
            }
        };
        let aggregate_id = envelope.aggregate_id;
        let current = self.heads.get(&aggregate_id);
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
        let state = current.map(|head| head.state.clone());
        match fold::evolve_json(&envelope.aggregate_type, state, envelope.event_id, &event) {
            Ok(state) => {
                self.heads.insert(
                    aggregate_id,
                    LogHead {
                        aggregate_type: envelope.aggregate_type,
                        version: envelope.aggregate_version.max(from),
                        state,
                        position,
                    },
                );
            }
            Err(error) => self.anomalies.push(Anomaly::Unreadable {
                position,
                reason: unfoldable(&error, aggregate_id),
            }),
        }
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
    let mut assignment = TopicPartitionList::new();
    let mut ends = Vec::new();
    let mut total = 0;
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (low, high) = consumer.fetch_watermarks(topic, partition.id(), TIMEOUT)?;
            if low < high {
                assignment.add_partition_offset(topic, partition.id(), Offset::Offset(low))?;
                ends.push((topic.clone(), partition.id(), high));
                total += high - low;
            }
        }
    }
    progress.set_length(u64::try_from(total).unwrap_or_default());
    let mut folded = Folded::default();
    if ends.is_empty() {
        return Ok(folded);
    }
    consumer.assign(&assignment)?;
    // A stall (the broker gone) fails the read rather than hanging it.
    let mut last_record = Instant::now();
    while !ends.is_empty() {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            anyhow::ensure!(
                last_record.elapsed() < TIMEOUT,
                "no record from the log for {TIMEOUT:?}; is Kafka up?"
            );
            continue;
        };
        let message = message?;
        last_record = Instant::now();
        let position = Position {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
        };
        let record = message
            .payload()
            .ok_or_else(|| "a record without a payload".to_owned())
            .and_then(|payload| {
                let envelope = cruxlog_schemas::codec::decode_envelope(payload)
                    .map_err(|error| error.to_string())?;
                let event = cruxlog_schemas::codec::decode_payload(&envelope)
                    .map_err(|error| error.to_string())?;
                Ok((envelope, event))
            });
        folded.apply(record, position);
        progress.inc(1);
        let (topic, partition, next) = (message.topic(), message.partition(), message.offset() + 1);
        ends.retain(|(t, p, high)| !(t == topic && *p == partition && next >= *high));
    }
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
    /// Heads a writer changed while this ran, left to it.
    pub raced: usize,
    /// Heads ahead of the log, untouched: (aggregate, head's version, log's version).
    pub ahead: Vec<(Uuid, i64, i64)>,
}

struct StoredHead {
    aggregate_type: String,
    version: i64,
    state: Option<serde_json::Value>,
    last_position: Option<String>,
}

/// Brings the heads up to `folded` (`apply`), or only says what it would do.
pub async fn settle(db: &PgPool, folded: &Folded, apply: bool) -> anyhow::Result<Settlement> {
    let mut stored = HashMap::new();
    let rows = sqlx::query(
        "select aggregate_id, aggregate_type, version, state, last_position
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
                state: row.try_get("state")?,
                last_position: row.try_get("last_position")?,
            },
        );
    }
    let mut settlement = Settlement {
        checked: folded.heads.len(),
        ..Settlement::default()
    };
    for (aggregate_id, log) in &folded.heads {
        let position = log.position.to_string();
        let Some(head) = stored.remove(aggregate_id) else {
            settlement.created += 1;
            if apply && !create(db, *aggregate_id, log, &position).await? {
                settlement.raced += 1;
            }
            continue;
        };
        if head.version > log.version {
            settlement
                .ahead
                .push((*aggregate_id, head.version, log.version));
            continue;
        }
        let same_state = head.state.as_ref() == Some(&log.state)
            && head.aggregate_type == log.aggregate_type
            && head.last_position.as_deref() == Some(position.as_str());
        if head.version == log.version && same_state {
            settlement.unchanged += 1;
            continue;
        }
        if head.version < log.version {
            settlement.moved += 1;
        } else {
            settlement.restated += 1;
        }
        if apply && !replace(db, *aggregate_id, head.version, log, &position).await? {
            settlement.raced += 1;
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

/// The head takes the log's version and state, only if it is still at the version read.
async fn replace(
    db: &PgPool,
    aggregate_id: Uuid,
    read: i64,
    log: &LogHead,
    position: &str,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "update api.aggregate_heads
            set aggregate_type = $3, version = $4, state = $5, last_position = $6,
                pending_version = null, pending_state = null, pending_since = null,
                pending_writer = null, mark_follows = null, updated_at = now()
          where aggregate_id = $1 and version = $2",
    )
    .bind(aggregate_id)
    .bind(read)
    .bind(&log.aggregate_type)
    .bind(log.version)
    .bind(&log.state)
    .bind(position)
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use cruxlog_schemas::{Actor, EventMeta, events::samples};

    use super::*;

    fn record(
        aggregate_id: Uuid,
        version: i64,
        event: DomainEvent,
    ) -> Result<(Envelope, DomainEvent), String> {
        let meta = EventMeta::new(aggregate_id, version, Actor::system());
        let bytes = event.encode(&meta).map_err(|e| e.to_string())?;
        let envelope =
            cruxlog_schemas::codec::decode_envelope(&bytes).map_err(|e| e.to_string())?;
        Ok((envelope, event))
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
    fn duplicates_and_gaps_fold_and_bad_records_are_skipped() {
        let session = Uuid::now_v7();
        let mut folded = Folded::default();
        folded.apply(record(session, 1, sample("SessionStarted")), at(0));
        folded.apply(record(session, 2, sample("AttemptLogged")), at(1));
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
        // An event of another aggregate type on this id does not fold.
        folded.apply(record(session, 6, sample("RoleGranted")), at(5));
        assert_eq!(folded.heads[&session].version, 5);
        assert_eq!(folded.records, 6);
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
