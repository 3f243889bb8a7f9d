"""Phases of a climb: still and moving hips, rests, moves, reaches and foot placements.

Pure functions over :class:`~cruxlog_vision.tracks.BodyTracks` (torso lengths, seconds).
Thresholds are module constants, documented in ``docs/vision.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from cruxlog_vision.metrics import speeds
from cruxlog_vision.tracks import BodyTracks, FloatArray, _runs

BoolArray = npt.NDArray[np.bool_]

STATIC_SPEED: Final = 0.25
"""Hip centre slower than this (torso lengths per second) counts as still."""
MIN_STATIC_S: Final = 0.5
"""Shorter still spells are pauses inside a move, not static phases."""
REST_S: Final = 2.0
"""A static phase at least this long is a rest."""
MIN_MOVE_S: Final = 0.3
LIMB_SPEED: Final = 0.5
"""A wrist or ankle faster than this (torso lengths per second) is moving."""
LIMB_STILL: Final = 0.1
"""A limb movement starts and ends where the limb is slower than this."""
REACH_MIN_TORSO: Final = 0.3
"""A hand has to travel at least this far for its movement to count as a reach."""
FOOT_MOVE_MIN_TORSO: Final = 0.05
FOOT_REPLACEMENT_MAX_TORSO: Final = 0.35
"""A foot movement shorter than this is a re-placement (an adjustment), not a step."""


@dataclass(frozen=True, slots=True)
class Interval:
    """Samples ``start..end`` (inclusive) and their times."""

    start: int
    end: int
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def start_ms(self) -> int:
        return round(self.start_s * 1000)

    @property
    def end_ms(self) -> int:
        return round(self.end_s * 1000)


@dataclass(frozen=True, slots=True)
class LimbEvent:
    """One movement of a limb (``side`` 0 = left, 1 = right) and its net displacement."""

    interval: Interval
    side: int
    distance_torso: float


@dataclass(frozen=True, slots=True)
class Phases:
    static: BoolArray
    """Per sample: the hips are still (inside a static phase of at least MIN_STATIC_S)."""
    statics: list[Interval]
    rests: list[Interval]
    moves: list[Interval]
    reaches: list[LimbEvent]
    foot_moves: list[LimbEvent]

    @property
    def foot_replacements(self) -> list[LimbEvent]:
        return [f for f in self.foot_moves if f.distance_torso < FOOT_REPLACEMENT_MAX_TORSO]


def intervals(times_s: FloatArray, mask: BoolArray, min_duration_s: float = 0.0) -> list[Interval]:
    """The runs of ``mask`` lasting at least ``min_duration_s`` (last minus first sample time)."""
    out = []
    for a, b in _runs(mask):
        iv = Interval(a, b, float(times_s[a]), float(times_s[b]))
        if iv.duration_s >= min_duration_s:
            out.append(iv)
    return out


def mask_of(length: int, spans: list[Interval]) -> BoolArray:
    mask = np.zeros(length, dtype=bool)
    for iv in spans:
        mask[iv.start : iv.end + 1] = True
    return mask


def limb_events(
    times_s: FloatArray, track: FloatArray, side: int, min_distance: float
) -> list[LimbEvent]:
    """Movements of one limb whose net travel is at least ``min_distance``.

    A movement is a run faster than LIMB_SPEED, widened while the limb stays faster than
    LIMB_STILL (so it spans the whole movement, not just its fast middle); the displacement is
    measured between the samples just before and just after it.
    """
    speed = np.nan_to_num(speeds(times_s, track), nan=0.0)
    moving = speed > LIMB_SPEED
    events: list[LimbEvent] = []
    last = len(times_s) - 1
    for a, b in _runs(moving):
        while a > 0 and speed[a - 1] > LIMB_STILL:
            a -= 1
        while b < last and speed[b + 1] > LIMB_STILL:
            b += 1
        a0, b0 = max(a - 1, 0), min(b + 1, last)
        if events and a0 <= events[-1].interval.end:
            continue  # merged into the previous movement by the widening
        start, end = track[a0], track[b0]
        if not (np.all(np.isfinite(start)) and np.all(np.isfinite(end))):
            continue
        distance = float(np.linalg.norm(end - start))
        if distance >= min_distance:
            iv = Interval(a0, b0, float(times_s[a0]), float(times_s[b0]))
            events.append(LimbEvent(iv, side, distance))
    return events


def find_phases(body: BodyTracks) -> Phases:
    """Static phases, rests, moves, reaches and foot movements of one climb."""
    t = body.times_s
    hip_speed = speeds(t, body.hip_smooth)
    slow = np.isfinite(hip_speed) & (hip_speed < STATIC_SPEED)
    statics = intervals(t, slow, MIN_STATIC_S)
    static = mask_of(len(t), statics)
    known = np.isfinite(hip_speed)
    moves = intervals(t, known & ~static, MIN_MOVE_S)
    rests = [iv for iv in statics if iv.duration_s >= REST_S]
    reaches = [
        ev for side in (0, 1) for ev in limb_events(t, body.wrists[side], side, REACH_MIN_TORSO)
    ]
    feet = [
        ev for side in (0, 1) for ev in limb_events(t, body.ankles[side], side, FOOT_MOVE_MIN_TORSO)
    ]
    reaches.sort(key=lambda e: e.interval.start)
    feet.sort(key=lambda e: e.interval.start)
    return Phases(static, statics, rests, moves, reaches, feet)
