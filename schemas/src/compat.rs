//! Schema evolution rules: every version of a schema must be able to read data written with
//! every other version of it, in both directions (full transitive compatibility). Then any
//! consumer, old or new, reads the whole log, and replays never meet unreadable history.
//!
//! Legal changes: add a field with a default; remove a field that had a default; add an enum
//! symbol when the enum has a default. Anything else needs a new event name.

use apache_avro::schema_compatibility::SchemaCompatibility;

use crate::catalogue::Catalogue;

/// One pair of versions that cannot read each other's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub name: &'static str,
    pub writer_version: u32,
    pub reader_version: u32,
    pub reason: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: v{} cannot read data written by v{}: {}",
            self.name, self.reader_version, self.writer_version, self.reason
        )
    }
}

/// Checks every ordered pair of versions of every schema in the catalogue.
pub fn check(catalogue: &Catalogue) -> Vec<Violation> {
    let versions: Vec<_> = catalogue.versions().collect();
    let mut violations = Vec::new();
    for writer in &versions {
        for reader in versions
            .iter()
            .filter(|r| r.name == writer.name && r.version != writer.version)
        {
            if let Err(error) = SchemaCompatibility::can_read(writer.schema, reader.schema) {
                violations.push(Violation {
                    name: writer.name,
                    writer_version: writer.version,
                    reader_version: reader.version,
                    reason: error.to_string(),
                });
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::catalogue::catalogue;

    const V1: &str = r#"{"type":"record","name":"Climbed","namespace":"t","fields":[
        {"name":"route","type":"string"},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"style","type":{"type":"enum","name":"Style","symbols":["FLASH","OTHER"],"default":"OTHER"}}]}"#;
    /// Legal: adds a field with a default, removes an optional field, adds an enum symbol.
    const V2_LEGAL: &str = r#"{"type":"record","name":"Climbed","namespace":"t","fields":[
        {"name":"route","type":"string"},
        {"name":"falls","type":"int","default":0},
        {"name":"style","type":{"type":"enum","name":"Style","symbols":["FLASH","REDPOINT","OTHER"],"default":"OTHER"}}]}"#;
    /// Breaking: a new field without a default (v2 cannot read v1 data).
    const V2_NO_DEFAULT: &str = r#"{"type":"record","name":"Climbed","namespace":"t","fields":[
        {"name":"route","type":"string"},
        {"name":"falls","type":"int"},
        {"name":"style","type":{"type":"enum","name":"Style","symbols":["FLASH","OTHER"],"default":"OTHER"}}]}"#;
    /// Breaking: a changed type (string to long).
    const V2_RETYPED: &str = r#"{"type":"record","name":"Climbed","namespace":"t","fields":[
        {"name":"route","type":"long"},
        {"name":"style","type":{"type":"enum","name":"Style","symbols":["FLASH","OTHER"],"default":"OTHER"}}]}"#;

    #[test]
    fn every_published_schema_is_fully_compatible_with_its_other_versions() {
        let violations = check(catalogue().expect("catalogue"));
        assert!(
            violations.is_empty(),
            "{}",
            violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    #[test]
    fn a_legal_evolution_passes() {
        let catalogue =
            Catalogue::parse(&[("t.Climbed", 1, V1), ("t.Climbed", 2, V2_LEGAL)]).expect("parses");
        assert_eq!(check(&catalogue), []);
    }

    #[test]
    fn breaking_changes_are_caught() {
        for (label, v2) in [("no default", V2_NO_DEFAULT), ("retyped", V2_RETYPED)] {
            let catalogue =
                Catalogue::parse(&[("t.Climbed", 1, V1), ("t.Climbed", 2, v2)]).expect("parses");
            let violations = check(&catalogue);
            assert!(!violations.is_empty(), "{label} must be caught");
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    enum Style {
        Flash,
        Redpoint,
        Other,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct ClimbedV1 {
        route: String,
        note: Option<String>,
        style: Style,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct ClimbedV2 {
        route: String,
        falls: i32,
        style: Style,
    }

    #[test]
    fn old_data_is_read_as_the_newest_version_with_defaults_filled_in() {
        let old = Catalogue::parse(&[("t.Climbed", 1, V1)]).expect("parses");
        let bytes = old
            .write(
                "t.Climbed",
                &ClimbedV1 {
                    route: "Biographie".into(),
                    note: Some("9a+".into()),
                    style: Style::Flash,
                },
            )
            .expect("writes v1");
        let new =
            Catalogue::parse(&[("t.Climbed", 1, V1), ("t.Climbed", 2, V2_LEGAL)]).expect("parses");
        let read: ClimbedV2 = new.read(&bytes, "t.Climbed").expect("v2 reads v1 data");
        assert_eq!(
            read,
            ClimbedV2 {
                route: "Biographie".into(),
                falls: 0,
                style: Style::Flash
            }
        );
        // And a v1-only reader meets v2 data as unknown: it must get a typed error, not garbage.
        let newer = new.write("t.Climbed", &read).expect("writes v2");
        assert!(matches!(
            old.read::<ClimbedV1>(&newer, "t.Climbed"),
            Err(crate::CodecError::UnknownFingerprint(_))
        ));
    }
}
