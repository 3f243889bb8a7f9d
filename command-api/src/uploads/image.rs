//! What a stored photo holds, read from its header and EXIF only: the pixels are never
//! decoded here, so a "decompression bomb" costs nothing and is refused by its pixel count.
//! A photo whose header is intact but whose pixel data is cut short is therefore accepted;
//! the analyzers that decode it report that.

use std::{fs::File, io::BufReader, path::Path};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone as _, Utc};
use exif::{In, Tag};

use crate::error::ApiError;

/// A photo's facts, upright: the EXIF orientation is applied to the dimensions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImageInfo {
    pub(crate) width_px: i32,
    pub(crate) height_px: i32,
    pub(crate) taken_at: Option<DateTime<Utc>>,
}

/// Reads the header of `path` (blocking: call it off the runtime). 422 (`image`) when the
/// header cannot be read.
pub(crate) fn inspect(path: &Path) -> Result<ImageInfo, ApiError> {
    let size = imagesize::size(path).map_err(|error| {
        tracing::info!(%error, "an image header could not be read");
        ApiError::invalid(
            "image",
            "could not be read as an image (truncated or corrupt)",
        )
    })?;
    let (Ok(width), Ok(height)) = (i32::try_from(size.width), i32::try_from(size.height)) else {
        return Err(ApiError::invalid("image", "is too large"));
    };
    if width == 0 || height == 0 {
        return Err(ApiError::invalid("image", "has no pixels"));
    }
    // No or broken EXIF is common (screenshots, stripped photos) and not an error.
    let exif = File::open(path).ok().and_then(|file| {
        exif::Reader::new()
            .read_from_container(&mut BufReader::new(file))
            .ok()
    });
    let orientation = exif
        .as_ref()
        .and_then(|exif| exif.get_field(Tag::Orientation, In::PRIMARY))
        .and_then(|field| field.value.get_uint(0));
    // Orientations 5 to 8 turn the picture a quarter; 1 to 4 only flip it.
    let (width_px, height_px) = match orientation {
        Some(5..=8) => (height, width),
        _ => (width, height),
    };
    Ok(ImageInfo {
        width_px,
        height_px,
        taken_at: exif.as_ref().and_then(taken_at),
    })
}

/// `DateTimeOriginal` with its `OffsetTimeOriginal`. Without an offset the time is a local
/// time somewhere unknown, so it is left out rather than guessed.
fn taken_at(exif: &exif::Exif) -> Option<DateTime<Utc>> {
    let ascii = |tag| match &exif.get_field(tag, In::PRIMARY)?.value {
        exif::Value::Ascii(values) => values.first().cloned(),
        _ => None,
    };
    let mut time = exif::DateTime::from_ascii(&ascii(Tag::DateTimeOriginal)?).ok()?;
    time.parse_offset(&ascii(Tag::OffsetTimeOriginal)?).ok()?;
    let offset = FixedOffset::east_opt(i32::from(time.offset?) * 60)?;
    let local = NaiveDate::from_ymd_opt(
        i32::from(time.year),
        u32::from(time.month),
        u32::from(time.day),
    )?
    .and_hms_opt(
        u32::from(time.hour),
        u32::from(time.minute),
        u32::from(time.second),
    )?;
    Some(
        offset
            .from_local_datetime(&local)
            .single()?
            .with_timezone(&Utc),
    )
}
