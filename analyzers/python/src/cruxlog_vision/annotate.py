"""Drawing the analysis onto frames: skeleton, hip trace, finding markers, metrics panel.

Frames are RGB, so colours here are RGB tuples.  Errors are red, strengths green, each shown
while its time window is on screen: a banner line at the top and a ring around the hips.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from cruxlog_vision.metrics import joint_angles
from cruxlog_vision.rules import Finding, Kind
from cruxlog_vision.video import Frame

FloatArray = npt.NDArray[np.float64]

RED: Final = (230, 40, 40)
GREEN: Final = (40, 200, 80)
WHITE: Final = (255, 255, 255)
BONE: Final = (255, 220, 90)
JOINT: Final = (255, 255, 255)
TRACE: Final = (0, 220, 255)
MIN_VISIBILITY: Final = 0.5
TRACE_S: Final = 4.0
"""The hip trace shows the last few seconds."""
MAX_BANNER_LINES: Final = 4
L_SHOULDER, L_ELBOW, L_WRIST = 11, 13, 15
R_SHOULDER, R_ELBOW, R_WRIST = 12, 14, 16

SKELETON: Final = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
    (23, 25), (25, 27), (27, 31), (27, 29), (24, 26), (26, 28), (28, 32), (28, 30),
    (15, 17), (15, 19), (16, 18), (16, 20), (0, 11), (0, 12),
)  # fmt: skip


def _scale(frame: Frame) -> float:
    return max(frame.shape[:2]) / 1280.0


def draw_skeleton(frame: Frame, keypoints: FloatArray) -> None:
    """Bones and joints of one ``(33, 4)`` pose (pixels), visible points only."""
    s = _scale(frame)
    thick = max(1, round(3 * s))
    ok = np.isfinite(keypoints[:, 0]) & (keypoints[:, 3] >= MIN_VISIBILITY)
    pts = np.nan_to_num(keypoints[:, :2]).round().astype(int)
    for a, b in SKELETON:
        if ok[a] and ok[b]:
            cv2.line(frame, tuple(pts[a]), tuple(pts[b]), BONE, thick, cv2.LINE_AA)
    for i in np.flatnonzero(ok):
        if i == 0 or i >= 11:
            cv2.circle(frame, tuple(pts[i]), thick + 1, JOINT, -1, cv2.LINE_AA)


def draw_trace(frame: Frame, points: FloatArray, colour: tuple[int, int, int] = TRACE) -> None:
    """A polyline through the valid ``(N, 2)`` pixel points (gaps break the line)."""
    thick = max(1, round(2 * _scale(frame)))
    segment: list[list[int]] = []
    for p in points:
        if np.all(np.isfinite(p)):
            segment.append([round(p[0]), round(p[1])])
            continue
        if len(segment) > 1:
            cv2.polylines(frame, [np.array(segment)], False, colour, thick, cv2.LINE_AA)
        segment = []
    if len(segment) > 1:
        cv2.polylines(frame, [np.array(segment)], False, colour, thick, cv2.LINE_AA)


def _text(frame: Frame, text: str, org: tuple[int, int], colour: tuple[int, int, int]) -> None:
    """``text`` in ``colour`` with a black outline, its baseline starting at ``org``."""
    s = _scale(frame)
    patch, alpha, (left, above) = _text_sprite(text, colour, round(s * 1000))
    x0, y0 = org[0] - left, org[1] - above
    h, w = alpha.shape
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(frame.shape[1], x0 + w), min(frame.shape[0], y0 + h)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    region = frame[fy0:fy1, fx0:fx1]
    a = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    p = patch[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    region[:] = cv2.blendLinear(p, region, a, 1.0 - a)


@functools.lru_cache(maxsize=512)
def _text_sprite(
    text: str, colour: tuple[int, int, int], scale_milli: int
) -> tuple[Frame, npt.NDArray[np.float32], tuple[int, int]]:
    """``text`` drawn once (putText is most of the drawing time, and the banner and panel lines
    repeat from frame to frame): the outlined text on black, its coverage 0..1 and where the
    text's origin lies in the sprite."""
    s = scale_milli / 1000
    scale, thick = 0.55 * s, max(1, round(1.5 * s))
    font = cv2.FONT_HERSHEY_SIMPLEX
    (w, h), base = cv2.getTextSize(text, font, scale, thick + 2)
    pad = thick + 2
    above = h + pad
    size = (above + base + pad, w + 2 * pad)
    patch = np.zeros((*size, 3), np.uint8)
    cover = np.zeros(size, np.uint8)
    org = (pad, above)
    cv2.putText(cover, text, org, font, scale, (255,), thick + 2, cv2.LINE_AA)
    cv2.putText(patch, text, org, font, scale, colour, thick, cv2.LINE_AA)
    patch.setflags(write=False)
    alpha = (cover / np.float32(255)).astype(np.float32)
    alpha.setflags(write=False)
    return patch, alpha, (pad, above)


def _box(frame: Frame, x0: int, y0: int, x1: int, y1: int, alpha: float = 0.55) -> None:
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(frame.shape[1], x1), min(frame.shape[0], y1)
    if x1 > x0 and y1 > y0:
        region = frame[y0:y1, x0:x1]
        cv2.convertScaleAbs(region, dst=region, alpha=1 - alpha)  # in place, no float copy


BannerLine = tuple[Kind, str]
"""One line of the findings banner: the finding's kind (its colour) and its text."""


def banner(findings: Sequence[Finding]) -> tuple[BannerLine, ...]:
    """The banner lines of ``findings``, in their order."""
    return tuple((f.kind, f"{f.code}: {f.explanation}") for f in findings)


def draw_findings(frame: Frame, lines: Sequence[BannerLine], hip: FloatArray | None) -> None:
    """Banner lines for the active findings and a ring around the hips in their colour."""
    s = _scale(frame)
    line = round(24 * s)
    width = frame.shape[1]
    if lines:
        _box(frame, 0, 0, width, line * len(lines) + round(8 * s))
    for i, (kind, label) in enumerate(lines):
        colour = RED if kind == "ERROR" else GREEN
        max_chars = int(width / (11 * s))
        _text(frame, label[:max_chars], (round(8 * s), line * (i + 1)), colour)
    if hip is not None and np.all(np.isfinite(hip)) and lines:
        colour = RED if any(kind == "ERROR" for kind, _ in lines) else GREEN
        centre = (round(hip[0]), round(hip[1]))
        cv2.circle(frame, centre, round(28 * s), colour, max(2, round(4 * s)), cv2.LINE_AA)


def draw_panel(frame: Frame, rows: Sequence[str]) -> None:
    """A small metrics panel in the bottom-left corner."""
    s = _scale(frame)
    line = round(22 * s)
    height = line * len(rows) + round(10 * s)
    top = frame.shape[0] - height
    _box(frame, 0, top, round(330 * s), frame.shape[0])
    for i, row in enumerate(rows):
        _text(frame, row, (round(8 * s), top + line * (i + 1)), WHITE)


def panel_rows(t_s: float, metrics: dict[str, float], moves_so_far: int) -> list[str]:
    rows = [f"t {t_s:5.1f} s   moves {moves_so_far}"]
    for key, label in (
        ("smoothness_ratio", "smoothness"),
        ("geometric_entropy_nats", "path entropy"),
        ("immobility_ratio", "still share"),
        ("straight_arm_ratio_static", "straight arms (still)"),
    ):
        value = metrics.get(key)
        rows.append(
            f"{label} {value:.2f}" if value is not None and math.isfinite(value) else label + " -"
        )
    return rows


def live_rows(t_s: float, moves_so_far: int, keypoints: FloatArray) -> list[str]:
    """The panel while the climb goes on: clock, moves so far and the elbow angles of this
    frame's pose (``(33, 4)`` pixels; an arm not seen shows ``-``)."""
    angles = []
    for a, b, c in ((L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST)):
        joint = keypoints[[a, b, c]]
        seen = bool(np.all(np.isfinite(joint[:, :2])) and np.all(joint[:, 3] >= MIN_VISIBILITY))
        angle = float(joint_angles(joint[0, :2], joint[1, :2], joint[2, :2])) if seen else math.nan
        angles.append(f"{angle:3.0f}" if math.isfinite(angle) else "  -")
    return [f"t {t_s:5.1f} s   moves {moves_so_far}", f"elbows L {angles[0]}  R {angles[1]} deg"]


def active_findings(findings: Sequence[Finding], t_ms: float) -> list[Finding]:
    """The findings whose window contains ``t_ms``, errors first, then in order of start (a
    line keeps its place while it is shown), at most four."""
    on = [f for f in findings if f.start_ms <= t_ms <= f.end_ms]
    on.sort(key=lambda f: (f.kind != "ERROR", f.start_ms, f.code))
    return on[:MAX_BANNER_LINES]
