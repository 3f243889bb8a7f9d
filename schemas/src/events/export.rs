//! The `data_export` aggregate (id = export id): a user's machine-readable copy of all their
//! data (GDPR art. 20). Its own aggregate, so the exporter appends the result without racing
//! the user's writer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Sealed, aggregate, events_of};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExportFormat {
    /// A zip of one JSON file per resource plus the user's media.
    JsonZip,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataExportRequested {
    pub export_id: Uuid,
    pub user_id: Uuid,
    pub format: ExportFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataExported {
    pub export_id: Uuid,
    pub user_id: Uuid,
    /// Sealed [`super::sealed::MediaRef`] of the archive.
    pub archive: Sealed,
    pub size_bytes: i64,
    pub content_type: String,
    /// The archive is deleted after this instant.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub expires_at: DateTime<Utc>,
}

events_of!(aggregate::DATA_EXPORT, "cruxlog.export": DataExportRequested, DataExported);
