//! One realistic sample of every event, each with every optional field filled and every
//! array non-empty, for round-trip tests here and cross-language tests (Python reads what
//! Rust writes). Ids and instants are fixed, so encoded samples are stable bytes.
//!
//! Sealed fields are `PLAINTEXT_DEV`, so a test can open them and see the plaintext shape.

mod admin;
mod analysis;
mod ghost;
mod places;
mod routine;
mod session;
mod user;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    AnalyzerInfo, DomainEvent,
    sealed::{MediaRef, Morphology, Note, Plaintext, Sealed},
};
use crate::grades::{Grade, GradeSystem};

/// One sample of every event, in `DomainEvent::NAMES` order.
pub fn all() -> Vec<DomainEvent> {
    [
        user::samples(),
        admin::exports(),
        places::samples(),
        session::samples(),
        analysis::samples(),
        ghost::samples(),
        routine::samples(),
        admin::audits(),
    ]
    .concat()
}

/// A fixed UUIDv7-shaped id; `n` tells samples apart.
fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0196_5a3c_1e00_7000_8000_0000_0000_0000 | n)
}

const USER: u128 = 0x01;
const ADMIN: u128 = 0x02;
const GYM: u128 = 0x10;
const WALL: u128 = 0x11;
const PHOTO: u128 = 0x12;
const ROUTE: u128 = 0x13;
const SESSION: u128 = 0x20;
const ATTEMPT: u128 = 0x21;
const VIDEO: u128 = 0x22;
const GOAL: u128 = 0x30;
const INJURY: u128 = 0x31;
const MOVEMENT_ANALYSIS: u128 = 0x40;
const HOLDS_ANALYSIS: u128 = 0x41;
const MORPHOLOGY_ANALYSIS: u128 = 0x42;
const WARMUP_ANALYSIS: u128 = 0x43;
const GHOST: u128 = 0x50;
const ROUTINE: u128 = 0x60;
const EXPORT: u128 = 0x70;
/// Ids of the events that analyses and generators consume.
const VIDEO_EVENT: u128 = 0x80;
const PHOTO_EVENT: u128 = 0x81;
const SESSION_EVENT: u128 = 0x82;
const GHOST_EVENT: u128 = 0x83;
const ROUTINE_EVENT: u128 = 0x84;

/// 2026-03-14T18:00:00Z plus `minutes`.
fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_773_511_200 + minutes * 60, 0).unwrap_or_default()
}

const KEY_ID: &str = "uk-0196-5a3c-0001-v1";

fn sealed<T: Plaintext>(plaintext: &T) -> Sealed {
    Sealed::dev(KEY_ID, plaintext)
}

fn media(object_key: &str, sha256_byte: char) -> Sealed {
    sealed(&MediaRef {
        object_key: object_key.into(),
        sha256: std::iter::repeat_n(sha256_byte, 64).collect(),
    })
}

fn note(text: &str) -> Sealed {
    sealed(&Note { text: text.into() })
}

fn morphology() -> Sealed {
    let segments = [
        ("torso", 52.0),
        ("shoulder_width", 41.5),
        ("upper_arm_left", 30.5),
        ("forearm_left", 27.0),
        ("thigh_left", 44.0),
        ("shin_left", 41.0),
    ];
    sealed(&Morphology {
        height_cm: 172.5,
        arm_span_cm: 178.0,
        segments_cm: segments
            .into_iter()
            .map(|(name, cm)| (name.to_owned(), cm))
            .collect(),
    })
}

fn grade(system: GradeSystem, label: &str) -> Grade {
    Grade {
        system,
        label: label.into(),
    }
}

fn analyzer(name: &str, version: i32, model_id: &str) -> AnalyzerInfo {
    AnalyzerInfo {
        name: name.into(),
        version,
        model_id: model_id.into(),
    }
}
