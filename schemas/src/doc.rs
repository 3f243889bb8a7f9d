//! Renders `docs/events.md` from the schema files, so the reference cannot drift from the
//! contract: the `events_doc` test fails when the committed file differs.
//!
//! Per aggregate (topic), per event: versions, the schema's doc, a table of the newest
//! version's fields, its sealed (personal) fields, and the named types only it defines.
//! Types that several schema files define (identically) are documented once, at the end,
//! with the plaintexts that sealed fields hold.

mod schema_json;

use std::{collections::BTreeMap, fmt::Write as _};

use serde_json::Value;

use self::schema_json::{Definitions, fields, sealed_paths, short, text, type_label};
use crate::{
    catalogue::{Catalogue, catalogue},
    envelope::ENVELOPE_SCHEMA,
    events::{DomainEvent, sealed},
    topics::AGGREGATE_TYPES,
};

/// The Markdown of `docs/events.md`.
pub fn events_markdown() -> String {
    match catalogue() {
        Ok(catalogue) => render(catalogue),
        Err(error) => format!("schema catalogue is invalid: {error}\n"),
    }
}

/// A parsed schema file: its name, versions and the newest version's JSON.
struct Entry {
    name: &'static str,
    versions: Vec<u32>,
    newest: Value,
}

fn entries(catalogue: &Catalogue) -> BTreeMap<&'static str, Entry> {
    let mut entries: BTreeMap<&'static str, Entry> = BTreeMap::new();
    for version in catalogue.versions() {
        let json = serde_json::from_str(version.text).unwrap_or(Value::Null);
        let entry = entries.entry(version.name).or_insert_with(|| Entry {
            name: version.name,
            versions: Vec::new(),
            newest: Value::Null,
        });
        if entry.versions.iter().all(|&v| v < version.version) {
            entry.newest = json;
        }
        entry.versions.push(version.version);
    }
    for entry in entries.values_mut() {
        entry.versions.sort_unstable();
    }
    entries
}

fn render(catalogue: &Catalogue) -> String {
    let entries = entries(catalogue);
    let mut definitions = Definitions::default();
    for entry in entries.values() {
        definitions.collect(entry.name, &entry.newest);
    }
    let mut out = String::from(HEADER);
    out.push_str("\n## Contents\n\n");
    for aggregate in AGGREGATE_TYPES {
        let events: Vec<_> = DomainEvent::NAMES
            .iter()
            .filter(|name| DomainEvent::aggregate_of(name) == Some(aggregate))
            .map(|name| short(name))
            .collect();
        let _ = writeln!(out, "- `{aggregate}`: {}", events.join(", "));
    }
    if let Some(envelope) = entries.get(ENVELOPE_SCHEMA) {
        out.push_str("\n## The envelope\n");
        schema_section(&mut out, envelope, &definitions);
    }
    for aggregate in AGGREGATE_TYPES {
        let _ = write!(
            out,
            "\n## Aggregate `{aggregate}`\n\nTopic `<prefix>cruxlog.{aggregate}`, key = aggregate id.\n"
        );
        for name in DomainEvent::NAMES
            .iter()
            .filter(|name| DomainEvent::aggregate_of(name) == Some(aggregate))
        {
            if let Some(entry) = entries.get(name) {
                schema_section(&mut out, entry, &definitions);
            }
        }
    }
    let strays: Vec<_> = entries
        .values()
        .filter(|e| e.name != ENVELOPE_SCHEMA && DomainEvent::aggregate_of(e.name).is_none())
        .collect();
    if !strays.is_empty() {
        out.push_str("\n## Schemas that are not events\n");
        for entry in strays {
            schema_section(&mut out, entry, &definitions);
        }
    }
    out.push_str("\n## Shared types\n\nDefined identically in every schema file that uses them.\n");
    for name in definitions.shared() {
        type_section(&mut out, name, &definitions);
    }
    plaintext_section(&mut out);
    out
}

const HEADER: &str = "# Events

<!-- Generated from schemas/avro by cruxlog_schemas::doc::events_markdown. Do not edit:
     UPDATE_EVENTS_DOC=1 cargo test -p cruxlog-schemas --test events_doc -->

Every Kafka record is an envelope whose payload is one of these events, both in Avro
single-object encoding. Names are past-tense facts. `optional T` is the union `[\"null\", T]`
with default null. Times are `timestamp-micros` (UTC); ids are UUID strings. Image
coordinates are normalized 0..1, origin top left. 🔒 marks personal data sealed with the
user's key (`Sealed<Plaintext>`, see *Sealed plaintexts*): erasing the user deletes the key.
";

/// A doc for a table cell.
fn cell(doc: &str) -> String {
    doc.replace('|', "\\|").replace('\n', " ")
}

fn schema_section(out: &mut String, entry: &Entry, definitions: &Definitions) {
    let versions: Vec<_> = entry.versions.iter().map(|v| format!("v{v}")).collect();
    let _ = write!(
        out,
        "\n### `{}`\n\nVersions: {}.\n\n{}\n",
        entry.name,
        versions.join(", "),
        text(&entry.newest, "doc")
    );
    field_table(out, &entry.newest);
    let sealed = sealed_paths(&entry.newest, definitions);
    if sealed.is_empty() {
        out.push_str("\nSealed personal data: none.\n");
    } else {
        let _ = writeln!(out, "\nSealed personal data: {}.", sealed.join(", "));
    }
    for name in definitions.own(entry.name) {
        type_section(out, name, definitions);
    }
}

fn field_table(out: &mut String, record: &Value) {
    out.push_str("\n| Field | Type | Doc |\n| --- | --- | --- |\n");
    for field in fields(record) {
        let mut kind = format!("`{}`", type_label(&field["type"]));
        if let Some(plaintext) = field.get("sealed").and_then(Value::as_str) {
            kind = format!(
                "{} 🔒",
                kind.replace("Sealed", &format!("Sealed<{plaintext}>"))
            );
        }
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            text(field, "name"),
            cell(&kind),
            cell(text(field, "doc"))
        );
    }
}

fn type_section(out: &mut String, name: &str, definitions: &Definitions) {
    let Some(schema) = definitions.types.get(name) else {
        return;
    };
    let doc = text(schema, "doc");
    let _ = write!(out, "\n#### `{name}`\n\n");
    if !doc.is_empty() {
        let _ = writeln!(out, "{doc}\n");
    }
    match text(schema, "type") {
        "enum" => {
            let symbols: Vec<_> = schema["symbols"]
                .as_array()
                .map(|s| s.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let default = match schema.get("default").and_then(Value::as_str) {
                Some(symbol) => {
                    format!("default `{symbol}`: a reader maps symbols it does not know to it")
                }
                None => String::from("no default: an unknown symbol is an error"),
            };
            let _ = writeln!(out, "Enum: `{}`; {default}.", symbols.join("`, `"));
        }
        _ => {
            // The table opens with its own blank line.
            out.pop();
            field_table(out, schema);
        }
    }
}

fn plaintext_section(out: &mut String) {
    out.push_str(
        "\n## Sealed plaintexts\n\nA `Sealed` value decrypts to the UTF-8 JSON of one of these \
         objects (`cruxlog_schemas::events::sealed`). Fields may be added, never renamed or \
         retyped; readers ignore fields they do not know.\n",
    );
    for plaintext in sealed::plaintexts() {
        let _ = write!(
            out,
            "\n### `{}`\n\n{}\n\n| Field | Holds |\n| --- | --- |\n",
            plaintext.name, plaintext.doc
        );
        for (field, doc) in plaintext.fields {
            let _ = writeln!(out, "| `{field}` | {} |", cell(doc));
        }
    }
}
