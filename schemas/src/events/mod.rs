//! Typed event payloads. Each struct mirrors the newest version of its schema in
//! `schemas/avro/`; older versions are resolved to it when read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// Aggregate types; each has its own topic (see [`crate::topics`]).
pub mod aggregate {
    pub const CLIMBING_SESSION: &str = "climbing_session";
    pub const ANALYSIS: &str = "analysis";
}

/// A payload type bound to its schema.
pub trait Event: Serialize + DeserializeOwned {
    /// Full Avro name, also the envelope's `event_type`.
    const NAME: &'static str;
    const AGGREGATE_TYPE: &'static str;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Discipline {
    Boulder,
    Sport,
    Trad,
    TopRope,
    Board,
}

impl Discipline {
    pub const ALL: [Self; 5] = [
        Self::Boulder,
        Self::Sport,
        Self::Trad,
        Self::TopRope,
        Self::Board,
    ];

    /// The lower-case name used by the REST API, the read models and the Python workers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boulder => "boulder",
            Self::Sport => "sport",
            Self::Trad => "trad",
            Self::TopRope => "top_rope",
            Self::Board => "board",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|discipline| discipline.as_str() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStarted {
    pub session_id: Uuid,
    pub user_id: Uuid,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub started_at: DateTime<Utc>,
    pub discipline: Discipline,
    pub indoor: bool,
    pub location_name: Option<String>,
    pub planned_minutes: Option<i32>,
}

impl Event for SessionStarted {
    const NAME: &'static str = "cruxlog.session.SessionStarted";
    const AGGREGATE_TYPE: &'static str = aggregate::CLIMBING_SESSION;
}

/// Which analyzer produced a result, for replays through new versions (A2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzerInfo {
    pub name: String,
    pub version: i32,
    pub model_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmupStep {
    pub name: String,
    pub minutes: i32,
    pub cue: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmupPlanned {
    pub analysis_id: Uuid,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub input_event_id: Uuid,
    pub analyzer: AnalyzerInfo,
    pub steps: Vec<WarmupStep>,
    pub total_minutes: i32,
}

impl Event for WarmupPlanned {
    const NAME: &'static str = "cruxlog.analysis.WarmupPlanned";
    const AGGREGATE_TYPE: &'static str = aggregate::ANALYSIS;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisFailed {
    pub analysis_id: Uuid,
    pub user_id: Uuid,
    pub input_event_id: Uuid,
    pub analyzer: AnalyzerInfo,
    pub reason: String,
}

impl Event for AnalysisFailed {
    const NAME: &'static str = "cruxlog.analysis.AnalysisFailed";
    const AGGREGATE_TYPE: &'static str = aggregate::ANALYSIS;
}

/// Declares the sum type of every event and its decoder from one list, so adding an event
/// is one line here plus its struct and schema file.
macro_rules! domain_events {
    ($($event:ident),+ $(,)?) => {
        /// Every event a consumer may meet, decoded.
        #[derive(Debug, Clone, PartialEq)]
        pub enum DomainEvent {
            $($event($event),)+
        }

        impl DomainEvent {
            /// The schema's full name, also the envelope's `event_type`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$event(_) => $event::NAME,)+
                }
            }

            pub fn aggregate_type(&self) -> &'static str {
                match self {
                    $(Self::$event(_) => $event::AGGREGATE_TYPE,)+
                }
            }

            /// Every event name, for catalogue checks.
            pub const NAMES: &'static [&'static str] = &[$($event::NAME,)+];

            /// Encodes the event with its metadata into a Kafka record value.
            pub fn encode(&self, meta: &crate::EventMeta) -> crate::Result<Vec<u8>> {
                match self {
                    $(Self::$event(event) => crate::codec::encode(meta, event),)+
                }
            }
        }

        /// Decodes a payload whose schema is named `event_type`.
        pub(crate) fn decode_named(event_type: &str, bytes: &[u8]) -> crate::Result<DomainEvent> {
            match event_type {
                $($event::NAME => Ok(DomainEvent::$event(crate::codec::read(bytes, $event::NAME)?)),)+
                other => Err(crate::CodecError::UnexpectedSchema { expected: "a known event", found: other.to_owned() }),
            }
        }
    };
}

domain_events! {
    SessionStarted,
    WarmupPlanned,
    AnalysisFailed,
}
