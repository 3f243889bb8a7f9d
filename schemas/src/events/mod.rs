//! Typed event payloads. Each struct mirrors the newest version of its schema in
//! `schemas/avro/`; older versions are resolved to it when read.
//!
//! Layout, one module per aggregate (all re-exported here):
//! - [`user`]: accounts, profile, roles, consent, goals, injuries, erasure.
//! - [`export`]: data exports (GDPR art. 20).
//! - [`wall`]: gyms, walls and routes.
//! - [`session`]: climbing sessions, attempts and their videos.
//! - [`analysis`]: analysis requests and analyzer results.
//! - [`ghost`]: ghost climbs.
//! - [`routine`]: training routines and completed workouts.
//! - [`audit`]: admin reads of personal data.
//! - [`common`]: value types several aggregates share (geometry, training).
//! - [`sealed`]: encrypted personal data and its plaintext types.
//! - [`samples`]: one realistic sample of every event, for round-trip and cross-language tests.

use serde::{Serialize, de::DeserializeOwned};

pub mod analysis;
pub mod audit;
pub mod common;
pub mod export;
pub mod ghost;
pub mod routine;
pub mod samples;
pub mod sealed;
pub mod session;
pub mod user;
pub mod wall;

pub use analysis::*;
pub use audit::*;
pub use common::*;
pub use export::*;
pub use ghost::*;
pub use routine::*;
pub use sealed::{SealAlgorithm, Sealed};
pub use session::*;
pub use user::*;
pub use wall::*;

/// Aggregate types; each has its own topic (see [`crate::topics`]).
pub mod aggregate {
    pub const USER: &str = "user";
    pub const DATA_EXPORT: &str = "data_export";
    pub const GYM: &str = "gym";
    pub const WALL: &str = "wall";
    pub const ROUTE: &str = "route";
    pub const CLIMBING_SESSION: &str = "climbing_session";
    pub const ANALYSIS: &str = "analysis";
    pub const GHOST: &str = "ghost";
    pub const ROUTINE: &str = "routine";
    pub const AUDIT: &str = "audit";
}

/// A payload type bound to its schema.
pub trait Event: Serialize + DeserializeOwned {
    /// Full Avro name, also the envelope's `event_type`.
    const NAME: &'static str;
    const AGGREGATE_TYPE: &'static str;
}

/// Implements [`Event`] for payload types of one aggregate.
macro_rules! events_of {
    ($aggregate:expr, $namespace:literal: $($event:ident),+ $(,)?) => {
        $(impl $crate::events::Event for $event {
            const NAME: &'static str = concat!($namespace, ".", stringify!($event));
            const AGGREGATE_TYPE: &'static str = $aggregate;
        })+
    };
}
pub(crate) use events_of;

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

            /// The aggregate type of the event named `name`, if it is an event.
            pub fn aggregate_of(name: &str) -> Option<&'static str> {
                match name {
                    $($event::NAME => Some($event::AGGREGATE_TYPE),)+
                    _ => None,
                }
            }

            /// Encodes the event with its metadata into a Kafka record value.
            pub fn encode(&self, meta: &crate::EventMeta) -> crate::Result<Vec<u8>> {
                match self {
                    $(Self::$event(event) => crate::codec::encode(meta, event),)+
                }
            }
        }

        $(impl From<$event> for DomainEvent {
            fn from(event: $event) -> Self {
                Self::$event(event)
            }
        })+

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
    // user
    UserRegistered,
    EmailChanged,
    PasswordChanged,
    ProfileChanged,
    MorphologyEstimated,
    RoleGranted,
    RoleRevoked,
    ConsentGiven,
    ConsentWithdrawn,
    GoalSet,
    GoalClosed,
    InjuryReported,
    InjuryResolved,
    UserErased,
    // data_export
    DataExportRequested,
    DataExported,
    // gym, wall, route
    GymRegistered,
    WallRegistered,
    WallPhotoUploaded,
    RouteDefined,
    RouteConfirmed,
    RouteRetired,
    // climbing_session
    SessionStarted,
    AttemptLogged,
    AttemptCorrected,
    AttemptDeleted,
    VideoAttached,
    SessionEnded,
    // analysis
    AnalysisRequested,
    AnalysisCompleted,
    HoldsDetected,
    WarmupPlanned,
    AnalysisFailed,
    // ghost
    GhostRequested,
    GhostGenerated,
    GhostFailed,
    // routine
    RoutineRequested,
    RoutineGenerated,
    RoutineFailed,
    WorkoutCompleted,
    // audit
    PersonalDataViewed,
}
