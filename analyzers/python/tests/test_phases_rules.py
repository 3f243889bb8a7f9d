"""Phases, metrics and findings on synthetic stick-figure climbs with known windows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cruxlog_vision import metrics as m
from cruxlog_vision import rules
from cruxlog_vision.analysis import arm_state, compute_metrics, summary
from cruxlog_vision.phases import Phases, find_phases, intervals
from cruxlog_vision.rules import Finding
from cruxlog_vision.tracks import BodyTracks, FloatArray, body_tracks
from tests.synth import TORSO, Pose, ramp, track

FPS = 15.0


def times(seconds: float) -> FloatArray:
    return np.arange(round(seconds * FPS) + 1) / FPS


def analyse(
    t: FloatArray, k: FloatArray
) -> tuple[BodyTracks, Phases, dict[str, float], list[Finding]]:
    body = body_tracks(t, k)
    phases = find_phases(body)
    arms = arm_state(body)
    metrics = compute_metrics(body, phases, arms)
    return body, phases, metrics, rules.find_all(body, phases, arms, metrics)


def codes(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def three_stances(t: float) -> Pose:
    """Still 0-3 s arms at 90 deg; move up 1 torso 3-4 s; still 4-7 s straight; move 7-8 s;
    still 8-10 s arms at 100 deg."""
    y = 500 - TORSO * (ramp(t, 3, 4) + ramp(t, 7, 8))
    elbow = 90.0 if t <= 3 else 170.0 if t < 8 else 100.0
    return Pose(hip=(300.0, y), elbow_deg=(elbow, elbow))


def test_static_bent_arm_windows_are_exact_on_a_known_static_mask() -> None:
    t = times(10)
    k = track(t, three_stances)
    body = body_tracks(t, k, smooth=False)
    arms = arm_state(body)
    static = (t <= 3.0) | ((t >= 4.0) & (t <= 7.0)) | (t >= 8.0)
    bent = intervals(t, static & arms.bent, 1.0)
    assert [(iv.start_ms, iv.end_ms) for iv in bent] == [(0, 3000), (8000, 10000)]
    straight = intervals(t, static & arms.straight, 2.0)
    assert [(iv.start_ms, iv.end_ms) for iv in straight] == [(4000, 7000)]
    assert np.nanmax(arms.angle[t <= 3.0]) == pytest.approx(90.0, abs=1e-9)


def test_three_stances_give_bent_arm_errors_and_a_straight_arm_strength() -> None:
    t = times(10)
    _, phases, metrics, found = analyse(t, track(t, three_stances))
    frame = 1000 / FPS
    assert [(iv.start_ms, iv.end_ms) for iv in phases.moves] == [
        pytest.approx((3000, 4000), abs=3 * frame),
        pytest.approx((7000, 8000), abs=3 * frame),
    ]
    bent = codes(found, "BENT_ARMS_WHILE_STATIC")
    assert [(f.start_ms, f.end_ms) for f in bent] == [
        pytest.approx((0, 3000), abs=3 * frame),
        pytest.approx((8000, 10000), abs=3 * frame),
    ]
    assert all(f.kind == "ERROR" and 0 < f.severity <= 1 for f in bent)
    assert "90 degrees" in bent[0].explanation
    straight = codes(found, "STRAIGHT_ARMS_WHILE_STATIC")
    assert [(f.start_ms, f.end_ms) for f in straight] == [
        pytest.approx((4000, 7000), abs=3 * frame)
    ]
    assert straight[0].kind == "STRENGTH"
    assert metrics["vertical_gain_torso"] == pytest.approx(2.0, abs=0.02)
    assert metrics["climb_duration_s"] == pytest.approx(10.0)
    assert metrics["move_count"] == 2
    assert metrics["rest_count"] == 3
    assert metrics["geometric_entropy_nats"] == pytest.approx(0.0, abs=0.01)
    assert metrics["path_efficiency_ratio"] == pytest.approx(1.0, abs=0.01)
    assert metrics["immobility_ratio"] == pytest.approx(0.8, abs=0.1)
    assert metrics["smoothness_ratio"] > 0.8  # each move is minimum-jerk
    s = summary(metrics, phases)
    assert s["move_count"] == 2
    assert s["rest_count"] == 3
    assert s["climb_duration_ms"] == 10000
    assert s["reached_top"] is None
    assert all(math.isfinite(v) for v in metrics.values())


def test_zig_zag_climb_has_the_entropy_of_its_path() -> None:
    def zig(t: float) -> Pose:
        k, s = divmod(t, 1.0)
        x = 300 + TORSO * (1 if int(k) % 2 == 0 else -1) * (ramp(s, 0, 1) - 0.5)
        return Pose(hip=(x, 600 - TORSO * t), elbow_deg=(170, 170))

    fine = np.linspace(0, 4, 4001)
    ideal = np.array([zig(float(s)).hip for s in fine])
    expected = m.geometric_entropy(ideal)  # the exact curve, densely sampled
    assert expected > 0.25
    t = times(4)
    _, _, metrics, _ = analyse(t, track(t, zig))
    # 15 fps, smoothing (sigma 0.1 s) and 10 Hz resampling round the turns a little
    assert metrics["geometric_entropy_nats"] == pytest.approx(expected, rel=0.1)


def test_a_slow_reach_without_weight_shift_is_two_errors() -> None:
    def reach(t: float) -> Pose:
        angle = 90 + 90 * ramp(t, 1.0, 2.5)  # the left hand goes up and out in 1.5 s
        return Pose(hip=(300.0, 500.0), elbow_deg=(angle, 170.0))

    t = times(4)
    _, phases, metrics, found = analyse(t, track(t, reach))
    assert len(phases.reaches) == 1
    assert phases.reaches[0].side == 0
    assert phases.reaches[0].interval.duration_s == pytest.approx(1.5, abs=0.25)
    slow = codes(found, "SLOW_REACH")
    assert len(slow) == 1
    assert slow[0].start_ms == pytest.approx(1000, abs=200)
    assert "left hand" in slow[0].explanation
    assert len(codes(found, "NO_WEIGHT_SHIFT")) == 1
    assert metrics["reach_count"] == 1
    assert metrics["reach_time_max_s"] > 1.0


def test_a_quick_reach_with_a_weight_shift_is_no_error() -> None:
    def reach(t: float) -> Pose:
        # the hips move 0.4 torso sideways first while both hands stay on their holds, then
        # the left hand reaches quickly
        shift = 40 * ramp(t, 1.0, 1.6)
        left = (-60.0 - shift + 60 * ramp(t, 1.7, 2.2), -160.0 - 60 * ramp(t, 1.7, 2.2))
        right = (85.0 - shift, -210.0)
        return Pose(hip=(300.0 + shift, 500.0), wrists=(left, right))

    t = times(4)
    _, phases, _, found = analyse(t, track(t, reach))
    assert len(phases.reaches) == 1
    assert codes(found, "SLOW_REACH") == []
    assert codes(found, "NO_WEIGHT_SHIFT") == []


def test_hips_away_from_the_wall_only_in_a_side_view() -> None:
    def side(t: float, half_width: float) -> Pose:
        wall = 90.0  # hands and feet touch the wall 0.9 torso to the right of the hips
        return Pose(
            hip=(300.0, 500.0),
            shoulder_half_width=half_width,
            wrists=((wall, -200.0), (wall, -180.0)),
            ankles=((wall, 100.0), (wall, 80.0)),
        )

    t = times(3)
    body, phases, _, found = analyse(t, track(t, lambda s: side(s, 4.0)))
    assert rules.is_side_view(body)
    away = codes(found, "HIPS_AWAY_FROM_WALL")
    assert len(away) == 1
    assert (away[0].start_ms, away[0].end_ms) == (0, 3000)
    assert float(np.nanmean(rules.hip_wall_distance(body, phases.static))) == pytest.approx(0.9)
    body, _, _, found = analyse(t, track(t, lambda s: side(s, 25.0)))
    assert not rules.is_side_view(body)
    assert codes(found, "HIPS_AWAY_FROM_WALL") == []


def feet(replacements: bool) -> list[Finding]:
    def step(t: float) -> Pose:
        # a 0.6-torso step every even second; with re-placements, a 0.2-torso adjustment of
        # the same foot every odd second
        k, s = divmod(t, 1.0)
        steps = k // 2 + (ramp(s, 0.2, 0.6) if int(k) % 2 == 0 else 1)
        nudges = k // 2 + (ramp(s, 0.2, 0.5) if int(k) % 2 == 1 else 0)
        left = (-20.0, 100.0 - 0.6 * TORSO * steps - (0.2 * TORSO * nudges if replacements else 0))
        return Pose(hip=(300.0, 500.0), elbow_deg=(170, 170), ankles=(left, (20.0, 100.0)))

    t = times(8)
    _, phases, metrics, found = analyse(t, track(t, step))
    assert len([f for f in phases.foot_moves if f.distance_torso >= 0.35]) == 4
    assert metrics["foot_move_count"] == len(phases.foot_moves)
    return found


def test_quiet_feet_strength() -> None:
    found = feet(replacements=False)
    assert len(codes(found, "QUIET_FEET")) == 1
    assert codes(found, "FOOT_REPLACED") == []


def test_re_placed_feet_are_errors() -> None:
    found = feet(replacements=True)
    assert codes(found, "QUIET_FEET") == []
    replaced = codes(found, "FOOT_REPLACED")
    assert len(replaced) == 4
    assert all("left foot" in f.explanation for f in replaced)


def test_history_comparison_and_findings() -> None:
    now = {"smoothness_ratio": 0.8, "climb_duration_s": 30.0, "reach_time_mean_s": 0.5}
    history = [
        {"smoothness_ratio": 0.5, "climb_duration_s": 25.0},
        {"smoothness_ratio": 0.7, "climb_duration_s": 35.0, "reach_time_mean_s": 0.51},
    ]
    cmp = rules.history_comparison(now, history)
    assert cmp["smoothness_ratio"] == {
        "previous_mean": pytest.approx(0.6),
        "delta": pytest.approx(0.2),
        "better": True,
    }
    assert cmp["climb_duration_s"]["better"] is False  # same as the mean: not better
    found = rules.history_findings(cmp, 2, (0, 30000))
    assert [(f.code, f.kind) for f in found] == [("IMPROVED_VS_HISTORY", "STRENGTH")]
    assert "0.80 against 0.60" in found[0].explanation
    assert (found[0].start_ms, found[0].end_ms) == (0, 30000)
    worse = rules.history_findings(
        rules.history_comparison({"smoothness_ratio": 0.3}, history), 2, (0, 1)
    )
    assert [f.code for f in worse] == ["WORSE_VS_HISTORY"]
    assert rules.history_comparison(now, []) == {}


def test_findings_serialise_with_clamped_severity() -> None:
    f = Finding("X", "ERROR", 1, 2, 1.7, "text")
    assert f.to_dict() == {
        "code": "X",
        "kind": "ERROR",
        "start_ms": 1,
        "end_ms": 2,
        "severity": 1.0,
        "explanation": "text",
    }


def test_no_torso_is_an_error() -> None:
    t = times(1)
    k = track(t, lambda s: Pose(hip=(300.0, 500.0)))
    k[:, 23:25, 3] = 0.1
    with pytest.raises(ValueError, match="shoulders"):
        body_tracks(t, k)


def test_split_at_breaks() -> None:
    from cruxlog_vision.analysis import split_at

    breaks = np.zeros(10, dtype=bool)
    breaks[[3, 7]] = True
    assert split_at(breaks, 0, 9) == [(0, 2), (3, 6), (7, 9)]
    assert split_at(breaks, 3, 5) == [(3, 5)]
    assert split_at(np.zeros(5, dtype=bool), 0, 4) == [(0, 4)]


def test_a_re_acquisition_jump_is_not_measured_as_jerk() -> None:
    t = times(10)
    k = track(t, three_stances)
    breaks = np.zeros(len(t), dtype=bool)
    for start in (3.5, 7.5):  # in each move the tracker sat on a wrong body for a few frames
        jump = (t >= start) & (t < start + 0.3)
        k[jump, :, 0] += 0.5 * TORSO
        breaks[np.flatnonzero(jump)[0]] = True
        breaks[np.flatnonzero(jump)[-1] + 1] = True

    def jerk(with_breaks: bool) -> dict[str, float]:
        body = body_tracks(t, k, breaks=breaks if with_breaks else None)
        return compute_metrics(body, find_phases(body), arm_state(body))

    jumpy, split = jerk(False), jerk(True)
    assert jumpy["move_jerk_dimensionless_median"] > 720
    assert split["move_jerk_dimensionless_median"] < 720
    assert split["smoothness_ratio"] == 1.0 > jumpy["smoothness_ratio"]
    assert split["hip_jerk_dimensionless"] < jumpy["hip_jerk_dimensionless"] / 100
