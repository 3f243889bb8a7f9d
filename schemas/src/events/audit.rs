//! The `audit` aggregate (id = the subject user's id): admin reads of personal data
//! (DESIGN.md Security). Role changes need no audit event of their own: `RoleGranted` and
//! `RoleRevoked` on the user aggregate name the admin in their envelope's actor.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{aggregate, events_of};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PersonalResource {
    Profile,
    Contact,
    Body,
    Sessions,
    Attempts,
    Videos,
    Analyses,
    Ghosts,
    Routines,
    Injuries,
    Exports,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccessReason {
    SupportRequest,
    AbuseReport,
    LegalObligation,
    DataSubjectRequest,
    SecurityIncident,
    Other,
}

/// Holds ids only, so it is kept after the subject's erasure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonalDataViewed {
    pub admin_id: Uuid,
    pub subject_user_id: Uuid,
    pub resource: PersonalResource,
    /// The one resource read; `None` for a listing.
    pub resource_id: Option<Uuid>,
    pub reason: AccessReason,
    /// Ticket or case reference; never personal data.
    pub reference: Option<String>,
}

events_of!(aggregate::AUDIT, "cruxlog.audit": PersonalDataViewed);
