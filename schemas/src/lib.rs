//! Cruxlog's event contracts: the Avro schemas in `schemas/avro/`, the envelope every event
//! carries, the typed payloads, and the one place that maps between them and Kafka bytes.
//!
//! Wire format (ADR 0003): a Kafka record value is the [`Envelope`] in Avro single-object
//! encoding (`C3 01`, 8-byte little-endian Rabin fingerprint of the writer schema, Avro
//! binary); the envelope's `payload` is the event, single-object encoded the same way. So
//! each message names its writer schemas and any later reader can resolve them.
//!
//! Layout:
//! - [`catalogue`]: every schema version ever published, looked up by fingerprint or name.
//! - [`wire`]: single-object framing.
//! - [`compat`]: schema evolution rules, checked over every published version.
//! - [`envelope`]: envelope metadata shared by every event.
//! - [`events`]: typed payloads and the [`events::DomainEvent`] sum type.
//! - [`codec`]: envelope + payload to bytes and back.
//! - [`grades`]: grade systems, parsing and the common difficulty scale.
//! - [`topics`]: topic naming and layout.
//! - [`doc`]: `docs/events.md`, generated from the schemas.

pub mod catalogue;
pub mod codec;
pub mod compat;
/// `docs/events.md`, generated from the schemas.
pub mod doc;
pub mod envelope;
pub mod events;
pub mod grades;
pub mod topics;
pub mod wire;

pub use codec::{DecodedEvent, decode, encode};
pub use envelope::{Actor, ActorRole, Envelope, EventMeta};
pub use events::{DomainEvent, Event};

/// Everything that can go wrong turning bytes into events or back.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("message is {0} bytes, shorter than the 10-byte single-object header")]
    Truncated(usize),
    #[error("message does not start with the Avro single-object marker C3 01")]
    BadMarker,
    #[error("no schema in the catalogue has fingerprint {0:#018x}")]
    UnknownFingerprint(u64),
    #[error("payload schema {found} is not the expected {expected}")]
    UnexpectedSchema {
        expected: &'static str,
        found: String,
    },
    #[error("avro: {0}")]
    Avro(String),
    #[error("schema catalogue is invalid: {0}")]
    Catalogue(String),
}

impl From<apache_avro::Error> for CodecError {
    fn from(error: apache_avro::Error) -> Self {
        Self::Avro(error.to_string())
    }
}

pub type Result<T, E = CodecError> = std::result::Result<T, E>;
