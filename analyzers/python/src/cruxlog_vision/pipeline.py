"""The two passes over a video: pose estimation, then the annotated video and summary image.

Pass 1 decodes every ``step``-th frame on a background thread (decoding overlaps the pose model
on the second core) and runs the pose tracker on it.  The same thread also scales each analysed
frame down to the output size (480p) and keeps it in a :class:`FrameStore` (in memory: raw I420,
JPEG beyond a budget), so the video is decoded only once.  The findings need the whole climb, so
pass 2 reads the kept frames back, draws the analysis on them (two threads: OpenCV releases the
GIL) and pipes them to ffmpeg, which encodes on its own threads at the analysed frame rate.  The
ffmpeg process is started before pass 1 (:func:`annotated_video`), so its start-up is not paid
after it.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol, TypeVar

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

OUTPUT_MAX_SIDE: Final = 854
"""Long side of the annotated video and the summary image: 480p (854x480 from 720p or 1080p),
what a phone screen shows well; x264 encodes it in a few ms per frame."""
SUMMARY_QUALITY: Final = 88
VIDEO_PRESET: Final = "ultrafast"
"""Pass 2 starts only after the last analysed frame (the video shows whole-climb findings), so
its encoding is on the critical path: ultrafast takes 0.17 s for 200 frames at 480p where
veryfast takes 0.30 s, for a bigger file (about 1 MB for 20 s at CRF 26, 0.3 MB with
veryfast at 24): little for a phone."""
VIDEO_CRF: Final = 26
VIDEO_X264_PARAMS: Final[str | None] = "cabac=1:8x8dct=1"
"""CABAC and the 8x8 transform keep the stream High profile (ultrafast alone makes Constrained
Baseline) and the file 12 % smaller, for about 20 % more encoding time than plain ultrafast."""
STORE_RAW_BYTES: Final = 128 << 20
"""Raw I420 frames kept in memory (about 21 s at 10 analysed frames/s at 480p); JPEG after that."""
STORE_JPEG_QUALITY: Final = 92
DRAW_THREADS: Final = 2


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


class FrameStore:
    """The analysed frames scaled to the output size, kept in memory for pass 2: raw I420 (a
    480p frame is 0.6 MB) up to ``raw_bytes``, JPEG (about 0.07 MB, 1-2 ms more per frame each
    way) after that, so a long video costs little memory.  :meth:`add` is called from the
    decoding thread, :meth:`frame` from the drawing threads."""

    def __init__(self, width: int, height: int, raw_bytes: int = STORE_RAW_BYTES) -> None:
        self.size = even_size(width, height, OUTPUT_MAX_SIDE)
        self.scale = self.size[0] / width
        self.raw_bytes = raw_bytes
        self._frames: list[tuple[bool, npt.NDArray[np.uint8]]] = []
        self._raw = 0
        # INTER_AREA is right for strong reductions but slow for mild ones, where linear is fine
        self._interp = cv2.INTER_AREA if self.scale < 0.5 else cv2.INTER_LINEAR

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def jpeg_frames(self) -> int:
        return sum(1 for jpeg, _ in self._frames if jpeg)

    def add(self, frame: Frame) -> None:
        w, h = self.size
        small = frame
        if frame.shape[1] != w or frame.shape[0] != h:
            small = np.asarray(
                cv2.resize(frame, self.size, interpolation=self._interp), dtype=np.uint8
            )
        if self._raw + w * h * 3 // 2 <= self.raw_bytes:
            data = np.asarray(cv2.cvtColor(small, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
            self._raw += data.nbytes
            self._frames.append((False, data))
            return
        # RGB goes in where OpenCV expects BGR and comes back the same way round
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, STORE_JPEG_QUALITY])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        self._frames.append((True, np.asarray(jpeg, dtype=np.uint8)))

    def frame(self, i: int) -> Frame:
        """Frame ``i`` (RGB, output size) as kept, a fresh array the caller may draw on."""
        jpeg, data = self._frames[i]
        if jpeg:
            image = cv2.imdecode(data, cv2.IMREAD_COLOR)
            if image is None:
                raise RuntimeError("JPEG decoding failed")
            return np.asarray(image, dtype=np.uint8)
        return np.asarray(cv2.cvtColor(data, cv2.COLOR_YUV2RGB_I420), dtype=np.uint8)

    def close(self) -> None:
        self._frames.clear()

    def __enter__(self) -> FrameStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sampling_step(fps: float, analysis_fps: float) -> int:
    """Every how many frames one is analysed to get about ``analysis_fps``."""
    return max(1, round(fps / analysis_fps))


def estimate_poses(
    info: VideoInfo,
    tracker: Tracker,
    *,
    step: int,
    max_frames: int,
    store: FrameStore | None = None,
    progress: Progress | None = None,
) -> PoseTrack:
    """Pass 1: the pose of every analysed frame; ``store`` (if given) keeps the frames."""
    tracker.reset(info.fps / step)
    stats = DecodeStats()
    indices: list[int] = []
    rows: list[FloatArray] = []
    sources: list[int] = []
    total = math.ceil(min(info.frames, max_frames) / step)
    missing = np.full((LANDMARKS, 4), np.nan)
    frames = read_frames(info, step=step, max_frames=max_frames, stats=stats)
    for index, frame in prefetch(frames if store is None else _kept(frames, store)):
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


def _kept(frames: Iterable[tuple[int, Frame]], store: FrameStore) -> Iterator[tuple[int, Frame]]:
    for index, frame in frames:
        store.add(frame)  # on the decoding thread, like the decoding itself
        yield index, frame


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


T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """``map(fn, items)`` on ``threads`` threads, in order, at most ``2 * threads`` ahead."""
    with ThreadPoolExecutor(threads, thread_name_prefix="cruxlog-draw") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) > 2 * threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


@contextlib.contextmanager
def annotated_video(path: Path, size: tuple[int, int], fps: float) -> Iterator[VideoWriter]:
    """The annotated video's encoder, started at once (ffmpeg waits for frames on its stdin while
    pass 1 runs); the file gets its final name only when the block completes, and a failure
    inside it kills ffmpeg and leaves no file."""
    part = path.with_name(path.name + ".part")
    try:
        with VideoWriter(
            part,
            *size,
            fps,
            preset=VIDEO_PRESET,
            crf=VIDEO_CRF,
            input_format="yuv420p",
            x264_params=VIDEO_X264_PARAMS,
        ) as writer:
            yield writer
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def render(
    track: PoseTrack,
    overlay: Overlay,
    store: FrameStore,
    writer: VideoWriter,
    *,
    image_out: Path,
    progress: Progress | None = None,
) -> None:
    """Pass 2: the annotated video (into ``writer``, finished here) and the summary JPEG
    (written atomically) from the frames ``store`` kept in pass 1, drawn at the output size."""
    if len(store) != len(track.frame_index):
        raise RuntimeError(f"{len(store)} frames kept for {len(track.frame_index)} analysed")
    keypoints = overlay.keypoints.copy()
    keypoints[:, :, :2] *= store.scale
    scaled = Overlay(keypoints, overlay.findings, overlay.metrics, overlay.move_starts_s)
    hips = hip_pixels(keypoints)

    def draw(i: int) -> Frame:
        frame = store.frame(i)
        _decorate(frame, i, float(track.times_s[i]), track, scaled, hips)
        return np.asarray(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)

    total = len(store)
    for done, frame in enumerate(ordered_map(draw, range(total), DRAW_THREADS), 1):
        writer.write(frame)
        if progress is not None:
            progress("video", done, total)
    writer.close()
    still_at = summary_frame_index(track, scaled)
    still = store.frame(still_at) if total else None
    write_summary_image(still, still_at, track, scaled, hips, image_out)


def write_summary_image(
    frame: Frame | None, i: int, track: PoseTrack, overlay: Overlay, hips: FloatArray, out: Path
) -> None:
    """The still: frame ``i`` with the whole hip path, its skeleton and the top findings."""
    image = np.zeros((480, 854, 3), np.uint8) if frame is None else frame.copy()
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
