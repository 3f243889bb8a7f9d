//! Upload intake (issue #4): videos and photos streamed, never whole in memory, into the
//! object store under their SHA-256 (A5), and checked from their bytes, not from what the
//! client says they are.
//!
//! Each check refuses before anything more is read or kept:
//! 1. The declared `Content-Type`, when there is one, must be `application/octet-stream` or
//!    one of the kind's types (any of them: clients guess it from the file name, so a `.mov`
//!    sent as `video/mp4` is fine); otherwise 415. What is reported is what was sniffed.
//! 2. A declared `Content-Length` over the size limit: 413, nothing read.
//! 3. The first bytes ([`sniff`]) must be an accepted format of the kind: 415.
//! 4. The body streams through [`BlobStore::put_stream`], which hashes it and stops past the
//!    size limit (413, also without `Content-Length`); a body that fails midway (client
//!    gone) is refused. Either way nothing stays in the store.
//! 5. The stored bytes are fetched to a temporary file and read (ffprobe for videos, the
//!    header for photos); a refusal there (415, or 422 naming `video` or `image`) deletes
//!    the blob again. Fetching rather than reading the store's files keeps S3 working.
//!
//! Memory: this module holds at most [`sniff::SNIFF_BYTES`] plus one chunk of a body; the
//! blob store holds up to three 5 MiB parts. `tests/uploads.rs` counts the bytes alive at
//! once, wherever they are, while a 200 MB body goes through: about 10 MiB (asserted at
//! most 16 MiB), whatever the body's size.
//!
//! HEIC photos (the iPhone camera's default) are refused with 415 for now: the vision
//! workers cannot decode them and no test file can be made here; clients send JPEG.
//!
//! Layout:
//! - [`sniff`]: the format from the first bytes, and the held head of a body.
//! - [`probe`]: video facts through a boxed-in `ffprobe`.
//! - [`image`]: photo facts from the header and EXIF.

mod image;
mod probe;
mod sniff;

use anyhow::Context as _;
use axum::body::Body;
use chrono::{DateTime, Utc};
use cruxlog_runtime::blobs::{BlobError, BlobStore, StoredBlob};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use sniff::{Format, Head};

const IMAGE_TYPES: &str = "image/jpeg or image/png";

/// The `uploads` section of the API's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadLimits {
    /// Largest video accepted, in bytes (500 MiB: about three minutes of 4K from a phone).
    pub max_video_bytes: u64,
    /// Longest video accepted, in seconds: a climb, not a session; analysis time grows with it.
    pub max_video_seconds: f64,
    /// Largest photo accepted, in bytes.
    pub max_image_bytes: u64,
    /// Most pixels in a photo (width times height): a small file can declare a huge image
    /// that would exhaust memory when the analyzers decode it.
    pub max_image_pixels: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_video_bytes: 500 * 1024 * 1024,
            max_video_seconds: 180.0,
            max_image_bytes: 25 * 1024 * 1024,
            max_image_pixels: 50_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Video,
    Image,
}

impl MediaKind {
    /// The field that 422s name.
    fn field(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Image => "image",
        }
    }

    /// Where the blobs go in the store.
    fn prefix(self) -> &'static str {
        match self {
            Self::Video => "videos",
            Self::Image => "images",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::Video => probe::VIDEO_TYPES,
            Self::Image => IMAGE_TYPES,
        }
    }

    /// Declared types taken for this kind (`image/jpg` is wrong but common).
    fn declarable(self, essence: &str) -> bool {
        match self {
            Self::Video => matches!(essence, "video/mp4" | "video/quicktime"),
            Self::Image => matches!(essence, "image/jpeg" | "image/jpg" | "image/png"),
        }
    }
}

/// A stored video. Width and height are as stored; `rotation_degrees` turns them upright.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedVideo {
    pub blob: StoredBlob,
    /// `video/mp4` or `video/quicktime`, from the bytes.
    pub content_type: String,
    pub duration_ms: i64,
    pub width_px: i32,
    pub height_px: i32,
    /// 0, 90, 180 or 270: clockwise turn that shows the video upright (90 for a phone held
    /// upright, whose sensor records landscape).
    pub rotation_degrees: i32,
    pub frame_rate: Option<f64>,
    /// The container's `creation_time`, when the camera wrote a real one.
    pub recorded_at: Option<DateTime<Utc>>,
}

/// A stored photo, its dimensions upright (EXIF orientation applied).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedImage {
    pub blob: StoredBlob,
    /// `image/jpeg` or `image/png`, from the bytes.
    pub content_type: String,
    pub width_px: i32,
    pub height_px: i32,
    /// EXIF `DateTimeOriginal`, only when its UTC offset is recorded too.
    pub taken_at: Option<DateTime<Utc>>,
}

/// The upload's declared `Content-Type` and `Content-Length`, as the intake takes them.
pub fn declared(headers: &axum::http::HeaderMap) -> (Option<&str>, Option<u64>) {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let length = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (content_type, length)
}

/// Stores a video under `videos/` and reads its facts; see the module for what is refused.
pub async fn receive_video(
    store: &BlobStore,
    limits: &UploadLimits,
    declared_content_type: Option<&str>,
    declared_length: Option<u64>,
    body: Body,
) -> Result<ReceivedVideo, ApiError> {
    let kind = MediaKind::Video;
    let (blob, format) = store_checked(
        store,
        kind,
        limits.max_video_bytes,
        declared_content_type,
        declared_length,
        body,
    )
    .await?;
    let checked = async {
        let copy = local_copy(store, &blob).await?;
        let info = probe::probe_video(&copy).await?;
        if info.duration_ms as f64 > limits.max_video_seconds * 1000.0 {
            let limit = limits.max_video_seconds;
            return Err(ApiError::invalid("video", format!("longer than {limit} s")));
        }
        Ok(info)
    };
    let info = keep_or_discard(store, &blob, checked.await).await?;
    Ok(ReceivedVideo {
        content_type: format.content_type().to_owned(),
        duration_ms: info.duration_ms,
        width_px: info.width_px,
        height_px: info.height_px,
        rotation_degrees: info.rotation_degrees,
        frame_rate: info.frame_rate,
        recorded_at: info.recorded_at,
        blob,
    })
}

/// Stores a photo under `images/` and reads its facts; see the module for what is refused.
pub async fn receive_image(
    store: &BlobStore,
    limits: &UploadLimits,
    declared_content_type: Option<&str>,
    declared_length: Option<u64>,
    body: Body,
) -> Result<ReceivedImage, ApiError> {
    let kind = MediaKind::Image;
    let (blob, format) = store_checked(
        store,
        kind,
        limits.max_image_bytes,
        declared_content_type,
        declared_length,
        body,
    )
    .await?;
    let checked = async {
        let copy = local_copy(store, &blob).await?;
        let info = tokio::task::spawn_blocking(move || image::inspect(&copy))
            .await
            .context("reading an image header")??;
        let pixels = i64::from(info.width_px) * i64::from(info.height_px);
        if u64::try_from(pixels).unwrap_or(u64::MAX) > limits.max_image_pixels {
            let limit = limits.max_image_pixels;
            return Err(ApiError::invalid(
                "image",
                format!("more than {limit} pixels"),
            ));
        }
        Ok(info)
    };
    let info = keep_or_discard(store, &blob, checked.await).await?;
    Ok(ReceivedImage {
        content_type: format.content_type().to_owned(),
        width_px: info.width_px,
        height_px: info.height_px,
        taken_at: info.taken_at,
        blob,
    })
}

/// Steps 1 to 4 of the module: the declared headers, the sniffed format, the streamed put.
async fn store_checked(
    store: &BlobStore,
    kind: MediaKind,
    max_bytes: u64,
    declared_content_type: Option<&str>,
    declared_length: Option<u64>,
    body: Body,
) -> Result<(StoredBlob, Format), ApiError> {
    if let Some(declared) = declared_content_type {
        let essence = declared.split(';').next().unwrap_or_default().trim();
        let essence = essence.to_ascii_lowercase();
        if essence != "application/octet-stream" && !kind.declarable(&essence) {
            return Err(ApiError::UnsupportedMediaType(kind.expected()));
        }
    }
    if declared_length.is_some_and(|length| length > max_bytes) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = body.into_data_stream();
    let head = Head::read(&mut body)
        .await
        .map_err(|error| body_failed(kind, &error))?;
    let format = head
        .format()
        .filter(|format| format.kind() == kind)
        .ok_or(ApiError::UnsupportedMediaType(kind.expected()))?;
    let blob = store
        .put_stream(kind.prefix(), head.chain(body), max_bytes)
        .await
        .map_err(|error| match error {
            BlobError::TooLarge { .. } => ApiError::PayloadTooLarge,
            BlobError::Source(cause) => body_failed(kind, &*cause),
            other => ApiError::Internal(anyhow::Error::new(other).context("storing an upload")),
        })?;
    Ok((blob, format))
}

/// A body that failed while being read: a body-limit layer's refusal is a 413; anything
/// else is the client going away, which nobody will read but the log.
fn body_failed(kind: MediaKind, error: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if current.is::<http_body_util::LengthLimitError>() {
            return ApiError::PayloadTooLarge;
        }
        cause = current.source();
    }
    tracing::info!(%error, "upload body failed");
    ApiError::invalid(kind.field(), "the upload ended before its last byte")
}

/// The blob in a temporary file, removed when the returned path is dropped.
async fn local_copy(store: &BlobStore, blob: &StoredBlob) -> Result<tempfile::TempPath, ApiError> {
    let path = tempfile::Builder::new()
        .prefix("cruxlog-upload-")
        .tempfile()
        .context("creating a temporary file")?
        .into_temp_path();
    store
        .get_to_file(&blob.key, &path)
        .await
        .with_context(|| format!("fetching {} to probe it", blob.key))?;
    Ok(path)
}

/// Deletes a refused blob. Deleting by content address is safe because the same bytes
/// would have been refused before too; only a tightened limit could make an earlier,
/// accepted upload of the very same bytes lose its blob.
async fn keep_or_discard<T>(
    store: &BlobStore,
    blob: &StoredBlob,
    checked: Result<T, ApiError>,
) -> Result<T, ApiError> {
    if checked.is_err()
        && let Err(error) = store.delete(&blob.key).await
    {
        tracing::warn!(%error, key = %blob.key, "a refused upload could not be deleted");
    }
    checked
}
