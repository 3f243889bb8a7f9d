"""The chunked annotated video: GOPs cut from the stream, chunks in any order, a rewrite wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from cruxlog_vision.chunked import ChunkedVideo, split_gops
from cruxlog_vision.encode import EncodeError
from cruxlog_vision.video import Frame

from .test_movement import ffprobe_stream

SIZE = (96, 64)
BLUE, RED, GREEN = (20, 40, 220), (220, 30, 30), (30, 200, 60)


def solid(colour: tuple[int, int, int], count: int) -> list[Frame]:
    rgb = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    rgb[:] = colour
    i420 = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
    return [i420.copy() for _ in range(count)]


def new_video(path: Path, chunk: int = 4) -> ChunkedVideo:
    return ChunkedVideo(
        path, SIZE, 10.0, chunk, preset="ultrafast", crf=20, x264_params="cabac=1:8x8dct=1"
    )


def decoded(path: Path) -> Iterator[npt.NDArray[np.uint8]]:
    """Every frame of the video at ``path``, decoded by OpenCV (BGR)."""
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield np.asarray(bgr, dtype=np.uint8)
    finally:
        cap.release()


def decoded_colours(path: Path) -> list[tuple[int, int, int]]:
    out = []
    for bgr in decoded(path):
        b, g, r = (int(v) for v in bgr.reshape(-1, 3).mean(axis=0))
        out.append((r, g, b))
    return out


def near(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) < 20


def test_a_chunk_written_again_replaces_the_first_version(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    video = new_video(path)
    video.write_chunk(0, solid(BLUE, 4))
    video.write_chunk(1, solid(BLUE, 4))  # drawn early, then found wrong
    video.write_chunk(1, solid(RED, 4))
    video.write_chunk(2, solid(GREEN, 2))  # the short last chunk, last
    assert video.written == [0, 1, 1, 2]
    video.finish()
    stream = ffprobe_stream(path)
    assert (stream["codec_name"], stream["profile"], int(stream["nb_frames"])) == (
        "h264",
        "High",
        10,
    )
    colours = decoded_colours(path)
    expected = [BLUE] * 4 + [RED] * 4 + [GREEN] * 2
    assert len(colours) == 10
    assert all(near(c, e) for c, e in zip(colours, expected, strict=True)), colours
    head = path.read_bytes()
    assert 0 <= head.find(b"moov") < head.find(b"mdat")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_chunks_written_out_of_order_come_out_in_order(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    video = new_video(path, chunk=3)
    video.write_chunk(1, solid(RED, 3))
    video.write_chunk(0, solid(BLUE, 3))
    video.write_chunk(2, solid(GREEN, 3))
    video.finish()
    colours = decoded_colours(path)
    expected = [BLUE] * 3 + [RED] * 3 + [GREEN] * 3
    assert all(near(c, e) for c, e in zip(colours, expected, strict=True)), colours


def test_split_gops_cuts_before_each_sequence_parameter_set(tmp_path: Path) -> None:
    assert split_gops(b"") == []
    assert split_gops(b"\x00\x00\x01\x41abc") == [b"\x00\x00\x01\x41abc"]
    path = tmp_path / "v.mp4"
    video = new_video(path)
    for k in range(3):
        video.write_chunk(k, solid(BLUE, 4))
    video._writer.close()
    gops = split_gops(video._stream.read_bytes())
    assert len(gops) == 3
    assert all(g.startswith(b"\x00\x00\x00\x01") and g[4] & 0x1F == 7 for g in gops)
    video.abort()


def test_a_short_chunk_has_to_be_the_last_and_a_chunk_not_empty(tmp_path: Path) -> None:
    video = new_video(tmp_path / "v.mp4")
    with pytest.raises(ValueError, match="0 frames"):
        video.write_chunk(0, [])
    with pytest.raises(ValueError, match="5 frames"):
        video.write_chunk(0, solid(BLUE, 5))
    video.abort()
    video = new_video(tmp_path / "w.mp4")
    video.write_chunk(0, solid(BLUE, 2))
    with pytest.raises(ValueError, match="last one"):
        video.write_chunk(1, solid(BLUE, 4))
    video.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_missing_chunk_fails_and_leaves_nothing(tmp_path: Path) -> None:
    video = new_video(tmp_path / "v.mp4")
    video.write_chunk(0, solid(BLUE, 4))
    video.write_chunk(2, solid(RED, 4))
    with pytest.raises(EncodeError, match="chunks missing"):
        video.finish()
    video.finish()  # idempotent after the failure
    assert list(tmp_path.iterdir()) == []
