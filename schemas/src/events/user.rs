//! The `user` aggregate (id = user id): account, profile, roles, consent, goals, injuries and
//! erasure. Personal data travels [`Sealed`] with the user's key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AnalyzerInfo, Equipment, Sealed, TrainingFocus, WeeklyAvailability, aggregate, events_of,
};
use crate::grades::Grade;

/// Sealed: [`super::sealed::ContactDetails`] and [`super::sealed::Credential`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub contact: Sealed,
    /// The Argon2id PHC string, sealed so copies of the log hold nothing to crack.
    pub credential: Sealed,
    /// BCP 47 tag, e.g. `fr-FR`.
    pub locale: Option<String>,
}

/// Sealed: [`super::sealed::EmailAddress`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailChanged {
    pub user_id: Uuid,
    pub email: Sealed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PasswordChangeMethod {
    /// The user gave the old password.
    Changed,
    /// Through an emailed reset link.
    Reset,
    AdminReset,
    Unknown,
}

/// Revokes every refresh token issued before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordChanged {
    pub user_id: Uuid,
    /// Sealed [`super::sealed::Credential`].
    pub credential: Sealed,
    pub method: PasswordChangeMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExperienceLevel {
    Beginner,
    Intermediate,
    Advanced,
    Elite,
    Unknown,
}

/// The whole profile as it now is (a snapshot, not a patch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileChanged {
    pub user_id: Uuid,
    /// Sealed [`super::sealed::PersonalDetails`].
    pub personal: Option<Sealed>,
    /// Sealed [`super::sealed::BodyMeasurements`].
    pub body: Option<Sealed>,
    pub climbing_since_year: Option<i32>,
    pub experience: ExperienceLevel,
    /// At most one per grade system.
    pub best_grades: Vec<Grade>,
    pub focus: Vec<TrainingFocus>,
    pub availability: Option<WeeklyAvailability>,
    pub equipment: Vec<Equipment>,
}

/// Appended by the user's writer in reaction to an analysis result, never by an analyzer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MorphologyEstimated {
    pub user_id: Uuid,
    /// Sealed [`super::sealed::Morphology`].
    pub morphology: Sealed,
    pub source_analysis_id: Uuid,
    pub analyzer: AnalyzerInfo,
    /// 0..1.
    pub confidence: f64,
}

/// A role a user can hold. `Unknown` (a role this reader does not know) grants nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    User,
    Admin,
    Unknown,
}

/// The envelope's actor is who granted it (`SYSTEM` for the bootstrap CLI).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleGranted {
    pub user_id: Uuid,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleRevoked {
    pub user_id: Uuid,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsentPurpose {
    TermsOfService,
    VideoAnalysis,
    BodyMeasurements,
    /// Injuries (GDPR art. 9).
    HealthData,
    ProductAnalytics,
    Research,
    Marketing,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentGiven {
    pub user_id: Uuid,
    pub purpose: ConsentPurpose,
    /// Version of the text agreed to, e.g. `2026-03`.
    pub policy_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentWithdrawn {
    pub user_id: Uuid,
    pub purpose: ConsentPurpose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GoalKind {
    Grade,
    Route,
    Training,
    Competition,
    Other,
}

/// Sets or replaces (same `goal_id`) a goal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoalSet {
    pub user_id: Uuid,
    pub goal_id: Uuid,
    pub kind: GoalKind,
    pub target_grade: Option<Grade>,
    pub route_id: Option<Uuid>,
    #[serde(with = "chrono::serde::ts_microseconds_option", default)]
    pub target_date: Option<DateTime<Utc>>,
    /// Sealed [`super::sealed::Note`].
    pub description: Option<Sealed>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GoalOutcome {
    Achieved,
    Abandoned,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoalClosed {
    pub user_id: Uuid,
    pub goal_id: Uuid,
    pub outcome: GoalOutcome,
}

/// Health data: everything but the ids is sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjuryReported {
    pub user_id: Uuid,
    pub injury_id: Uuid,
    /// Sealed [`super::sealed::InjuryDetails`].
    pub details: Sealed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjuryResolved {
    pub user_id: Uuid,
    pub injury_id: Uuid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErasureReason {
    UserRequest,
    AdminDecision,
    /// The documented retention period ran out.
    Inactivity,
    Unknown,
}

/// Crypto-shredding marker: the keys are gone; projectors delete the user's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserErased {
    pub user_id: Uuid,
    pub key_ids: Vec<String>,
    pub reason: ErasureReason,
}

events_of!(aggregate::USER, "cruxlog.user":
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
);
