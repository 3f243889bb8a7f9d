"""Temporal smoothing of keypoint tracks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cruxlog_vision.smoothing import FloatArray, fill_gaps, gaussian_smooth, one_euro


def test_one_euro_keeps_a_constant_and_cuts_jitter() -> None:
    t = np.arange(300) / 30.0
    assert np.allclose(one_euro(t, np.full(300, 4.0)), 4.0)
    noise = np.random.default_rng(0).normal(0, 1, 300)
    smooth = one_euro(t, noise, min_cutoff_hz=1.0, beta=0.0)
    assert np.std(smooth[30:]) < 0.5 * np.std(noise)


def test_one_euro_follows_a_fast_move_with_little_lag() -> None:
    t = np.arange(60) / 30.0
    step = np.where(t >= 1.0, 100.0, 0.0)
    fast = one_euro(t, step, min_cutoff_hz=1.0, beta=0.5)
    slow = one_euro(t, step, min_cutoff_hz=1.0, beta=0.0)
    after = int(np.searchsorted(t, 1.2))
    assert fast[after] > 90  # speed raises the cut-off
    assert slow[after] < fast[after]


def test_one_euro_restarts_after_gaps_and_keeps_nans() -> None:
    t = np.array([0.0, 0.1, 0.2, 2.0, 2.1])
    x = np.array([0.0, np.nan, 0.0, 10.0, 10.0])
    out = one_euro(t, x)
    assert out[0] == 0.0
    assert math.isnan(out[1])
    assert out[2] == 0.0  # restarted after the NaN
    assert out[3] == 10.0  # restarted after the long gap
    assert out[4] == 10.0


def test_one_euro_on_keypoint_shaped_arrays() -> None:
    t = np.arange(5) / 10.0
    k = np.ones((5, 33, 2))
    assert one_euro(t, k).shape == (5, 33, 2)
    with pytest.raises(ValueError, match="one row per timestamp"):
        one_euro(t, np.ones((4, 2)))


def test_fill_gaps_only_short_ones() -> None:
    t = np.arange(8) * 0.1
    x = np.array([0.0, np.nan, 2.0, np.nan, np.nan, np.nan, np.nan, 7.0])
    out = fill_gaps(t, x, max_gap_s=0.25)
    assert out[1] == pytest.approx(1.0)
    assert np.isnan(out[3:7]).all()  # 0.5 s gap stays open
    out = fill_gaps(t, x, max_gap_s=0.5)
    assert out[3:7] == pytest.approx([3.0, 4.0, 5.0, 6.0])


def test_gaussian_smooth_keeps_lines_and_lengths() -> None:
    line = np.linspace(0, 10, 50)
    out = gaussian_smooth(line, 2.0)
    assert out.shape == line.shape
    assert out == pytest.approx(line)
    assert gaussian_smooth(np.array([1.0, 2.0]), 3.0).shape == (2,)
    assert gaussian_smooth(line, 0.0) == pytest.approx(line)


def _one_euro_reference(t: FloatArray, x: FloatArray, beta: float) -> FloatArray:
    """The filter written out sample by sample for one column (min cut-off 1 Hz, d cut-off 1 Hz,
    gaps over 0.5 s restart it)."""
    out = np.full_like(x, np.nan)
    prev_t = math.nan
    prev_x = prev_dx = 0.0
    tau_d = 1.0 / (2.0 * math.pi)
    for i, (ti, xi) in enumerate(zip(t, x, strict=True)):
        if not math.isfinite(xi):
            prev_t = math.nan
            continue
        dt = ti - prev_t
        if math.isfinite(prev_t) and 0 < dt <= 0.5:
            dx_hat = prev_dx + ((xi - prev_x) / dt - prev_dx) / (1.0 + tau_d / dt)
            tau = 1.0 / (2.0 * math.pi * (1.0 + beta * abs(dx_hat)))
            prev_x, prev_dx = prev_x + (xi - prev_x) / (1.0 + tau / dt), dx_hat
        else:
            prev_x, prev_dx = xi, 0.0
        out[i], prev_t = prev_x, ti
    return out


def test_one_euro_matches_the_filter_written_out_with_and_without_gaps() -> None:
    rng = np.random.default_rng(7)
    t = np.cumsum(rng.uniform(0.05, 0.15, 120))
    t[60:] += 1.0  # a long gap restarts every column
    x = rng.normal(0.0, 20.0, (120, 6))
    x[30:33, 2] = np.nan  # one column misses a few samples: the masked path
    got = one_euro(t, x, beta=0.05)
    for c in range(6):
        assert np.allclose(
            got[:, c], _one_euro_reference(t, x[:, c], 0.05), rtol=1e-12, atol=0, equal_nan=True
        )


def test_smoothing_a_prefix_gives_the_prefix_of_the_smoothed_track() -> None:
    # the annotated video is drawn from the climb so far: its keypoints must not change later
    rng = np.random.default_rng(8)
    t = np.arange(90) / 10.0
    x = rng.normal(0.0, 20.0, (90, 33, 2))
    x[40:42] = np.nan
    whole = one_euro(t, x, beta=0.05)
    for n in (1, 17, 41, 60):
        assert np.array_equal(one_euro(t[:n], x[:n], beta=0.05), whole[:n], equal_nan=True)
