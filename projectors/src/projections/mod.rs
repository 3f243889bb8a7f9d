//! Every projection this service builds.
//!
//! Layout:
//! - [`sessions`]: climbing sessions, attempts, videos, warm-ups, per-user progress.
//! - [`analyses`]: every analysis of every analyzer version, and the latest per input.
//! - [`walls`]: gyms, walls, wall photos, detected holds, routes.
//! - [`coaching`]: ghosts, routines, workouts, goals, injuries.
//! - [`identity`]: users, roles, consents.
//! - [`audit`]: the admin audit log.

pub mod analyses;
pub mod audit;
pub mod coaching;
pub mod identity;
pub mod sessions;
pub mod walls;

use std::sync::Arc;

use crate::projection::Projection;

/// The projections, in start order.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(identity::Identity),
        Arc::new(sessions::Sessions),
        Arc::new(analyses::Analyses),
        Arc::new(walls::Walls),
        Arc::new(coaching::Coaching),
        Arc::new(audit::Audit),
    ]
}

pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}

/// A value as `jsonb` (nested lists of the events: steps, findings, plans).
pub fn json<T: serde::Serialize>(value: &T) -> sqlx::Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

/// The lower-case name of a serde enum symbol (`TOP_ROPE` -> `top_rope`), read straight from
/// the enum's `Serialize` (no JSON in between: this runs for every row of a catch-up).
pub fn symbol<T: serde::Serialize>(value: &T) -> String {
    value
        .serialize(SymbolName)
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// A serializer that accepts only unit variants and returns their lower-cased name.
struct SymbolName;

#[derive(Debug)]
struct NotASymbol;

impl std::fmt::Display for NotASymbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an enum symbol")
    }
}

impl std::error::Error for NotASymbol {}

impl serde::ser::Error for NotASymbol {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Self
    }
}

macro_rules! refuse {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<String, NotASymbol> { Err(NotASymbol) })*
    };
}

impl serde::Serializer for SymbolName {
    type Ok = String;
    type Error = NotASymbol;
    type SerializeSeq = serde::ser::Impossible<String, NotASymbol>;
    type SerializeTuple = serde::ser::Impossible<String, NotASymbol>;
    type SerializeTupleStruct = serde::ser::Impossible<String, NotASymbol>;
    type SerializeTupleVariant = serde::ser::Impossible<String, NotASymbol>;
    type SerializeMap = serde::ser::Impossible<String, NotASymbol>;
    type SerializeStruct = serde::ser::Impossible<String, NotASymbol>;
    type SerializeStructVariant = serde::ser::Impossible<String, NotASymbol>;

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, NotASymbol> {
        Ok(variant.to_ascii_lowercase())
    }

    fn serialize_str(self, value: &str) -> Result<String, NotASymbol> {
        Ok(value.to_ascii_lowercase())
    }

    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
    );

    fn serialize_some<T: ?Sized + serde::Serialize>(self, _: &T) -> Result<String, NotASymbol> {
        Err(NotASymbol)
    }

    fn serialize_newtype_struct<T: ?Sized + serde::Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<String, NotASymbol> {
        Err(NotASymbol)
    }

    fn serialize_newtype_variant<T: ?Sized + serde::Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, NotASymbol> {
        Err(NotASymbol)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotASymbol> {
        Err(NotASymbol)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotASymbol> {
        Err(NotASymbol)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotASymbol> {
        Err(NotASymbol)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotASymbol> {
        Err(NotASymbol)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotASymbol> {
        Err(NotASymbol)
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotASymbol> {
        Err(NotASymbol)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotASymbol> {
        Err(NotASymbol)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_table_and_view_a_projection_creates_is_exposed() {
        for projection in super::all() {
            for line in projection.ddl().lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                if let ["create", "table" | "view", name, ..] = words.as_slice() {
                    assert!(
                        projection.exposed().contains(name),
                        "{}: {name} is created but not exposed as read.{name}",
                        projection.name()
                    );
                }
            }
        }
    }

    use cruxlog_schemas::events::{ClimbStyle, Discipline};

    use super::symbol;

    #[test]
    fn symbols_are_the_lower_case_avro_names() {
        assert_eq!(symbol(&ClimbStyle::TopRope), "top_rope");
        assert_eq!(symbol(&Discipline::Boulder), "boulder");
        assert_eq!(
            symbol(&cruxlog_schemas::events::SealAlgorithm::Aes256Gcm),
            "aes_256_gcm"
        );
        assert_eq!(symbol(&42), "unknown");
    }
}
