//! Round-trip properties of the codec over generated events, rather than the fixed samples:
//!
//! 1. any envelope metadata with any `SessionStarted` comes back equal, and re-encodes to the
//!    same bytes;
//! 2. any `AttemptDetails` (valid grades, every enum symbol, beta of any length, sealed notes)
//!    comes back equal in `AttemptLogged` and `AttemptCorrected`;
//! 3. any `AnalysisCompleted`, metrics included, comes back bit for bit: NaN, infinities and
//!    `-0.0` too (Avro doubles are raw IEEE 754 bytes);
//! 4. decoding arbitrary bytes, or a valid message with one byte changed or cut short, returns
//!    a `Result` and never panics;
//! 5. every valid grade's canonical label parses to itself, and difficulty rises along each
//!    system's ladder.

use std::{collections::BTreeMap, sync::OnceLock};

use chrono::{DateTime, Utc};
use cruxlog_schemas::{
    Actor, ActorRole, DomainEvent, EventMeta,
    catalogue::catalogue,
    codec::{decode_envelope, decode_payload},
    decode, encode,
    envelope::{ENVELOPE_SCHEMA, truncate_to_micros},
    events::{
        AnalysisCompleted, AnalysisInput, AnalysisKind, AnalyzerInfo, AttemptCorrected,
        AttemptDetails, AttemptLogged, AttemptResult, BetaMove, ClimbStyle, Discipline, Event,
        Finding, FindingKind, InputKind, Limb, MovementSummary, SealAlgorithm, Sealed,
        SessionStarted, samples,
    },
    grades::{Grade, GradeSystem},
    wire,
};
use proptest::{collection::vec, option, prelude::*, sample::select};
use uuid::Uuid;

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

/// Any instant chrono can hold, at microsecond precision (what Avro `timestamp-micros` keeps).
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp_micros();
    let max = DateTime::<Utc>::MAX_UTC.timestamp_micros();
    (min..=max).prop_map(|micros| {
        truncate_to_micros(
            DateTime::from_timestamp_micros(micros).expect("micros within chrono's range"),
        )
    })
}

/// Any Unicode text, control characters, NUL and astral planes included.
fn text(max_chars: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..=max_chars).prop_map(|chars| chars.into_iter().collect())
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

/// Any double, with the special values made frequent rather than left to chance.
fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<f64>(),
        1 => select(vec![
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
        ]),
    ]
}

fn actor() -> impl Strategy<Value = Actor> {
    (
        option::of(uuid()),
        select(vec![ActorRole::User, ActorRole::Admin, ActorRole::System]),
    )
        .prop_map(|(user_id, role)| Actor { user_id, role })
}

fn meta() -> impl Strategy<Value = EventMeta> {
    (
        (uuid(), uuid(), any::<i64>(), instant()),
        (option::of(uuid()), uuid(), option::of(uuid())),
        (actor(), option::of(text(64))),
    )
        .prop_map(
            |(
                (event_id, aggregate_id, aggregate_version, occurred_at),
                (command_id, correlation_id, causation_id),
                (actor, traceparent),
            )| EventMeta {
                event_id,
                aggregate_id,
                aggregate_version,
                occurred_at,
                command_id,
                correlation_id,
                causation_id,
                actor,
                traceparent,
            },
        )
}

fn session_started() -> impl Strategy<Value = SessionStarted> {
    (
        uuid(),
        uuid(),
        instant(),
        select(Discipline::ALL.to_vec()),
        any::<bool>(),
        option::of(text(48)),
        option::of(any::<i32>()),
    )
        .prop_map(
            |(session_id, user_id, started_at, discipline, indoor, location_name, planned)| {
                SessionStarted {
                    session_id,
                    user_id,
                    started_at,
                    discipline,
                    indoor,
                    location_name,
                    planned_minutes: planned,
                }
            },
        )
}

fn sealed() -> impl Strategy<Value = Sealed> {
    (
        text(24),
        select(vec![
            SealAlgorithm::Aes256Gcm,
            SealAlgorithm::PlaintextDev,
            SealAlgorithm::Unknown,
        ]),
        bytes(16),
        bytes(96),
    )
        .prop_map(|(key_id, algorithm, nonce, ciphertext)| Sealed {
            key_id,
            algorithm,
            nonce,
            ciphertext,
        })
}

/// Every valid label of each system, easiest first.
fn ladder(system: GradeSystem) -> Vec<String> {
    match system {
        GradeSystem::French => (4..=9)
            .flat_map(|number| {
                ['a', 'b', 'c'].into_iter().flat_map(move |letter| {
                    ["", "+"]
                        .into_iter()
                        .map(move |plus| format!("{number}{letter}{plus}"))
                })
            })
            .collect(),
        GradeSystem::VScale => std::iter::once("VB".to_owned())
            .chain((0..=17).map(|n| format!("V{n}")))
            .collect(),
        GradeSystem::Fontainebleau => [
            "3", "4", "4+", "5", "5+", "6A", "6A+", "6B", "6B+", "6C", "6C+", "7A", "7A+", "7B",
            "7B+", "7C", "7C+", "8A", "8A+", "8B", "8B+", "8C", "8C+", "9A",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
    }
}

const SYSTEMS: [GradeSystem; 3] = [
    GradeSystem::French,
    GradeSystem::VScale,
    GradeSystem::Fontainebleau,
];

/// A system and a valid label of it, spelled with random case and surrounding spaces (both
/// forgiven by `Grade::parse`).
fn written_grade() -> impl Strategy<Value = (GradeSystem, usize, String)> {
    select(SYSTEMS.to_vec()).prop_flat_map(|system| {
        let labels = ladder(system);
        (0..labels.len(), any::<bool>(), 0..3_usize, 0..3_usize).prop_map(
            move |(index, upper, before, after)| {
                let label = &labels[index];
                let cased = if upper {
                    label.to_ascii_uppercase()
                } else {
                    label.to_ascii_lowercase()
                };
                let written = format!("{}{cased}{}", " ".repeat(before), " ".repeat(after));
                (system, index, written)
            },
        )
    })
}

fn grade() -> impl Strategy<Value = Grade> {
    written_grade().prop_map(|(system, _, written)| {
        Grade::parse(system, &written).expect("labels from the ladder are valid")
    })
}

fn beta_move() -> impl Strategy<Value = BetaMove> {
    (
        text(12),
        select(vec![
            Limb::LeftHand,
            Limb::RightHand,
            Limb::LeftFoot,
            Limb::RightFoot,
            Limb::Unknown,
        ]),
    )
        .prop_map(|(hold_id, limb)| BetaMove { hold_id, limb })
}

fn attempt_details() -> impl Strategy<Value = AttemptDetails> {
    (
        (
            option::of(uuid()),
            option::of(text(48)),
            option::of(grade()),
        ),
        (
            select(vec![
                ClimbStyle::Boulder,
                ClimbStyle::Lead,
                ClimbStyle::TopRope,
                ClimbStyle::AutoBelay,
                ClimbStyle::Trad,
                ClimbStyle::Board,
                ClimbStyle::Other,
            ]),
            select(vec![
                AttemptResult::Flash,
                AttemptResult::Onsight,
                AttemptResult::Redpoint,
                AttemptResult::Repeat,
                AttemptResult::Fail,
                AttemptResult::Unknown,
            ]),
        ),
        (
            any::<i32>(),
            option::of(any::<i64>()),
            option::of(any::<i32>()),
        ),
        (
            vec(beta_move(), 0..20),
            option::of(text(12)),
            option::of(sealed()),
        ),
    )
        .prop_map(
            |(
                (route_id, route_description, grade),
                (style, result),
                (falls, duration_ms, rpe),
                (beta, high_point_hold_id, notes),
            )| AttemptDetails {
                route_id,
                route_description,
                grade,
                style,
                result,
                falls,
                duration_ms,
                rpe,
                beta,
                high_point_hold_id,
                notes,
            },
        )
}

fn analysis_input() -> impl Strategy<Value = AnalysisInput> {
    (
        select(vec![
            InputKind::Video,
            InputKind::WallPhoto,
            InputKind::Attempt,
            InputKind::Session,
            InputKind::Route,
            InputKind::Wall,
            InputKind::Unknown,
        ]),
        uuid(),
        option::of(sealed()),
    )
        .prop_map(|(kind, id, media)| AnalysisInput { kind, id, media })
}

fn finding() -> impl Strategy<Value = Finding> {
    (
        text(24),
        select(vec![
            FindingKind::Error,
            FindingKind::Strength,
            FindingKind::Unknown,
        ]),
        any::<i64>(),
        any::<i64>(),
        double(),
        text(48),
    )
        .prop_map(
            |(code, kind, start_ms, end_ms, severity, explanation)| Finding {
                code,
                kind,
                start_ms,
                end_ms,
                severity,
                explanation,
            },
        )
}

fn movement_summary() -> impl Strategy<Value = MovementSummary> {
    (
        option::of(any::<i64>()),
        option::of(any::<i32>()),
        option::of(any::<i32>()),
        option::of(any::<i64>()),
        option::of(double()),
        option::of(any::<bool>()),
    )
        .prop_map(
            |(climb_duration_ms, move_count, rest_count, rest_ms, smoothness, reached_top)| {
                MovementSummary {
                    climb_duration_ms,
                    move_count,
                    rest_count,
                    rest_ms,
                    smoothness,
                    reached_top,
                }
            },
        )
}

fn analysis_completed() -> impl Strategy<Value = AnalysisCompleted> {
    (
        (
            uuid(),
            uuid(),
            select(vec![
                AnalysisKind::Movement,
                AnalysisKind::Holds,
                AnalysisKind::Morphology,
                AnalysisKind::Warmup,
                AnalysisKind::Unknown,
            ]),
            uuid(),
        ),
        (
            vec(analysis_input(), 0..4),
            (text(16), any::<i32>(), text(24)),
        ),
        (
            proptest::collection::btree_map(text(24), double(), 0..12),
            option::of(movement_summary()),
            vec(finding(), 0..6),
        ),
        (
            option::of(sealed()),
            option::of(sealed()),
            option::of(sealed()),
            option::of(sealed()),
        ),
    )
        .prop_map(
            |(
                (analysis_id, user_id, kind, input_event_id),
                (inputs, (name, version, model_id)),
                (metrics, summary, findings),
                (morphology, annotated_video, summary_image, pose_track),
            )| AnalysisCompleted {
                analysis_id,
                user_id,
                kind,
                input_event_id,
                inputs,
                analyzer: AnalyzerInfo {
                    name,
                    version,
                    model_id,
                },
                metrics,
                summary,
                findings,
                morphology,
                annotated_video,
                summary_image,
                pose_track,
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The newest version of the event's schema, as the encoder writes it into the envelope.
fn latest_version(name: &str) -> i32 {
    let version = catalogue()
        .expect("catalogue")
        .latest(name)
        .expect("every event has a schema")
        .version;
    i32::try_from(version).expect("schema versions are small")
}

/// Encodes, decodes, checks every envelope field against `meta`, checks that re-encoding the
/// decoded event gives the same bytes, and returns the decoded event.
fn round_trip<E: Event>(meta: &EventMeta, payload: &E) -> Result<DomainEvent, TestCaseError> {
    let bytes = encode(meta, payload).expect("a generated event encodes");
    let decoded = decode(&bytes).expect("an encoded event decodes");
    let envelope = &decoded.envelope;
    prop_assert_eq!(envelope.event_id, meta.event_id);
    prop_assert_eq!(&envelope.event_type, E::NAME);
    prop_assert_eq!(envelope.schema_version, latest_version(E::NAME));
    prop_assert_eq!(&envelope.aggregate_type, E::AGGREGATE_TYPE);
    prop_assert_eq!(envelope.aggregate_id, meta.aggregate_id);
    prop_assert_eq!(envelope.aggregate_version, meta.aggregate_version);
    prop_assert_eq!(envelope.occurred_at, meta.occurred_at);
    prop_assert_eq!(envelope.command_id, meta.command_id);
    prop_assert_eq!(envelope.correlation_id, meta.correlation_id);
    prop_assert_eq!(envelope.causation_id, meta.causation_id);
    prop_assert_eq!(&envelope.actor, &meta.actor);
    prop_assert_eq!(&envelope.traceparent, &meta.traceparent);
    prop_assert_eq!(
        decode_envelope(&bytes).expect("the envelope alone decodes"),
        envelope.clone()
    );
    let again = decoded
        .event
        .encode(meta)
        .expect("a decoded event re-encodes");
    prop_assert_eq!(again, bytes, "re-encoding is not byte-identical");
    Ok(decoded.event)
}

/// `event` with every double replaced by 0.0, and the bit patterns of those doubles in
/// order: equal pairs mean equal events with bit-identical doubles, so NaN matches NaN and
/// `-0.0` does not match `0.0` (stricter than `PartialEq` on both counts).
fn split_doubles(event: &AnalysisCompleted) -> (AnalysisCompleted, Vec<u64>) {
    let mut rest = event.clone();
    let mut bits = Vec::new();
    for value in rest.metrics.values_mut() {
        bits.push(value.to_bits());
        *value = 0.0;
    }
    for finding in &mut rest.findings {
        bits.push(finding.severity.to_bits());
        finding.severity = 0.0;
    }
    if let Some(smoothness) = rest
        .summary
        .as_mut()
        .and_then(|summary| summary.smoothness.as_mut())
    {
        bits.push(smoothness.to_bits());
        *smoothness = 0.0;
    }
    (rest, bits)
}

/// Every sample event encoded, for the mutation properties; built once.
fn encoded_samples() -> &'static [Vec<u8>] {
    static ENCODED: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ENCODED.get_or_init(|| {
        samples::all()
            .iter()
            .enumerate()
            .map(|(n, event)| {
                let id = Uuid::from_u128(n as u128 + 1);
                let meta = EventMeta::new(id, 1, Actor::user(id))
                    .with_command(id)
                    .with_traceparent(Some("00-trace-span-01".into()));
                event.encode(&meta).expect("samples encode")
            })
            .collect()
    })
}

/// The decoders must return, whatever they return; a panic fails the property.
fn decode_everything(message: &[u8]) {
    let _ = decode(message);
    if let Ok(envelope) = decode_envelope(message) {
        let _ = decode_payload(&envelope);
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// 1. Envelope metadata and a `SessionStarted` survive the trip unchanged.
    #[test]
    fn envelope_and_session_started_round_trip(meta in meta(), payload in session_started()) {
        let event = round_trip(&meta, &payload)?;
        prop_assert_eq!(event, DomainEvent::SessionStarted(payload));
    }

    /// 1b. The direct envelope writer produces exactly the generic writer's bytes.
    #[test]
    fn direct_envelope_writer_equals_the_generic_one(meta in meta(), payload in session_started()) {
        let direct = cruxlog_schemas::encode(&meta, &payload).expect("direct");
        let generic = cruxlog_schemas::codec::encode_generic(&meta, &payload).expect("generic");
        prop_assert_eq!(&direct, &generic);
        let read = cruxlog_schemas::codec::decode_envelope(&direct).expect("direct read");
        let read_generic = cruxlog_schemas::codec::decode_envelope_generic(&direct).expect("generic read");
        prop_assert_eq!(read, read_generic);
    }

    /// 1c. On arbitrary bytes behind the envelope header, the direct reader and the generic one
    ///     agree on success or failure, and on the value when both succeed.
    #[test]
    fn direct_envelope_reader_agrees_with_the_generic_one_on_garbage(body in bytes(256)) {
        let catalogue = cruxlog_schemas::catalogue::catalogue().expect("catalogue");
        let envelope = catalogue.latest("cruxlog.Envelope").expect("envelope");
        let mut message = Vec::new();
        cruxlog_schemas::wire::write_header(&mut message, envelope.fingerprint);
        message.extend_from_slice(&body);
        let direct = cruxlog_schemas::codec::decode_envelope(&message).ok();
        let generic = cruxlog_schemas::codec::decode_envelope_generic(&message).ok();
        prop_assert_eq!(direct, generic);
    }

    /// 2. Attempt details (grades, every enum symbol, beta, sealed notes) survive the trip, in
    ///    both events that carry them.
    #[test]
    fn attempt_details_round_trip(
        meta in meta(),
        ids in (uuid(), uuid(), uuid()),
        attempted_at in instant(),
        details in attempt_details(),
    ) {
        let (session_id, attempt_id, user_id) = ids;
        let logged = AttemptLogged {
            session_id,
            attempt_id,
            user_id,
            attempted_at,
            details: details.clone(),
        };
        prop_assert_eq!(round_trip(&meta, &logged)?, DomainEvent::AttemptLogged(logged));
        let corrected = AttemptCorrected {
            session_id,
            attempt_id,
            user_id,
            attempted_at,
            details,
        };
        prop_assert_eq!(
            round_trip(&meta, &corrected)?,
            DomainEvent::AttemptCorrected(corrected)
        );
    }

    /// 3. Analysis results survive the trip with bit-identical doubles, NaN and infinities
    ///    included.
    #[test]
    fn analysis_completed_round_trips_bit_for_bit(
        meta in meta(),
        payload in analysis_completed(),
    ) {
        let DomainEvent::AnalysisCompleted(decoded) = round_trip(&meta, &payload)? else {
            return Err(TestCaseError::fail("decoded another event type"));
        };
        prop_assert_eq!(split_doubles(&decoded), split_doubles(&payload));
    }

    /// 4a. Arbitrary bytes, bare or behind a valid envelope header, never panic the decoder.
    #[test]
    fn arbitrary_bytes_never_panic(body in bytes(512), with_header in any::<bool>()) {
        let message = if with_header {
            let fingerprint = catalogue()
                .expect("catalogue")
                .latest(ENVELOPE_SCHEMA)
                .expect("envelope schema")
                .fingerprint;
            let mut message = Vec::new();
            wire::write_header(&mut message, fingerprint);
            message.extend_from_slice(&body);
            message
        } else {
            body
        };
        decode_everything(&message);
    }

    /// 4b. A valid message with one byte replaced, or cut short, never panics the decoder; a
    ///     cut message is always an error.
    #[test]
    fn mutated_and_truncated_messages_never_panic(
        sample in any::<prop::sample::Index>(),
        position in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let messages = encoded_samples();
        let original = sample.get(messages);

        let mut mutated = original.clone();
        let at = position.index(mutated.len());
        mutated[at] = replacement;
        decode_everything(&mutated);

        let truncated = &original[..cut.index(original.len())];
        decode_everything(truncated);
        prop_assert!(decode(truncated).is_err(), "a cut message decoded");
    }

    /// 4c. A valid envelope whose payload has one byte replaced, or is cut short, never panics
    ///     the payload decoder.
    #[test]
    fn mutated_payloads_never_panic(
        sample in any::<prop::sample::Index>(),
        position in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let messages = encoded_samples();
        let envelope =
            decode_envelope(sample.get(messages).as_slice()).expect("a sample's envelope decodes");

        let mut mutated = envelope.clone();
        let at = position.index(mutated.payload.len());
        mutated.payload[at] = replacement;
        let _ = decode_payload(&mutated);

        let mut truncated = envelope;
        truncated.payload.truncate(cut.index(truncated.payload.len()));
        prop_assert!(decode_payload(&truncated).is_err(), "a cut payload decoded");
    }

    /// 5a. A canonical label parses to itself, and any accepted spelling parses to the
    ///     canonical label of the ladder.
    #[test]
    fn canonical_grades_parse_to_themselves(written in written_grade()) {
        let (system, index, written) = written;
        let grade = Grade::parse(system, &written).expect("a ladder label is valid");
        prop_assert_eq!(&grade.label, &ladder(system)[index]);
        let again = Grade::parse(system, &grade.label).expect("a canonical label is valid");
        prop_assert_eq!(again, grade);
    }

    /// 5b. Difficulty is strictly monotonic along each system's ladder.
    #[test]
    fn difficulty_rises_with_the_ladder(
        system in select(SYSTEMS.to_vec()),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let labels = ladder(system);
        let (i, j) = (a.index(labels.len()), b.index(labels.len()));
        let difficulty = |index: usize| {
            Grade::parse(system, &labels[index])
                .and_then(|grade| grade.difficulty())
                .expect("a ladder label has a difficulty")
        };
        prop_assert_eq!(i.cmp(&j), difficulty(i).cmp(&difficulty(j)));
    }
}

/// 5c. Exhaustive companion to 5a/5b: the ladders are complete and strictly increasing.
#[test]
fn every_ladder_is_strictly_increasing() {
    let sizes: BTreeMap<&str, usize> = SYSTEMS
        .into_iter()
        .map(|system| {
            let labels = ladder(system);
            let points: Vec<i32> = labels
                .iter()
                .map(|label| {
                    let grade = Grade::parse(system, label).expect("a ladder label is valid");
                    assert_eq!(&grade.label, label, "{system:?} {label} is not canonical");
                    grade.difficulty().expect("a ladder label has a difficulty")
                })
                .collect();
            assert!(
                points.windows(2).all(|pair| pair[0] < pair[1]),
                "{system:?} ladder is not strictly increasing: {points:?}"
            );
            let name = match system {
                GradeSystem::French => "french",
                GradeSystem::VScale => "v",
                GradeSystem::Fontainebleau => "font",
            };
            (name, labels.len())
        })
        .collect();
    assert_eq!(
        sizes,
        BTreeMap::from([("font", 24), ("french", 36), ("v", 19)])
    );
}
