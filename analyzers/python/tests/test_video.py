"""Video input: probing, rotation metadata, sampling, bounded decoding, clear failures."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cruxlog_vision import testvideo as tv
from cruxlog_vision.encode import ffmpeg_exe
from cruxlog_vision.video import (
    DecodeStats,
    VideoError,
    normalize_rotation,
    prefetch,
    probe,
    read_frames,
    rotate,
)


def test_probe_h264(clip: Path) -> None:
    info = probe(clip)
    assert (info.codec, info.width, info.height, info.rotation_degrees) == ("h264", 640, 360, 0)
    assert info.fps == pytest.approx(30.0)
    assert info.frames == 120
    assert info.duration_ms == 4000


def test_probe_hevc_and_decode(hevc_clip: Path) -> None:
    info = probe(hevc_clip)
    assert info.codec == "hevc"
    frames = list(read_frames(info))
    assert len(frames) == 60
    assert frames[0][1].shape == (270, 480, 3)


def test_rotation_metadata_is_read_and_applied(clip: Path, rotated_clip: Path) -> None:
    info = probe(rotated_clip)
    assert info.rotation_degrees == 90
    assert (info.width, info.height) == (640, 360)  # upright size
    assert info.stored_size == (360, 640)
    upright = next(read_frames(probe(clip)))[1].astype(int)
    turned = next(read_frames(info))[1].astype(int)
    assert turned.shape == upright.shape
    assert np.abs(turned - upright).mean() < 6  # same picture, up to encoding noise
    wrong = next(read_frames(info.with_rotation(270)))[1].astype(int)
    assert np.abs(wrong[::-1, ::-1] - upright).mean() < 6  # 270 = upside down from 90


def test_rotation_override_swaps_sizes(clip: Path) -> None:
    info = probe(clip).with_rotation(90)
    frame = next(read_frames(info))[1]
    assert frame.shape == (640, 360, 3)
    assert (info.width, info.height) == (360, 640)


@pytest.mark.parametrize(
    ("angle", "expected"), [(0, 0), (-90, 270), (90, 90), (180, 180), (-180, 180), (269.6, 270)]
)
def test_normalize_rotation(angle: float, expected: int) -> None:
    assert normalize_rotation(angle) == expected


def test_rotate_is_clockwise() -> None:
    frame = np.zeros((2, 3, 3), np.uint8)
    frame[0, 0] = 255  # top-left
    assert rotate(frame, 90).shape == (3, 2, 3)
    assert rotate(frame, 90)[0, 1, 0] == 255  # top-left goes to top-right
    assert rotate(frame, 270)[2, 0, 0] == 255
    assert rotate(frame, 0) is frame


def test_sampling_and_frame_limit(clip: Path) -> None:
    info = probe(clip)
    stats = DecodeStats()
    sampled = [i for i, _ in read_frames(info, step=3, stats=stats)]
    assert sampled == list(range(0, 120, 3))
    assert stats.decoded == 120
    assert not stats.stopped_at_limit
    stats = DecodeStats()
    assert len(list(read_frames(info, max_frames=10, stats=stats))) == 10
    assert stats.stopped_at_limit


def test_the_same_frames_match_the_generator(clip: Path) -> None:
    first = next(read_frames(probe(clip)))[1].astype(int)
    made = next(tv.frames(4, 30, 640, 360))[0].astype(int)
    assert np.abs(first - made).mean() < 6


@pytest.mark.parametrize("content", [b"", b"not a video at all\n" * 100])
def test_garbage_is_unreadable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError) as err:
        probe(path)
    assert err.value.code == "video.unreadable"
    assert str(err.value).startswith("video.unreadable: ")


def test_truncated_file_fails_quickly(corrupt_clip: Path) -> None:
    started = time.monotonic()
    with pytest.raises(VideoError, match=r"^video\.unreadable"):
        probe(corrupt_clip)
    assert time.monotonic() - started < 10


def test_corrupted_payload_decodes_what_it_can_without_hanging(tmp_path: Path, clip: Path) -> None:
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = np.random.default_rng(5).bytes(4000)
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    started = time.monotonic()
    info = probe(path)
    frames = list(read_frames(info))
    assert 0 < len(frames) <= 120 * 1.1 + 2
    assert time.monotonic() - started < 20


def test_audio_only_file_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "sound.m4a"
    cmd = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", str(path)]
    subprocess.run(cmd, check=True, timeout=60)
    with pytest.raises(VideoError, match=r"^video\.unsupported: the file has no video stream"):
        probe(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="not a file"):
        probe(tmp_path / "nope.mp4")


def test_prefetch_keeps_order_and_reraises() -> None:
    assert list(prefetch(range(50), depth=3)) == list(range(50))

    def boom() -> Iterator[int]:
        yield 1
        raise VideoError("video.unreadable", "broken")

    items = prefetch(boom())
    assert next(items) == 1
    with pytest.raises(VideoError, match="broken"):
        next(items)


def test_prefetch_stops_its_thread_when_abandoned() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    for i in prefetch(endless(), depth=2):
        if i == 5:
            break
    assert closed.wait(5)


def test_variable_frame_rate_uses_the_stream_timestamps(tmp_path: Path, clip: Path) -> None:
    vfr = tmp_path / "vfr.mp4"
    slow_down = "setpts='if(lt(N,60),N/30,2+(N-60)/15)/TB'"  # 30 fps for 2 s, then 15 fps
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(clip), "-vf", slow_down, "-fps_mode"]
    cmd += ["passthrough", "-c:v", "libx264", "-preset", "ultrafast", str(vfr)]
    subprocess.run(cmd, check=True, timeout=60)
    stats = DecodeStats()
    indices = [i for i, _ in read_frames(probe(vfr), step=30, stats=stats)]
    assert indices == [0, 30, 60, 90]
    assert [stats.times_s[i] for i in indices] == pytest.approx([0.0, 1.0, 2.0, 4.0], abs=0.02)


def test_mov_container_with_rotation(tmp_path: Path, rotated_clip: Path) -> None:
    mov = tmp_path / "phone.mov"
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(rotated_clip), "-c", "copy", str(mov)]
    subprocess.run(cmd, check=True, timeout=60)
    info = probe(mov)
    assert (info.codec, info.rotation_degrees, info.width, info.height) == ("h264", 90, 640, 360)
    assert next(read_frames(info))[1].shape == (360, 640, 3)
