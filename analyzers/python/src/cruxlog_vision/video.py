"""Video input: probe a phone video, then decode its frames upright, bounded and sampled.

* :func:`probe` reads the container with ``ffprobe`` (under a timeout) for the stream facts and
  the rotation (display matrix); OpenCV's ``CAP_PROP_ORIENTATION_META`` is the fallback when
  ffprobe is missing.
* :func:`read_frames` decodes with OpenCV (its FFmpeg backend handles H.264 and HEVC in MP4/MOV),
  turns OpenCV's own auto-rotation off and applies the rotation itself (so a caller can override
  it), keeps every ``step``-th frame and stops after a bounded number of frames: a file whose
  container lies about its length cannot keep the loop going.
* :func:`prefetch` runs a frame iterator on a thread (OpenCV releases the GIL while decoding) so
  decoding overlaps pose estimation on the other core.

Every failure is a :class:`VideoError` whose ``code`` is a stable dotted prefix
(``video.unreadable``, ``video.unsupported``, ``video.too_long``) that the worker puts first in
its ``invalid_input`` message.

Rotation convention: ``rotation_degrees`` is the *clockwise* rotation (0, 90, 180, 270) that turns
the stored frames upright, i.e. the legacy ``rotate`` tag of phone videos and OpenCV's
``CAP_PROP_ORIENTATION_META``; ffprobe's display-matrix ``rotation`` is the same angle
counter-clockwise (an upright-held iPhone shows ``-90``).
"""

from __future__ import annotations

import json
import math
import queue
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]
"""An RGB image, ``(height, width, 3)`` uint8, already upright."""

ROTATIONS: Final = (0, 90, 180, 270)
PROBE_TIMEOUT_S: Final = 20.0
OPEN_TIMEOUT_MS: Final = 10_000
READ_TIMEOUT_MS: Final = 10_000
MAX_SIDE_PX: Final = 4096
MAX_FPS: Final = 240.0
FRAME_SLACK: Final = 1.10
"""Decode at most this much more than the container announces before stopping."""

_ROTATE_CODES: Final = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}


class VideoError(Exception):
    """The video can never be analysed; ``code`` is a stable machine-readable prefix."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """Facts about the stored video stream; ``width``/``height`` are *upright* (rotated) sizes."""

    path: Path
    codec: str
    frames: int
    """Frame count announced by the container (or estimated from duration and rate)."""
    fps: float
    width: int
    height: int
    duration_ms: int
    rotation_degrees: int

    def with_rotation(self, rotation: int) -> VideoInfo:
        """The same video with another rotation applied (sizes swap on quarter turns)."""
        stored_w, stored_h = self.stored_size
        turned = rotation in (90, 270)
        return VideoInfo(
            path=self.path,
            codec=self.codec,
            frames=self.frames,
            fps=self.fps,
            width=stored_h if turned else stored_w,
            height=stored_w if turned else stored_h,
            duration_ms=self.duration_ms,
            rotation_degrees=rotation,
        )

    @property
    def stored_size(self) -> tuple[int, int]:
        """``(width, height)`` of the frames as stored, before rotation."""
        if self.rotation_degrees in (90, 270):
            return self.height, self.width
        return self.width, self.height


def normalize_rotation(degrees: float) -> int:
    """Snap any angle to the nearest quarter turn in ``0..270``."""
    return round(degrees / 90.0) % 4 * 90


def _ratio(text: object) -> float:
    if not isinstance(text, str) or "/" not in text:
        return float(text) if isinstance(text, int | float | str) and text else 0.0
    num, _, den = text.partition("/")
    try:
        return float(num) / float(den) if float(den) else 0.0
    except ValueError:
        return 0.0


def _ffprobe(path: Path) -> dict[str, object] | None:
    exe = shutil.which("ffprobe")
    if exe is None:
        return None
    cmd = [exe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
    try:
        done = subprocess.run(
            cmd, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise VideoError("video.unreadable", f"probing took over {PROBE_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VideoError(
            "video.unreadable",
            "not a video file ffprobe can read" + (f" ({reason[-1]})" if reason else ""),
        )
    data = json.loads(done.stdout or b"{}")
    return data if isinstance(data, dict) else {}


def _rotation_from_stream(stream: dict[str, object]) -> int:
    sides = stream.get("side_data_list")
    for side in sides if isinstance(sides, list) else []:
        if isinstance(side, dict) and "rotation" in side:
            return normalize_rotation(-float(side["rotation"]))
    tags = stream.get("tags")
    if isinstance(tags, dict) and "rotate" in tags:
        return normalize_rotation(float(tags["rotate"]))
    return 0


DECODE_THREADS: Final = 1


def _open(path: Path) -> cv2.VideoCapture:
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS]
    params += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
    # one decoding thread: the decoder has a core to itself beside the pose model, and FFmpeg's
    # frame threads (one per core by default) would also take turns on the model's core
    params += [cv2.CAP_PROP_N_THREADS, DECODE_THREADS]
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        raise VideoError("video.unreadable", "OpenCV cannot open the file as a video")
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)  # we rotate ourselves (the caller may override)
    return cap


def _cv_facts(path: Path) -> tuple[int, int, float, int, int]:
    """Stored width, height, frame rate, frame count and rotation as OpenCV sees them."""
    cap = _open(path)
    try:
        return (
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            float(cap.get(cv2.CAP_PROP_FPS)),
            int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
            normalize_rotation(float(cap.get(cv2.CAP_PROP_ORIENTATION_META))),
        )
    finally:
        cap.release()


def probe(path: Path) -> VideoInfo:
    """Stream facts of ``path``; raises :class:`VideoError` when it is no readable video."""
    if not path.is_file():
        raise VideoError("video.unreadable", f"{path} is not a file")
    # OpenCV opens the file while ffprobe starts and reads it (both take a while on a busy
    # machine); ffprobe's verdict still comes first
    with ThreadPoolExecutor(1, thread_name_prefix="cruxlog-probe") as pool:
        cv_facts = pool.submit(_cv_facts, path)
        meta = _ffprobe(path)
        stream: dict[str, object] = {}
        fmt: object = None
        if meta is not None:
            streams = meta.get("streams")
            video = [
                s
                for s in (streams if isinstance(streams, list) else [])
                if isinstance(s, dict) and s.get("codec_type") == "video"
            ]
            if not video:
                raise VideoError("video.unsupported", "the file has no video stream")
            stream, fmt = video[0], meta.get("format")
        cv_w, cv_h, cv_fps, cv_frames, cv_rotation = cv_facts.result()
    codec, rotation, duration_s, frames, fps = "unknown", cv_rotation, 0.0, cv_frames, cv_fps
    if meta is not None:
        codec = str(stream.get("codec_name", "unknown"))
        rotation = _rotation_from_stream(stream)
        fps = _ratio(stream.get("avg_frame_rate")) or _ratio(stream.get("r_frame_rate")) or fps
        duration_s = _ratio(stream.get("duration")) or (
            _ratio(fmt.get("duration")) if isinstance(fmt, dict) else 0.0
        )
        frames = int(_ratio(stream.get("nb_frames"))) or frames
    if cv_w <= 0 or cv_h <= 0:
        raise VideoError("video.unreadable", "the video stream has no frame size")
    if max(cv_w, cv_h) > MAX_SIDE_PX:
        raise VideoError("video.unsupported", f"{cv_w}x{cv_h} is larger than {MAX_SIDE_PX} px")
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise VideoError("video.unsupported", f"frame rate {fps!r} is not usable")
    if duration_s <= 0 and frames > 0:
        duration_s = frames / fps
    if frames <= 0:
        frames = round(duration_s * fps)
    stored = VideoInfo(path, codec, frames, fps, cv_w, cv_h, round(duration_s * 1000), 0)
    return stored.with_rotation(rotation)


def rotate(frame: Frame, rotation: int) -> Frame:
    """Rotate a stored frame clockwise by ``rotation`` degrees (a quarter-turn multiple)."""
    code = _ROTATE_CODES.get(rotation)
    return frame if code is None else np.ascontiguousarray(cv2.rotate(frame, code))


@dataclass(slots=True)
class DecodeStats:
    """Filled in by :func:`read_frames` as it goes."""

    decoded: int = 0
    stopped_at_limit: bool = False
    times_s: dict[int, float] = field(default_factory=dict)
    """Presentation time of every yielded frame (from the stream; phone videos often have a
    variable frame rate), set before the frame is yielded."""


def frame_limit(info: VideoInfo) -> int:
    """Most frames :func:`read_frames` decodes by default: the announced count plus slack."""
    return int(info.frames * FRAME_SLACK) + 2


def read_frames(
    info: VideoInfo,
    *,
    step: int = 1,
    max_frames: int | None = None,
    stats: DecodeStats | None = None,
) -> Iterator[tuple[int, Frame]]:
    """Yield ``(frame_index, upright RGB frame)`` for every ``step``-th decoded frame.

    Decodes at most ``max_frames`` frames (default: :func:`frame_limit`) so a broken container
    cannot make it loop for ever, and stops at the first frame that fails to decode (the end of
    the readable data).  Raises :class:`VideoError` when not a single frame decodes.
    """
    if step < 1:
        raise ValueError("step must be >= 1")
    limit = max_frames if max_frames is not None else frame_limit(info)
    stats = stats if stats is not None else DecodeStats()
    cap = _open(info.path)
    index = 0
    last_time = -1.0
    try:
        while index < limit:
            if index % step:
                if not cap.grab():
                    break
            else:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                rgb: Frame = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
                pts = float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
                ok_pts = math.isfinite(pts) and pts > last_time and (pts > 0 or index == 0)
                last_time = pts if ok_pts else max(last_time + 1e-3, index / info.fps)
                stats.times_s[index] = last_time
                index += 1
                stats.decoded = index
                yield index - 1, rotate(rgb, info.rotation_degrees)
                continue
            index += 1
            stats.decoded = index
        stats.stopped_at_limit = index >= limit
    finally:
        cap.release()
    if index == 0:
        raise VideoError("video.unreadable", "not a single frame could be decoded")


T = TypeVar("T")
_END: Final = object()


def prefetch(
    items: Iterable[T], depth: int = 8, *, on_start: Callable[[], None] | None = None
) -> Iterator[T]:
    """Iterate ``items`` on a background thread, ``depth`` items ahead; errors are re-raised.
    ``on_start`` runs first on that thread."""
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        if on_start is not None:
            on_start()
        iterator = iter(items)
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_END)
        except BaseException as exc:  # handed to the consumer
            slots.put(exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="cruxlog-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():
            try:
                slots.get(timeout=0.05)
            except queue.Empty:
                continue
        thread.join()
