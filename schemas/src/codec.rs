//! Envelope + payload to Kafka bytes and back: the one place that knows the wire framing.
//!
//! Writing uses the newest version of each schema. Reading looks the writer schema up by
//! fingerprint; when it is the newest version, bytes deserialize straight into the struct,
//! otherwise the datum is resolved against the newest version first (schema evolution).

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    Result,
    catalogue::{SchemaVersion, catalogue},
    envelope::{ENVELOPE_SCHEMA, Envelope, EventMeta},
    events::{DomainEvent, Event},
};

/// A decoded Kafka record value.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedEvent {
    pub envelope: Envelope,
    pub event: DomainEvent,
}

/// Encodes one event with its metadata into a Kafka record value.
pub fn encode<E: Event>(meta: &EventMeta, payload: &E) -> Result<Vec<u8>> {
    let catalogue = catalogue()?;
    let payload_schema = catalogue.latest(E::NAME)?;
    let envelope = Envelope {
        event_id: meta.event_id,
        event_type: E::NAME.to_owned(),
        schema_version: i32::try_from(payload_schema.version).unwrap_or(i32::MAX),
        aggregate_type: E::AGGREGATE_TYPE.to_owned(),
        aggregate_id: meta.aggregate_id,
        aggregate_version: meta.aggregate_version,
        occurred_at: meta.occurred_at,
        command_id: meta.command_id,
        correlation_id: meta.correlation_id,
        causation_id: meta.causation_id,
        actor: meta.actor.clone(),
        traceparent: meta.traceparent.clone(),
        payload: write(payload_schema, payload)?,
    };
    write(catalogue.latest(ENVELOPE_SCHEMA)?, &envelope)
}

/// Decodes a Kafka record value into its envelope and typed event.
pub fn decode(message: &[u8]) -> Result<DecodedEvent> {
    let envelope: Envelope = read(message, ENVELOPE_SCHEMA)?;
    let event = decode_payload(&envelope)?;
    Ok(DecodedEvent { envelope, event })
}

/// Decodes only the envelope, leaving the payload as bytes: for generic consumers (dead
/// letters, backups, lag) that must not fail on a payload they do not know.
pub fn decode_envelope(message: &[u8]) -> Result<Envelope> {
    read(message, ENVELOPE_SCHEMA)
}

/// Decodes the payload an envelope carries.
pub fn decode_payload(envelope: &Envelope) -> Result<DomainEvent> {
    crate::events::decode_named(&envelope.event_type, &envelope.payload)
}

pub(crate) fn write<T: Serialize>(schema: &SchemaVersion, value: &T) -> Result<Vec<u8>> {
    schema.write(value)
}

/// Reads a single-object message whose writer schema must be a version of `expected`.
pub(crate) fn read<T: DeserializeOwned>(message: &[u8], expected: &'static str) -> Result<T> {
    catalogue()?.read(message, expected)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::{
        envelope::{Actor, truncate_to_micros},
        events::{
            AnalysisFailed, AnalyzerInfo, Discipline, SessionStarted, WarmupPlanned, WarmupStep,
        },
    };

    fn session() -> SessionStarted {
        SessionStarted {
            session_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            started_at: truncate_to_micros(Utc::now()),
            discipline: Discipline::Boulder,
            indoor: true,
            location_name: Some("Arkose Nation".into()),
            planned_minutes: Some(90),
        }
    }

    #[test]
    fn session_started_round_trips_with_its_envelope() {
        let payload = session();
        let meta = EventMeta::new(payload.session_id, 1, Actor::user(payload.user_id))
            .with_command(Uuid::now_v7())
            .with_traceparent(Some(
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            ));
        let bytes = encode(&meta, &payload).expect("encodes");
        let decoded = decode(&bytes).expect("decodes");
        assert_eq!(decoded.event, DomainEvent::SessionStarted(payload));
        assert_eq!(decoded.envelope.event_id, meta.event_id);
        assert_eq!(decoded.envelope.occurred_at, meta.occurred_at);
        assert_eq!(decoded.envelope.command_id, meta.command_id);
        assert_eq!(decoded.envelope.traceparent, meta.traceparent);
        assert_eq!(decoded.envelope.actor, meta.actor);
    }

    #[test]
    fn analysis_results_round_trip() {
        let analyzer = AnalyzerInfo {
            name: "warmup".into(),
            version: 1,
            model_id: "warmup-v1".into(),
        };
        let planned = WarmupPlanned {
            analysis_id: Uuid::now_v7(),
            session_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            input_event_id: Uuid::now_v7(),
            analyzer: analyzer.clone(),
            steps: vec![WarmupStep {
                name: "pulse".into(),
                minutes: 3,
                cue: "easy".into(),
            }],
            total_minutes: 3,
        };
        let meta = EventMeta::new(planned.analysis_id, 1, Actor::system());
        let decoded = decode(&encode(&meta, &planned).expect("encodes")).expect("decodes");
        assert_eq!(decoded.event, DomainEvent::WarmupPlanned(planned));

        let failed = AnalysisFailed {
            analysis_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            input_event_id: Uuid::now_v7(),
            analyzer,
            reason: "video has no frames".into(),
        };
        let decoded = decode(&encode(&meta, &failed).expect("encodes")).expect("decodes");
        assert_eq!(decoded.event, DomainEvent::AnalysisFailed(failed));
    }

    #[test]
    fn garbage_truncation_and_unknown_fingerprints_are_typed_errors() {
        let payload = session();
        let bytes = encode(
            &EventMeta::new(payload.session_id, 1, Actor::system()),
            &payload,
        )
        .expect("encodes");
        for cut in [0, 5, 11, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                decode(&bytes[..cut]).is_err(),
                "truncated at {cut} must fail"
            );
        }
        let mut unknown = bytes.clone();
        unknown[2] ^= 0xFF;
        assert!(matches!(
            decode(&unknown),
            Err(crate::CodecError::UnknownFingerprint(_))
        ));
        let mut trailing = bytes;
        trailing.push(0);
        assert!(decode(&trailing).is_err(), "trailing bytes must fail");
        assert!(decode(&[0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9]).is_err());
    }

    #[test]
    fn a_few_bytes_claiming_a_huge_string_are_refused_without_allocating_it() {
        let envelope = catalogue()
            .expect("catalogue")
            .latest(ENVELOPE_SCHEMA)
            .expect("envelope");
        let mut message = Vec::new();
        crate::wire::write_header(&mut message, envelope.fingerprint);
        // The first field (event_id) claims a 1 GiB string: zig-zag varint of 2^30.
        let mut length = 1u64 << 31;
        while length >= 0x80 {
            message.push((length as u8 & 0x7F) | 0x80);
            length >>= 7;
        }
        message.push(length as u8);
        assert!(decode(&message).is_err());
    }
}
