//! Every schema version ever published, parsed once. Readers find a writer schema by the
//! fingerprint in the message; writers use the newest version of a name.

use std::{collections::HashMap, sync::LazyLock};

use apache_avro::{Schema, rabin::Rabin};

use crate::{CodecError, Result};

include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));

/// One published version of one schema.
#[derive(Debug)]
pub struct SchemaVersion {
    pub name: &'static str,
    pub version: u32,
    pub fingerprint: u64,
    pub schema: Schema,
    pub text: &'static str,
}

/// All schema versions, indexed.
#[derive(Debug)]
pub struct Catalogue {
    versions: Vec<SchemaVersion>,
    by_fingerprint: HashMap<u64, usize>,
    latest: HashMap<&'static str, usize>,
}

static CATALOGUE: LazyLock<std::result::Result<Catalogue, String>> =
    LazyLock::new(|| Catalogue::parse(SCHEMA_FILES).map_err(|error| error.to_string()));

/// The process-wide catalogue. Fails only if a committed schema file is invalid, which the
/// crate's tests catch.
pub fn catalogue() -> Result<&'static Catalogue> {
    CATALOGUE
        .as_ref()
        .map_err(|error| CodecError::Catalogue(error.clone()))
}

/// The 64-bit Rabin fingerprint of the schema's parsing canonical form.
pub fn fingerprint(schema: &Schema) -> u64 {
    let bytes = schema.fingerprint::<Rabin>().bytes;
    let mut le = [0u8; 8];
    le.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(le)
}

impl Catalogue {
    /// Parses schema files given as (full name, version, JSON).
    pub fn parse(files: &[(&'static str, u32, &'static str)]) -> Result<Self> {
        let mut versions = Vec::with_capacity(files.len());
        let mut by_fingerprint = HashMap::new();
        let mut latest: HashMap<&'static str, usize> = HashMap::new();
        for &(name, version, text) in files {
            let schema = Schema::parse_str(text)
                .map_err(|error| CodecError::Catalogue(format!("{name} v{version}: {error}")))?;
            let full_name = match &schema {
                Schema::Record(record) => record.name.fullname(None),
                _ => {
                    return Err(CodecError::Catalogue(format!(
                        "{name} v{version} is not a record"
                    )));
                }
            };
            if full_name != name {
                return Err(CodecError::Catalogue(format!(
                    "{name} v{version} declares the name {full_name}"
                )));
            }
            let fingerprint = fingerprint(&schema);
            let index = versions.len();
            if by_fingerprint.insert(fingerprint, index).is_some() {
                return Err(CodecError::Catalogue(format!(
                    "{name} v{version} is identical to an earlier version"
                )));
            }
            let newest = latest.entry(name).or_insert(index);
            if versions
                .get(*newest)
                .is_some_and(|v: &SchemaVersion| v.version < version)
            {
                *newest = index;
            }
            versions.push(SchemaVersion {
                name,
                version,
                fingerprint,
                schema,
                text,
            });
        }
        Ok(Self {
            versions,
            by_fingerprint,
            latest,
        })
    }

    pub fn by_fingerprint(&self, fingerprint: u64) -> Result<&SchemaVersion> {
        self.by_fingerprint
            .get(&fingerprint)
            .map(|&index| &self.versions[index])
            .ok_or(CodecError::UnknownFingerprint(fingerprint))
    }

    /// The newest version of a schema: what writers use and readers resolve to.
    pub fn latest(&self, name: &str) -> Result<&SchemaVersion> {
        self.latest
            .get(name)
            .map(|&index| &self.versions[index])
            .ok_or_else(|| CodecError::Catalogue(format!("no schema named {name}")))
    }

    pub fn versions(&self) -> impl Iterator<Item = &SchemaVersion> {
        self.versions.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_schema_parses_and_is_named_after_its_folder() {
        let catalogue = catalogue().expect("catalogue parses");
        assert!(catalogue.versions().count() >= 4);
        for version in catalogue.versions() {
            assert_eq!(
                catalogue
                    .by_fingerprint(version.fingerprint)
                    .map(|v| v.name)
                    .ok(),
                Some(version.name)
            );
        }
    }

    #[test]
    fn a_folder_that_disagrees_with_the_schema_name_is_rejected() {
        let text = r#"{"type":"record","name":"A","namespace":"x","fields":[]}"#;
        let error = Catalogue::parse(&[("x.B", 1, text)]).expect_err("name mismatch");
        assert!(
            error.to_string().contains("declares the name x.A"),
            "{error}"
        );
    }
}
