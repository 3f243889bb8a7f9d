//! Every schema version ever published, parsed once. Readers find a writer schema by the
//! fingerprint in the message; writers use the newest version of a name. Each version keeps
//! its datum writer and readers ready, so encoding and decoding do no schema work per
//! message.

use std::{
    collections::HashMap,
    io::Read as _,
    sync::{LazyLock, OnceLock},
};

use apache_avro::{Schema, reader::datum::GenericDatumReader, writer::datum::GenericDatumWriter};
use serde::{Serialize, de::DeserializeOwned};

use crate::{CodecError, Result, wire};

include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));

/// One published version of one schema.
pub struct SchemaVersion {
    pub name: &'static str,
    pub version: u32,
    pub fingerprint: u64,
    pub schema: &'static Schema,
    pub text: &'static str,
    writer: GenericDatumWriter<'static>,
    /// Reads data written with this version as this version (no resolution).
    reader: GenericDatumReader<'static>,
    /// Reads data written with this version as the newest version; built on first use.
    resolving: OnceLock<GenericDatumReader<'static>>,
}

impl std::fmt::Debug for SchemaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} v{} ({:#018x})",
            self.name, self.version, self.fingerprint
        )
    }
}

/// All schema versions, indexed.
#[derive(Debug)]
pub struct Catalogue {
    versions: Vec<SchemaVersion>,
    by_fingerprint: HashMap<u64, usize>,
    latest: HashMap<&'static str, usize>,
}

/// The most one decoded string, bytes or array may claim. Kafka records are far smaller; the
/// bound stops a few garbage bytes from claiming a huge allocation.
pub const MAX_DECODE_ALLOCATION: usize = 16 * 1024 * 1024;

static CATALOGUE: LazyLock<std::result::Result<Catalogue, String>> = LazyLock::new(|| {
    apache_avro::util::max_allocation_bytes(MAX_DECODE_ALLOCATION);
    Catalogue::parse(SCHEMA_FILES).map_err(|error| error.to_string())
});

/// The process-wide catalogue of `schemas/avro`. Fails only if a committed schema file is
/// invalid, which the crate's tests catch.
pub fn catalogue() -> Result<&'static Catalogue> {
    CATALOGUE
        .as_ref()
        .map_err(|error| CodecError::Catalogue(error.clone()))
}

/// The 64-bit Rabin fingerprint (CRC-64-AVRO) of the schema's Parsing Canonical Form, as the
/// Avro specification, Java and fastavro compute it.
///
/// apache-avro 0.22's `canonical_form` strips `logicalType` but keeps the object around it, so
/// a uuid or timestamp field becomes `{"type":"string"}` instead of `"string"` (the [PRIMITIVES]
/// rule); its own fingerprints therefore differ from every other implementation's for any
/// schema with a logical type. This reduces those objects before hashing.
pub fn fingerprint(schema: &Schema) -> u64 {
    let mut canonical = schema.canonical_form();
    for primitive in [
        "null", "boolean", "int", "long", "float", "double", "bytes", "string",
    ] {
        canonical = canonical.replace(
            &format!(r#"{{"type":"{primitive}"}}"#),
            &format!(r#""{primitive}""#),
        );
    }
    rabin(canonical.as_bytes())
}

/// CRC-64-AVRO, the Avro specification's 64-bit Rabin fingerprint.
fn rabin(bytes: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    static TABLE: LazyLock<[u64; 256]> = LazyLock::new(|| {
        let mut table = [0u64; 256];
        for (i, entry) in (0u64..).zip(table.iter_mut()) {
            let mut fp = i;
            for _ in 0..8 {
                fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
            }
            *entry = fp;
        }
        table
    });
    bytes.iter().fold(EMPTY, |fp, &byte| {
        (fp >> 8) ^ TABLE[usize::from((fp as u8) ^ byte)]
    })
}

impl Catalogue {
    /// Parses schema files given as (full name, version, JSON). Parsed schemas live for the
    /// rest of the process (the catalogue is built once; tests build a few small ones).
    pub fn parse(files: &[(&'static str, u32, &'static str)]) -> Result<Self> {
        let mut versions: Vec<SchemaVersion> = Vec::with_capacity(files.len());
        let mut by_fingerprint = HashMap::new();
        let mut latest: HashMap<&'static str, usize> = HashMap::new();
        for &(name, version, text) in files {
            let context = |error: &dyn std::fmt::Display| {
                CodecError::Catalogue(format!("{name} v{version}: {error}"))
            };
            let schema: &'static Schema =
                Box::leak(Box::new(Schema::parse_str(text).map_err(|e| context(&e))?));
            let full_name = match schema {
                Schema::Record(record) => record.name.fullname(None),
                _ => return Err(context(&"not a record")),
            };
            if full_name != name {
                return Err(context(&format!("declares the name {full_name}")));
            }
            let fingerprint = fingerprint(schema);
            let index = versions.len();
            if by_fingerprint.insert(fingerprint, index).is_some() {
                return Err(context(&"identical to an earlier version"));
            }
            let newest = latest.entry(name).or_insert(index);
            if versions.get(*newest).is_some_and(|v| v.version < version) {
                *newest = index;
            }
            // Uuids are Avro `fixed(16)` with the uuid logical type: serde must use their
            // binary form (not `human_readable`), 16 bytes instead of a 36-character string.
            let writer = GenericDatumWriter::builder(schema)
                .human_readable(false)
                .build()
                .map_err(|e| context(&e))?;
            let reader = GenericDatumReader::builder(schema)
                .human_readable(false)
                .build()
                .map_err(|e| context(&e))?;
            versions.push(SchemaVersion {
                name,
                version,
                fingerprint,
                schema,
                text,
                writer,
                reader,
                resolving: OnceLock::new(),
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

    /// Single-object encodes `value` with the newest version of `name`.
    pub fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<Vec<u8>> {
        self.latest(name)?.write(value)
    }

    /// Reads a single-object message whose writer schema must be a version of `expected`,
    /// resolving older versions to the newest one.
    pub fn read<T: DeserializeOwned>(&self, message: &[u8], expected: &'static str) -> Result<T> {
        let (fingerprint, mut body) = wire::split(message)?;
        let writer = self.by_fingerprint(fingerprint)?;
        if writer.name != expected {
            return Err(CodecError::UnexpectedSchema {
                expected,
                found: writer.name.to_owned(),
            });
        }
        let newest = self.latest(expected)?;
        let value = if writer.fingerprint == newest.fingerprint {
            writer.reader.read_deser(&mut body)?
        } else {
            let reader = match writer.resolving.get() {
                Some(reader) => reader,
                None => {
                    let reader = GenericDatumReader::builder(writer.schema)
                        .reader_schema(newest.schema)
                        .human_readable(false)
                        .build()?;
                    writer.resolving.get_or_init(|| reader)
                }
            };
            apache_avro::from_value(&reader.read_value(&mut body)?)?
        };
        let mut rest = [0u8; 1];
        if body.read(&mut rest).unwrap_or(0) != 0 {
            return Err(CodecError::Avro(format!(
                "{expected}: trailing bytes after the datum"
            )));
        }
        Ok(value)
    }
}

impl SchemaVersion {
    /// Single-object encodes `value` with this version.
    pub fn write<T: Serialize>(&self, value: &T) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(256);
        self.write_into(&mut out, value)?;
        Ok(out)
    }

    /// Appends the single-object encoding of `value` to `out`.
    pub fn write_into<T: Serialize>(&self, out: &mut Vec<u8>, value: &T) -> Result<()> {
        wire::write_header(out, self.fingerprint);
        self.writer.write_ser(out, value)?;
        Ok(())
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
    fn fingerprints_follow_the_avro_specification() {
        let null = Schema::parse_str(r#""null""#).expect("valid schema");
        assert_eq!(
            fingerprint(&null),
            0x63dd_24e7_cc25_8f8a,
            "the spec's value for \"null\""
        );
        let uuid =
            Schema::parse_str(r#"{"type":"string","logicalType":"uuid"}"#).expect("valid schema");
        assert_eq!(fingerprint(&uuid), fingerprint(&Schema::String));
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
