"""Phone-playable video output: raw RGB frames piped into Debian's ``ffmpeg`` (libx264).

OpenCV's wheel cannot encode H.264, so frames go to an ``ffmpeg`` child process on its stdin and
come out as H.264 High profile, ``yuv420p``, with the ``moov`` atom first (``+faststart``) so a
phone starts playing before the download ends.  :func:`set_rotation` writes a rotation into an
existing MP4 without re-encoding (for test videos that imitate an upright phone).
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Final

import numpy as np

from cruxlog_vision.video import Frame, VideoError, probe

CLOSE_TIMEOUT_S: Final = 120.0
PIPE_BYTES: Final = 1 << 20


class EncodeError(RuntimeError):
    """ffmpeg is missing or failed."""


def ffmpeg_exe() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise EncodeError("ffmpeg not found on PATH (infra/local/stack.sh install adds it)")
    return exe


def even_size(width: int, height: int, max_side: int | None = None) -> tuple[int, int]:
    """``(width, height)`` scaled down to ``max_side`` (if given) and rounded down to even."""
    scale = 1.0 if max_side is None else min(1.0, max_side / max(width, height))
    w, h = int(width * scale), int(height * scale)
    return max(2, w - w % 2), max(2, h - h % 2)


class VideoWriter:
    """Writes frames of one fixed, even size to an H.264 MP4 (or, with ``container="h264"``, a
    raw Annex B stream) through ffmpeg: RGB
    ``(height, width, 3)`` arrays, or with ``input_format="yuv420p"`` planar I420
    ``(height * 3 // 2, width)`` arrays (OpenCV's ``COLOR_RGB2YUV_I420``), which spares ffmpeg
    the colour conversion (about a third of its time at 480p)."""

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        *,
        preset: str = "veryfast",
        crf: int = 26,
        codec: str = "libx264",
        threads: int = 0,
        input_format: str = "rgb24",
        x264_params: str | None = None,
        container: str = "mp4",
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p needs even sizes, got {width}x{height}")
        if input_format not in ("rgb24", "yuv420p"):
            raise ValueError(f"input_format must be rgb24 or yuv420p, got {input_format!r}")
        if container not in ("mp4", "h264"):
            raise ValueError(f"container must be mp4 or h264, got {container!r}")
        self.path = path
        self.size = (width, height)
        self._shape = (height, width, 3) if input_format == "rgb24" else (height * 3 // 2, width)
        self.frames = 0
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close/abort)
        cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-f", "rawvideo"]
        cmd += ["-pix_fmt", input_format, "-s", f"{width}x{height}", "-r", f"{fps:.6g}", "-i", "-"]
        cmd += ["-an", "-c:v", codec, "-preset", preset, "-crf", str(crf)]
        if codec == "libx264":
            cmd += ["-profile:v", "high"]
            if x264_params:
                cmd += ["-x264-params", x264_params]
        elif codec == "libx265":
            cmd += ["-tag:v", "hvc1", "-x265-params", "log-level=error"]
        cmd += ["-threads", str(threads), "-pix_fmt", "yuv420p"]
        if container == "mp4":
            cmd += ["-movflags", "+faststart"]
        cmd += ["-f", container, str(path)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._stderr)
        self._closed = False
        if hasattr(fcntl, "F_SETPIPE_SZ") and self._proc.stdin is not None:
            # a frame or two of slack, so the writer and x264 wait on each other less
            with contextlib.suppress(OSError):
                fcntl.fcntl(self._proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def write(self, frame: Frame) -> None:
        if frame.shape != self._shape or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.shape} {frame.dtype} does not match {self._shape}")
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError as exc:
            raise EncodeError(f"ffmpeg stopped: {self._error_text()}") from exc
        self.frames += 1

    def close(self) -> None:
        """Finish the file; raises :class:`EncodeError` when ffmpeg failed.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        try:
            code = self._proc.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            self._proc.kill()
            self._proc.wait()
            raise EncodeError("ffmpeg did not finish in time") from exc
        finally:
            text = self._error_text()
            self._stderr.close()
        if code != 0:
            raise EncodeError(f"ffmpeg exited with {code}: {text}")

    def abort(self) -> None:
        self._closed = True
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if not self._stderr.closed:
            self._stderr.close()

    def _error_text(self) -> str:
        if self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return " ".join(self._stderr.read().decode("utf-8", "replace").split())[-500:]

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def set_rotation(src: Path, dst: Path, rotation: int) -> None:
    """Copy ``src`` to ``dst`` (no re-encode) with a display rotation of ``rotation`` degrees
    clockwise, i.e. players turn the stored frames by that much.  Verified with :func:`probe`.

    FFmpeg versions disagree on the sign of the ``rotate`` tag when muxing, so both are tried.
    """
    attempts = [
        ["-metadata:s:v:0", f"rotate={(360 - rotation) % 360}"],
        ["-metadata:s:v:0", f"rotate={rotation}"],
    ]
    for extra in attempts:
        cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(src), "-c", "copy"]
        cmd += [*extra, "-movflags", "+faststart", str(dst)]
        done = subprocess.run(cmd, capture_output=True, timeout=CLOSE_TIMEOUT_S, check=False)
        if done.returncode != 0:
            raise EncodeError(done.stderr.decode("utf-8", "replace").strip()[-500:])
        try:
            if probe(dst).rotation_degrees == rotation:
                return
        except VideoError as exc:
            raise EncodeError(str(exc)) from exc
    raise EncodeError(f"this ffmpeg cannot write a {rotation} degree rotation")
