//! The `routine` aggregate (id = routine id): a requested training plan, the generated plan
//! and the workouts the climber completes from it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AnalyzerInfo, DayOfWeek, Equipment, Sealed, TrainingFocus, WeeklyAvailability, aggregate,
    events_of,
};
use crate::grades::Grade;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveInjury {
    pub injury_id: Uuid,
    /// Sealed [`super::sealed::InjuryDetails`], copied from `InjuryReported`.
    pub details: Sealed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutineRequested {
    pub routine_id: Uuid,
    pub user_id: Uuid,
    /// 1..16.
    pub weeks: i32,
    pub availability: WeeklyAvailability,
    pub focus: Vec<TrainingFocus>,
    pub equipment: Vec<Equipment>,
    pub goal_id: Option<Uuid>,
    pub target_grade: Option<Grade>,
    pub injuries: Vec<ActiveInjury>,
    pub requested_analyzer_version: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intensity {
    /// 1..10.
    pub rpe: Option<i32>,
    /// 0..100.
    pub percent_max: Option<f64>,
    pub added_load_kg: Option<f64>,
    pub target_grade: Option<Grade>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exercise {
    /// Unique within the routine, e.g. `w1-s2-e3`.
    pub exercise_id: String,
    /// Stable catalogue code, e.g. `HANGBOARD_MAX_HANG`.
    pub code: String,
    pub name: String,
    pub sets: i32,
    pub reps: Option<i32>,
    pub work_seconds: Option<i32>,
    pub rest_seconds: i32,
    pub intensity: Intensity,
    pub cue: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workout {
    /// Unique within the routine, e.g. `w1-s2`.
    pub workout_id: String,
    pub day: Option<DayOfWeek>,
    pub focus: TrainingFocus,
    pub title: String,
    pub estimated_minutes: i32,
    pub exercises: Vec<Exercise>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutineWeek {
    /// 1-based.
    pub week: i32,
    pub theme: String,
    pub workouts: Vec<Workout>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutineGenerated {
    pub routine_id: Uuid,
    pub user_id: Uuid,
    pub input_event_id: Uuid,
    pub analyzer: AnalyzerInfo,
    pub weeks: Vec<RoutineWeek>,
    pub adapted_for_injury_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutineFailed {
    pub routine_id: Uuid,
    pub user_id: Uuid,
    pub input_event_id: Uuid,
    pub analyzer: AnalyzerInfo,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExerciseResult {
    pub exercise_id: String,
    /// 0 when skipped.
    pub sets_done: i32,
    pub reps_done: Option<i32>,
    pub added_load_kg: Option<f64>,
    pub rpe: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkoutCompleted {
    pub routine_id: Uuid,
    pub user_id: Uuid,
    pub workout_id: String,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub completed_at: DateTime<Utc>,
    pub duration_ms: Option<i64>,
    pub rpe: Option<i32>,
    pub exercises: Vec<ExerciseResult>,
    /// Sealed [`super::sealed::Note`].
    pub notes: Option<Sealed>,
}

events_of!(aggregate::ROUTINE, "cruxlog.routine":
    RoutineRequested,
    RoutineGenerated,
    RoutineFailed,
    WorkoutCompleted,
);
