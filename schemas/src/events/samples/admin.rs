//! Samples of the `data_export` and `audit` aggregates.

use super::{ADMIN, EXPORT, SESSION, USER, at, id, media};
use crate::events::{
    AccessReason, DataExportRequested, DataExported, DomainEvent, ExportFormat, PersonalDataViewed,
    PersonalResource,
};

pub(super) fn exports() -> Vec<DomainEvent> {
    vec![
        DomainEvent::DataExportRequested(DataExportRequested {
            export_id: id(EXPORT),
            user_id: id(USER),
            format: ExportFormat::JsonZip,
        }),
        DomainEvent::DataExported(DataExported {
            export_id: id(EXPORT),
            user_id: id(USER),
            archive: media("exports/0196/lea-export.zip", 'e'),
            size_bytes: 734_003_200,
            content_type: "application/zip".into(),
            expires_at: at(60 * 24 * 7),
        }),
    ]
}

pub(super) fn audits() -> Vec<DomainEvent> {
    vec![DomainEvent::PersonalDataViewed(PersonalDataViewed {
        admin_id: id(ADMIN),
        subject_user_id: id(USER),
        resource: PersonalResource::Sessions,
        resource_id: Some(id(SESSION)),
        reason: AccessReason::SupportRequest,
        reference: Some("SUP-4821".into()),
    })]
}
