"""Movement metrics from the climbing literature: pure functions over numpy arrays.

Tracks are ``(T, 2)`` arrays of image points (rows with NaN are missing samples) with a
``(T,)`` array of times in seconds.  Lengths are in whatever unit the caller uses; the analyzer
passes tracks measured in *torso lengths* (shoulder centre to hip centre) so that the numbers do
not depend on the camera distance.

* Geometric index of entropy (Cordier, Mendès France, Pailhous & Bolon 1994; Cordier et al.
  1993): ``ln(2 L / c)``, L = length of the hip path, c = perimeter of its convex hull.  0 for a
  straight line, higher for a hesitant, wandering path.
* Dimensionless jerk (Hogan & Sternad 2009): ``(T^5 / L^2) * integral |d^3x/dt^3|^2 dt``
  over the duration T, normalised by duration and path length L (the movement's amplitude); 720
  for a minimum-jerk point-to-point movement, larger for jerky movement with stops and
  corrections.  ``smoothness_score`` maps it to 0..1 as ``ln(720) / ln(DJ)`` (1 at or below the
  minimum-jerk value).
* Immobility ratio (Seifert et al.): the share of time the hips stand still.
* Path efficiency: straight-line distance from start to end divided by the path length.
* Elbow angle: the inner angle at the elbow, 180 degrees for a straight arm.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MIN_JERK_DJ: Final = 720.0
"""Dimensionless jerk of a minimum-jerk point-to-point movement."""


def valid_rows(points: FloatArray) -> BoolArray:
    """Rows of a ``(T, D)`` array whose values are all finite."""
    rows: BoolArray = np.all(np.isfinite(np.asarray(points, dtype=np.float64)), axis=1)
    return rows


def path_length(points: FloatArray) -> float:
    """Sum of the distances between consecutive valid points (missing rows are skipped)."""
    p = np.asarray(points, dtype=np.float64)
    p = p[valid_rows(p)]
    if len(p) < 2:
        return 0.0
    return float(np.sum(np.linalg.norm(np.diff(p, axis=0), axis=1)))


def convex_hull(points: FloatArray) -> FloatArray:
    """Vertices of the 2-D convex hull, counter-clockwise (Andrew's monotone chain).

    Collinear points give the two end points; a single distinct point gives one row.
    """
    p = np.asarray(points, dtype=np.float64)
    p = p[valid_rows(p)]
    if len(p) == 0:
        return np.zeros((0, 2))
    unique = np.unique(p, axis=0)  # sorted by x, then y
    if len(unique) < 3:
        return unique

    def cross(o: FloatArray, a: FloatArray, b: FloatArray) -> float:
        return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))

    lower: list[FloatArray] = []
    for pt in unique:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], pt) <= 0:
            lower.pop()
        lower.append(pt)
    upper: list[FloatArray] = []
    for pt in unique[::-1]:
        while len(upper) >= 2 and cross(upper[-2], upper[-1], pt) <= 0:
            upper.pop()
        upper.append(pt)
    return np.array(lower[:-1] + upper[:-1])


def hull_perimeter(points: FloatArray) -> float:
    """Perimeter of the convex hull (twice the extent for collinear points)."""
    hull = convex_hull(points)
    if len(hull) < 2:
        return 0.0
    closed = np.vstack([hull, hull[:1]])
    return float(np.sum(np.linalg.norm(np.diff(closed, axis=0), axis=1)))


def geometric_entropy(points: FloatArray) -> float:
    """``ln(2L/c)`` of a path (0 for a straight path and for no movement at all)."""
    length = path_length(points)
    perimeter = hull_perimeter(points)
    if length <= 0 or perimeter <= 0:
        return 0.0
    return math.log(2.0 * length / perimeter)


def dimensionless_jerk(times_s: FloatArray, points: FloatArray) -> float:
    """Hogan & Sternad's duration- and amplitude-normalised jerk of an evenly sampled path.

    Jerk is the third finite difference; the integral is the mean squared jerk times the
    duration (exact for constant jerk).  Needs at least 4 samples, no missing rows and a path
    that moves; returns NaN otherwise.
    """
    t = np.asarray(times_s, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64).reshape(len(t), -1)
    if len(t) < 4 or not np.all(valid_rows(p)):
        return math.nan
    dt = np.diff(t)
    if np.any(dt <= 0) or np.ptp(dt) > 1e-6 * float(np.mean(dt)):
        raise ValueError("dimensionless_jerk needs evenly spaced samples")
    step = float(np.mean(dt))
    duration = float(t[-1] - t[0])
    length = path_length(p)
    if length <= 0:
        return math.nan
    jerk = np.diff(p, n=3, axis=0) / step**3
    integral = float(np.mean(np.sum(jerk**2, axis=1))) * duration
    return duration**5 / length**2 * integral


def smoothness_score(dj: float) -> float:
    """0..1 from a dimensionless jerk: ``ln(720)/ln(DJ)``, 1 for minimum-jerk or smoother."""
    if not math.isfinite(dj):
        return math.nan
    if dj <= MIN_JERK_DJ:
        return 1.0
    return math.log(MIN_JERK_DJ) / math.log(dj)


def speeds(times_s: FloatArray, points: FloatArray) -> FloatArray:
    """Speed at each sample (central differences, one-sided at the ends); NaN where undefined."""
    t = np.asarray(times_s, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64).reshape(len(t), -1)
    out = np.full(len(t), np.nan)
    if len(t) < 2:
        return out
    idx = np.arange(len(t))
    a, b = np.maximum(idx - 1, 0), np.minimum(idx + 1, len(t) - 1)
    dt = t[b] - t[a]
    ok = dt > 0
    distance = np.linalg.norm(p[b[ok]] - p[a[ok]], axis=1)
    out[ok] = distance / dt[ok]
    return out


def immobility_ratio(speed: FloatArray, threshold: float) -> float:
    """Share of samples (with a known speed) whose speed is below ``threshold``."""
    s = np.asarray(speed, dtype=np.float64)
    s = s[np.isfinite(s)]
    return float(np.mean(s < threshold)) if len(s) else math.nan


def path_efficiency(points: FloatArray) -> float:
    """``|end - start| / path length`` over the valid points (1 for a straight path)."""
    p = np.asarray(points, dtype=np.float64)
    p = p[valid_rows(p)]
    length = path_length(p)
    if len(p) < 2 or length <= 0:
        return math.nan
    return float(np.linalg.norm(p[-1] - p[0])) / length


def joint_angles(a: FloatArray, b: FloatArray, c: FloatArray) -> FloatArray:
    """Angle ABC in degrees per row (180 = straight); NaN where a point is missing."""
    u = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    v = np.asarray(c, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.sum(u * v, axis=-1) / norms
    angles: FloatArray = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return angles


def ratio_of(mask: BoolArray, within: BoolArray) -> float:
    """Share of the ``within`` samples where ``mask`` holds (NaN when ``within`` is empty)."""
    w = np.asarray(within, dtype=bool)
    if not w.any():
        return math.nan
    return float(np.mean(np.asarray(mask, dtype=bool)[w]))
