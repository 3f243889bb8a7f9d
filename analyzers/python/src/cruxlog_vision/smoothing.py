"""Temporal smoothing of keypoint tracks (pure functions over numpy arrays).

* :func:`one_euro` is the One Euro filter (Casiez, Roussel & Vogel, CHI 2012), the filter
  MediaPipe itself uses for pose landmarks: a low-pass whose cut-off rises with speed, so still
  poses lose their jitter while fast moves keep little lag.  It uses the real timestamps, so it
  stays right when frames are subsampled or missing, and restarts after a gap.
* :func:`fill_gaps` interpolates short holes (a few missed frames) linearly and leaves long ones.
* :func:`gaussian_smooth` is a zero-phase smoother for derivatives (jerk) of an evenly sampled
  series.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def one_euro(
    times_s: FloatArray,
    values: FloatArray,
    *,
    min_cutoff_hz: float = 1.0,
    beta: float = 0.5,
    d_cutoff_hz: float = 1.0,
    max_gap_s: float = 0.5,
) -> FloatArray:
    """One Euro filter along axis 0 of ``values`` (``(T,)`` or ``(T, ...)``), NaN-aware.

    Each column is filtered on its own; NaN samples stay NaN and a gap longer than
    ``max_gap_s`` (or a NaN) restarts the filter at the next valid sample.
    """
    t = np.asarray(times_s, dtype=np.float64)
    x = np.asarray(values, dtype=np.float64)
    if t.ndim != 1 or x.shape[:1] != t.shape:
        raise ValueError("values must have one row per timestamp")
    flat = x.reshape(len(t), -1)
    out = np.full_like(flat, np.nan)
    width = flat.shape[1]
    prev_t = np.full(width, np.nan)  # NaN: the filter (re)starts at the next valid sample
    prev_x = np.zeros(width)
    prev_dx = np.zeros(width)
    tau_d = 1.0 / (2.0 * math.pi * d_cutoff_hz)
    with np.errstate(invalid="ignore"):  # NaN times compare False; once, not per sample
        for i in range(len(t)):
            xi = flat[i]
            valid = np.isfinite(xi)
            dt = t[i] - prev_t
            running = valid & np.isfinite(prev_t) & (dt > 0) & (dt <= max_gap_s)
            if running.all():  # the usual case, without the masks (same arithmetic)
                dx_hat = prev_dx + ((xi - prev_x) / dt - prev_dx) / (1.0 + tau_d / dt)
                tau = 1.0 / (2.0 * math.pi * (min_cutoff_hz + beta * np.abs(dx_hat)))
                prev_x = prev_x + (xi - prev_x) / (1.0 + tau / dt)
                prev_dx = dx_hat
                out[i] = prev_x
                prev_t[:] = t[i]
                continue
            start = valid & ~running
            out[i, start] = xi[start]
            if running.any():
                step = dt[running]
                dx = (xi[running] - prev_x[running]) / step
                dx_hat = prev_dx[running] + (dx - prev_dx[running]) / (1.0 + tau_d / step)
                tau = 1.0 / (2.0 * math.pi * (min_cutoff_hz + beta * np.abs(dx_hat)))
                x_hat = prev_x[running] + (xi[running] - prev_x[running]) / (1.0 + tau / step)
                out[i, running] = x_hat
                prev_x[running], prev_dx[running] = x_hat, dx_hat
            prev_x[start], prev_dx[start] = xi[start], 0.0
            prev_t[valid] = t[i]
            prev_t[~valid] = np.nan
    return out.reshape(x.shape)


def fill_gaps(times_s: FloatArray, values: FloatArray, *, max_gap_s: float) -> FloatArray:
    """Linearly interpolate NaN runs no longer than ``max_gap_s`` between two valid samples."""
    t = np.asarray(times_s, dtype=np.float64)
    x = np.array(values, dtype=np.float64, copy=True)
    flat = x.reshape(len(t), -1)
    for col in range(flat.shape[1]):
        valid = np.flatnonzero(np.isfinite(flat[:, col]))
        for a, b in itertools.pairwise(valid):
            if b - a > 1 and t[b] - t[a] <= max_gap_s:
                w = (t[a + 1 : b] - t[a]) / (t[b] - t[a])
                flat[a + 1 : b, col] = flat[a, col] + w * (flat[b, col] - flat[a, col])
    return flat.reshape(x.shape)


def gaussian_smooth(values: FloatArray, sigma_samples: float) -> FloatArray:
    """Zero-phase Gaussian smoothing along axis 0; ``sigma <= 0`` copies.

    Edges are padded by point reflection, so straight lines (constant speed) pass unchanged.
    """
    x = np.asarray(values, dtype=np.float64)
    if sigma_samples <= 0 or len(x) < 2:
        return x.copy()
    radius = max(1, math.ceil(3 * sigma_samples))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_samples) ** 2)
    kernel /= kernel.sum()
    flat = x.reshape(len(x), -1)
    pad = min(radius, len(x) - 1)
    padded = np.pad(flat, ((pad, pad), (0, 0)), mode="reflect", reflect_type="odd")
    if pad < radius:  # very short series: pad further with edge values
        padded = np.pad(padded, ((radius - pad, radius - pad), (0, 0)), mode="edge")
    out = np.stack(
        [np.convolve(padded[:, c], kernel, mode="valid") for c in range(flat.shape[1])], axis=1
    )
    return out.reshape(x.shape)
