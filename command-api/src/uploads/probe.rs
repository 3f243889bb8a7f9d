//! What a stored video holds, read by `ffprobe` from a local file.
//!
//! `ffprobe` parses untrusted bytes, so it is boxed in: the demuxer is forced to `mov` (the
//! bytes were sniffed as ISO BMFF; no playlist or other format can make it open URLs or
//! other files), only the `file` protocol is allowed, its output is capped, and it is killed
//! after [`PROBE_TIMEOUT`] (and whenever the request is dropped), so a hostile or corrupt
//! file gives a clear error, never a hang.
//!
//! It also reads every packet (`-count_packets`, demuxing only): a phone's "fast start" MP4
//! has its index first, so a file cut short still has a whole index and a full duration, and
//! only the packets the index promises but the file lacks give it away.

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::{io::AsyncReadExt as _, process::Command};

use crate::error::ApiError;

const FFPROBE: &str = "ffprobe";
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The JSON asked for is a few hundred bytes; more means hostile metadata.
const MAX_OUTPUT: u64 = 256 * 1024;
const ENTRIES: &str = "format=format_name,duration:format_tags=creation_time\
    :stream=codec_name,width,height,avg_frame_rate,r_frame_rate,duration,nb_frames,nb_read_packets\
    :stream_disposition=attached_pic:stream_tags=rotate,creation_time\
    :stream_side_data=rotation";
/// The only codecs the vision workers decode.
const CODECS: &[&str] = &["h264", "hevc"];
pub(crate) const VIDEO_TYPES: &str = "video/mp4 or video/quicktime with H.264 or HEVC video";
const UNREADABLE: &str = "could not be read as a video (truncated or corrupt)";

/// A video's facts, as stored (not rotated): the player turns it by `rotation_degrees`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VideoInfo {
    pub(crate) duration_ms: i64,
    pub(crate) width_px: i32,
    pub(crate) height_px: i32,
    pub(crate) rotation_degrees: i32,
    pub(crate) frame_rate: Option<f64>,
    pub(crate) recorded_at: Option<DateTime<Utc>>,
}

/// Probes `path`: 422 (`video`) when ffprobe cannot read it or it has no duration, 415 when
/// it holds no video stream or one in a codec not taken.
pub(crate) async fn probe_video(path: &Path) -> Result<VideoInfo, ApiError> {
    let mut child = Command::new(FFPROBE)
        .args(["-v", "error", "-protocol_whitelist", "file", "-f", "mov"])
        .args([
            "-select_streams",
            "v",
            "-count_packets",
            "-show_entries",
            ENTRIES,
            "-of",
            "json",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting ffprobe")?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(anyhow::anyhow!("ffprobe without pipes").into());
    };
    let run = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (mut stdout, mut stderr) = (stdout.take(MAX_OUTPUT), stderr.take(MAX_OUTPUT));
        let (read_out, read_err) =
            tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        read_out?;
        read_err?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((status, out, err))
    };
    // On timeout `run` is dropped, then `child`, which kills the process.
    let (status, out, err) = match tokio::time::timeout(PROBE_TIMEOUT, run).await {
        Ok(result) => result.context("running ffprobe")?,
        Err(_) => {
            tracing::info!("ffprobe timed out on an upload");
            return Err(ApiError::invalid("video", "took too long to read"));
        }
    };
    if !status.success() {
        let reason = String::from_utf8_lossy(&err);
        tracing::info!(%status, reason = %reason.trim(), "ffprobe refused an upload");
        return Err(ApiError::invalid("video", UNREADABLE));
    }
    parse(&out)
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Container>,
}

#[derive(Deserialize)]
struct Container {
    format_name: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    tags: Tags,
}

#[derive(Deserialize)]
struct Stream {
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    duration: Option<String>,
    /// Samples the index lists (absent for fragmented files).
    nb_frames: Option<String>,
    /// Packets actually read.
    nb_read_packets: Option<String>,
    #[serde(default)]
    disposition: Disposition,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    side_data_list: Vec<SideData>,
}

#[derive(Deserialize, Default)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize, Default)]
struct Tags {
    rotate: Option<String>,
    creation_time: Option<String>,
}

#[derive(Deserialize)]
struct SideData {
    rotation: Option<f64>,
}

/// Reads ffprobe's JSON (pure, so tested without ffprobe).
fn parse(json: &[u8]) -> Result<VideoInfo, ApiError> {
    let output: Output = serde_json::from_slice(json)
        .map_err(|error| anyhow::anyhow!("ffprobe printed unreadable JSON: {error}"))?;
    let container = output.format.unwrap_or(Container {
        format_name: None,
        duration: None,
        tags: Tags::default(),
    });
    let is_mov = container
        .format_name
        .as_deref()
        .is_some_and(|name| name.split(',').any(|n| n == "mov" || n == "mp4"));
    // Cover art is a "video" stream too; the picture is not what was filmed.
    let stream = output
        .streams
        .into_iter()
        .find(|stream| stream.disposition.attached_pic == 0);
    let Some(stream) = stream.filter(|_| is_mov) else {
        return Err(ApiError::UnsupportedMediaType(VIDEO_TYPES));
    };
    let codec = stream.codec_name.as_deref().unwrap_or_default();
    if !CODECS.contains(&codec) {
        return Err(ApiError::UnsupportedMediaType(VIDEO_TYPES));
    }
    let count = |text: &Option<String>| text.as_deref().and_then(|t| t.parse::<u64>().ok());
    if let (Some(listed), Some(read)) = (count(&stream.nb_frames), count(&stream.nb_read_packets))
        && read < listed
    {
        tracing::info!(listed, read, "an upload lacks packets its index lists");
        return Err(ApiError::invalid("video", UNREADABLE));
    }
    let seconds = [&container.duration, &stream.duration]
        .into_iter()
        .flatten()
        .filter_map(|text| text.parse::<f64>().ok())
        .find(|seconds| seconds.is_finite() && *seconds > 0.0)
        .ok_or_else(|| ApiError::invalid("video", "has no duration"))?;
    let dimension = |value: Option<u32>| {
        value
            .and_then(|px| i32::try_from(px).ok())
            .filter(|px| *px > 0)
            .ok_or_else(|| ApiError::invalid("video", "has no frame size"))
    };
    Ok(VideoInfo {
        // At most a day, by the 500 MiB limit, so far from overflowing.
        duration_ms: (seconds * 1000.0).round() as i64,
        width_px: dimension(stream.width)?,
        height_px: dimension(stream.height)?,
        rotation_degrees: rotation(&stream),
        frame_rate: [&stream.avg_frame_rate, &stream.r_frame_rate]
            .into_iter()
            .flatten()
            .find_map(|rate| ratio(rate)),
        recorded_at: [&container.tags.creation_time, &stream.tags.creation_time]
            .into_iter()
            .flatten()
            .find_map(|time| timestamp(time)),
    })
}

/// Degrees clockwise that turn the stored frames upright: 0, 90, 180 or 270. The display
/// matrix's `rotation` is counter-clockwise (an iPhone portrait video says -90, i.e. 90
/// clockwise; checked against ffmpeg's own autorotation); the legacy `rotate` tag that
/// older ffprobe versions print instead is already clockwise.
fn rotation(stream: &Stream) -> i32 {
    let clockwise = stream
        .side_data_list
        .iter()
        .find_map(|side| side.rotation)
        .map(|counter_clockwise| -counter_clockwise)
        .or_else(|| stream.tags.rotate.as_deref()?.trim().parse::<f64>().ok())
        .filter(|degrees| degrees.is_finite())
        .unwrap_or(0.0);
    // Quarter turns only: anything else is snapped to the nearest.
    ((clockwise / 90.0).round() as i32 * 90).rem_euclid(360)
}

/// `30000/1001` to 29.97; `0/0` (unknown) to none.
fn ratio(text: &str) -> Option<f64> {
    let (numerator, denominator) = text.split_once('/')?;
    let rate = numerator.parse::<f64>().ok()? / denominator.parse::<f64>().ok()?;
    (rate.is_finite() && rate > 0.0).then_some(rate)
}

/// A `creation_time` tag; cameras without a clock write 1904 or 1970, which mean "unknown".
fn timestamp(text: &str) -> Option<DateTime<Utc>> {
    let time = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
    (time.timestamp() > 946_684_800).then_some(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probed(streams: &str, format: &str) -> Result<VideoInfo, ApiError> {
        parse(format!(r#"{{"streams": [{streams}], "format": {format}}}"#).as_bytes())
    }

    const MP4: &str = r#"{"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "2.5",
        "tags": {"creation_time": "2024-05-01T10:00:00.000000Z"}}"#;

    #[test]
    fn a_portrait_phone_video_is_read() {
        let stream = r#"{"codec_name": "hevc", "width": 1920, "height": 1080,
            "avg_frame_rate": "30000/1001", "side_data_list": [{"rotation": -90}]}"#;
        let info = probed(stream, MP4).expect("a valid video");
        assert_eq!(info.duration_ms, 2500);
        assert_eq!((info.width_px, info.height_px), (1920, 1080));
        assert_eq!(info.rotation_degrees, 90);
        assert!(
            info.frame_rate
                .is_some_and(|fps| (fps - 29.97).abs() < 0.01)
        );
        assert_eq!(
            info.recorded_at.map(|at| at.to_rfc3339()),
            Some("2024-05-01T10:00:00+00:00".to_owned())
        );
    }

    #[test]
    fn fewer_packets_than_the_index_lists_is_a_cut_file() {
        let stream = |read: &str| {
            format!(r#"{{"codec_name": "h264", "width": 4, "height": 2, "nb_frames": "50"{read}}}"#)
        };
        assert!(probed(&stream(r#", "nb_read_packets": "50""#), MP4).is_ok());
        assert!(
            probed(&stream(""), MP4).is_ok(),
            "no count: nothing to compare"
        );
        let cut = probed(&stream(r#", "nb_read_packets": "6""#), MP4);
        assert!(matches!(cut, Err(ApiError::Validation(_))), "{cut:?}");
    }

    #[test]
    fn rotations_are_clockwise_quarter_turns() {
        let with = |extra: &str| {
            let stream = format!(r#"{{"codec_name": "h264", "width": 4, "height": 2{extra}}}"#);
            probed(&stream, MP4).map(|info| info.rotation_degrees).ok()
        };
        assert_eq!(with(""), Some(0));
        assert_eq!(with(r#", "side_data_list": [{"rotation": 90}]"#), Some(270));
        assert_eq!(
            with(r#", "side_data_list": [{"rotation": 180}]"#),
            Some(180)
        );
        assert_eq!(with(r#", "tags": {"rotate": "90"}"#), Some(90));
    }

    #[test]
    fn other_codecs_and_missing_streams_are_415() {
        let mpeg4 = r#"{"codec_name": "mpeg4", "width": 4, "height": 2}"#;
        assert!(matches!(
            probed(mpeg4, MP4),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            probed("", MP4),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        let cover = r#"{"codec_name": "h264", "width": 4, "height": 2,
            "disposition": {"attached_pic": 1}}"#;
        assert!(matches!(
            probed(cover, MP4),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn no_duration_is_422_and_placeholder_dates_are_none() {
        let stream = r#"{"codec_name": "h264", "width": 4, "height": 2}"#;
        let undated = r#"{"format_name": "mov,mp4", "duration": "0.000000"}"#;
        assert!(matches!(
            probed(stream, undated),
            Err(ApiError::Validation(_))
        ));
        let epoch = r#"{"format_name": "mov", "duration": "1",
            "tags": {"creation_time": "1970-01-01T00:00:00.000000Z"}}"#;
        assert_eq!(probed(stream, epoch).ok().and_then(|i| i.recorded_at), None);
        assert_eq!(ratio("0/0"), None);
    }
}
