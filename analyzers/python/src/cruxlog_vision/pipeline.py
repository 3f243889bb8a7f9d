"""The two passes over a video: pose estimation, then the annotated video and summary image.

Pass 1 decodes every ``step``-th frame on a background thread (decoding overlaps the pose model
on the second core) and runs the pose tracker on it.  The same thread also scales each analysed
frame down to the output size (480p) and keeps it in a :class:`FrameStore` (in memory: raw I420,
JPEG beyond a budget), so the video is decoded only once.  Each pose goes into a
:class:`PoseLog` as soon as it is known, and :mod:`cruxlog_vision.streaming` draws and encodes
the video from it while pass 1 runs, on the core the model leaves idle.

The video is a sequence of chunks (:mod:`cruxlog_vision.chunked`).  What each frame shows is a
:class:`FramePlan`; pass 2 (:func:`render`) plans every frame from the final analysis, keeps
the chunks drawn early whose plans still hold and draws the rest (two threads: OpenCV releases
the GIL), then writes the MP4.  The ffmpeg processes are started before pass 1
(:func:`annotated_video`), so their start-up is not paid after it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from cruxlog_vision import annotate, rules
from cruxlog_vision.chunked import ChunkedVideo
from cruxlog_vision.encode import even_size
from cruxlog_vision.pose import LANDMARKS, PoseResult, Source
from cruxlog_vision.priority import lower_this_thread
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
"""The closing chunks (and any chunk drawn again) are encoded after the last analysed frame, on
the critical path: ultrafast takes 0.17 s for 200 frames at 480p where veryfast takes 0.30 s,
for a bigger file (about 1 MB for 20 s at CRF 26, 0.3 MB with veryfast at 24): little for a
phone."""
VIDEO_CRF: Final = 26
VIDEO_X264_PARAMS: Final[str | None] = "cabac=1:8x8dct=1"
"""CABAC and the 8x8 transform keep the stream High profile (ultrafast alone makes Constrained
Baseline) and the file 12 % smaller, for about 20 % more encoding time than plain ultrafast."""
STORE_RAW_BYTES: Final = 128 << 20
"""Raw I420 frames kept in memory (about 21 s at 10 analysed frames/s at 480p); JPEG after that."""
STORE_JPEG_QUALITY: Final = 92
DRAW_THREADS: Final = 2
CHUNK_S: Final = 4.0
"""Length of a chunk (GOP) of the annotated video: the unit drawn again when a finding changed
once the whole climb was known.  Shorter chunks redraw less but cost more: each starts with an
IDR frame, and at 2 s the file was 2.2 times as big and x264 took 30 % more CPU than with one
IDR frame in 25 s; at 4 s about 1.5 times and 15 %."""
VERDICT_S: Final = 3.0
"""The video's closing seconds show the verdicts on the whole climb (quiet feet, smoothness,
the comparison with earlier attempts) and its metrics, known only after the last frame; the
frames before show the timed findings as they happen and a live panel."""


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


class PoseLog:
    """Pass 1's rows as they come: appended by the pose loop, read as a prefix track by the
    thread that draws the video meanwhile (:mod:`cruxlog_vision.streaming`)."""

    def __init__(self) -> None:
        self._rows: list[tuple[int, float, FloatArray, int]] = []
        self._changed = threading.Condition()
        self.closed = False
        self.decoded_frames = 0

    def __len__(self) -> int:
        return len(self._rows)

    def append(self, index: int, t_s: float, row: FloatArray, source: int) -> None:
        with self._changed:
            self._rows.append((index, t_s, row, source))
            self._changed.notify_all()

    def close(self) -> None:
        """No more rows (the pose pass ended, or failed); wakes every waiter."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait_for(self, rows: int, timeout_s: float) -> int:
        """Wait until there are ``rows`` rows or the log is closed; returns the count."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._rows) >= rows or self.closed, timeout_s)
            return len(self._rows)

    def track(self, rows: int | None = None) -> PoseTrack:
        """The first ``rows`` rows (default: all) as a track."""
        taken = self._rows[: len(self._rows) if rows is None else rows]
        return PoseTrack(
            frame_index=np.array([r[0] for r in taken], dtype=np.int64),
            times_s=np.array([r[1] for r in taken], dtype=np.float64),
            keypoints=np.array([r[2] for r in taken], dtype=np.float64).reshape(
                len(taken), LANDMARKS, 4
            ),
            sources=np.array([r[3] for r in taken], dtype=np.int8),
            decoded_frames=self.decoded_frames,
        )


def estimate_poses(
    info: VideoInfo,
    tracker: Tracker,
    *,
    step: int,
    max_frames: int,
    store: FrameStore | None = None,
    progress: Progress | None = None,
    log: PoseLog | None = None,
) -> PoseTrack:
    """Pass 1: the pose of every analysed frame; ``store`` (if given) keeps the frames and
    ``log`` (if given) gets each row as soon as it is known.  ``log`` is closed on return."""
    tracker.reset(info.fps / step)
    stats = DecodeStats()
    log = PoseLog() if log is None else log
    total = expected_frames(info, step, max_frames)
    missing = np.full((LANDMARKS, 4), np.nan)
    frames = read_frames(info, step=step, max_frames=max_frames, stats=stats)
    try:
        kept = frames if store is None else _kept(frames, store)
        for index, frame in prefetch(kept, on_start=lower_this_thread):
            result = tracker.process(frame)
            row = missing if result is None else result.landmarks
            source = int(Source.NONE if result is None else result.source)
            log.append(index, stats.times_s.get(index, index / info.fps), row, source)
            if progress is not None:
                progress("pose", len(log), total)
        log.decoded_frames = stats.decoded
    finally:
        log.close()
    return log.track()


def expected_frames(info: VideoInfo, step: int, max_frames: int) -> int:
    """How many frames pass 1 will analyse, going by the announced frame count."""
    return math.ceil(min(info.frames, max_frames) / step)


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

    def scaled(self, scale: float) -> Overlay:
        """The same with keypoints in the pixels of frames ``scale`` times the analysed size."""
        keypoints = self.keypoints.copy()
        keypoints[:, :, :2] *= scale
        return Overlay(keypoints, self.findings, self.metrics, self.move_starts_s)


@dataclass(frozen=True, slots=True)
class FramePlan:
    """Everything drawn on one frame of the annotated video: equal plans draw equal frames, so a
    frame drawn early is kept when its plan is still the same once the whole climb is known."""

    skeleton: bytes
    """``(33, 4)`` float64 keypoints in output pixels; empty when no pose was found."""
    trace: bytes
    """``(m, 2)`` float64 hip centres (output pixels) of the last TRACE_S seconds."""
    hip: tuple[float, float] | None
    findings: tuple[annotate.BannerLine, ...]
    """The banner as drawn (a finding whose severity or text moved, but not what is drawn
    of it, leaves the plan equal)."""
    panel: tuple[str, ...]


def chunk_frames(rate_hz: float) -> int:
    """Frames per chunk of the annotated video (a GOP: the unit drawn again when it changed)."""
    return max(2, round(CHUNK_S * rate_hz))


def verdict_frames(rate_hz: float) -> int:
    """The closing frames of the annotated video, which show the verdicts on the whole climb."""
    return max(1, round(VERDICT_S * rate_hz))


def hip_pixels(keypoints: FloatArray) -> FloatArray:
    """Hip centre per frame in pixels (NaN where a hip is not visible)."""
    hips = keypoints[:, [23, 24], :]
    centre: FloatArray = hips[:, :, :2].mean(axis=1)
    seen = np.all(hips[:, :, 3] >= annotate.MIN_VISIBILITY, axis=1)
    centre[~seen] = np.nan
    return centre


def plan_frames(
    times_s: FloatArray, overlay: Overlay, frames: range, verdict_from: int
) -> list[FramePlan]:
    """The plans of ``frames`` (``overlay`` in output pixels).  Until ``verdict_from`` a frame
    shows the timed findings active at its time and a live panel (clock, moves so far, elbow
    angles); from it on, the verdicts on the whole climb and its metrics."""
    hips = hip_pixels(overlay.keypoints)
    whole = [f for f in overlay.findings if f.code in rules.WHOLE_CLIMB]
    timed = [f for f in overlay.findings if f.code not in rules.WHOLE_CLIMB]
    verdicts = sorted(whole, key=lambda f: (f.kind != "ERROR", -f.severity))
    plans = []
    for i in frames:
        t_s = float(times_s[i])
        first = int(np.searchsorted(times_s, t_s - annotate.TRACE_S))
        keypoints = overlay.keypoints[i]
        hip = hips[i]
        moves = sum(1 for s in overlay.move_starts_s if s <= t_s)
        active = annotate.active_findings(timed, t_s * 1000)
        if i >= verdict_from:
            shown = (verdicts + active)[: annotate.MAX_BANNER_LINES]
            panel = annotate.panel_rows(t_s, overlay.metrics, moves)
        else:
            shown, panel = active, annotate.live_rows(t_s, moves, keypoints)
        plans.append(
            FramePlan(
                skeleton=keypoints.tobytes() if np.isfinite(keypoints[0, 0]) else b"",
                trace=np.ascontiguousarray(hips[first : i + 1]).tobytes(),
                hip=(float(hip[0]), float(hip[1])) if np.all(np.isfinite(hip)) else None,
                findings=annotate.banner(shown),
                panel=tuple(panel),
            )
        )
    return plans


def draw_plan(frame: Frame, plan: FramePlan) -> Frame:
    """``plan`` drawn on ``frame`` (in place), returned as I420 for the encoder."""
    annotate.draw_trace(frame, np.frombuffer(plan.trace).reshape(-1, 2))
    if plan.skeleton:
        annotate.draw_skeleton(frame, np.frombuffer(plan.skeleton).reshape(LANDMARKS, 4))
    hip = None if plan.hip is None else np.array(plan.hip)
    annotate.draw_findings(frame, plan.findings, hip)
    annotate.draw_panel(frame, plan.panel)
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)


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
def annotated_video(path: Path, size: tuple[int, int], fps: float) -> Iterator[ChunkedVideo]:
    """The annotated video's encoder and muxer, started at once (they wait on their stdin while
    pass 1 runs); the file gets its final name only when the block completes, and a failure
    inside it kills ffmpeg and leaves no file."""
    part = path.with_name(path.name + ".part")
    video = ChunkedVideo(
        part,
        size,
        fps,
        chunk_frames(fps),
        preset=VIDEO_PRESET,
        crf=VIDEO_CRF,
        x264_params=VIDEO_X264_PARAMS,
    )
    try:
        yield video
        video.finish()
        os.replace(part, path)
    finally:
        video.abort()  # a no-op for a finished video but for its leftovers
        part.unlink(missing_ok=True)


def render(
    track: PoseTrack,
    overlay: Overlay,
    store: FrameStore,
    video: ChunkedVideo,
    *,
    image_out: Path,
    progress: Progress | None = None,
    drawn: Mapping[int, Sequence[FramePlan]] | None = None,
) -> int:
    """Pass 2: the annotated video (into ``video``, finished here) and the summary JPEG
    (written atomically) from the frames ``store`` kept in pass 1, drawn at the output size.

    ``drawn`` holds the plans of the chunks already drawn into ``video`` during pass 1; a chunk
    whose plans still hold is kept, the others are drawn now.  Returns the frames drawn here."""
    count = len(track.frame_index)
    if len(store) != count:
        raise RuntimeError(f"{len(store)} frames kept for {count} analysed")
    scaled = overlay.scaled(store.scale)
    verdict_from = count - verdict_frames(video.fps)
    plans = plan_frames(track.times_s, scaled, range(count), verdict_from)
    size = video.chunk_frames
    done = {} if drawn is None else drawn
    redo = [
        k
        for k in range(math.ceil(count / size))
        if list(done.get(k, ())) != plans[k * size : (k + 1) * size]
    ]
    todo = [i for k in redo for i in range(k * size, min(count, (k + 1) * size))]

    def draw(i: int) -> Frame:
        return draw_plan(store.frame(i), plans[i])

    frames = ordered_map(draw, todo, DRAW_THREADS)
    for k in redo:
        chunk = list(itertools.islice(frames, min(count, (k + 1) * size) - k * size))
        video.write_chunk(k, chunk)
        if progress is not None:
            progress("video", min(count, (k + 1) * size), count)
    video.finish()
    still_at = summary_frame_index(track, scaled)
    still = store.frame(still_at) if count else None
    write_summary_image(still, still_at, scaled, hip_pixels(scaled.keypoints), image_out)
    return len(todo)


def write_summary_image(
    frame: Frame | None, i: int, overlay: Overlay, hips: FloatArray, out: Path
) -> None:
    """The still: frame ``i`` with the whole hip path, its skeleton and the top findings."""
    image = np.zeros((480, 854, 3), np.uint8) if frame is None else frame.copy()
    annotate.draw_trace(image, hips)
    if frame is not None and np.isfinite(overlay.keypoints[i, 0, 0]):
        annotate.draw_skeleton(image, overlay.keypoints[i])
    top = sorted(overlay.findings, key=lambda f: -f.severity)[: annotate.MAX_BANNER_LINES]
    annotate.draw_findings(image, annotate.banner(top), None)
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
