//! The dead-letter topic of a projection (R4): records that could not be applied, with the
//! reason and their origin, and the records of the same aggregates that wait behind them.
//! Appends are at least once; readers dedupe on the origin headers.

use std::time::Duration;

use rdkafka::{
    Message as _,
    message::{Header, Headers as _, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
};

/// Header names on dead-letter records.
pub mod header {
    pub const REASON: &str = "dlq_reason";
    pub const ORIGIN_TOPIC: &str = "dlq_origin_topic";
    pub const ORIGIN_PARTITION: &str = "dlq_origin_partition";
    pub const ORIGIN_OFFSET: &str = "dlq_origin_offset";
    pub const PROJECTION: &str = "dlq_projection";
    /// Set when the record itself is fine but waits behind an earlier dead letter.
    pub const BLOCKED: &str = "dlq_blocked";
}

#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    pub topic: String,
    projection: &'static str,
}

/// Where a dead letter came from, read back from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
    pub blocked: bool,
}

impl DeadLetters {
    pub fn new(producer: FutureProducer, topic: String, projection: &'static str) -> Self {
        Self {
            producer,
            topic,
            projection,
        }
    }

    pub async fn send(
        &self,
        message: &OwnedMessage,
        reason: &str,
        blocked: bool,
    ) -> anyhow::Result<()> {
        tracing::warn!(
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            projection = self.projection,
            blocked,
            reason,
            "dead-lettering an event"
        );
        // A dead letter sent again (by a redrive) keeps the origin it was first sent with.
        let carried = origin(message).filter(|_| message.topic() == self.topic);
        let (topic, partition, offset) = match &carried {
            Some(origin) => (
                origin.topic.as_str(),
                origin.partition.to_string(),
                origin.offset.to_string(),
            ),
            None => (
                message.topic(),
                message.partition().to_string(),
                message.offset().to_string(),
            ),
        };
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: header::REASON,
                value: Some(reason),
            })
            .insert(Header {
                key: header::ORIGIN_TOPIC,
                value: Some(topic),
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
                key: header::PROJECTION,
                value: Some(self.projection),
            });
        if blocked {
            headers = headers.insert(Header {
                key: header::BLOCKED,
                value: Some("true"),
            });
        }
        let mut record = FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(error, _)| anyhow::anyhow!("dead-letter append failed: {error}"))?;
        Ok(())
    }
}

/// Reads a dead letter's origin from its headers.
pub fn origin(message: &OwnedMessage) -> Option<Origin> {
    let headers = message.headers()?;
    let get = |name: &str| {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
    };
    Some(Origin {
        topic: get(header::ORIGIN_TOPIC)?,
        partition: get(header::ORIGIN_PARTITION)?.parse().ok()?,
        offset: get(header::ORIGIN_OFFSET)?.parse().ok()?,
        reason: get(header::REASON).unwrap_or_default(),
        blocked: get(header::BLOCKED).is_some(),
    })
}
