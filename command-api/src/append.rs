//! Appending events to Kafka: the write half of the event store. A call returns only after
//! the broker acknowledged the record with `acks=all` (W1), or fails within the configured
//! bound (W5).

use std::time::Duration;

use cruxlog_schemas::{DomainEvent, Event, EventMeta, topics::Topics};
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};

use crate::position::Position;

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("encoding the event failed: {0}")]
    Encode(#[from] cruxlog_schemas::CodecError),
    #[error("kafka did not acknowledge the append: {0}")]
    Unavailable(String),
}

/// The producer side of the log for one deployment.
#[derive(Clone)]
pub struct EventLog {
    producer: FutureProducer,
    topics: Topics,
    timeout: Duration,
}

impl EventLog {
    pub fn new(producer: FutureProducer, topics: Topics, timeout: Duration) -> Self {
        Self {
            producer,
            topics,
            timeout,
        }
    }

    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Appends one event to its aggregate's topic, keyed by aggregate id.
    pub async fn append<E: Event>(
        &self,
        meta: &EventMeta,
        event: &E,
    ) -> Result<Position, AppendError> {
        let value = cruxlog_schemas::encode(meta, event)?;
        self.send(meta, E::NAME, E::AGGREGATE_TYPE, &value).await
    }

    /// [`EventLog::append`] for an event known by its sum type.
    pub async fn append_domain(
        &self,
        meta: &EventMeta,
        event: &DomainEvent,
    ) -> Result<Position, AppendError> {
        let value = event.encode(meta)?;
        self.send(meta, event.name(), event.aggregate_type(), &value)
            .await
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    async fn send(
        &self,
        meta: &EventMeta,
        event_type: &str,
        aggregate_type: &str,
        value: &[u8],
    ) -> Result<Position, AppendError> {
        let topic = self.topics.for_aggregate(aggregate_type);
        let key = meta.aggregate_id.to_string();
        let event_id = meta.event_id.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "event_type",
                value: Some(event_type),
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
        let record = FutureRecord::to(&topic)
            .key(&key)
            .payload(value)
            .headers(headers);
        let delivery = self.producer.send(record, self.timeout);
        match tokio::time::timeout(self.timeout + Duration::from_millis(250), delivery).await {
            Ok(Ok(delivered)) => Ok(Position {
                topic,
                partition: delivered.partition,
                offset: delivered.offset,
            }),
            Ok(Err((error, _))) => Err(AppendError::Unavailable(error.to_string())),
            Err(_) => Err(AppendError::Unavailable("delivery timed out".into())),
        }
    }
}
