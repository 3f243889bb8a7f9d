//! Envelope + payload to Kafka bytes and back: the one place that knows the wire framing.
//!
//! Writing uses the newest version of each schema. Reading looks the writer schema up by
//! fingerprint; when it is the newest version, bytes deserialize straight into the struct,
//! otherwise the datum is resolved against the newest version first (schema evolution).

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    Result,
    catalogue::catalogue,
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
    let mut payload_bytes = Vec::with_capacity(512);
    payload_schema.write_into(&mut payload_bytes, payload)?;
    let envelope = EnvelopeRef::new::<E>(meta, payload_schema.version, &payload_bytes);
    let envelope_schema = catalogue.latest(ENVELOPE_SCHEMA)?;
    let mut out = Vec::with_capacity(payload_bytes.len() + 256);
    if envelope_schema.version == 1 {
        crate::wire::write_header(&mut out, envelope_schema.fingerprint);
        envelope_v1::write(&mut out, &envelope);
    } else {
        envelope_schema.write_into(&mut out, &envelope)?;
    }
    Ok(out)
}

/// A direct writer for envelope v1, the record every message starts with: the generic serde
/// path costs a field-name lookup per field, which dominated encoding small events. Tests
/// prove its bytes equal the generic writer's for arbitrary envelopes.
mod envelope_v1 {
    use super::EnvelopeRef;
    use crate::ActorRole;

    pub(super) fn write(out: &mut Vec<u8>, e: &EnvelopeRef<'_>) {
        out.extend_from_slice(e.event_id.as_bytes());
        string(out, e.event_type);
        long(out, i64::from(e.schema_version));
        string(out, e.aggregate_type);
        out.extend_from_slice(e.aggregate_id.as_bytes());
        long(out, e.aggregate_version);
        long(out, e.occurred_at);
        optional_uuid(out, e.command_id);
        out.extend_from_slice(e.correlation_id.as_bytes());
        optional_uuid(out, e.causation_id);
        optional_uuid(out, e.actor.user_id);
        long(
            out,
            match e.actor.role {
                ActorRole::User => 0,
                ActorRole::Admin => 1,
                ActorRole::System => 2,
            },
        );
        match e.traceparent {
            None => out.push(0),
            Some(traceparent) => {
                out.push(2);
                string(out, traceparent);
            }
        }
        bytes(out, e.payload);
    }

    /// Reads an envelope v1 datum (the bytes after the single-object header). Every length
    /// and index is checked: garbage gives a typed error, never a panic or a large allocation.
    pub(super) fn read(body: &[u8]) -> crate::Result<crate::Envelope> {
        let mut r = Reader { rest: body };
        let event_id = r.uuid()?;
        let event_type = r.string()?;
        let schema_version =
            i32::try_from(r.long()?).map_err(|_| bad("schema_version out of range"))?;
        let aggregate_type = r.string()?;
        let aggregate_id = r.uuid()?;
        let aggregate_version = r.long()?;
        let occurred_at = chrono::DateTime::from_timestamp_micros(r.long()?)
            .ok_or_else(|| bad("occurred_at out of range"))?;
        let command_id = r.optional_uuid()?;
        let correlation_id = r.uuid()?;
        let causation_id = r.optional_uuid()?;
        let user_id = r.optional_uuid()?;
        let role = match r.long()? {
            0 => ActorRole::User,
            1 => ActorRole::Admin,
            2 => ActorRole::System,
            _ => return Err(bad("unknown actor role")),
        };
        let traceparent = match r.long()? {
            0 => None,
            1 => Some(r.string()?),
            _ => return Err(bad("bad union branch for traceparent")),
        };
        let payload = r.bytes()?.to_vec();
        if !r.rest.is_empty() {
            return Err(bad("trailing bytes after the datum"));
        }
        Ok(crate::Envelope {
            event_id,
            event_type,
            schema_version,
            aggregate_type,
            aggregate_id,
            aggregate_version,
            occurred_at,
            command_id,
            correlation_id,
            causation_id,
            actor: crate::Actor { user_id, role },
            traceparent,
            payload,
        })
    }

    fn bad(what: &str) -> crate::CodecError {
        crate::CodecError::Avro(format!("cruxlog.Envelope: {what}"))
    }

    struct Reader<'a> {
        rest: &'a [u8],
    }

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> crate::Result<&'a [u8]> {
            if n > self.rest.len() {
                return Err(bad("truncated"));
            }
            let (head, tail) = self.rest.split_at(n);
            self.rest = tail;
            Ok(head)
        }

        fn long(&mut self) -> crate::Result<i64> {
            let mut value: u64 = 0;
            for shift in (0..64).step_by(7) {
                let byte = self.take(1)?[0];
                value |= u64::from(byte & 0x7F) << shift;
                if byte & 0x80 == 0 {
                    return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
                }
            }
            Err(bad("varint longer than 10 bytes"))
        }

        fn bytes(&mut self) -> crate::Result<&'a [u8]> {
            let len = usize::try_from(self.long()?).map_err(|_| bad("negative length"))?;
            self.take(len)
        }

        fn string(&mut self) -> crate::Result<String> {
            let bytes = self.bytes()?;
            std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|_| bad("string is not UTF-8"))
        }

        fn uuid(&mut self) -> crate::Result<uuid::Uuid> {
            let bytes = self.take(16)?;
            uuid::Uuid::from_slice(bytes).map_err(|_| bad("uuid"))
        }

        fn optional_uuid(&mut self) -> crate::Result<Option<uuid::Uuid>> {
            match self.long()? {
                0 => Ok(None),
                1 => self.uuid().map(Some),
                _ => Err(bad("bad union branch for a uuid")),
            }
        }
    }

    /// Avro `int` and `long`: zig-zag, then base-128 varint.
    fn long(out: &mut Vec<u8>, value: i64) {
        let mut n = ((value << 1) ^ (value >> 63)) as u64;
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn bytes(out: &mut Vec<u8>, value: &[u8]) {
        long(out, value.len() as i64);
        out.extend_from_slice(value);
    }

    fn string(out: &mut Vec<u8>, value: &str) {
        bytes(out, value.as_bytes());
    }

    /// `["null", cruxlog.Uuid]`: branch index, then the 16 bytes.
    fn optional_uuid(out: &mut Vec<u8>, value: Option<uuid::Uuid>) {
        match value {
            None => out.push(0),
            Some(id) => {
                out.push(2);
                out.extend_from_slice(id.as_bytes());
            }
        }
    }
}

/// The generic encoding of an envelope, for the test that pins the direct writer to it.
#[doc(hidden)]
pub fn encode_generic<E: Event>(meta: &EventMeta, payload: &E) -> Result<Vec<u8>> {
    let catalogue = catalogue()?;
    let payload_schema = catalogue.latest(E::NAME)?;
    let payload_bytes = payload_schema.write(payload)?;
    let envelope = EnvelopeRef::new::<E>(meta, payload_schema.version, &payload_bytes);
    catalogue.latest(ENVELOPE_SCHEMA)?.write(&envelope)
}

/// [`Envelope`] as written: the same fields, borrowed, so encoding copies nothing it need not.
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    event_id: uuid::Uuid,
    event_type: &'a str,
    schema_version: i32,
    aggregate_type: &'a str,
    aggregate_id: uuid::Uuid,
    aggregate_version: i64,
    occurred_at: i64,
    command_id: Option<uuid::Uuid>,
    correlation_id: uuid::Uuid,
    causation_id: Option<uuid::Uuid>,
    actor: &'a crate::Actor,
    traceparent: Option<&'a str>,
    #[serde(with = "apache_avro::serde::slice")]
    payload: &'a [u8],
}

impl<'a> EnvelopeRef<'a> {
    fn new<E: Event>(meta: &'a EventMeta, schema_version: u32, payload: &'a [u8]) -> Self {
        Self {
            event_id: meta.event_id,
            event_type: E::NAME,
            schema_version: i32::try_from(schema_version).unwrap_or(i32::MAX),
            aggregate_type: E::AGGREGATE_TYPE,
            aggregate_id: meta.aggregate_id,
            aggregate_version: meta.aggregate_version,
            occurred_at: meta.occurred_at.timestamp_micros(),
            command_id: meta.command_id,
            correlation_id: meta.correlation_id,
            causation_id: meta.causation_id,
            actor: &meta.actor,
            traceparent: meta.traceparent.as_deref(),
            payload,
        }
    }
}

/// Decodes a Kafka record value into its envelope and typed event.
pub fn decode(message: &[u8]) -> Result<DecodedEvent> {
    let envelope = decode_envelope(message)?;
    let event = decode_payload(&envelope)?;
    Ok(DecodedEvent { envelope, event })
}

/// Decodes only the envelope, leaving the payload as bytes: for generic consumers (dead
/// letters, backups, lag) that must not fail on a payload they do not know.
pub fn decode_envelope(message: &[u8]) -> Result<Envelope> {
    let catalogue = catalogue()?;
    let (fingerprint, body) = crate::wire::split(message)?;
    let writer = catalogue.by_fingerprint(fingerprint)?;
    let newest = catalogue.latest(ENVELOPE_SCHEMA)?;
    if writer.name == ENVELOPE_SCHEMA && writer.version == 1 && newest.version == 1 {
        return envelope_v1::read(body);
    }
    read(message, ENVELOPE_SCHEMA)
}

/// The generic decoding of an envelope, for the test that pins the direct reader to it.
#[doc(hidden)]
pub fn decode_envelope_generic(message: &[u8]) -> Result<Envelope> {
    read(message, ENVELOPE_SCHEMA)
}

/// Decodes the payload an envelope carries.
pub fn decode_payload(envelope: &Envelope) -> Result<DomainEvent> {
    crate::events::decode_named(&envelope.event_type, &envelope.payload)
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
