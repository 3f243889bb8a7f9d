//! Upload intake against a real local blob store and the real `ffprobe`, with media made
//! by `ffmpeg` in a temporary directory.

#[path = "uploads/media.rs"]
mod media;

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use axum::{body::Body, http::StatusCode, response::IntoResponse as _};
use bytes::Bytes;
use cruxlog_command_api::{
    error::ApiError,
    uploads::{UploadLimits, receive_image, receive_video},
};
use media::{Store, body_of, h264_mp4};

const MIB: usize = 1024 * 1024;
const MP4_HEAD: &[u8] = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41";

fn status(result: Result<impl std::fmt::Debug, ApiError>) -> StatusCode {
    result.expect_err("a refusal").into_response().status()
}

fn field_of(result: Result<impl std::fmt::Debug, ApiError>) -> String {
    match result {
        Err(ApiError::Validation(errors)) => errors[0].field.clone(),
        other => panic!("expected a 422, got {other:?}"),
    }
}

/// A body of `head` then `total` bytes of zeros in 64 KiB chunks, then `end`.
fn streamed(head: &[u8], total: usize, end: Option<std::io::Error>) -> Body {
    let head = std::iter::once(Ok(Bytes::copy_from_slice(head)));
    let zeros = (0..total / (64 * 1024)).map(|_| Ok(Bytes::from(vec![0u8; 64 * 1024])));
    let end = end.into_iter().map(Err);
    Body::from_stream(futures::stream::iter(head.chain(zeros).chain(end)))
}

#[tokio::test]
async fn an_h264_mp4_is_stored_under_its_sha256_with_its_facts() {
    let store = Store::new();
    let work = tempfile::tempdir().expect("tempdir");
    let file = h264_mp4(work.path(), "climb.mp4", 2);
    let (body, length) = body_of(&file);
    let limits = UploadLimits::default();
    let video = receive_video(&store.blobs, &limits, Some("video/mp4"), Some(length), body)
        .await
        .expect("an accepted video");
    assert_eq!(video.blob.sha256, media::sha256_of(&file));
    assert_eq!(video.blob.size, length);
    assert!(video.blob.key.starts_with("videos/sha256/"));
    assert!(store.blobs.exists(&video.blob.key).await.expect("exists"));
    assert_eq!(video.content_type, "video/mp4");
    assert!(
        (1950..=2050).contains(&video.duration_ms),
        "{}",
        video.duration_ms
    );
    assert_eq!(
        (video.width_px, video.height_px, video.rotation_degrees),
        (320, 240, 0)
    );
    assert_eq!(video.frame_rate, Some(25.0));
    let recorded = video.recorded_at.map(|at| at.to_rfc3339());
    assert_eq!(recorded.as_deref(), Some("2024-05-01T10:00:00+00:00"));
}

#[tokio::test]
async fn a_portrait_mov_is_quicktime_turned_90_degrees_clockwise() {
    let store = Store::new();
    let work = tempfile::tempdir().expect("tempdir");
    let mov = media::portrait_mov(&h264_mp4(work.path(), "plain.mp4", 1), work.path());
    // The convention checked against ffmpeg's own display: the black left bar is on top.
    assert!(
        media::upright_top_grey(&mov) < 40.0,
        "ffmpeg shows it turned another way"
    );
    let (body, length) = body_of(&mov);
    let limits = UploadLimits::default();
    let video = receive_video(&store.blobs, &limits, None, Some(length), body)
        .await
        .expect("an accepted video");
    assert_eq!(video.content_type, "video/quicktime");
    assert_eq!(video.rotation_degrees, 90);
    assert_eq!((video.width_px, video.height_px), (320, 240));
}

#[tokio::test]
async fn text_named_mp4_is_415_whatever_it_declares() {
    let store = Store::new();
    let text = Body::from("just some notes about a climb, not a video at all\n");
    let limits = UploadLimits::default();
    let sniffed = receive_video(&store.blobs, &limits, Some("video/mp4"), None, text).await;
    assert_eq!(status(sniffed), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let declared = receive_video(
        &store.blobs,
        &limits,
        Some("text/plain"),
        None,
        Body::empty(),
    );
    assert_eq!(status(declared.await), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(store.files_left().await, Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn a_truncated_mp4_is_422_and_nothing_is_kept() {
    let store = Store::new();
    let work = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(h264_mp4(work.path(), "climb.mp4", 2)).expect("the video");
    let cut = Body::from(bytes[..bytes.len() / 2].to_vec());
    let limits = UploadLimits::default();
    let result = receive_video(&store.blobs, &limits, None, None, cut).await;
    assert_eq!(field_of(result), "video");
    assert_eq!(store.files_left().await, Vec::<std::path::PathBuf>::new());
}

/// A phone's "fast start" MP4 has its index first: cut short, it still has a whole index and
/// its full duration; the packets the index lists but the file lacks give it away.
#[tokio::test]
async fn a_truncated_fast_start_mp4_is_422_and_nothing_is_kept() {
    let store = Store::new();
    let work = tempfile::tempdir().expect("tempdir");
    let path = work.path().join("faststart.mp4");
    let target = path.to_str().expect("a UTF-8 path");
    media::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        target,
    ]);
    let bytes = std::fs::read(&path).expect("the video");
    let limits = UploadLimits::default();
    let whole = receive_video(&store.blobs, &limits, None, None, Body::from(bytes.clone())).await;
    assert!(whole.is_ok(), "the whole file is taken");
    let cut = Body::from(bytes[..bytes.len() / 2].to_vec());
    let store = Store::new();
    let result = receive_video(&store.blobs, &limits, None, None, cut).await;
    assert_eq!(field_of(result), "video");
    assert_eq!(store.files_left().await, Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn an_mpeg4_part_2_video_is_415_and_deleted() {
    let store = Store::new();
    let work = tempfile::tempdir().expect("tempdir");
    let path = work.path().join("old.mp4");
    let target = path.to_str().expect("a UTF-8 path");
    media::ffmpeg(&[
        "-f", "lavfi", "-i", "testsrc", "-t", "1", "-c:v", "mpeg4", target,
    ]);
    let (body, length) = body_of(&path);
    let limits = UploadLimits::default();
    let result = receive_video(&store.blobs, &limits, None, Some(length), body).await;
    assert_eq!(status(result), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(store.files_left().await, Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_413_before_anything_is_read() {
    let store = Store::new();
    let polled = Arc::new(AtomicBool::new(false));
    let seen = polled.clone();
    let body = Body::from_stream(futures::stream::poll_fn(move |_| {
        seen.store(true, Ordering::SeqCst);
        std::task::Poll::Ready(None::<Result<Bytes, std::io::Error>>)
    }));
    let limits = UploadLimits::default();
    let over = Some(limits.max_video_bytes + 1);
    let result = receive_video(&store.blobs, &limits, Some("video/mp4"), over, body).await;
    assert_eq!(status(result), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!polled.load(Ordering::SeqCst), "the body was read");
    assert_eq!(store.files_left().await, Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn a_body_over_the_limit_without_a_length_is_413_and_nothing_is_kept() {
    let store = Store::new();
    let limits = UploadLimits {
        max_video_bytes: 6 * MIB as u64,
        ..UploadLimits::default()
    };
    let body = streamed(MP4_HEAD, 8 * MIB, None);
    let result = receive_video(&store.blobs, &limits, None, None, body).await;
    assert_eq!(status(result), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(store.files_left().await, Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn a_body_failing_midway_leaves_nothing_behind() {
    let store = Store::new();
    // Past one 5 MiB part, so a part is already written when the client goes.
    let gone = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client gone");
    let body = streamed(MP4_HEAD, 7 * MIB, Some(gone));
    let limits = UploadLimits::default();
    let result = receive_video(&store.blobs, &limits, None, None, body).await;
    assert_eq!(field_of(result), "video");
    assert_eq!(store.files_left().await, Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn a_video_too_long_is_422_and_its_blob_deleted() {
    let store = Store::new();
    let work = tempfile::tempdir().expect("tempdir");
    let (body, length) = body_of(&h264_mp4(work.path(), "long.mp4", 3));
    let limits = UploadLimits {
        max_video_seconds: 2.0,
        ..UploadLimits::default()
    };
    let result = receive_video(&store.blobs, &limits, None, Some(length), body).await;
    assert_eq!(field_of(result), "video");
    assert_eq!(store.files_left().await, Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn png_and_jpeg_are_stored_with_their_upright_dimensions() {
    let store = Store::new();
    let work = tempfile::tempdir().expect("tempdir");
    let png = work.path().join("wall.png");
    let target = png.to_str().expect("a UTF-8 path");
    media::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48",
        "-frames:v",
        "1",
        target,
    ]);
    let limits = UploadLimits::default();
    let (body, length) = body_of(&png);
    let image = receive_image(&store.blobs, &limits, Some("image/png"), Some(length), body)
        .await
        .expect("an accepted PNG");
    assert_eq!(
        (image.content_type.as_str(), image.width_px, image.height_px),
        ("image/png", 64, 48)
    );
    assert_eq!(image.blob.sha256, media::sha256_of(&png));
    assert!(image.blob.key.starts_with("images/sha256/"));
    assert_eq!(image.taken_at, None);

    let jpeg = media::jpeg_with_exif(work.path());
    let (body, length) = body_of(&jpeg);
    let image = receive_image(
        &store.blobs,
        &limits,
        Some("image/jpeg"),
        Some(length),
        body,
    )
    .await
    .expect("an accepted JPEG");
    assert_eq!(
        (image.content_type.as_str(), image.width_px, image.height_px),
        ("image/jpeg", 48, 64)
    );
    let taken = image.taken_at.map(|at| at.to_rfc3339());
    assert_eq!(taken.as_deref(), Some("2024-05-01T10:30:00+00:00"));
}

#[tokio::test]
async fn a_gif_is_415_and_too_many_pixels_is_422() {
    let store = Store::new();
    let work = tempfile::tempdir().expect("tempdir");
    let gif = work.path().join("wall.gif");
    let target = gif.to_str().expect("a UTF-8 path");
    media::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48",
        "-frames:v",
        "1",
        target,
    ]);
    let limits = UploadLimits::default();
    let (body, _) = body_of(&gif);
    let result = receive_image(&store.blobs, &limits, None, None, body).await;
    assert_eq!(status(result), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let small = UploadLimits {
        max_image_pixels: 1000,
        ..UploadLimits::default()
    };
    let (body, _) = body_of(&media::jpeg_with_exif(work.path()));
    let result = receive_image(&store.blobs, &small, None, None, body).await;
    assert_eq!(field_of(result), "image");
    assert_eq!(store.files_left().await, Vec::<std::path::PathBuf>::new());
}

/// Counts the bytes of every chunk alive anywhere (the intake, the blob store's parts),
/// whoever holds them: a chunk leaves the count when its last reference goes.
struct Counted {
    bytes: Vec<u8>,
    alive: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.alive.fetch_sub(self.bytes.len(), Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_body_never_has_more_than_a_few_parts_in_memory() {
    let store = Store::new();
    let (alive, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (counter, highest) = (alive.clone(), peak.clone());
    let chunk = move |bytes: Vec<u8>| {
        let now = counter.fetch_add(bytes.len(), Ordering::SeqCst) + bytes.len();
        highest.fetch_max(now, Ordering::SeqCst);
        let counted = Counted {
            bytes,
            alive: counter.clone(),
        };
        Ok::<_, std::io::Error>(Bytes::from_owner(counted))
    };
    let head = std::iter::once(MP4_HEAD.to_vec());
    let zeros = (0..200 * 16).map(|_| vec![0u8; 64 * 1024]);
    let body = Body::from_stream(futures::stream::iter(head.chain(zeros).map(chunk)));
    let limits = UploadLimits::default();
    // Zeros after an `ftyp` are no video: stored, probed, refused, deleted.
    let result = receive_video(&store.blobs, &limits, None, None, body).await;
    assert_eq!(field_of(result), "video");
    let peak = peak.load(Ordering::SeqCst);
    eprintln!("peak bytes alive at once: {peak} ({} MiB)", peak / MIB);
    assert!(peak <= 16 * MIB, "{peak} bytes alive at once");
    assert_eq!(alive.load(Ordering::SeqCst), 0);
    assert_eq!(store.files_left().await, Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn an_upload_dropped_midway_leaves_nothing_behind() {
    let store = Store::new();
    // A client that sends 7 MiB, then stalls until the server gives up on it.
    let stall = futures::stream::pending::<Result<Bytes, std::io::Error>>();
    let sent = futures::StreamExt::chain(
        futures::stream::iter([
            Ok(Bytes::from_static(MP4_HEAD)),
            Ok(Bytes::from(vec![0u8; 7 * MIB])),
        ]),
        stall,
    );
    let limits = UploadLimits::default();
    let upload = receive_video(&store.blobs, &limits, None, None, Body::from_stream(sent));
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(500), upload).await;
    assert!(timed_out.is_err(), "the upload should still be waiting");
    assert_eq!(store.files_left().await, Vec::<std::path::PathBuf>::new());
}
