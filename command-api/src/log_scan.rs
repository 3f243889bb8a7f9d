//! Reading the log back to settle a pending append whose writer died (ADR 0009): the
//! highest version of one aggregate appended since a point in time. Rare (only after a
//! crash or a failed append), so it is a plain scan of the topic from that time to its end.

use std::time::{Duration, Instant};

use cruxlog_runtime::kafka::KafkaConfig;
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
    error::KafkaError,
};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(5);

/// The highest `aggregate_version` of `aggregate_id` among records of `topic` written at
/// or after `since`, or `None` when there is none.
pub async fn highest_version(
    kafka: &KafkaConfig,
    topic: &str,
    aggregate_id: Uuid,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Option<i64>, KafkaError> {
    let mut config = kafka.consumer(&format!("cruxlog-settle-{}", Uuid::now_v7()));
    config.set("isolation.level", "read_uncommitted");
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create()?;
        scan(&consumer, &topic, aggregate_id, since.timestamp_millis())
    })
    .await
    .map_err(|_| KafkaError::Canceled)?
}

fn scan(
    consumer: &BaseConsumer,
    topic: &str,
    aggregate_id: Uuid,
    since_ms: i64,
) -> Result<Option<i64>, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut by_time = TopicPartitionList::new();
    for partition in &partitions {
        by_time.add_partition_offset(topic, *partition, Offset::Offset(since_ms))?;
    }
    let starts = consumer.offsets_for_times(by_time, TIMEOUT)?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = Vec::new();
    for element in starts.elements() {
        let (_, high) = consumer.fetch_watermarks(topic, element.partition(), TIMEOUT)?;
        let start = match element.offset() {
            Offset::Offset(offset) => offset,
            // No record at or after the time: nothing to read there.
            _ => high,
        };
        if start < high {
            assignment.add_partition_offset(topic, element.partition(), Offset::Offset(start))?;
            ends.push((element.partition(), high));
        }
    }
    if ends.is_empty() {
        return Ok(None);
    }
    consumer.assign(&assignment)?;
    let key = aggregate_id.to_string();
    let mut highest = None;
    let deadline = Instant::now() + TIMEOUT * 2;
    while !ends.is_empty() {
        if Instant::now() > deadline {
            return Err(KafkaError::Canceled);
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message?;
        if message.key() == Some(key.as_bytes())
            && let Some(payload) = message.payload()
            && let Ok(envelope) = cruxlog_schemas::codec::decode_envelope(payload)
        {
            highest = highest.max(Some(envelope.aggregate_version));
        }
        let partition = message.partition();
        let next = message.offset() + 1;
        ends.retain(|(p, high)| !(*p == partition && next >= *high));
    }
    Ok(highest)
}
