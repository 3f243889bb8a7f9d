"""Pass 2 pieces: the frame store, the early-started encoder, the cached text and the render."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from cruxlog_vision import annotate, pipeline
from cruxlog_vision.encode import VideoWriter
from cruxlog_vision.pose import LANDMARKS, Source
from cruxlog_vision.rules import Finding
from cruxlog_vision.video import Frame

from .test_movement import ffprobe_stream


def frames(count: int, width: int = 1280, height: int = 720) -> list[Frame]:
    """Smooth gradients that move (JPEG and scaling keep them close to the original)."""
    y, x = np.mgrid[0:height, 0:width]
    out = []
    for i in range(count):
        r = (x * 255 // width + 10 * i) % 256
        g = y * 255 // height
        b = np.full_like(x, 40 + 5 * i)
        out.append(np.dstack([r, g, b]).astype(np.uint8))
    return out


def scaled(frame: Frame, size: tuple[int, int]) -> npt.NDArray[np.int16]:
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR), dtype=np.int16)


def test_frame_store_keeps_480p_raw_then_jpeg() -> None:
    originals = frames(4)
    w, h = 854, 480
    store = pipeline.FrameStore(1280, 720, raw_bytes=2 * w * h * 3 // 2)
    for f in originals:
        store.add(f)
    assert (store.size, len(store), store.jpeg_frames) == ((w, h), 4, 2)
    assert store.scale == pytest.approx(w / 1280)
    for i, f in enumerate(originals):
        back = store.frame(i)
        assert back.shape == (h, w, 3)
        assert back.dtype == np.uint8
        assert np.abs(back.astype(np.int16) - scaled(f, (w, h))).mean() < 3  # I420 / JPEG loss
        back[:] = 0  # a fresh array: drawing on it leaves the store alone
    assert store.frame(0).mean() > 10
    store.close()
    assert len(store) == 0


def test_frame_store_keeps_small_frames_as_they_are() -> None:
    store = pipeline.FrameStore(640, 360)
    store.add(frames(1, 640, 360)[0])
    assert store.size == (640, 360)
    assert store.scale == 1.0


def test_video_writer_takes_i420(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    with VideoWriter(path, 64, 48, 10.0, input_format="yuv420p") as writer:
        for f in frames(5, 64, 48):
            writer.write(np.asarray(cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8))
        with pytest.raises(ValueError, match="does not match"):
            writer.write(f)  # RGB into an I420 writer
    writer.close()  # closing twice is fine
    stream = ffprobe_stream(path)
    assert (stream["pix_fmt"], stream["profile"], int(stream["nb_frames"])) == (
        "yuv420p",
        "High",
        5,
    )


def test_annotated_video_leaves_nothing_when_the_analysis_fails(tmp_path: Path) -> None:
    path = tmp_path / "annotated.mp4"

    def fail_during_pass_1() -> None:
        with pipeline.annotated_video(path, (64, 48), 10.0):
            time.sleep(0.05)  # ffmpeg is up, waiting for frames
            raise RuntimeError("no climber")

    with pytest.raises(RuntimeError, match="no climber"):
        fail_during_pass_1()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cached_text_looks_like_put_text() -> None:
    text = "SLOW_REACH: The right hand took 1.1 s to reach"
    for width in (640, 854, 1280):
        drawn = np.full((60, width, 3), 120, np.uint8)
        drawn[:, ::7] = 30
        direct = drawn.copy()
        annotate._text(drawn, text, (10, 40), annotate.RED)
        s = width / 1280
        thick = max(1, round(1.5 * s))
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(direct, text, (10, 40), font, 0.55 * s, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(direct, text, (10, 40), font, 0.55 * s, annotate.RED, thick, cv2.LINE_AA)
        diff = np.abs(drawn.astype(int) - direct)
        assert diff.mean() < 0.2
        assert diff.max() <= 40
    edge = np.zeros((30, 100, 3), np.uint8)
    annotate._text(edge, text, (-20, 5), annotate.WHITE)  # clipped at the frame's edges
    annotate._text(edge, text, (500, 500), annotate.WHITE)  # outside: nothing happens
    assert edge.any()


def test_ordered_map_keeps_order() -> None:
    def slow_square(i: int) -> int:
        time.sleep(0.001 * (i % 3))
        return i * i

    assert list(pipeline.ordered_map(slow_square, range(20), 2)) == [i * i for i in range(20)]


def test_render_draws_480p_video_and_summary(tmp_path: Path) -> None:
    n = 12
    originals = frames(n)
    store = pipeline.FrameStore(1280, 720)
    for f in originals:
        store.add(f)
    keypoints = np.full((n, LANDMARKS, 4), np.nan)
    rng = np.random.default_rng(1)
    keypoints[:, :, 0] = rng.uniform(300, 900, (n, LANDMARKS))
    keypoints[:, :, 1] = rng.uniform(100, 600, (n, LANDMARKS))
    keypoints[:, :, 2:] = 0.9
    times = np.arange(n) / 10.0
    track = pipeline.PoseTrack(
        frame_index=np.arange(n, dtype=np.int64) * 3,
        times_s=times,
        keypoints=keypoints,
        sources=np.full(n, int(Source.TRACKING), np.int8),
        decoded_frames=3 * n,
    )
    finding = Finding("SLOW_REACH", "ERROR", 300, 800, 0.5, "Commit to the move.")
    overlay = pipeline.Overlay(keypoints, [finding], {"smoothness_ratio": 0.5}, [0.2])
    video, image = tmp_path / "annotated.mp4", tmp_path / "summary.jpg"
    with pipeline.annotated_video(video, store.size, 10.0) as writer:
        pipeline.render(track, overlay, store, writer, image_out=image)
    stream = ffprobe_stream(video)
    assert (stream["width"], stream["height"], int(stream["nb_frames"])) == (854, 480, n)
    assert (stream["codec_name"], stream["profile"], stream["pix_fmt"]) == (
        "h264",
        "High",
        "yuv420p",
    )
    head = video.read_bytes()
    assert 0 <= head.find(b"moov") < head.find(b"mdat")
    still = cv2.imread(str(image))
    assert still is not None
    assert still.shape == (480, 854, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4", "summary.jpg"]
