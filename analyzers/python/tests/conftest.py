"""Shared, session-scoped test videos (built from photos shipped in installed packages) and one
warm pose tracker.  Nothing is downloaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cruxlog_vision.encode import VideoWriter
from cruxlog_vision.pose import PoseTracker
from cruxlog_vision.testvideo import make_test_video, wall


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def clip(videos: Path) -> Path:
    """4 s, 640x360, 30 fps H.264: the camera man climbing."""
    path = videos / "clip.mp4"
    make_test_video(path, seconds=4, width=640, height=360)
    return path


@pytest.fixture(scope="session")
def rotated_clip(videos: Path) -> Path:
    """Like ``clip`` but stored portrait-turned with a 90 degree rotation in its metadata."""
    path = videos / "rotated.mp4"
    make_test_video(path, seconds=4, width=640, height=360, rotate_degrees=90)
    return path


@pytest.fixture(scope="session")
def hevc_clip(videos: Path) -> Path:
    path = videos / "hevc.mp4"
    make_test_video(path, seconds=2, width=480, height=270, codec="libx265")
    return path


@pytest.fixture(scope="session")
def empty_wall_clip(videos: Path) -> Path:
    """2 s of a climbing wall with nobody on it."""
    path = videos / "wall.mp4"
    frame = wall(640, 360)
    with VideoWriter(path, 640, 360, 30.0) as writer:
        for i in range(60):
            writer.write(np.roll(frame, i, axis=1))
    return path


@pytest.fixture(scope="session")
def corrupt_clip(videos: Path, clip: Path) -> Path:
    """The first 20 kB of ``clip`` followed by noise: the header promises frames it lacks."""
    path = videos / "corrupt.mp4"
    head = clip.read_bytes()[:2000]
    path.write_bytes(head + np.random.default_rng(3).bytes(20_000))
    return path


@pytest.fixture(scope="session")
def tracker() -> Iterator[PoseTracker]:
    t = PoseTracker()
    yield t
    t.close()
