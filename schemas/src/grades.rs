//! Climbing grades: French sport (4a…9c+), V-scale (VB…V17) and Fontainebleau (3…9A),
//! each mapped onto one numeric difficulty scale so grades of different systems compare.
//! Unknown grades are validation errors, never a silent default.

use serde::{Deserialize, Serialize};

/// Which grading system a grade is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GradeSystem {
    French,
    VScale,
    Fontainebleau,
}

/// A grade as the climber wrote it, in its system; `label` is the canonical spelling
/// (`7a+`, `V5`, `6C+`). Matches the `Grade` record of the schemas.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grade {
    pub system: GradeSystem,
    pub label: String,
}
