//! Samples of the `routine` aggregate.

use super::{GOAL, INJURY, ROUTINE, ROUTINE_EVENT, USER, analyzer, at, grade, id, note, sealed};
use crate::{
    events::{
        ActiveInjury, DayOfWeek, DomainEvent, Equipment, Exercise, ExerciseResult, Intensity,
        RoutineFailed, RoutineGenerated, RoutineRequested, RoutineWeek, TrainingFocus,
        WeeklyAvailability, Workout, WorkoutCompleted,
        sealed::{BodyPart, InjuryDetails, InjurySeverity, Side},
    },
    grades::GradeSystem,
};

pub(super) fn samples() -> Vec<DomainEvent> {
    let generator = analyzer("routine", 2, "periodization-rules-2026.03");
    vec![
        DomainEvent::RoutineRequested(RoutineRequested {
            routine_id: id(ROUTINE),
            user_id: id(USER),
            weeks: 4,
            availability: WeeklyAvailability {
                sessions_per_week: 3,
                minutes_per_session: 90,
                days: vec![DayOfWeek::Monday, DayOfWeek::Wednesday, DayOfWeek::Saturday],
            },
            focus: vec![TrainingFocus::Strength, TrainingFocus::PowerEndurance],
            equipment: vec![Equipment::Hangboard, Equipment::ClimbingGym],
            goal_id: Some(id(GOAL)),
            target_grade: Some(grade(GradeSystem::Fontainebleau, "7A")),
            injuries: vec![ActiveInjury {
                injury_id: id(INJURY),
                details: sealed(&InjuryDetails {
                    body_part: BodyPart::Finger,
                    side: Some(Side::Left),
                    severity: InjurySeverity::Mild,
                    started_on: Some("2026-03-02".into()),
                    description: Some("A2 pulley, healing.".into()),
                }),
            }],
            requested_analyzer_version: Some(2),
        }),
        DomainEvent::RoutineGenerated(RoutineGenerated {
            routine_id: id(ROUTINE),
            user_id: id(USER),
            input_event_id: id(ROUTINE_EVENT),
            analyzer: generator.clone(),
            weeks: vec![RoutineWeek {
                week: 1,
                theme: "base strength, open-hand grips".into(),
                workouts: vec![workout()],
            }],
            adapted_for_injury_ids: vec![id(INJURY)],
        }),
        DomainEvent::RoutineFailed(RoutineFailed {
            routine_id: id(ROUTINE),
            user_id: id(USER),
            input_event_id: id(ROUTINE_EVENT),
            analyzer: generator,
            reason: "no workout fits 3 sessions of 20 minutes with a severe finger injury".into(),
        }),
        DomainEvent::WorkoutCompleted(WorkoutCompleted {
            routine_id: id(ROUTINE),
            user_id: id(USER),
            workout_id: "w1-s1".into(),
            completed_at: at(60 * 24 * 2),
            duration_ms: Some(95 * 60_000),
            rpe: Some(7),
            exercises: vec![
                ExerciseResult {
                    exercise_id: "w1-s1-e1".into(),
                    sets_done: 5,
                    reps_done: Some(5),
                    added_load_kg: Some(5.0),
                    rpe: Some(8),
                },
                ExerciseResult {
                    exercise_id: "w1-s1-e2".into(),
                    sets_done: 4,
                    reps_done: Some(16),
                    added_load_kg: Some(0.0),
                    rpe: Some(7),
                },
            ],
            notes: Some(note(
                "Left ring finger fine on open hand, skipped half crimp.",
            )),
        }),
    ]
}

fn workout() -> Workout {
    Workout {
        workout_id: "w1-s1".into(),
        day: Some(DayOfWeek::Monday),
        focus: TrainingFocus::Strength,
        title: "Max hangs and limit bouldering".into(),
        estimated_minutes: 90,
        exercises: vec![
            Exercise {
                exercise_id: "w1-s1-e1".into(),
                code: "HANGBOARD_MAX_HANG".into(),
                name: "Max hangs, 20 mm edge, open hand".into(),
                sets: 5,
                reps: Some(1),
                work_seconds: Some(10),
                rest_seconds: 180,
                intensity: Intensity {
                    rpe: Some(8),
                    percent_max: Some(85.0),
                    added_load_kg: Some(5.0),
                    target_grade: None,
                },
                cue: "Open hand only, shoulders engaged.".into(),
            },
            Exercise {
                exercise_id: "w1-s1-e2".into(),
                code: "LIMIT_BOULDERING".into(),
                name: "Limit bouldering".into(),
                sets: 4,
                reps: Some(4),
                work_seconds: None,
                rest_seconds: 240,
                intensity: Intensity {
                    rpe: Some(9),
                    percent_max: None,
                    added_load_kg: None,
                    target_grade: Some(grade(GradeSystem::Fontainebleau, "6C+")),
                },
                cue: "Full rest between tries; stop when movement quality drops.".into(),
            },
        ],
    }
}
