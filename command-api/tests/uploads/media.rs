//! Test media, made here by Debian's `ffmpeg` (nothing downloaded), and what the tests need
//! around them: a local blob store in a temporary directory, and bodies.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use axum::body::Body;
use cruxlog_runtime::blobs::BlobStore;
use sha2::{Digest as _, Sha256};

/// A real local blob store in a temporary directory, removed at the end of the test.
pub(crate) struct Store {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) blobs: BlobStore,
}

impl Store {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let blobs = BlobStore::local(dir.path()).expect("a local blob store");
        Self { dir, blobs }
    }

    /// Every file under the store (staging objects and multipart parts included), once
    /// the deletes spawned by a failed upload have had up to two seconds to run.
    pub(crate) async fn files_left(&self) -> Vec<PathBuf> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let files = files_under(self.dir.path());
            if files.is_empty() || Instant::now() > deadline {
                return files;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)
        .expect("a readable directory")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Runs ffmpeg quietly; panics with its message when it fails.
pub(crate) fn ffmpeg(args: &[&str]) {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg installed (infra/local/stack.sh install)");
    assert!(
        output.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A `seconds`-long 320x240 25 fps H.264 test pattern, recorded 2024-05-01 10:00 UTC, with
/// its index at the end (ffmpeg's default), so a cut file has none.
pub(crate) fn h264_mp4(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    let path = dir.join(name);
    let seconds = seconds.to_string();
    let target = path.to_str().expect("a UTF-8 path");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        &seconds,
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-metadata",
        "creation_time=2024-05-01T10:00:00Z",
        target,
    ]);
    path
}

/// `source` rewrapped as QuickTime, shown turned a quarter clockwise (a phone held upright).
/// ffmpeg 5 turns its `rotate` tag counter-clockwise; later ones take `-display_rotation`.
pub(crate) fn portrait_mov(source: &Path, dir: &Path) -> PathBuf {
    let path = dir.join("portrait.mov");
    let (source, target) = (source.to_str(), path.to_str());
    let (Some(source), Some(target)) = (source, target) else {
        panic!("UTF-8 paths");
    };
    let help = Command::new("ffmpeg")
        .args(["-hide_banner", "-h", "full"])
        .output();
    let modern =
        help.is_ok_and(|help| String::from_utf8_lossy(&help.stdout).contains("display_rotation"));
    if modern {
        ffmpeg(&[
            "-display_rotation",
            "270",
            "-i",
            source,
            "-c",
            "copy",
            "-f",
            "mov",
            target,
        ]);
    } else {
        let tag = "rotate=270";
        ffmpeg(&[
            "-i",
            source,
            "-c",
            "copy",
            "-metadata:s:v",
            tag,
            "-f",
            "mov",
            target,
        ]);
    }
    path
}

/// The mean grey level of the top rows of the first frame as ffmpeg shows it (turned
/// upright): the testsrc pattern's black left bar is on top after a clockwise quarter turn.
pub(crate) fn upright_top_grey(video: &Path) -> f64 {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(video)
        .args([
            "-frames:v",
            "1",
            "-vf",
            "crop=140:4:100:2",
            "-f",
            "rawvideo",
        ])
        .args(["-pix_fmt", "gray", "-"])
        .output()
        .expect("ffmpeg");
    let pixels = output.stdout;
    assert!(!pixels.is_empty(), "ffmpeg decoded nothing");
    pixels.iter().map(|&grey| f64::from(grey)).sum::<f64>() / pixels.len() as f64
}

pub(crate) fn sha256_of(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("the test file");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A whole small file as a body, with its length.
pub(crate) fn body_of(path: &Path) -> (Body, u64) {
    let bytes = std::fs::read(path).expect("the test file");
    let length = bytes.len() as u64;
    (Body::from(bytes), length)
}

/// A 64x48 JPEG whose EXIF says "turn a quarter clockwise" (orientation 6) and when it was
/// taken (2024-05-01 12:30:00 +02:00), as a phone held upright writes it.
pub(crate) fn jpeg_with_exif(dir: &Path) -> PathBuf {
    let plain = dir.join("plain.jpg");
    let target = plain.to_str().expect("a UTF-8 path");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48",
        "-frames:v",
        "1",
        target,
    ]);
    let jpeg = std::fs::read(&plain).expect("the JPEG");
    let tiff = exif_tiff();
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&u16::try_from(app1.len() + 2).expect("small").to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    let path = dir.join("portrait.jpg");
    std::fs::write(&path, out).expect("writing the JPEG");
    path
}

/// A little-endian TIFF: IFD0 {Orientation 6, ExifIFD pointer}, Exif IFD
/// {DateTimeOriginal, OffsetTimeOriginal}.
fn exif_tiff() -> Vec<u8> {
    fn entry(out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32) {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const ASCII: u16 = 2;
    // Header 8 + IFD0 (2 + 2*12 + 4 = 30) + Exif IFD (30), then the strings.
    let (exif_ifd, date, offset) = (38u32, 68u32, 88u32);
    let mut out = b"II*\0\x08\0\0\0".to_vec();
    out.extend_from_slice(&2u16.to_le_bytes());
    entry(&mut out, 0x0112, SHORT, 1, 6);
    entry(&mut out, 0x8769, LONG, 1, exif_ifd);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    entry(&mut out, 0x9003, ASCII, 20, date);
    entry(&mut out, 0x9011, ASCII, 7, offset);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(b"2024:05:01 12:30:00\0");
    out.extend_from_slice(b"+02:00\0");
    out
}
