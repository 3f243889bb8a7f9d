//! Reading the log back to settle a pending append whose writer died (ADR 0009): the
//! highest version of one aggregate appended since a point in time. Rare (only after a
//! crash or a failed append), so it is a plain scan of the topic from that time to its end.
//! [`read_to_end`] also serves `settle-heads` ([`crate::settle`]), which reads whole topics.

use std::time::{Duration, Instant};

use cruxlog_runtime::kafka::KafkaConfig;
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
    error::KafkaError,
    message::BorrowedMessage,
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
    let mut spans = Vec::new();
    for element in starts.elements() {
        let (_, high) = consumer.fetch_watermarks(topic, element.partition(), TIMEOUT)?;
        let start = match element.offset() {
            Offset::Offset(offset) => offset,
            // No record at or after the time: nothing to read there.
            _ => high,
        };
        spans.push(Span {
            topic: topic.to_owned(),
            partition: element.partition(),
            start,
            end: high,
        });
    }
    let key = aggregate_id.to_string();
    let mut highest = None;
    read_to_end(consumer, spans, TIMEOUT, Some(TIMEOUT * 2), |message| {
        if message.key() == Some(key.as_bytes())
            && let Some(payload) = message.payload()
            && let Ok(envelope) = cruxlog_schemas::codec::decode_envelope(payload)
        {
            highest = highest.max(Some(envelope.aggregate_version));
        }
    })?;
    Ok(highest)
}

/// One partition to read, from `start` to `end` (exclusive; its high watermark when the read
/// began).
pub(crate) struct Span {
    pub topic: String,
    pub partition: i32,
    pub start: i64,
    pub end: i64,
}

/// Reads each of `spans` to its end, handing every record to `on_record`. Gives up with
/// [`KafkaError::Canceled`] when no record came for `stall`, or after `total`.
///
/// A partition can end in transaction markers, which a `read_committed` consumer reads past
/// without a record: the consumer's position, not the last record, says it is at the end.
pub(crate) fn read_to_end(
    consumer: &BaseConsumer,
    spans: Vec<Span>,
    stall: Duration,
    total: Option<Duration>,
    mut on_record: impl FnMut(&BorrowedMessage<'_>),
) -> Result<(), KafkaError> {
    let mut assignment = TopicPartitionList::new();
    let mut ends = Vec::new();
    for span in spans.into_iter().filter(|span| span.start < span.end) {
        assignment.add_partition_offset(&span.topic, span.partition, Offset::Offset(span.start))?;
        ends.push((span.topic, span.partition, span.end));
    }
    if ends.is_empty() {
        return Ok(());
    }
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let mut last_record = Instant::now();
    while !ends.is_empty() {
        if total.is_some_and(|total| started.elapsed() > total) {
            return Err(KafkaError::Canceled);
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            let positions = consumer.position()?;
            ends.retain(|(topic, partition, end)| {
                !positions
                    .find_partition(topic, *partition)
                    .is_some_and(|at| matches!(at.offset(), Offset::Offset(at) if at >= *end))
            });
            if !ends.is_empty() && last_record.elapsed() > stall {
                return Err(KafkaError::Canceled);
            }
            continue;
        };
        let message = message?;
        last_record = Instant::now();
        on_record(&message);
        let (topic, partition, next) = (message.topic(), message.partition(), message.offset() + 1);
        ends.retain(|(t, p, end)| !(t == topic && *p == partition && next >= *end));
    }
    Ok(())
}
