//! Reading schema JSON: named type definitions, type labels and sealed-field paths.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The full name of the sealed-value record.
pub(super) const SEALED_TYPE: &str = "cruxlog.crypto.Sealed";

/// Every named type (record or enum) met in the schema files.
#[derive(Default)]
pub(super) struct Definitions {
    /// Full name to its first definition.
    pub(super) types: BTreeMap<String, Value>,
    /// Full name to the schema files that define it.
    defined_in: BTreeMap<String, BTreeSet<&'static str>>,
}

impl Definitions {
    pub(super) fn collect(&mut self, file: &'static str, schema: &Value) {
        match schema {
            Value::Array(branches) => branches.iter().for_each(|b| self.collect(file, b)),
            Value::Object(object) => {
                if let Some(name) = full_name(schema) {
                    self.defined_in
                        .entry(name.clone())
                        .or_default()
                        .insert(file);
                    self.types.entry(name).or_insert_with(|| schema.clone());
                }
                for key in ["items", "values"] {
                    if let Some(inner) = object.get(key) {
                        self.collect(file, inner);
                    }
                }
                if let Some(Value::Object(_) | Value::Array(_)) = object.get("type") {
                    self.collect(file, &object["type"]);
                }
                for field in fields(schema) {
                    self.collect(file, &field["type"]);
                }
            }
            _ => {}
        }
    }

    pub(super) fn shared(&self) -> impl Iterator<Item = &str> {
        self.defined_in
            .iter()
            .filter(|(_, files)| files.len() > 1)
            .map(|(name, _)| name.as_str())
    }

    /// Named types defined (not just used) by `file`, outside the shared ones.
    pub(super) fn own(&self, file: &str) -> Vec<&str> {
        self.defined_in
            .iter()
            .filter(|(name, files)| files.len() == 1 && files.contains(file) && *name != file)
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

pub(super) fn full_name(schema: &Value) -> Option<String> {
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

pub(super) fn fields(schema: &Value) -> &[Value] {
    schema
        .get("fields")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(super) fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// How a type reads in a table: short names, `optional T`, `array<T>`, `map<T>`.
pub(super) fn type_label(schema: &Value) -> String {
    match schema {
        Value::String(name) => short(name).to_owned(),
        Value::Array(branches) => {
            let labels: Vec<_> = branches
                .iter()
                .filter(|b| b.as_str() != Some("null"))
                .map(type_label)
                .collect();
            if labels.len() < branches.len() && labels.len() == 1 {
                format!("optional {}", labels[0])
            } else {
                branches
                    .iter()
                    .map(type_label)
                    .collect::<Vec<_>>()
                    .join(" or ")
            }
        }
        Value::Object(object) => {
            if let Some(logical) = object.get("logicalType").and_then(Value::as_str) {
                return logical.to_owned();
            }
            if let Some(name) = full_name(schema) {
                return short(&name).to_owned();
            }
            match text(schema, "type") {
                "array" => format!("array<{}>", type_label(&schema["items"])),
                "map" => format!("map<{}>", type_label(&schema["values"])),
                _ => type_label(&schema["type"]),
            }
        }
        _ => String::from("?"),
    }
}

pub(super) fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// Paths of the fields holding a sealed value, nested records included (`inputs[].media`).
pub(super) fn sealed_paths(schema: &Value, definitions: &Definitions) -> Vec<String> {
    let mut paths = Vec::new();
    walk_sealed(schema, "", definitions, &mut Vec::new(), &mut paths);
    paths
        .into_iter()
        .map(|(path, plaintext)| format!("`{path}` ({plaintext})"))
        .collect()
}

/// Collects (path, plaintext) of sealed fields; `seen` guards against recursive types.
fn walk_sealed(
    schema: &Value,
    path: &str,
    types: &Definitions,
    seen: &mut Vec<String>,
    out: &mut Vec<(String, String)>,
) {
    let resolved = match schema {
        Value::String(name) => types.types.get(name).unwrap_or(schema),
        _ => schema,
    };
    match resolved {
        Value::Array(branches) => branches
            .iter()
            .for_each(|b| walk_sealed(b, path, types, seen, out)),
        Value::Object(object) => {
            let name = full_name(resolved);
            if name.as_deref() == Some(SEALED_TYPE)
                || name.as_ref().is_some_and(|n| seen.contains(n))
            {
                return;
            }
            match text(resolved, "type") {
                "array" => walk_sealed(&object["items"], &format!("{path}[]"), types, seen, out),
                "map" => walk_sealed(&object["values"], &format!("{path}{{}}"), types, seen, out),
                "record" => {
                    seen.push(name.unwrap_or_default());
                    for field in fields(resolved) {
                        let child = match path {
                            "" => text(field, "name").to_owned(),
                            _ => format!("{path}.{}", text(field, "name")),
                        };
                        if let Some(plaintext) = field.get("sealed").and_then(Value::as_str) {
                            out.push((child.clone(), plaintext.to_owned()));
                        }
                        walk_sealed(&field["type"], &child, types, seen, out);
                    }
                    seen.pop();
                }
                _ => {}
            }
        }
        _ => {}
    }
}
