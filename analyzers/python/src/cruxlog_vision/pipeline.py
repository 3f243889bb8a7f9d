"""The two passes over a video: pose estimation, then the annotated video and summary image.

Pass 1 decodes every ``step``-th frame on a background thread (decoding overlaps the pose model
on the second core) and runs the pose tracker on it.  The findings need the whole climb, so
pass 2 decodes the same frames again, draws the analysis on them and pipes them to ffmpeg, which
encodes on its own core while Python draws the next frame.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from cruxlog_vision import annotate
from cruxlog_vision.encode import VideoWriter, even_size
from cruxlog_vision.pose import LANDMARKS, PoseResult, Source
from cruxlog_vision.rules import Finding
from cruxlog_vision.video import DecodeStats, Frame, VideoInfo, prefetch, read_frames

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; ``total`` is an estimate."""

OUTPUT_MAX_SIDE: Final = 1280
SUMMARY_QUALITY: Final = 88


class Tracker(Protocol):
    def reset(self, rate_hz: float = 10.0) -> None: ...
    def process(self, frame: Frame) -> PoseResult | None: ...


@dataclass(frozen=True, slots=True)
class PoseTrack:
    """Pass 1's result: one row per analysed frame."""

    frame_index: npt.NDArray[np.int64]
    times_s: FloatArray
    keypoints: FloatArray
    """``(T, 33, 4)``: x px, y px (upright frame), z, visibility; NaN rows: no pose."""
    sources: npt.NDArray[np.int8]
    decoded_frames: int

    @property
    def found(self) -> int:
        return int(np.count_nonzero(self.sources != Source.NONE))


def sampling_step(fps: float, analysis_fps: float) -> int:
    """Every how many frames one is analysed to get about ``analysis_fps``."""
    return max(1, round(fps / analysis_fps))


def estimate_poses(
    info: VideoInfo,
    tracker: Tracker,
    *,
    step: int,
    max_frames: int,
    progress: Progress | None = None,
) -> PoseTrack:
    """Pass 1: the pose of every analysed frame."""
    tracker.reset(info.fps / step)
    stats = DecodeStats()
    indices: list[int] = []
    rows: list[FloatArray] = []
    sources: list[int] = []
    total = math.ceil(min(info.frames, max_frames) / step)
    missing = np.full((LANDMARKS, 4), np.nan)
    frames = read_frames(info, step=step, max_frames=max_frames, stats=stats)
    for index, frame in prefetch(frames):
        result = tracker.process(frame)
        indices.append(index)
        rows.append(missing if result is None else result.landmarks)
        sources.append(int(Source.NONE if result is None else result.source))
        if progress is not None:
            progress("pose", len(indices), total)
    index_array = np.array(indices, dtype=np.int64)
    return PoseTrack(
        frame_index=index_array,
        times_s=np.array([stats.times_s.get(i, i / info.fps) for i in indices], dtype=np.float64),
        keypoints=np.array(rows, dtype=np.float64).reshape(len(rows), LANDMARKS, 4),
        sources=np.array(sources, dtype=np.int8),
        decoded_frames=stats.decoded,
    )


@dataclass(frozen=True, slots=True)
class Overlay:
    """What pass 2 draws: smoothed keypoints, findings, metrics and move start times."""

    keypoints: FloatArray
    findings: list[Finding]
    metrics: dict[str, float]
    move_starts_s: list[float]


def hip_pixels(keypoints: FloatArray) -> FloatArray:
    """Hip centre per frame in pixels (NaN where a hip is not visible)."""
    hips = keypoints[:, [23, 24], :]
    centre: FloatArray = hips[:, :, :2].mean(axis=1)
    seen = np.all(hips[:, :, 3] >= annotate.MIN_VISIBILITY, axis=1)
    centre[~seen] = np.nan
    return centre


def _decorate(
    frame: Frame, i: int, t_s: float, track: PoseTrack, overlay: Overlay, hips: FloatArray
) -> None:
    first = int(np.searchsorted(track.times_s, t_s - annotate.TRACE_S))
    annotate.draw_trace(frame, hips[first : i + 1])
    if np.isfinite(overlay.keypoints[i, 0, 0]):
        annotate.draw_skeleton(frame, overlay.keypoints[i])
    active = annotate.active_findings(overlay.findings, t_s * 1000)
    annotate.draw_findings(frame, active, hips[i])
    moves = sum(1 for s in overlay.move_starts_s if s <= t_s)
    annotate.draw_panel(frame, annotate.panel_rows(t_s, overlay.metrics, moves))


def summary_frame_index(track: PoseTrack, overlay: Overlay) -> int:
    """The analysed frame for the still: most visible landmarks, nearest the middle on ties."""
    visible = np.nan_to_num(overlay.keypoints[:, :, 3]) >= annotate.MIN_VISIBILITY
    counts = visible.sum(axis=1).astype(float)
    middle = len(counts) / 2
    penalty = np.abs(np.arange(len(counts)) - middle) / max(1.0, middle) * 0.5
    return int(np.argmax(counts - penalty))


def render(
    info: VideoInfo,
    track: PoseTrack,
    overlay: Overlay,
    *,
    step: int,
    video_out: Path,
    image_out: Path,
    progress: Progress | None = None,
) -> None:
    """Pass 2: the annotated H.264 video and the summary JPEG (both written atomically)."""
    size = even_size(info.width, info.height, OUTPUT_MAX_SIDE)
    hips = hip_pixels(overlay.keypoints)
    still_at = summary_frame_index(track, overlay)
    still: Frame | None = None
    part = video_out.with_name(video_out.name + ".part")
    by_index = {int(f): i for i, f in enumerate(track.frame_index)}
    last = int(track.frame_index[-1]) + 1 if len(track.frame_index) else 0
    frames = read_frames(info, step=step, max_frames=last)
    try:
        with VideoWriter(part, *size, info.fps / step, preset="veryfast", crf=26) as writer:
            for index, frame in prefetch(frames):
                i = by_index.get(index)
                if i is None:
                    continue
                t_s = float(track.times_s[i])
                if i == still_at:
                    still = frame.copy()
                _decorate(frame, i, t_s, track, overlay, hips)
                if frame.shape[1] != size[0] or frame.shape[0] != size[1]:
                    frame = np.asarray(
                        cv2.resize(frame, size, interpolation=cv2.INTER_AREA), dtype=np.uint8
                    )
                writer.write(frame)
                if progress is not None:
                    progress("video", i + 1, len(track.frame_index))
        os.replace(part, video_out)
    finally:
        part.unlink(missing_ok=True)
    write_summary_image(still, still_at, track, overlay, hips, image_out)


def write_summary_image(
    frame: Frame | None, i: int, track: PoseTrack, overlay: Overlay, hips: FloatArray, out: Path
) -> None:
    """The still: frame ``i`` with the whole hip path, its skeleton and the top findings."""
    image = np.zeros((720, 1280, 3), np.uint8) if frame is None else frame.copy()
    annotate.draw_trace(image, hips)
    if frame is not None and np.isfinite(overlay.keypoints[i, 0, 0]):
        annotate.draw_skeleton(image, overlay.keypoints[i])
    top = sorted(overlay.findings, key=lambda f: -f.severity)[:4]
    annotate.draw_findings(image, top, None)
    duration = overlay.metrics.get("climb_duration_s", 0.0)
    rows = annotate.panel_rows(duration, overlay.metrics, len(overlay.move_starts_s))
    annotate.draw_panel(image, rows)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, SUMMARY_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    part = out.with_name(out.name + ".part")
    part.write_bytes(data.tobytes())
    os.replace(part, out)
