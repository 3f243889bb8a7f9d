"""An H.264 MP4 written in chunks of whole GOPs, in any order, a chunk written again replacing it.

The annotated video is drawn while the pose pass still runs, from findings that may change once
the whole climb is known (:mod:`cruxlog_vision.streaming`).  A frame drawn from a finding that
later changed has to be drawn again, without encoding the rest again.  So the encoder starts an
IDR frame every ``chunk_frames`` frames (``keyint``, no scene cuts, no B-frames at ``ultrafast``):
each chunk of the Annex B stream then decodes on its own, and chunks can be put in any order.
:meth:`ChunkedVideo.finish` splits the stream where the encoder repeats its parameter sets (x264
writes an SPS before every IDR frame and nowhere else), keeps the last version of each chunk and
has ffmpeg copy them, in chunk order, into an MP4 with the ``moov`` atom first.  Both ffmpeg
processes start when the video is created, so their start-up is paid while the pose pass runs.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

from cruxlog_vision.encode import CLOSE_TIMEOUT_S, EncodeError, VideoWriter, ffmpeg_exe
from cruxlog_vision.priority import lower_process
from cruxlog_vision.video import Frame

NAL_SPS: Final = 7


def split_gops(stream: bytes) -> list[bytes]:
    """An Annex B H.264 stream cut before each sequence parameter set (its 4-byte start code
    included); bytes before the first SPS stay with the first piece."""
    cuts: list[int] = []
    at = stream.find(b"\x00\x00\x01")
    while at >= 0 and at + 3 < len(stream):
        if stream[at + 3] & 0x1F == NAL_SPS:
            cuts.append(at - 1 if at > 0 and stream[at - 1] == 0 else at)
        at = stream.find(b"\x00\x00\x01", at + 3)
    if not cuts:
        return [stream] if stream else []
    cuts[0] = 0
    return [stream[a:b] for a, b in zip(cuts, [*cuts[1:], len(stream)], strict=True)]


class ChunkedVideo:
    """Frames are planar I420 arrays of ``(height * 3 // 2, width)``; chunk ``k`` holds frames
    ``k * chunk_frames`` onwards.  Every chunk has ``chunk_frames`` frames but the last one of
    the video, which has to be written last."""

    def __init__(
        self,
        path: Path,
        size: tuple[int, int],
        fps: float,
        chunk_frames: int,
        *,
        preset: str,
        crf: int,
        x264_params: str | None = None,
    ) -> None:
        if chunk_frames < 2:
            raise ValueError(f"chunk_frames must be at least 2, got {chunk_frames}")
        self.path = path
        self.size = size
        self.fps = fps
        self.chunk_frames = chunk_frames
        self._stream = path.with_name(path.name + ".h264")
        params = f"keyint={chunk_frames}:scenecut=0:bframes=0:repeat-headers=1"
        self._writer = VideoWriter(
            self._stream,
            *size,
            fps,
            preset=preset,
            crf=crf,
            input_format="yuv420p",
            x264_params=params if not x264_params else f"{x264_params}:{params}",
            container="h264",
        )
        lower_process(self._writer.pid)  # before its first frame, so x264's threads inherit it
        self._mux_err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finish/abort)
        cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-f", "h264"]
        cmd += ["-framerate", f"{fps:.6g}", "-i", "-", "-c", "copy"]
        cmd += ["-movflags", "+faststart", "-f", "mp4", str(path)]
        self._muxer = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._mux_err)
        self._order: list[int] = []
        self._short_written = False
        self._done = False

    @property
    def written(self) -> list[int]:
        """The chunks in the order they were written (a chunk written again appears again)."""
        return list(self._order)

    def write_chunk(self, k: int, frames: Sequence[Frame]) -> None:
        """Encode ``frames`` as chunk ``k``; checked before the first frame goes out."""
        if self._short_written:
            raise ValueError("a short chunk was written: it has to be the last one")
        if not 1 <= len(frames) <= self.chunk_frames:
            raise ValueError(f"chunk {k} has {len(frames)} frames, not 1..{self.chunk_frames}")
        for frame in frames:
            self._writer.write(frame)
        self._short_written = len(frames) < self.chunk_frames
        self._order.append(k)

    def finish(self) -> None:
        """Close the encoder and write the MP4 from the last version of every chunk; raises
        :class:`EncodeError` when a chunk is missing or ffmpeg failed.  Idempotent."""
        if self._done:
            return
        self._done = True
        try:
            self._writer.close()
            gops = split_gops(self._stream.read_bytes())
            if len(gops) != len(self._order):
                raise EncodeError(f"{len(gops)} GOPs in the stream for {len(self._order)} chunks")
            latest = dict(zip(self._order, gops, strict=True))
            if sorted(latest) != list(range(len(latest))):
                raise EncodeError(f"chunks missing: written {sorted(latest)}")
            self._mux(b"".join(latest[k] for k in range(len(latest))))
        except BaseException:
            self.abort()
            raise
        finally:
            self._stream.unlink(missing_ok=True)

    def _mux(self, stream: bytes) -> None:
        assert self._muxer.stdin is not None
        try:
            with contextlib.suppress(BrokenPipeError):
                self._muxer.stdin.write(stream)
            with contextlib.suppress(BrokenPipeError):
                self._muxer.stdin.close()
            code = self._muxer.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise EncodeError("ffmpeg did not write the MP4 in time") from exc
        self._mux_err.seek(0)
        text = " ".join(self._mux_err.read().decode("utf-8", "replace").split())[-500:]
        self._mux_err.close()
        if code != 0:
            raise EncodeError(f"ffmpeg exited with {code} writing the MP4: {text}")

    def abort(self) -> None:
        """Kill both ffmpeg processes and remove what they wrote."""
        self._done = True
        self._writer.abort()
        if self._muxer.poll() is None:
            self._muxer.kill()
        self._muxer.wait()
        if not self._mux_err.closed:
            self._mux_err.close()
        self._stream.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)
