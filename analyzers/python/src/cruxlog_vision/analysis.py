"""The metrics and summary of one climb, from its body tracks and phases (pure).

Metric keys are snake_case with a unit suffix (``_s``, ``_torso``, ``_ratio``, ``_count``,
``_nats``, ``_deg`` ...).  A metric that is undefined for a climb (no reach, no static phase,
too short to differentiate) is left out rather than reported as NaN, so every value is finite.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from cruxlog_vision import metrics as m
from cruxlog_vision.phases import BoolArray, Phases
from cruxlog_vision.tracks import BodyTracks, FloatArray, _runs

STRAIGHT_DEG: Final = 150.0
"""An elbow at least this open is a straight arm."""
BENT_DEG: Final = 120.0
"""An elbow closed below this is a bent arm."""
PATH_RATE_HZ: Final = 10.0
"""Path and jerk metrics use the smoothed hip track resampled at this rate, so that they do not
change with the frame rate (pose jitter adds length at every sample, and jerk at 30 Hz)."""


@dataclass(frozen=True, slots=True)
class ArmState:
    """Per sample: the holding arms' smallest elbow angle (NaN when no arm is visible)."""

    angle: FloatArray
    straight: BoolArray
    bent: BoolArray


def arm_state(body: BodyTracks) -> ArmState:
    """Elbow angles of the arms that hold on.

    An arm whose wrist is above its shoulder is taken to hold the wall; when neither wrist is
    above its shoulder both arms count.  A sample is *straight* when every counted arm is at least
    STRAIGHT_DEG open and *bent* when one of them is closed below BENT_DEG.
    """
    angles = []
    above = []
    for side in (0, 1):
        a = m.joint_angles(body.shoulders[side], body.elbows[side], body.wrists[side])
        angles.append(a)
        with np.errstate(invalid="ignore"):
            above.append(body.wrists[side][:, 1] > body.shoulders[side][:, 1])
    stacked = np.stack(angles, axis=1)
    holding = np.stack(above, axis=1)
    none_above = ~holding.any(axis=1)
    counted = np.where(none_above[:, None], np.isfinite(stacked), holding & np.isfinite(stacked))
    masked = np.where(counted, stacked, np.inf)
    smallest = masked.min(axis=1)
    angle = np.where(np.isfinite(smallest), smallest, np.nan)
    with np.errstate(invalid="ignore"):
        return ArmState(angle, angle >= STRAIGHT_DEG, angle < BENT_DEG)


def resample(t: FloatArray, track: FloatArray, rate_hz: float = PATH_RATE_HZ) -> FloatArray:
    """The valid runs of ``track`` linearly resampled on a fixed grid (NaN rows between runs)."""
    pieces = []
    for start, end in _runs(m.valid_rows(track)):
        if end == start:
            continue
        grid = np.arange(t[start], t[end] + 1e-9, 1.0 / rate_hz)
        piece = np.stack(
            [np.interp(grid, t[start : end + 1], track[start : end + 1, d]) for d in (0, 1)], axis=1
        )
        pieces += [piece, np.full((1, 2), np.nan)]
    return np.concatenate(pieces) if pieces else np.zeros((0, 2))


def split_at(breaks: BoolArray, start: int, end: int) -> list[tuple[int, int]]:
    """``start..end`` cut before every break inside it (a break starts a new piece)."""
    cuts = [int(i) for i in np.flatnonzero(breaks[start + 1 : end + 1]) + start + 1]
    bounds = [start, *cuts, end + 1]
    return [(a, b - 1) for a, b in itertools.pairwise(bounds) if b - 1 > a]


def _jerk(t: FloatArray, track: FloatArray, start: int, end: int) -> float:
    """Dimensionless jerk of samples ``start..end`` resampled at PATH_RATE_HZ (third
    differences amplify pose jitter more the denser the samples are, so a fixed rate keeps the
    value independent of the analysed frame rate)."""
    span_t, span = t[start : end + 1], track[start : end + 1]
    if end - start < 2 or not np.all(m.valid_rows(span)):
        return math.nan
    grid = np.arange(span_t[0], span_t[-1] + 1e-9, 1.0 / PATH_RATE_HZ)
    if len(grid) < 4:
        return math.nan
    points = np.stack([np.interp(grid, span_t, span[:, d]) for d in (0, 1)], axis=1)
    return m.dimensionless_jerk(grid, points)


def compute_metrics(body: BodyTracks, phases: Phases, arms: ArmState) -> dict[str, float]:
    """All movement metrics of one climb (finite values only)."""
    t = body.times_s
    hip = body.hip
    known = m.valid_rows(hip)
    out: dict[str, float] = {}
    if known.any():
        first, last = np.flatnonzero(known)[[0, -1]]
        out["climb_duration_s"] = float(t[last] - t[first])
        out["vertical_gain_torso"] = float(hip[last, 1] - hip[first, 1])
    path = resample(t, body.hip_smooth)
    out["hip_path_length_torso"] = m.path_length(path)
    out["hip_hull_perimeter_torso"] = m.hull_perimeter(path)
    out["geometric_entropy_nats"] = m.geometric_entropy(path)
    out["path_efficiency_ratio"] = m.path_efficiency(path)
    hip_speed = m.speeds(t, body.hip_smooth)
    out["immobility_ratio"] = m.immobility_ratio(hip_speed, threshold=0.25)
    pieces = [
        piece
        for run in _runs(m.valid_rows(body.hip_smooth))
        for piece in split_at(body.breaks, *run)
    ]
    if pieces:
        longest = max(pieces, key=lambda r: r[1] - r[0])
        out["hip_jerk_dimensionless"] = _jerk(t, body.hip_smooth, *longest)
    move_jerks = [
        _jerk(t, body.hip_smooth, a, b)
        for iv in phases.moves
        for a, b in split_at(body.breaks, iv.start, iv.end)
    ]
    finite = [j for j in move_jerks if math.isfinite(j)]
    if finite:
        out["move_jerk_dimensionless_median"] = float(np.median(finite))
        out["smoothness_ratio"] = m.smoothness_score(float(np.median(finite)))
    elif "hip_jerk_dimensionless" in out:
        out["smoothness_ratio"] = m.smoothness_score(out["hip_jerk_dimensionless"])
    static_arm = phases.static & np.isfinite(arms.angle)
    out["straight_arm_ratio_static"] = m.ratio_of(arms.straight, static_arm)
    out["bent_arm_ratio_static"] = m.ratio_of(arms.bent, static_arm)
    if static_arm.any():
        out["elbow_angle_static_mean_deg"] = float(np.mean(arms.angle[static_arm]))
    out["move_count"] = float(len(phases.moves))
    out["static_count"] = float(len(phases.statics))
    out["rest_count"] = float(len(phases.rests))
    out["rest_time_s"] = float(sum(iv.duration_s for iv in phases.rests))
    out["reach_count"] = float(len(phases.reaches))
    if phases.reaches:
        durations = [r.interval.duration_s for r in phases.reaches]
        out["reach_time_mean_s"] = float(np.mean(durations))
        out["reach_time_max_s"] = float(np.max(durations))
    out["foot_move_count"] = float(len(phases.foot_moves))
    out["foot_replacement_count"] = float(len(phases.foot_replacements))
    if phases.foot_moves:
        out["foot_replacement_ratio"] = len(phases.foot_replacements) / len(phases.foot_moves)
    return {k: float(v) for k, v in out.items() if math.isfinite(v)}


def summary(metrics: dict[str, float], phases: Phases) -> dict[str, object]:
    """The protocol's ``summary`` object (``reached_top`` is unknown from the video alone)."""
    duration = metrics.get("climb_duration_s")
    smooth = metrics.get("smoothness_ratio")
    return {
        "climb_duration_ms": None if duration is None else round(duration * 1000),
        "move_count": len(phases.moves),
        "rest_count": len(phases.rests),
        "rest_ms": round(sum(iv.duration_s for iv in phases.rests) * 1000),
        "smoothness": None if smooth is None else round(min(1.0, max(0.0, smooth)), 4),
        "reached_top": None,
    }
