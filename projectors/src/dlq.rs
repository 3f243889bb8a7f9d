//! `projectors dlq list|redrive <projection>`: look at the dead letters of a projection, and
//! re-apply them through the current code after a fix (R4). A redrive reads the dead-letter
//! topic from where the last one stopped to its end, applies in order, re-appends what still
//! fails, and releases the aggregates whose events all went through, in one transaction.

use std::{collections::HashSet, time::Duration};

use anyhow::Context as _;
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
    message::OwnedMessage,
};
use sqlx::Acquire as _;
use uuid::Uuid;

use crate::{
    builds,
    dead_letters::{self, Origin},
    projection::{Applied, is_poison},
    projections,
    service::Context,
    store::{self, Offsets},
};

/// One dead letter, for `dlq list`.
#[derive(Debug, Clone)]
pub struct Letter {
    pub offset: i64,
    pub origin: Option<Origin>,
    pub event_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub redriven: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redriven {
    pub applied: u64,
    pub still_failing: u64,
    pub released: u64,
}

/// Reads the whole dead-letter topic of a projection up to its current end.
fn read_all(context: &Context, topic: &str, from: i64) -> anyhow::Result<Vec<OwnedMessage>> {
    let consumer: BaseConsumer = context
        .config
        .kafka
        .consumer(&format!(
            "{}cruxlog-dlq-reader",
            context.config.kafka.topic_prefix
        ))
        .create()?;
    let (_, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Offset(from))?;
    consumer.assign(&assignment)?;
    let mut messages = Vec::new();
    let mut next = from;
    while next < high {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(message)) => {
                next = message.offset() + 1;
                messages.push(message.detach());
            }
            Some(Err(error)) => return Err(error.into()),
            None => anyhow::bail!("dead-letter topic {topic} stopped at {next} of {high}"),
        }
    }
    Ok(messages)
}

async fn redrive_offset(
    context: &Context,
    build_id: i64,
    topic: &str,
) -> sqlx::Result<Option<i64>> {
    Ok(store::load_offsets(&context.db, build_id)
        .await?
        .get(&(topic.to_owned(), 0))
        .copied())
}

pub async fn list(context: &Context, name: &str) -> anyhow::Result<Vec<Letter>> {
    let projection =
        projections::by_name(name).with_context(|| format!("no projection named {name}"))?;
    let topic = crate::service::dead_letter_topic(&context.config, projection.as_ref());
    let live = builds::live(&context.db, name).await?;
    let done = match &live {
        Some(build) => redrive_offset(context, build.build_id, &topic)
            .await?
            .unwrap_or(0),
        None => 0,
    };
    let messages = {
        let context = context.clone();
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || read_all(&context, &topic, 0)).await??
    };
    Ok(messages
        .iter()
        .map(|message| {
            let decoded =
                cruxlog_schemas::codec::decode_envelope(message.payload().unwrap_or_default()).ok();
            Letter {
                offset: message.offset(),
                origin: dead_letters::origin(message),
                event_type: decoded.as_ref().map(|e| e.event_type.clone()),
                aggregate_id: message
                    .key()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .map(str::to_owned),
                redriven: message.offset() < done,
            }
        })
        .collect())
}

pub async fn redrive(context: &Context, name: &str) -> anyhow::Result<Redriven> {
    let projection =
        projections::by_name(name).with_context(|| format!("no projection named {name}"))?;
    let build = builds::live(&context.db, name)
        .await?
        .with_context(|| format!("{name} has no live build"))?;
    let topic = crate::service::dead_letter_topic(&context.config, projection.as_ref());
    let dead_letters = context.dead_letters(projection.as_ref());

    let mut tx = context.db.begin().await?;
    // Hold every parked row of the build: batches that would block behind them wait for us,
    // so nothing is added to the dead letters between our snapshot and our commit.
    let parked: Vec<Uuid> = sqlx::query_scalar(
        "select aggregate_id from cruxlog.parked_aggregates where build_id = $1 for update",
    )
    .bind(build.build_id)
    .fetch_all(&mut *tx)
    .await?;
    let stored = redrive_offset(context, build.build_id, &topic).await?;
    let from = stored.unwrap_or(0);
    let messages = {
        let context = context.clone();
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || read_all(&context, &topic, from)).await??
    };
    builds::set_search_path(&mut tx, &build.schema_name).await?;

    let mut outcome = Redriven::default();
    let mut failed: HashSet<Uuid> = HashSet::new();
    for message in &messages {
        let aggregate = message
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| Uuid::parse_str(k).ok());
        let origin = dead_letters::origin(message);
        let still_blocked = aggregate.is_some_and(|id| failed.contains(&id));
        let result = if still_blocked {
            Err("still waiting behind a dead letter that fails".to_owned())
        } else {
            apply_one(&mut tx, projection.as_ref(), message, origin.as_ref()).await?
        };
        match result {
            Ok(()) => outcome.applied += 1,
            Err(reason) => {
                outcome.still_failing += 1;
                if let Some(id) = aggregate {
                    failed.insert(id);
                }
                dead_letters.send(message, &reason, still_blocked).await?;
            }
        }
    }
    for id in parked.iter().filter(|id| !failed.contains(id)) {
        store::unpark(&mut tx, build.build_id, *id).await?;
        outcome.released += 1;
    }
    let mut expected = Offsets::new();
    if let Some(stored) = stored {
        expected.insert((topic.clone(), 0), stored);
    }
    let mut new = expected.clone();
    new.insert(
        (topic.clone(), 0),
        messages.last().map_or(from, |m| m.offset() + 1),
    );
    if new != expected {
        store::advance_offsets(&mut tx, build.build_id, &expected, &new)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    store::count(&mut tx, build.build_id, outcome.applied as i64, 0).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Applies one dead letter in a savepoint; `Err(reason)` if it still fails for its data.
async fn apply_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    projection: &dyn crate::projection::Projection,
    message: &OwnedMessage,
    origin: Option<&Origin>,
) -> anyhow::Result<Result<(), String>> {
    let event = match cruxlog_schemas::decode(message.payload().unwrap_or_default()) {
        Ok(event) => event,
        Err(error) => return Ok(Err(format!("undecodable: {error}"))),
    };
    let applied = Applied {
        topic: origin.map_or_else(|| message.topic().to_owned(), |o| o.topic.clone()),
        partition: origin.map_or(0, |o| o.partition),
        offset: origin.map_or(message.offset(), |o| o.offset),
        event,
    };
    let mut savepoint = tx.begin().await?;
    match projection
        .apply(&mut savepoint, std::slice::from_ref(&applied))
        .await
    {
        Ok(()) => {
            savepoint.commit().await?;
            Ok(Ok(()))
        }
        Err(error) if is_poison(&error) => {
            savepoint.rollback().await?;
            Ok(Err(format!("breaks an invariant: {error}")))
        }
        Err(error) => Err(error.into()),
    }
}
