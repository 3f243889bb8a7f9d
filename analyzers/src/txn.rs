//! Kafka transactions of the analyzers: the records a job produces (its result event, and a
//! dead letter when the input is given up) and the input's consumer offset commit together or
//! not at all (A1). A broker that is unreachable is waited for with back-off; an interrupted
//! commit is resumed, never redone, so it cannot append twice.

use std::time::Duration;

use cruxlog_schemas::{Event, EventMeta};
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::ConsumerGroupMetadata,
    error::KafkaError,
    message::{Header, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord, Producer as _},
};
use tokio_util::sync::CancellationToken;

const TXN_TIMEOUT: Duration = Duration::from_secs(10);

/// Header names on the analyzers' dead letters (the projectors' names, plus the consumer).
pub mod header {
    pub const REASON: &str = "dlq_reason";
    pub const ORIGIN_TOPIC: &str = "dlq_origin_topic";
    pub const ORIGIN_PARTITION: &str = "dlq_origin_partition";
    pub const ORIGIN_OFFSET: &str = "dlq_origin_offset";
    pub const CONSUMER: &str = "dlq_consumer";
}

#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// Fenced by a newer instance with the same transactional id, or another fatal error:
    /// the caller stops; a restart resumes from the committed offset.
    #[error("fatal transaction error: {0}")]
    Fatal(KafkaError),
    /// Shut down while waiting for the broker; the open transaction is aborted by the next
    /// instance's `init_transactions`.
    #[error("shut down before the transaction committed")]
    Shutdown,
    #[error("encoding the event: {0}")]
    Encode(#[from] cruxlog_schemas::CodecError),
}

impl TxnError {
    /// Another producer with the same transactional id took over: this one must stop rather
    /// than fence it back.
    pub fn is_fenced(&self) -> bool {
        use rdkafka::types::RDKafkaErrorCode as Code;
        matches!(self, Self::Fatal(error) if matches!(
            error.rdkafka_error_code(),
            Some(Code::Fenced | Code::ProducerFenced | Code::InvalidProducerEpoch)
        ))
    }
}

/// One record to append in a transaction.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: OwnedHeaders,
}

impl Record {
    /// An event keyed by its aggregate id, with header copies of its type, id and trace.
    pub fn event<E: Event>(topic: &str, meta: &EventMeta, event: &E) -> Result<Self, TxnError> {
        let event_id = meta.event_id.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "event_type",
                value: Some(E::NAME),
            })
            .insert(Header {
                key: "event_id",
                value: Some(&event_id),
            });
        if let Some(traceparent) = &meta.traceparent {
            headers = headers.insert(Header {
                key: "traceparent",
                value: Some(traceparent),
            });
        }
        Ok(Self {
            topic: topic.to_owned(),
            key: meta.aggregate_id.to_string().into_bytes(),
            payload: cruxlog_schemas::encode(meta, event)?,
            headers,
        })
    }

    /// The original record, with the reason and its origin in headers.
    pub fn dead_letter(topic: &str, consumer: &str, original: &OwnedMessage, reason: &str) -> Self {
        let (partition, offset) = (
            original.partition().to_string(),
            original.offset().to_string(),
        );
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: header::REASON,
                value: Some(reason),
            })
            .insert(Header {
                key: header::ORIGIN_TOPIC,
                value: Some(original.topic()),
            })
            .insert(Header {
                key: header::ORIGIN_PARTITION,
                value: Some(&partition),
            })
            .insert(Header {
                key: header::ORIGIN_OFFSET,
                value: Some(&offset),
            })
            .insert(Header {
                key: header::CONSUMER,
                value: Some(consumer),
            });
        Self {
            topic: topic.to_owned(),
            key: original.key().unwrap_or_default().to_vec(),
            payload: original.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }
}

/// Appends the records and commits the consumer offset `next_offset` of one input partition,
/// in one transaction. Waits out an unreachable broker with back-off until `shutdown`.
pub async fn commit(
    producer: &FutureProducer,
    records: Vec<Record>,
    (topic, partition, next_offset): (&str, i32, i64),
    group: ConsumerGroupMetadata,
    shutdown: &CancellationToken,
) -> Result<(), TxnError> {
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, partition, Offset::Offset(next_offset))
        .map_err(TxnError::Fatal)?;
    let producer = producer.clone();
    let shutdown = shutdown.clone();
    tokio::task::spawn_blocking(move || {
        commit_blocking(&producer, &records, &offsets, &group, &shutdown)
    })
    .await
    .unwrap_or(Err(TxnError::Shutdown))
}

enum Next {
    Retry,
    Abort,
    Fatal,
}

fn classify(error: &KafkaError) -> Next {
    match error {
        KafkaError::Transaction(e) if e.is_fatal() => Next::Fatal,
        KafkaError::Transaction(e) if e.txn_requires_abort() => Next::Abort,
        KafkaError::Transaction(e) if e.is_retriable() => Next::Retry,
        _ => Next::Abort,
    }
}

fn commit_blocking(
    producer: &FutureProducer,
    records: &[Record],
    offsets: &TopicPartitionList,
    group: &ConsumerGroupMetadata,
    shutdown: &CancellationToken,
) -> Result<(), TxnError> {
    let mut pause = Duration::from_millis(200);
    let mut wait = |error: &KafkaError| -> Result<(), TxnError> {
        tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "kafka transaction waits");
        if shutdown.is_cancelled() {
            return Err(TxnError::Shutdown);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(10));
        Ok(())
    };
    'transaction: loop {
        let attempt = producer.begin_transaction().and_then(|()| {
            let mut deliveries = Vec::with_capacity(records.len());
            for record in records {
                let future = FutureRecord::to(&record.topic)
                    .key(&record.key)
                    .payload(&record.payload)
                    .headers(record.headers.clone());
                deliveries.push(producer.send_result(future).map_err(|(error, _)| error)?);
            }
            // Acknowledged before the commit: rdkafka's `commit_transaction` flushes first, and
            // that flush, polling beside the producer's own polling thread, sits out a whole
            // 100 ms poll while a record is in flight (every commit took 100 ms more).
            for delivery in deliveries {
                futures::executor::block_on(delivery)
                    .map_err(|_| KafkaError::Canceled)?
                    .map_err(|(error, _)| error)?;
            }
            Ok(())
        });
        let mut step = attempt
            .and_then(|()| producer.send_offsets_to_transaction(offsets, group, TXN_TIMEOUT));
        // Offsets sent: a retriable error of the commit is resumed by calling it again, as a
        // timed-out commit may have reached the broker; redoing it could append twice.
        if step.is_ok() {
            step = loop {
                match producer.commit_transaction(TXN_TIMEOUT) {
                    Ok(()) => return Ok(()),
                    Err(error) if matches!(classify(&error), Next::Retry) => wait(&error)?,
                    Err(error) => break Err(error),
                }
            };
        }
        let Err(error) = step else { return Ok(()) };
        if matches!(classify(&error), Next::Fatal) {
            return Err(TxnError::Fatal(error));
        }
        wait(&error)?;
        loop {
            match producer.abort_transaction(TXN_TIMEOUT) {
                Ok(()) => continue 'transaction,
                Err(error) if matches!(classify(&error), Next::Fatal) => {
                    return Err(TxnError::Fatal(error));
                }
                // No transaction open (begin failed): nothing to abort.
                Err(KafkaError::Transaction(e))
                    if e.code() == rdkafka::types::RDKafkaErrorCode::State =>
                {
                    continue 'transaction;
                }
                Err(error) => wait(&error)?,
            }
        }
    }
}
