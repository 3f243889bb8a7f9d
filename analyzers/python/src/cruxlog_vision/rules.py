"""Errors and strengths of a climb, each with a time window, a severity and one line of advice.

The rule set starts from Beltrán et al., "Detecting errors in climbing technique from video"
(Sensors 2023): bent arms while static, reaches over one second, no weight shift before a reach,
hips away from the wall (side views only); plus the matching strengths and a comparison with the
climber's own earlier attempts on the same route.  Codes are stable identifiers (the app
translates them); thresholds are documented in ``docs/vision.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from cruxlog_vision.analysis import BENT_DEG, ArmState
from cruxlog_vision.phases import BoolArray, Interval, Phases, intervals
from cruxlog_vision.tracks import BodyTracks, FloatArray

Kind = Literal["ERROR", "STRENGTH"]

BENT_MIN_S: Final = 1.0
STRAIGHT_MIN_S: Final = 2.0
SLOW_REACH_S: Final = 1.0
WEIGHT_SHIFT_REACH_TORSO: Final = 0.5
WEIGHT_SHIFT_MIN_TORSO: Final = 0.1
WEIGHT_SHIFT_LEAD_S: Final = 0.5
SIDE_VIEW_SHOULDER_TORSO: Final = 0.35
HIPS_AWAY_TORSO: Final = 0.5
QUIET_FEET_MIN_MOVES: Final = 3
QUIET_FEET_MAX_RATIO: Final = 0.2
NOISY_FEET_MIN_RATIO: Final = 0.5
SMOOTH_MIN: Final = 0.6
HISTORY_MIN_CHANGE: Final = 0.10
WHOLE_CLIMB: Final = frozenset(
    {"QUIET_FEET", "SMOOTH_MOVEMENT", "IMPROVED_VS_HISTORY", "WORSE_VS_HISTORY"}
)
"""Codes of the verdicts on the whole climb: their window is the climb, and the annotated
video shows them in its closing seconds rather than over every frame."""

# metric -> (higher is better, words)
COMPARED: Final[dict[str, tuple[bool, str]]] = {
    "climb_duration_s": (False, "climb time"),
    "smoothness_ratio": (True, "smoothness"),
    "geometric_entropy_nats": (False, "path entropy"),
    "straight_arm_ratio_static": (True, "straight-arm share when still"),
    "reach_time_mean_s": (False, "mean reach time"),
    "foot_replacement_count": (False, "foot re-placements"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    kind: Kind
    start_ms: int
    end_ms: int
    severity: float
    explanation: str

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "kind": self.kind,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "severity": round(min(1.0, max(0.0, self.severity)), 3),
            "explanation": self.explanation,
        }


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x)) if math.isfinite(x) else 0.0


def _window(iv: Interval) -> tuple[int, int]:
    return iv.start_ms, iv.end_ms


def arm_findings(body: BodyTracks, phases: Phases, arms: ArmState) -> list[Finding]:
    out = []
    t = body.times_s
    for iv in intervals(t, phases.static & arms.bent, BENT_MIN_S):
        angle = float(np.nanmean(arms.angle[iv.start : iv.end + 1]))
        severity = 0.5 * _clip((BENT_DEG - angle) / 60) + 0.5 * _clip(iv.duration_s / 5)
        text = (
            f"Arms bent (about {angle:.0f} degrees) for {iv.duration_s:.1f} s while still: "
            "hang on straight arms to rest your forearms."
        )
        out.append(Finding("BENT_ARMS_WHILE_STATIC", "ERROR", *_window(iv), severity, text))
    for iv in intervals(t, phases.static & arms.straight, STRAIGHT_MIN_S):
        text = f"Rested on straight arms for {iv.duration_s:.1f} s: that saves your forearms."
        severity = _clip(iv.duration_s / 5)
        out.append(Finding("STRAIGHT_ARMS_WHILE_STATIC", "STRENGTH", *_window(iv), severity, text))
    return out


def reach_findings(body: BodyTracks, phases: Phases) -> list[Finding]:
    out = []
    t = body.times_s
    for reach in phases.reaches:
        iv = reach.interval
        hand = ("left", "right")[reach.side]
        if iv.duration_s > SLOW_REACH_S:
            text = (
                f"The {hand} hand took {iv.duration_s:.1f} s to reach: look at the hold, then "
                "commit to the move in one go."
            )
            severity = _clip((iv.duration_s - SLOW_REACH_S) / 2)
            out.append(Finding("SLOW_REACH", "ERROR", *_window(iv), max(0.2, severity), text))
        if reach.distance_torso < WEIGHT_SHIFT_REACH_TORSO:
            continue
        lead = t >= iv.start_s - WEIGHT_SHIFT_LEAD_S
        span = body.hip_smooth[lead & (t <= iv.end_s)]
        span = span[np.all(np.isfinite(span), axis=1)]
        if len(span) < 2:
            continue
        shift = float(np.max(np.ptp(span, axis=0)))
        if shift < WEIGHT_SHIFT_MIN_TORSO:
            text = (
                f"The {hand} hand reached {reach.distance_torso:.1f} torso lengths with the hips "
                "not moving: shift your weight over a foot before you reach."
            )
            severity = 0.4 + 0.6 * _clip(reach.distance_torso - WEIGHT_SHIFT_REACH_TORSO)
            out.append(Finding("NO_WEIGHT_SHIFT", "ERROR", *_window(iv), severity, text))
    return out


def is_side_view(body: BodyTracks) -> bool:
    """Shoulders nearly on top of each other in the image: the camera looks from the side."""
    width = np.abs(body.shoulders[0][:, 0] - body.shoulders[1][:, 0])
    width = width[np.isfinite(width)]
    return bool(len(width)) and float(np.median(width)) < SIDE_VIEW_SHOULDER_TORSO


def hip_wall_distance(body: BodyTracks, static: BoolArray) -> FloatArray:
    """Per sample, the hip centre's distance to the wall line (torso lengths, NaN if unknown).

    In a side view the hands and feet touch the wall, so the wall is the line fitted (total least
    squares) through the wrists and ankles of the static samples.
    """
    contacts = np.concatenate([p[static] for p in (*body.wrists, *body.ankles)])
    contacts = contacts[np.all(np.isfinite(contacts), axis=1)]
    dist = np.full(body.frames, np.nan)
    if len(contacts) < 4:
        return dist
    centre = contacts.mean(axis=0)
    _, _, vt = np.linalg.svd(contacts - centre)
    normal = vt[1]
    dist = np.abs((body.hip_smooth - centre) @ normal)
    return np.where(np.all(np.isfinite(body.hip_smooth), axis=1), dist, np.nan)


def wall_findings(body: BodyTracks, phases: Phases) -> list[Finding]:
    if not is_side_view(body):
        return []
    dist = hip_wall_distance(body, phases.static)
    with np.errstate(invalid="ignore"):
        away = phases.static & (dist > HIPS_AWAY_TORSO)
    out = []
    for iv in intervals(body.times_s, away, BENT_MIN_S):
        d = float(np.nanmean(dist[iv.start : iv.end + 1]))
        text = (
            f"Hips {d:.1f} torso lengths away from the wall for {iv.duration_s:.1f} s: bring "
            "them in to put weight on your feet."
        )
        out.append(Finding("HIPS_AWAY_FROM_WALL", "ERROR", *_window(iv), _clip(d - 0.3), text))
    return out


def whole_climb_findings(
    body: BodyTracks, phases: Phases, metrics: dict[str, float]
) -> list[Finding]:
    known = np.flatnonzero(np.all(np.isfinite(body.hip), axis=1))
    if not len(known):
        return []
    window = (round(body.times_s[known[0]] * 1000), round(body.times_s[known[-1]] * 1000))
    out = []
    feet = len(phases.foot_moves)
    ratio = metrics.get("foot_replacement_ratio", math.nan)
    if feet >= QUIET_FEET_MIN_MOVES and ratio <= QUIET_FEET_MAX_RATIO:
        text = f"Quiet feet: {feet} foot moves and {len(phases.foot_replacements)} re-placements."
        out.append(Finding("QUIET_FEET", "STRENGTH", *window, 1.0 - ratio, text))
    if feet >= QUIET_FEET_MIN_MOVES and ratio >= NOISY_FEET_MIN_RATIO:
        for ev in phases.foot_replacements:
            foot = ("left", "right")[ev.side]
            text = f"The {foot} foot was placed again: look at the foothold and place it once."
            out.append(Finding("FOOT_REPLACED", "ERROR", *_window(ev.interval), ratio, text))
    smooth = metrics.get("smoothness_ratio", math.nan)
    if smooth >= SMOOTH_MIN:
        text = f"Smooth movement (smoothness {smooth:.2f} of 1)."
        out.append(Finding("SMOOTH_MOVEMENT", "STRENGTH", *window, smooth, text))
    return out


def history_comparison(
    metrics: dict[str, float], history: list[dict[str, float]]
) -> dict[str, dict[str, float | bool]]:
    """Per compared metric: the mean of earlier attempts, the change, and whether it is better."""
    out: dict[str, dict[str, float | bool]] = {}
    for key, (higher_better, _) in COMPARED.items():
        past = [h[key] for h in history if math.isfinite(h.get(key, math.nan))]
        if key not in metrics or not past:
            continue
        mean = float(np.mean(past))
        delta = metrics[key] - mean
        better = delta > 0 if higher_better else delta < 0
        out[key] = {"previous_mean": mean, "delta": delta, "better": bool(better and delta != 0)}
    return out


def history_findings(
    comparison: dict[str, dict[str, float | bool]], attempts: int, window: tuple[int, int]
) -> list[Finding]:
    out = []
    for key, cmp in comparison.items():
        mean, delta = float(cmp["previous_mean"]), float(cmp["delta"])
        change = abs(delta) / max(abs(mean), 1e-9)
        if change < HISTORY_MIN_CHANGE:
            continue
        words = COMPARED[key][1]
        now = mean + delta
        earlier = f"your {attempts} earlier attempt{'s' if attempts != 1 else ''}"
        if cmp["better"]:
            text = f"Better {words} than {earlier}: {now:.2f} against {mean:.2f}."
            out.append(Finding("IMPROVED_VS_HISTORY", "STRENGTH", *window, _clip(change), text))
        else:
            text = f"Worse {words} than {earlier}: {now:.2f} against {mean:.2f}."
            out.append(Finding("WORSE_VS_HISTORY", "ERROR", *window, _clip(change), text))
    return out


def find_all(
    body: BodyTracks, phases: Phases, arms: ArmState, metrics: dict[str, float]
) -> list[Finding]:
    """Every error and strength of the climb itself, ordered by start time."""
    found = arm_findings(body, phases, arms) + reach_findings(body, phases)
    found += wall_findings(body, phases) + whole_climb_findings(body, phases, metrics)
    return sorted(found, key=lambda f: (f.start_ms, f.end_ms, f.code))
