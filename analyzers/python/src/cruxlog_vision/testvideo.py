"""Synthetic climbing videos from real photos of people shipped in installed packages.

Nothing is downloaded: the people are scikit-image's ``astronaut()`` and ``camera()`` and
matplotlib's ``grace_hopper.jpg`` (upper bodies).  A person is moved, scaled and slightly turned
over a procedural climbing wall (grainy paint and coloured holds): it climbs up in moves of
``MOVE_S`` separated by still spells of ``PAUSE_S``, swaying sideways, as a tripod shot would show
it.  ``back_view=True`` paints the face over with a hair-coloured ellipse, a stand-in for a
climber seen from behind (BlazePose's person detector keys on the face).

:func:`make_test_video` writes such a clip as H.264 (or HEVC) MP4, optionally stored rotated with
rotation metadata like an upright phone; ``cruxlog-vision make-test-video`` is its command line.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from cruxlog_vision.encode import VideoWriter, set_rotation
from cruxlog_vision.video import Frame, rotate

PEOPLE: Final = ("camera", "astronaut", "grace_hopper")
MOVE_S: Final = 1.0
PAUSE_S: Final = 1.5
PERSON_HEIGHT: Final = 0.42
"""Height of the pasted photo as a share of the frame height."""

# Face of each photo (centre x, centre y, semi-axes x, y; fractions of the photo's width and
# height), measured once with BlazePose on the photo.
_FACES: Final = {
    "camera": (0.47, 0.285, 0.10, 0.12),
    "astronaut": (0.441, 0.20, 0.12, 0.15),
    "grace_hopper": (0.524, 0.31, 0.22, 0.23),
}


def person_image(name: str) -> Frame:
    """One of :data:`PEOPLE` as an RGB uint8 image."""
    if name in ("camera", "astronaut"):
        from skimage import data

        image = data.camera() if name == "camera" else data.astronaut()  # type: ignore[no-untyped-call]
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        return np.ascontiguousarray(image, dtype=np.uint8)
    if name == "grace_hopper":
        from matplotlib import cbook

        sample: Any = cbook.get_sample_data("grace_hopper.jpg")
        with sample as fh:
            raw = np.frombuffer(fh.read(), dtype=np.uint8)
        bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR)
        return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    raise ValueError(f"unknown person {name!r}; one of {', '.join(PEOPLE)}")


def hide_face(name: str, image: Frame) -> Frame:
    """``image`` (the photo ``name``) with the face painted over in a dark hair colour."""
    cx, cy, ax, ay = _FACES[name]
    h, w = image.shape[:2]
    out = image.copy()
    centre = (int(cx * w), int(cy * h))
    cv2.ellipse(out, centre, (int(ax * w), int(ay * h)), 0, 0, 360, (48, 36, 28), -1)
    return out


def wall(width: int, height: int, seed: int = 7) -> Frame:
    """A climbing wall: grainy grey-beige paint with panel seams and coloured holds."""
    rng = np.random.default_rng(seed)
    small = rng.normal(0, 1, (max(2, height // 48), max(2, width // 48)))
    coarse = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)[:, :, None]
    grain = rng.normal(0, 6, (height, width, 1))
    base = np.array([168, 160, 146]) + 10 * coarse + grain
    img = np.clip(base, 0, 255).astype(np.uint8).repeat(1, axis=2)
    panel = max(40, min(width, height) // 4)
    for x in range(0, width, panel):
        cv2.line(img, (x, 0), (x, height), (120, 116, 108), 1)
    for y in range(0, height, panel):
        cv2.line(img, (0, y), (width, y), (120, 116, 108), 1)
    colours = [(220, 40, 40), (40, 160, 60), (240, 200, 30), (40, 80, 200), (230, 110, 20)]
    for _ in range(int(width * height / 9000)):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(4, max(6, min(width, height) // 40)))
        colour = colours[int(rng.integers(0, len(colours)))]
        axes = (r, max(2, int(r * rng.uniform(0.5, 1.0))))
        cv2.ellipse(img, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        cv2.ellipse(img, (x + 1, y + 1), axes, 0, 200, 340, (60, 60, 60), 1)
    return np.ascontiguousarray(img)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the photo goes: centre (px), height (px) and a turn (degrees, counter-clockwise)."""

    cx: float
    cy: float
    height: float
    angle: float = 0.0


def affine(person_shape: tuple[int, ...], at: Placement) -> npt.NDArray[np.float64]:
    """2x3 matrix mapping photo pixels to frame pixels."""
    ph, pw = person_shape[:2]
    scale = at.height / ph
    m = cv2.getRotationMatrix2D((pw / 2, ph / 2), at.angle, scale)
    m[0, 2] += at.cx - pw / 2
    m[1, 2] += at.cy - ph / 2
    return np.asarray(m, dtype=np.float64)


def compose(background: Frame, person: Frame, at: Placement) -> Frame:
    """The photo warped onto ``background`` with feathered edges."""
    h, w = background.shape[:2]
    m = affine(person.shape, at)
    ph, pw = person.shape[:2]
    box = np.zeros((ph, pw), np.float32)
    border = max(2, min(ph, pw) // 12)
    box[border:-border, border:-border] = 1.0
    alpha = cv2.GaussianBlur(box, (0, 0), border / 2)
    # only the photo's bounding box is warped and blended (much faster than the whole frame)
    corners = map_points(np.array([[0, 0], [pw, 0], [0, ph], [pw, ph]], dtype=np.float64), m)
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 1, 0, [w, h])
    out = background.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    shifted = m.copy()
    shifted[:, 2] -= (x0, y0)
    size = (int(x1 - x0), int(y1 - y0))
    warped = cv2.warpAffine(person, shifted, size, flags=cv2.INTER_LINEAR)
    a = cv2.warpAffine(alpha, shifted, size, flags=cv2.INTER_LINEAR)[:, :, None]
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (region * (1 - a) + warped.astype(np.float32) * a).astype(np.uint8)
    return out


def map_points(
    points: npt.NDArray[np.float64], m: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Apply a 2x3 affine matrix to ``(N, 2)`` points."""
    mapped: npt.NDArray[np.float64] = np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]
    return mapped


def climb_placements(seconds: float, fps: float, width: int, height: int) -> list[Placement]:
    """Per frame: a climb from the bottom of the frame to the top in moves and pauses."""
    frames = max(1, round(seconds * fps))
    size = PERSON_HEIGHT * height
    bottom, top = height - size * 0.55, size * 0.55
    cycle = MOVE_S + PAUSE_S
    moves = max(1, math.ceil(seconds / cycle))
    out = []
    for i in range(frames):
        t = i / fps
        k, phase = divmod(t, cycle)
        progress = (k + min(phase / MOVE_S, 1.0)) / moves
        ease = progress if phase >= MOVE_S else (k + _min_jerk(phase / MOVE_S)) / moves
        cy = bottom + (top - bottom) * ease
        cx = width / 2 + 0.12 * width * math.sin(math.pi * ease * moves / 2)
        angle = 6.0 * math.sin(math.pi * ease * moves)
        out.append(Placement(cx, cy, size * (1 + 0.1 * ease), angle))
    return out


def _min_jerk(s: float) -> float:
    s = min(1.0, max(0.0, s))
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def frames(
    seconds: float,
    fps: float,
    width: int,
    height: int,
    person: str = "camera",
    back_view: bool = False,
) -> Iterator[tuple[Frame, npt.NDArray[np.float64]]]:
    """Upright frames of a synthetic climb with the photo-to-frame matrix of each."""
    photo = person_image(person)
    if back_view:
        photo = hide_face(person, photo)
    background = wall(width, height)
    for at in climb_placements(seconds, fps, width, height):
        yield compose(background, photo, at), affine(photo.shape, at)


def make_test_video(
    out: Path,
    *,
    seconds: float = 6.0,
    width: int = 1280,
    height: int = 720,
    fps: float = 30.0,
    rotate_degrees: int = 0,
    person: str = "camera",
    back_view: bool = False,
    codec: str = "libx264",
) -> None:
    """Write a synthetic climb as MP4.  With ``rotate_degrees`` the frames are stored turned the
    other way and the file says to turn them back, as phones do; players show it upright."""
    if width % 2 or height % 2:
        raise ValueError("width and height must be even")
    if rotate_degrees not in (0, 90, 180, 270):
        raise ValueError("rotation must be 0, 90, 180 or 270")
    stored_w, stored_h = (height, width) if rotate_degrees in (90, 270) else (width, height)
    target = out if rotate_degrees == 0 else out.with_name(out.name + ".unrotated.mp4")
    try:
        with VideoWriter(
            target, stored_w, stored_h, fps, preset="veryfast", crf=23, codec=codec
        ) as w:
            for frame, _ in frames(seconds, fps, width, height, person, back_view):
                w.write(rotate(frame, (360 - rotate_degrees) % 360))
        if rotate_degrees:
            set_rotation(target, out, rotate_degrees)
    finally:
        if target != out:
            target.unlink(missing_ok=True)
