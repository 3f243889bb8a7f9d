//! Samples of the `user` aggregate.

use super::{
    GOAL, INJURY, KEY_ID, MORPHOLOGY_ANALYSIS, ROUTE, USER, analyzer, at, grade, id, morphology,
    note, sealed,
};
use crate::{
    events::{
        ConsentGiven, ConsentPurpose, ConsentWithdrawn, DayOfWeek, DomainEvent, EmailChanged,
        Equipment, ErasureReason, ExperienceLevel, GoalClosed, GoalKind, GoalOutcome, GoalSet,
        InjuryReported, InjuryResolved, MorphologyEstimated, PasswordChangeMethod, PasswordChanged,
        ProfileChanged, Role, RoleGranted, RoleRevoked, SealAlgorithm, Sealed, TrainingFocus,
        UserErased, UserRegistered, WeeklyAvailability,
        sealed::{
            BodyMeasurements, BodyPart, ContactDetails, Credential, EmailAddress, InjuryDetails,
            InjurySeverity, PersonalDetails, Side,
        },
    },
    grades::GradeSystem,
};

const PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$2PbQ0YbZ6QyWlN2i1dFs0bq2RrJkH1gk3wT0H8o2m5A";

pub(super) fn samples() -> Vec<DomainEvent> {
    let user_id = id(USER);
    vec![
        DomainEvent::UserRegistered(UserRegistered {
            user_id,
            contact: sealed(&ContactDetails {
                email: "lea.martin@example.org".into(),
                display_name: "Léa".into(),
            }),
            credential: sealed(&Credential {
                password_phc: PHC.into(),
            }),
            locale: Some("fr-FR".into()),
        }),
        DomainEvent::EmailChanged(EmailChanged {
            user_id,
            email: sealed(&EmailAddress {
                email: "lea@example.net".into(),
            }),
        }),
        DomainEvent::PasswordChanged(PasswordChanged {
            user_id,
            // What production writes: AES-256-GCM with a 12-byte nonce and a 16-byte tag.
            credential: Sealed {
                key_id: KEY_ID.into(),
                algorithm: SealAlgorithm::Aes256Gcm,
                nonce: (1..=12).collect(),
                ciphertext: (0..=255).step_by(3).collect(),
            },
            method: PasswordChangeMethod::Reset,
        }),
        DomainEvent::ProfileChanged(profile(user_id)),
        DomainEvent::MorphologyEstimated(MorphologyEstimated {
            user_id,
            morphology: morphology(),
            source_analysis_id: id(MORPHOLOGY_ANALYSIS),
            analyzer: analyzer("pose-morphology", 2, "rtmpose-m-body7-v1.1"),
            confidence: 0.82,
        }),
        DomainEvent::RoleGranted(RoleGranted {
            user_id,
            role: Role::Admin,
        }),
        DomainEvent::RoleRevoked(RoleRevoked {
            user_id,
            role: Role::Admin,
        }),
        DomainEvent::ConsentGiven(ConsentGiven {
            user_id,
            purpose: ConsentPurpose::VideoAnalysis,
            policy_version: "2026-03".into(),
        }),
        DomainEvent::ConsentWithdrawn(ConsentWithdrawn {
            user_id,
            purpose: ConsentPurpose::Marketing,
        }),
        DomainEvent::GoalSet(GoalSet {
            user_id,
            goal_id: id(GOAL),
            kind: GoalKind::Route,
            target_grade: Some(grade(GradeSystem::Fontainebleau, "7A")),
            route_id: Some(id(ROUTE)),
            target_date: Some(at(60 * 24 * 90)),
            description: Some(note("Send the pink 7A in the cave before summer.")),
        }),
        DomainEvent::GoalClosed(GoalClosed {
            user_id,
            goal_id: id(GOAL),
            outcome: GoalOutcome::Achieved,
        }),
        DomainEvent::InjuryReported(InjuryReported {
            user_id,
            injury_id: id(INJURY),
            details: sealed(&InjuryDetails {
                body_part: BodyPart::Finger,
                side: Some(Side::Left),
                severity: InjurySeverity::Moderate,
                started_on: Some("2026-03-02".into()),
                description: Some("A2 pulley tweak, ring finger, on a small crimp.".into()),
            }),
        }),
        DomainEvent::InjuryResolved(InjuryResolved {
            user_id,
            injury_id: id(INJURY),
        }),
        DomainEvent::UserErased(UserErased {
            user_id,
            key_ids: vec![KEY_ID.into(), "uk-0196-5a3c-0001-v2".into()],
            reason: ErasureReason::UserRequest,
        }),
    ]
}

fn profile(user_id: uuid::Uuid) -> ProfileChanged {
    ProfileChanged {
        user_id,
        personal: Some(sealed(&PersonalDetails {
            display_name: "Léa M.".into(),
            birth_year: Some(1994),
        })),
        body: Some(sealed(&BodyMeasurements {
            height_cm: Some(171.0),
            arm_span_cm: Some(176.5),
            weight_kg: Some(61.2),
        })),
        climbing_since_year: Some(2017),
        experience: ExperienceLevel::Intermediate,
        best_grades: vec![
            grade(GradeSystem::Fontainebleau, "6C+"),
            grade(GradeSystem::French, "7a"),
        ],
        focus: vec![TrainingFocus::Power, TrainingFocus::Technique],
        availability: Some(WeeklyAvailability {
            sessions_per_week: 3,
            minutes_per_session: 120,
            days: vec![DayOfWeek::Tuesday, DayOfWeek::Thursday, DayOfWeek::Sunday],
        }),
        equipment: vec![Equipment::Hangboard, Equipment::ClimbingGym],
    }
}
