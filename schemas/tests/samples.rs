//! The samples exercise the whole contract (every optional field filled and every array
//! non-empty somewhere), sealed fields hold the plaintext their schema names, no sample leaks
//! personal data through `Debug`, and every Avro enum symbol reads into its Rust enum.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use apache_avro::{reader::datum::GenericDatumReader, types::Value as Avro};
use cruxlog_schemas::{
    Actor, ActorRole, DomainEvent, EventMeta,
    catalogue::catalogue,
    codec::decode_envelope,
    events::{self, samples, sealed::plaintexts},
    grades::GradeSystem,
    wire,
};
use serde_json::Value;
use uuid::Uuid;

use support::{definitions, named_types, schema_files};

/// What one walk over a decoded sample saw, by field path.
#[derive(Default)]
struct Seen {
    null: BTreeSet<String>,
    filled: BTreeSet<String>,
    empty: BTreeSet<String>,
    non_empty: BTreeSet<String>,
    /// (path, plaintext type, the sealed value).
    sealed: Vec<(String, String, Avro)>,
}

/// The newest schema JSON of every schema, by name.
fn newest_schemas() -> BTreeMap<String, Value> {
    schema_files()
        .into_iter()
        .map(|file| (file.name, file.json))
        .collect()
}

/// A sample as the generic Avro value its schema reads.
fn avro_value(sample: &DomainEvent) -> Avro {
    let bytes = sample
        .encode(&EventMeta::new(Uuid::now_v7(), 1, Actor::system()))
        .expect("encodes");
    let envelope = decode_envelope(&bytes).expect("envelope");
    let (fingerprint, mut body) = wire::split(&envelope.payload).expect("single object");
    let schema = catalogue()
        .expect("catalogue")
        .by_fingerprint(fingerprint)
        .expect("known writer");
    GenericDatumReader::builder(schema.schema)
        .build()
        .expect("reader")
        .read_value(&mut body)
        .expect("datum")
}

fn walk(
    schema: &Value,
    value: &Avro,
    path: &str,
    types: &BTreeMap<String, Value>,
    seen: &mut Seen,
) {
    let schema = match schema {
        Value::String(name) => types.get(name).unwrap_or(schema),
        Value::Object(object) if object.get("type").is_some_and(Value::is_array) => &object["type"],
        _ => schema,
    };
    match value {
        Avro::Union(index, inner) => {
            let branch = &schema[*index as usize];
            if branch == "null" {
                seen.null.insert(path.to_owned());
            } else {
                seen.filled.insert(path.to_owned());
            }
            walk(branch, inner, path, types, seen);
        }
        Avro::Record(fields) => {
            for (name, inner) in fields {
                let field = schema["fields"]
                    .as_array()
                    .and_then(|fs| fs.iter().find(|f| f["name"] == name.as_str()))
                    .unwrap_or_else(|| panic!("{path}: no field {name}"));
                let child = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                if let Some(plaintext) = field.get("sealed").and_then(Value::as_str) {
                    seen.sealed
                        .push((child.clone(), plaintext.to_owned(), inner.clone()));
                }
                walk(&field["type"], inner, &child, types, seen);
            }
        }
        Avro::Array(items) => {
            let set = if items.is_empty() {
                &mut seen.empty
            } else {
                &mut seen.non_empty
            };
            set.insert(path.to_owned());
            for item in items {
                walk(&schema["items"], item, &format!("{path}[]"), types, seen);
            }
        }
        Avro::Map(entries) => {
            let set = if entries.is_empty() {
                &mut seen.empty
            } else {
                &mut seen.non_empty
            };
            set.insert(path.to_owned());
            for item in entries.values() {
                walk(&schema["values"], item, &format!("{path}{{}}"), types, seen);
            }
        }
        _ => {}
    }
}

fn walk_sample(sample: &DomainEvent, schemas: &BTreeMap<String, Value>) -> Seen {
    let schema = &schemas[sample.name()];
    let mut seen = Seen::default();
    walk(
        schema,
        &avro_value(sample),
        "",
        &definitions(schema),
        &mut seen,
    );
    seen
}

#[test]
fn every_optional_field_is_filled_and_every_array_non_empty_in_some_sample_position() {
    let schemas = newest_schemas();
    for sample in samples::all() {
        let seen = walk_sample(&sample, &schemas);
        let never_filled: Vec<_> = seen.null.difference(&seen.filled).collect();
        let never_non_empty: Vec<_> = seen.empty.difference(&seen.non_empty).collect();
        assert!(
            never_filled.is_empty(),
            "{}: never filled: {never_filled:?}",
            sample.name()
        );
        assert!(
            never_non_empty.is_empty(),
            "{}: always empty: {never_non_empty:?}",
            sample.name()
        );
    }
}

#[test]
fn sealed_samples_hold_exactly_the_fields_of_the_plaintext_their_schema_names() {
    let schemas = newest_schemas();
    let documented: BTreeMap<_, BTreeSet<_>> = plaintexts()
        .into_iter()
        .map(|p| (p.name, p.fields.iter().map(|(field, _)| *field).collect()))
        .collect();
    let mut opened = BTreeSet::new();
    for sample in samples::all() {
        for (path, plaintext, value) in walk_sample(&sample, &schemas).sealed {
            let value = match value {
                Avro::Union(_, inner) => *inner,
                other => other,
            };
            let Avro::Record(fields) = value else {
                continue; // null
            };
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            if field("algorithm") != Some(Avro::Enum(1, "PLAINTEXT_DEV".into())) {
                continue;
            }
            let Some(Avro::Bytes(bytes)) = field("ciphertext") else {
                panic!("{}: {path}: ciphertext is not bytes", sample.name());
            };
            let json: BTreeMap<String, Value> = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{}: {path}: not a JSON object: {e}", sample.name()));
            let keys: BTreeSet<_> = json.keys().map(String::as_str).collect();
            assert_eq!(
                Some(&keys),
                documented.get(plaintext.as_str()),
                "{}: {path} should hold a {plaintext}",
                sample.name()
            );
            opened.insert(plaintext);
        }
    }
    let all: BTreeSet<_> = documented.keys().map(|name| (*name).to_owned()).collect();
    assert_eq!(opened, all, "every plaintext type appears in some sample");
}

#[test]
fn debug_output_of_samples_shows_no_sealed_plaintext() {
    for sample in samples::all() {
        let debug = format!("{sample:?}");
        for secret in ["@example", "$argon2id", "pulley", "Léa", "1994", "176.5"] {
            assert!(
                !debug.contains(secret),
                "{}: Debug shows {secret}",
                sample.name()
            );
        }
    }
}

/// Reads an Avro symbol into the Rust enum, then writes it back.
macro_rules! rust_enums {
    ($($avro:literal => $rust:ty),+ $(,)?) => {
        fn through_rust(name: &str, symbol: &str) -> Option<Result<Value, serde_json::Error>> {
            let symbol = Value::String(symbol.to_owned());
            match name {
                $($avro => Some(serde_json::from_value::<$rust>(symbol).and_then(serde_json::to_value)),)+
                _ => None,
            }
        }
    };
}

rust_enums! {
    "cruxlog.ActorRole" => ActorRole,
    "cruxlog.grades.GradeSystem" => GradeSystem,
    "cruxlog.crypto.SealAlgorithm" => events::SealAlgorithm,
    "cruxlog.training.DayOfWeek" => events::DayOfWeek,
    "cruxlog.training.TrainingFocus" => events::TrainingFocus,
    "cruxlog.training.Equipment" => events::Equipment,
    "cruxlog.user.PasswordChangeMethod" => events::PasswordChangeMethod,
    "cruxlog.user.ExperienceLevel" => events::ExperienceLevel,
    "cruxlog.user.Role" => events::Role,
    "cruxlog.user.ConsentPurpose" => events::ConsentPurpose,
    "cruxlog.user.GoalKind" => events::GoalKind,
    "cruxlog.user.GoalOutcome" => events::GoalOutcome,
    "cruxlog.user.ErasureReason" => events::ErasureReason,
    "cruxlog.export.ExportFormat" => events::ExportFormat,
    "cruxlog.wall.WallKind" => events::WallKind,
    "cruxlog.wall.HoldColour" => events::HoldColour,
    "cruxlog.wall.HoldKind" => events::HoldKind,
    "cruxlog.route.HoldRole" => events::HoldRole,
    "cruxlog.route.RouteStyle" => events::RouteStyle,
    "cruxlog.route.RetireReason" => events::RetireReason,
    "cruxlog.session.Discipline" => events::Discipline,
    "cruxlog.session.ClimbStyle" => events::ClimbStyle,
    "cruxlog.session.AttemptResult" => events::AttemptResult,
    "cruxlog.session.Limb" => events::Limb,
    "cruxlog.session.AttemptDeletionReason" => events::AttemptDeletionReason,
    "cruxlog.session.SessionEndReason" => events::SessionEndReason,
    "cruxlog.analysis.AnalysisKind" => events::AnalysisKind,
    "cruxlog.analysis.InputKind" => events::InputKind,
    "cruxlog.analysis.AnalysisReason" => events::AnalysisReason,
    "cruxlog.analysis.FindingKind" => events::FindingKind,
    "cruxlog.audit.PersonalResource" => events::PersonalResource,
    "cruxlog.audit.AccessReason" => events::AccessReason,
}

#[test]
fn every_avro_enum_symbol_reads_into_its_rust_enum_and_back() {
    for file in schema_files() {
        for (name, definition) in named_types(&file.json) {
            if definition["type"] != "enum" {
                continue;
            }
            for symbol in definition["symbols"].as_array().expect("symbols") {
                let symbol = symbol.as_str().expect("string symbol");
                let back = through_rust(&name, symbol)
                    .unwrap_or_else(|| {
                        panic!("{name} ({}) has no Rust enum listed here", file.name)
                    })
                    .unwrap_or_else(|e| panic!("{name}: {symbol} does not read into Rust: {e}"));
                assert_eq!(back, symbol, "{name}: {symbol} is written back differently");
            }
        }
    }
}
