//! Value types that several aggregates share. Each mirrors one named Avro type, defined
//! identically in every schema file that uses it.

use serde::{Deserialize, Serialize};

/// `cruxlog.geometry.Point`: normalized coordinates (0..1) of the upright image, origin top
/// left, y down.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// `cruxlog.geometry.BoundingBox`, normalized image coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

/// `cruxlog.wall.HoldColour`: colour of holds or of a route's tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldColour {
    Red,
    Orange,
    Yellow,
    Green,
    Blue,
    Purple,
    Pink,
    White,
    Black,
    Grey,
    Brown,
    /// Mixed-colour circuits.
    Multi,
    Other,
}

/// `cruxlog.training.DayOfWeek`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DayOfWeek {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
    Unknown,
}

/// `cruxlog.training.TrainingFocus`: what a climber wants to improve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrainingFocus {
    Strength,
    Power,
    Endurance,
    PowerEndurance,
    Technique,
    Flexibility,
    Mental,
    InjuryPrevention,
    General,
    Other,
}

/// `cruxlog.training.Equipment` a climber can train with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Equipment {
    Hangboard,
    CampusBoard,
    SystemBoard,
    SprayWall,
    HomeWall,
    PullUpBar,
    Rings,
    FreeWeights,
    Kettlebell,
    ResistanceBands,
    ClimbingGym,
    Other,
}

/// `cruxlog.training.WeeklyAvailability`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyAvailability {
    /// 1..14.
    pub sessions_per_week: i32,
    pub minutes_per_session: i32,
    /// Preferred days; empty when any day suits.
    pub days: Vec<DayOfWeek>,
}
