"""Synthetic BlazePose keypoint tracks of a stick-figure climber with known poses.

Pixels, y down, torso (shoulder centre to hip centre) exactly ``TORSO`` px.  Arms reach up:
the upper arm points straight up and the forearm turns outwards so the elbow's inner angle is
exactly the requested one (180 = straight, 90 = forearm horizontal).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

TORSO = 100.0
HALF_SHOULDERS = 25.0
UPPER_ARM = 60.0
FOREARM = 60.0


@dataclass
class Pose:
    hip: tuple[float, float]
    elbow_deg: tuple[float, float] = (170.0, 170.0)
    ankles: tuple[tuple[float, float], tuple[float, float]] | None = None
    """Ankle offsets from the hip centre; default (-20, 100) and (20, 100)."""
    shoulder_half_width: float = HALF_SHOULDERS
    wrists: tuple[tuple[float, float], tuple[float, float]] | None = None
    """Wrist offsets from the hip centre, overriding the elbow-angle arms."""


def keypoints(pose: Pose) -> FloatArray:
    """One ``(33, 4)`` row of keypoints (x, y, z=0, visibility=0.99)."""
    k = np.zeros((33, 4))
    k[:, 3] = 0.99
    hx, hy = pose.hip
    k[:, 0], k[:, 1] = hx, hy - 1.3 * TORSO  # face points on the head by default
    half = pose.shoulder_half_width
    for side, sign in ((0, -1.0), (1, 1.0)):
        sx, sy = hx + sign * half, hy - TORSO
        ex, ey = sx, sy - UPPER_ARM
        phi = math.radians(180.0 - pose.elbow_deg[side])
        wx, wy = ex + sign * FOREARM * math.sin(phi), ey - FOREARM * math.cos(phi)
        if pose.wrists is not None:
            wx, wy = hx + pose.wrists[side][0], hy + pose.wrists[side][1]
        k[11 + side, :2] = (sx, sy)
        k[13 + side, :2] = (ex, ey)
        k[15 + side, :2] = (wx, wy)
        for hand in (17, 19, 21):
            k[hand + side, :2] = (wx, wy - 5)
        k[23 + side, :2] = (hx + sign * 0.6 * half, hy)
        ax, ay = pose.ankles[side] if pose.ankles else (sign * 20.0, 100.0)
        k[25 + side, :2] = (hx + (ax + sign * 20) / 2, hy + ay / 2)
        k[27 + side, :2] = (hx + ax, hy + ay)
        k[29 + side, :2] = (hx + ax, hy + ay + 5)
        k[31 + side, :2] = (hx + ax + sign * 10, hy + ay + 8)
    return k


def track(times_s: FloatArray, pose_at: Callable[[float], Pose]) -> FloatArray:
    """``(T, 33, 4)`` keypoints for the given times."""
    return np.stack([keypoints(pose_at(float(t))) for t in times_s])


def min_jerk(s: float) -> float:
    s = min(1.0, max(0.0, s))
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def ramp(t: float, start: float, end: float) -> float:
    """0 before ``start``, 1 after ``end``, minimum-jerk in between."""
    return min_jerk((t - start) / (end - start))
