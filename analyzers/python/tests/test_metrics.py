"""Movement metrics on synthetic tracks whose answers are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cruxlog_vision import metrics as m


def test_straight_climb_has_zero_entropy_and_full_efficiency() -> None:
    y = np.linspace(0.0, 10.0, 101)
    path = np.stack([np.zeros_like(y), y], axis=1)
    assert m.path_length(path) == pytest.approx(10.0, abs=1e-12)
    assert m.hull_perimeter(path) == pytest.approx(20.0, abs=1e-12)  # a segment, both ways
    assert m.geometric_entropy(path) == pytest.approx(0.0, abs=1e-12)
    assert m.path_efficiency(path) == pytest.approx(1.0, abs=1e-12)


def test_zig_zag_entropy_is_ln_2l_over_c() -> None:
    path = np.array([[0, 0], [1, 1], [0, 2], [1, 3], [0, 4]], dtype=float)
    length = 4 * math.sqrt(2)
    perimeter = math.sqrt(2) + 2 + math.sqrt(2) + 4  # hull (0,0) (1,1) (1,3) (0,4)
    assert m.path_length(path) == pytest.approx(length, rel=1e-12)
    assert m.hull_perimeter(path) == pytest.approx(perimeter, rel=1e-12)
    assert m.geometric_entropy(path) == pytest.approx(math.log(2 * length / perimeter), rel=1e-12)
    assert m.path_efficiency(path) == pytest.approx(4 / length, rel=1e-12)


def test_square_loop_entropy_is_ln_2() -> None:
    path = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], dtype=float)
    assert m.geometric_entropy(path) == pytest.approx(math.log(2), rel=1e-12)
    assert m.path_efficiency(path) == pytest.approx(0.0, abs=1e-12)


def test_wandering_path_has_more_entropy_than_a_direct_one() -> None:
    rng = np.random.default_rng(1)
    direct = np.stack([np.zeros(50), np.linspace(0, 5, 50)], axis=1)
    wander = direct + rng.normal(0, 0.2, direct.shape)
    assert m.geometric_entropy(wander) > m.geometric_entropy(direct) + 0.5


def test_missing_rows_are_skipped() -> None:
    path = np.array([[0, 0], [np.nan, np.nan], [0, 1], [0, 2]], dtype=float)
    assert m.path_length(path) == pytest.approx(2.0)
    assert m.geometric_entropy(path) == pytest.approx(0.0, abs=1e-12)


def test_still_path_metrics() -> None:
    path = np.zeros((10, 2))
    assert m.path_length(path) == 0.0
    assert m.hull_perimeter(path) == 0.0
    assert m.geometric_entropy(path) == 0.0
    assert math.isnan(m.path_efficiency(path))


def test_convex_hull_of_a_square_with_inner_points() -> None:
    pts = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1], [0.5, 1.5], [1, 0]], dtype=float)
    hull = m.convex_hull(pts)
    assert {tuple(p) for p in hull} == {(0, 0), (2, 0), (2, 2), (0, 2)}
    assert m.hull_perimeter(pts) == pytest.approx(8.0)


def test_dimensionless_jerk_of_a_cubic_is_exactly_36() -> None:
    # x = t^3 on [0, T]: jerk 6 everywhere, L = T^3, so T^5/L^2 * 36 * T = 36 for any T.
    for duration in (1.0, 2.0, 3.5):
        t = np.linspace(0.0, duration, 201)
        path = np.stack([t**3, 2 * t**3], axis=1)
        assert m.dimensionless_jerk(t, path) == pytest.approx(36.0, rel=1e-7)


def test_minimum_jerk_movement_scores_720_and_full_smoothness() -> None:
    t = np.linspace(0.0, 1.0, 2001)
    s = 10 * t**3 - 15 * t**4 + 6 * t**5
    path = np.stack([np.zeros_like(s), 0.8 * s], axis=1)
    dj = m.dimensionless_jerk(t, path)
    assert dj == pytest.approx(720.0, rel=5e-3)
    assert m.smoothness_score(dj) == pytest.approx(1.0, abs=1e-2)


def test_a_stop_in_the_middle_makes_movement_jerkier() -> None:
    t = np.linspace(0.0, 2.0, 2001)
    s = np.where(t < 1, 10 * t**3 - 15 * t**4 + 6 * t**5, 0.0)
    u = t - 1
    s = np.where(t >= 1, 1 + 10 * u**3 - 15 * u**4 + 6 * u**5, s)
    two_moves = np.stack([np.zeros_like(s), s], axis=1)
    dj = m.dimensionless_jerk(t, two_moves)
    assert dj > 720 * 5
    assert 0 < m.smoothness_score(dj) < 0.85


def test_dimensionless_jerk_needs_even_complete_samples() -> None:
    t = np.array([0.0, 0.1, 0.3, 0.4, 0.5])
    with pytest.raises(ValueError, match="evenly"):
        m.dimensionless_jerk(t, np.stack([t, t], axis=1))
    assert math.isnan(m.dimensionless_jerk(t[:3], np.zeros((3, 2))))
    t = np.linspace(0, 1, 5)
    assert math.isnan(m.dimensionless_jerk(t, np.zeros((5, 2))))  # no movement


def test_smoothness_score_bounds() -> None:
    assert m.smoothness_score(100.0) == 1.0
    assert m.smoothness_score(720.0**2) == pytest.approx(0.5)
    assert math.isnan(m.smoothness_score(math.nan))


def test_speeds_and_immobility_ratio() -> None:
    t = np.arange(10) * 0.5
    y = np.array([0, 0, 0, 0, 1, 2, 3, 3, 3, 3], dtype=float)
    v = m.speeds(t, np.stack([np.zeros(10), y], axis=1))
    assert v.tolist() == pytest.approx([0, 0, 0, 1, 2, 2, 1, 0, 0, 0])
    assert m.immobility_ratio(v, threshold=0.5) == pytest.approx(0.6)
    assert math.isnan(m.immobility_ratio(np.array([np.nan]), 1.0))


def test_joint_angles() -> None:
    a = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [np.nan, 0.0]])
    b = np.zeros((4, 2))
    c = np.array([[1.0, 0.0], [0.0, -1.0], [1.0, 1.0], [1.0, 0.0]])
    angles = m.joint_angles(a, b, c)
    assert angles[:3].tolist() == pytest.approx([90.0, 180.0, 45.0])
    assert math.isnan(angles[3])


def test_ratio_of() -> None:
    mask = np.array([True, False, True, True])
    within = np.array([True, True, False, False])
    assert m.ratio_of(mask, within) == 0.5
    assert math.isnan(m.ratio_of(mask, np.zeros(4, dtype=bool)))


def test_speeds_match_central_differences_written_out() -> None:
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(0.0, 0.2, 40))
    t[10] = t[9]  # a repeated timestamp: no speed where the two neighbours share a time
    t[11] = t[9]
    p = rng.normal(0.0, 5.0, (40, 2))
    p[20] = np.nan
    expected = np.full(40, np.nan)
    for i in range(40):
        a, b = max(i - 1, 0), min(i + 1, 39)
        if t[b] > t[a]:
            expected[i] = math.hypot(*(p[b] - p[a])) / (t[b] - t[a])
    assert np.allclose(m.speeds(t, p), expected, rtol=1e-12, atol=0, equal_nan=True)
    assert np.isnan(m.speeds(t[:1], p[:1])).all()
