//! The event catalogue is whole and consistent: every schema file parses and is an event
//! with a typed payload and a sample, every sample survives the codec, every enum can take
//! symbols from newer writers, and a named type means the same in every file.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use cruxlog_schemas::{
    Actor, DomainEvent, EventMeta,
    catalogue::catalogue,
    decode,
    envelope::ENVELOPE_SCHEMA,
    events::{aggregate, samples},
    topics::AGGREGATE_TYPES,
};
use serde_json::Value;
use uuid::Uuid;

use support::{SchemaFile, full_name, named_types, schema_files};

/// Enums published without a default symbol, and why that is acceptable.
const ENUMS_WITHOUT_DEFAULT: &[(&str, &str)] = &[
    (
        "cruxlog.grades.GradeSystem",
        "an unknown grade system must fail, never be mapped to another system",
    ),
    (
        "cruxlog.session.Discipline",
        "published in SessionStarted v1 without one; a default cannot be added in place",
    ),
];

#[test]
fn samples_cover_every_event_exactly_once_in_declaration_order() {
    let names: Vec<_> = samples::all().iter().map(DomainEvent::name).collect();
    assert_eq!(names, DomainEvent::NAMES);
}

#[test]
fn every_catalogue_schema_but_the_envelope_is_an_event_and_every_event_has_a_schema() {
    let catalogue = catalogue().expect("catalogue");
    for version in catalogue.versions() {
        assert!(
            version.name == ENVELOPE_SCHEMA || DomainEvent::aggregate_of(version.name).is_some(),
            "{} has a schema file but no DomainEvent variant",
            version.name
        );
    }
    for name in DomainEvent::NAMES {
        assert!(catalogue.latest(name).is_ok(), "{name} has no schema file");
    }
}

#[test]
fn every_sample_round_trips_through_the_codec_with_its_aggregate_type() {
    let catalogue = catalogue().expect("catalogue");
    for sample in samples::all() {
        let meta = EventMeta::new(Uuid::now_v7(), 3, Actor::user(Uuid::now_v7()))
            .with_command(Uuid::now_v7());
        let bytes = sample
            .encode(&meta)
            .unwrap_or_else(|e| panic!("{} encodes: {e}", sample.name()));
        let decoded = decode(&bytes).unwrap_or_else(|e| panic!("{} decodes: {e}", sample.name()));
        assert_eq!(decoded.event, sample);
        let envelope = &decoded.envelope;
        assert_eq!(envelope.event_type, sample.name());
        assert_eq!(envelope.aggregate_type, sample.aggregate_type());
        assert_eq!(
            Some(envelope.aggregate_type.as_str()),
            DomainEvent::aggregate_of(sample.name())
        );
        assert_eq!(
            (envelope.aggregate_id, envelope.aggregate_version),
            (meta.aggregate_id, 3)
        );
        let newest = catalogue.latest(sample.name()).expect("schema");
        assert_eq!(
            envelope.schema_version,
            i32::try_from(newest.version).expect("small")
        );
    }
}

#[test]
fn every_aggregate_has_one_topic_and_every_topic_an_event() {
    let of_events: BTreeSet<_> = DomainEvent::NAMES
        .iter()
        .filter_map(|name| DomainEvent::aggregate_of(name))
        .collect();
    let topics: BTreeSet<_> = AGGREGATE_TYPES.into_iter().collect();
    assert_eq!(
        topics.len(),
        AGGREGATE_TYPES.len(),
        "an aggregate is listed twice"
    );
    assert_eq!(of_events, topics);
    assert!(topics.contains(aggregate::CLIMBING_SESSION));
}

#[test]
fn every_schema_file_on_disk_parses_and_is_in_the_catalogue() {
    let files = schema_files();
    let catalogue = catalogue().expect("catalogue");
    assert_eq!(files.len(), catalogue.versions().count());
    for file in &files {
        apache_avro::Schema::parse_str(&file.text)
            .unwrap_or_else(|e| panic!("{} v{}: {e}", file.name, file.version));
        assert_eq!(full_name(&file.json).as_deref(), Some(file.name.as_str()));
        assert!(
            catalogue
                .versions()
                .any(|v| v.name == file.name && v.version == file.version && v.text == file.text),
            "{} v{} is not embedded (rebuild?)",
            file.name,
            file.version
        );
    }
}

#[test]
fn every_enum_has_a_default_so_older_readers_take_newer_symbols() {
    let mut missing = BTreeSet::new();
    for file in schema_files() {
        for (name, definition) in named_types(&file.json) {
            if definition["type"] != "enum" {
                continue;
            }
            let symbols = definition["symbols"].as_array().expect("symbols");
            match definition.get("default").and_then(Value::as_str) {
                Some(default) => assert!(
                    symbols.iter().any(|s| s == default),
                    "{name} in {}: default {default} is not a symbol",
                    file.name
                ),
                None => {
                    missing.insert(name);
                }
            }
        }
    }
    let allowed: BTreeSet<_> = ENUMS_WITHOUT_DEFAULT
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    assert_eq!(missing, allowed, "enums without a default symbol");
}

#[test]
fn a_named_type_is_defined_identically_in_every_file_that_defines_it() {
    let mut seen: BTreeMap<String, (String, Value)> = BTreeMap::new();
    for file in schema_files() {
        let label = format!("{} v{}", file.name, file.version);
        for (name, definition) in named_types(&file.json) {
            let shallow = shallow(&definition);
            match seen.get(&name) {
                Some((first, earlier)) => assert_eq!(
                    earlier, &shallow,
                    "{name} differs between {first} and {label}"
                ),
                None => {
                    seen.insert(name, (label.clone(), shallow));
                }
            }
        }
    }
    assert!(seen.contains_key("cruxlog.crypto.Sealed"));
    assert!(seen.contains_key("cruxlog.grades.Grade"));
}

/// A definition with nested named definitions replaced by their names, so a file that
/// defines a nested type inline and one that refers to it by name compare equal.
fn shallow(definition: &Value) -> Value {
    fn strip(value: &Value, top: bool) -> Value {
        if !top && let Some(name) = full_name(value) {
            return Value::String(name);
        }
        match value {
            Value::Object(object) => Value::Object(
                object
                    .iter()
                    .map(|(key, inner)| (key.clone(), strip(inner, false)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|i| strip(i, false)).collect()),
            other => other.clone(),
        }
    }
    strip(definition, true)
}

#[test]
fn every_sealed_field_names_a_known_plaintext_and_every_sealed_attribute_is_on_a_sealed_field() {
    let plaintexts: BTreeSet<_> = cruxlog_schemas::events::sealed::plaintexts()
        .iter()
        .map(|p| p.name)
        .collect();
    for SchemaFile { name, json, .. } in schema_files() {
        for (type_name, definition) in named_types(&json) {
            for field in definition["fields"].as_array().into_iter().flatten() {
                let carries_sealed = mentions(&field["type"], "cruxlog.crypto.Sealed");
                let attribute = field.get("sealed").and_then(Value::as_str);
                let where_ = format!("{name}: {type_name}.{}", field["name"]);
                assert_eq!(
                    carries_sealed,
                    attribute.is_some(),
                    "{where_}: sealed attribute"
                );
                if let Some(plaintext) = attribute {
                    assert!(
                        plaintexts.contains(plaintext),
                        "{where_}: unknown {plaintext}"
                    );
                }
            }
        }
    }
}

/// Whether a type is, or directly wraps (union, array, map), the named type.
fn mentions(schema: &Value, name: &str) -> bool {
    match schema {
        Value::String(s) => s == name,
        Value::Array(branches) => branches.iter().any(|b| mentions(b, name)),
        Value::Object(object) => {
            full_name(schema).as_deref() == Some(name)
                || ["items", "values"]
                    .iter()
                    .any(|key| object.get(*key).is_some_and(|inner| mentions(inner, name)))
        }
        _ => false,
    }
}
