//! Schema files read straight from `schemas/avro`, as JSON, for tests that check the
//! conventions the Avro parser does not.

#![allow(dead_code, unreachable_pub)]

use std::{fs, path::Path};

use serde_json::Value;

/// One `avro/<full name>/v<N>.avsc` file.
pub struct SchemaFile {
    pub name: String,
    pub version: u32,
    pub text: String,
    pub json: Value,
}

pub fn schema_files() -> Vec<SchemaFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("avro");
    let mut files = Vec::new();
    for folder in fs::read_dir(&root).expect("schemas/avro") {
        let folder = folder.expect("entry").path();
        let name = folder
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8")
            .to_owned();
        for file in fs::read_dir(&folder).expect("schema folder") {
            let path = file.expect("entry").path();
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let version = stem
                .strip_prefix('v')
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{} is not v<N>.avsc", path.display()));
            let text = fs::read_to_string(&path).expect("readable");
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            files.push(SchemaFile {
                name: name.clone(),
                version,
                text,
                json,
            });
        }
    }
    files.sort_by(|a, b| (&a.name, a.version).cmp(&(&b.name, b.version)));
    files
}

/// The full name a record, enum or fixed definition declares.
pub fn full_name(schema: &Value) -> Option<String> {
    let kind = schema.get("type")?.as_str()?;
    if !matches!(kind, "record" | "enum" | "fixed") {
        return None;
    }
    let name = schema.get("name")?.as_str()?;
    Some(match schema.get("namespace").and_then(Value::as_str) {
        Some(namespace) if !name.contains('.') => format!("{namespace}.{name}"),
        _ => name.to_owned(),
    })
}

/// Every named type a schema file defines inline, the top-level record first.
pub fn named_types(schema: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    collect(schema, &mut out);
    out
}

fn collect(schema: &Value, out: &mut Vec<(String, Value)>) {
    match schema {
        Value::Array(branches) => branches.iter().for_each(|b| collect(b, out)),
        Value::Object(object) => {
            if let Some(name) = full_name(schema) {
                out.push((name, schema.clone()));
            }
            for key in ["type", "items", "values"] {
                if let Some(inner @ (Value::Object(_) | Value::Array(_))) = object.get(key) {
                    collect(inner, out);
                }
            }
            for field in schema
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                collect(&field["type"], out);
            }
        }
        _ => {}
    }
}

/// Named definitions of one file by full name, to resolve references by name.
pub fn definitions(schema: &Value) -> std::collections::BTreeMap<String, Value> {
    named_types(schema).into_iter().collect()
}
