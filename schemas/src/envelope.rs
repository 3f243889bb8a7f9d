//! The envelope: what every event says about itself besides its payload (DESIGN.md, "The
//! event log"). Field names and types mirror `avro/cruxlog.Envelope/v1.avsc`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Full name of the envelope schema.
pub const ENVELOPE_SCHEMA: &str = "cruxlog.Envelope";

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActorRole {
    User,
    Admin,
    /// Analyzers and other services acting on their own.
    System,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub role: ActorRole,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            user_id: None,
            role: ActorRole::System,
        }
    }

    pub fn user(user_id: Uuid) -> Self {
        Self {
            user_id: Some(user_id),
            role: ActorRole::User,
        }
    }
}

/// The envelope exactly as it is on the wire, payload still encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub aggregate_version: i64,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub occurred_at: DateTime<Utc>,
    pub command_id: Option<Uuid>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub actor: Actor,
    pub traceparent: Option<String>,
    #[serde(with = "apache_avro::serde::bytes")]
    pub payload: Vec<u8>,
}

/// The envelope fields a writer chooses; the codec fills in the event type, schema version
/// and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMeta {
    pub event_id: Uuid,
    pub aggregate_id: Uuid,
    pub aggregate_version: i64,
    pub occurred_at: DateTime<Utc>,
    pub command_id: Option<Uuid>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub actor: Actor,
    pub traceparent: Option<String>,
}

impl EventMeta {
    /// Metadata for a new event, now, with a fresh UUIDv7 event id. The correlation id starts
    /// as the command id (or the event id when there is no command).
    pub fn new(aggregate_id: Uuid, aggregate_version: i64, actor: Actor) -> Self {
        let event_id = Uuid::now_v7();
        Self {
            event_id,
            aggregate_id,
            aggregate_version,
            occurred_at: truncate_to_micros(Utc::now()),
            command_id: None,
            correlation_id: event_id,
            causation_id: None,
            actor,
            traceparent: None,
        }
    }

    pub fn with_command(mut self, command_id: Uuid) -> Self {
        self.command_id = Some(command_id);
        self.correlation_id = command_id;
        self.causation_id = Some(command_id);
        self
    }

    /// Marks this event as caused by another one, inheriting its correlation.
    pub fn caused_by(mut self, cause: &Envelope) -> Self {
        self.correlation_id = cause.correlation_id;
        self.causation_id = Some(cause.event_id);
        self.traceparent.clone_from(&cause.traceparent);
        self
    }

    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }
}

/// Avro timestamps carry microseconds; truncating up front keeps round trips exact.
pub fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}
