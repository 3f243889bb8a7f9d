"""From per-frame BlazePose keypoints to the body tracks the metrics use (pure numpy).

Keypoints are ``(T, 33, 4)`` arrays (x px, y px, z, visibility; NaN rows for frames without a
pose) with ``(T,)`` times in seconds.  :func:`body_tracks` smooths them (One Euro, real
timestamps), drops points whose visibility is below :data:`MIN_VISIBILITY`, and expresses
everything in *torso lengths* (median distance between the shoulder centre and the hip centre)
with y pointing *up*, so numbers compare across camera distances and "up the wall" is positive.
The hip centre stands in for the centre of mass, as in the climbing literature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from cruxlog_vision.smoothing import fill_gaps, gaussian_smooth, one_euro

FloatArray = npt.NDArray[np.float64]

MIN_VISIBILITY: Final = 0.5
MAX_FILL_GAP_S: Final = 0.5
DERIVATIVE_SIGMA_S: Final = 0.1

L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 11, 12, 13, 14, 15, 16
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 23, 24, 25, 26, 27, 28


@dataclass(frozen=True, slots=True)
class BodyTracks:
    """Tracks in torso lengths, y up; every point array is ``(T, 2)`` with NaN rows."""

    times_s: FloatArray
    torso_px: float
    hip: FloatArray
    hip_smooth: FloatArray
    """Hip centre after gap filling and a zero-phase Gaussian (for speeds and jerk)."""
    shoulder: FloatArray
    shoulders: tuple[FloatArray, FloatArray]
    elbows: tuple[FloatArray, FloatArray]
    wrists: tuple[FloatArray, FloatArray]
    hips: tuple[FloatArray, FloatArray]
    ankles: tuple[FloatArray, FloatArray]
    breaks: npt.NDArray[np.bool_]
    """Samples where the tracker re-acquired the body (not tracked on from the previous frame):
    a jump there may be the tracker switching bodies, so jerk is not measured across it."""

    @property
    def frames(self) -> int:
        return len(self.times_s)


def smooth_keypoints(times_s: FloatArray, keypoints: FloatArray) -> FloatArray:
    """One Euro filter over x and y of every landmark (visibility and z are kept as they are)."""
    k = np.array(keypoints, dtype=np.float64, copy=True)
    if len(k) == 0:
        return k
    k[:, :, :2] = one_euro(times_s, k[:, :, :2], min_cutoff_hz=1.0, beta=0.05)
    return k


def _point(k: FloatArray, index: int) -> FloatArray:
    p = k[:, index, :2].copy()
    p[~(k[:, index, 3] >= MIN_VISIBILITY)] = np.nan
    return p


def _mid(a: FloatArray, b: FloatArray) -> FloatArray:
    return (a + b) / 2.0


def torso_length(shoulder_centre: FloatArray, hip_centre: FloatArray) -> float:
    """Median shoulder-centre to hip-centre distance over the frames where both are known."""
    d = np.linalg.norm(shoulder_centre - hip_centre, axis=1)
    d = d[np.isfinite(d) & (d > 0)]
    return float(np.median(d)) if len(d) else math.nan


def body_tracks(
    times_s: FloatArray,
    keypoints: FloatArray,
    *,
    smooth: bool = True,
    breaks: npt.NDArray[np.bool_] | None = None,
) -> BodyTracks:
    """Body tracks of one climb; raises ``ValueError`` when no torso is ever visible.

    ``breaks`` marks the samples whose pose was re-acquired rather than tracked (see
    :attr:`BodyTracks.breaks`); none by default."""
    t = np.asarray(times_s, dtype=np.float64)
    k = smooth_keypoints(t, keypoints) if smooth else np.asarray(keypoints, dtype=np.float64)
    pts = {i: _point(k, i) for i in range(33)}
    hip_px = _mid(pts[L_HIP], pts[R_HIP])
    shoulder_px = _mid(pts[L_SHOULDER], pts[R_SHOULDER])
    torso = torso_length(shoulder_px, hip_px)
    if not math.isfinite(torso):
        raise ValueError("no frame shows both shoulders and both hips")

    def norm(p: FloatArray) -> FloatArray:
        out = p / torso
        out[:, 1] = -out[:, 1]  # image y grows downwards; ours grows up the wall
        return out

    hip = norm(hip_px)
    filled = fill_gaps(t, hip, max_gap_s=MAX_FILL_GAP_S)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    sigma = DERIVATIVE_SIGMA_S / step if step > 0 else 0.0
    hip_smooth = np.full_like(filled, np.nan)
    ok = np.all(np.isfinite(filled), axis=1)
    for start, end in _runs(ok):
        hip_smooth[start : end + 1] = gaussian_smooth(filled[start : end + 1], sigma)
    return BodyTracks(
        times_s=t,
        torso_px=torso,
        hip=hip,
        hip_smooth=hip_smooth,
        shoulder=norm(shoulder_px),
        shoulders=(norm(pts[L_SHOULDER]), norm(pts[R_SHOULDER])),
        elbows=(norm(pts[L_ELBOW]), norm(pts[R_ELBOW])),
        wrists=(norm(pts[L_WRIST]), norm(pts[R_WRIST])),
        hips=(norm(pts[L_HIP]), norm(pts[R_HIP])),
        ankles=(norm(pts[L_ANKLE]), norm(pts[R_ANKLE])),
        breaks=np.zeros(len(t), dtype=bool) if breaks is None else np.asarray(breaks, dtype=bool),
    )


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Inclusive index ranges of the True runs of a boolean array."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]
