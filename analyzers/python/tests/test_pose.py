"""The pose stage on real photos of people and on synthetic climbs built from them.

Accuracy is measured against the photo's own pose (BlazePose on the full-size, face-visible
photo) carried into each frame by the same affine transform that placed the photo there.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from cruxlog_vision import testvideo as tv
from cruxlog_vision.pose import (
    BODY,
    MODEL_ID,
    PoseTracker,
    Source,
    _roi,
    person_box,
    seed_rois,
)
from cruxlog_vision.video import Frame

FloatArray = npt.NDArray[np.float64]


def reference(tracker: PoseTracker, person: str) -> FloatArray:
    tracker.reset()
    found = tracker.process(tv.person_image(person))
    assert found is not None
    return found.landmarks


def error_in_shoulder_widths(found: FloatArray, ref: FloatArray) -> float:
    """Mean distance of the body landmarks the reference sees, over the shoulder width."""
    use = [i for i in BODY if ref[i, 3] >= 0.5]
    width = float(np.linalg.norm(ref[11, :2] - ref[12, :2]))
    return float(np.linalg.norm(found[use, :2] - ref[use, :2], axis=1).mean()) / width


@pytest.mark.parametrize(
    ("person", "at_least"), [("camera", 20), ("astronaut", 10), ("grace_hopper", 10)]
)
def test_pose_on_real_photos(tracker: PoseTracker, person: str, at_least: int) -> None:
    landmarks = reference(tracker, person)
    assert landmarks.shape == (33, 4)
    assert int(np.sum(landmarks[:, 3] >= 0.5)) >= at_least
    assert MODEL_ID == "mediapipe-0.10.14/pose_landmark_full"


def test_mirrored_photo_gives_the_mirrored_pose(tracker: PoseTracker) -> None:
    photo = tv.person_image("camera")
    ref = reference(tracker, "camera")
    tracker.reset()
    mirrored = tracker.process(np.ascontiguousarray(photo[:, ::-1]))
    assert mirrored is not None
    back = mirrored.landmarks.copy()
    back[:, 0] = photo.shape[1] - back[:, 0]
    swap = list(range(33))
    for left in range(1, 33):  # BlazePose: odd = left, even = right (after the face centre)
        if left in (1, 2, 3, 4, 5, 6):
            continue
        if left % 2 == 1 and left + 1 < 33:
            swap[left], swap[left + 1] = left + 1, left
    assert error_in_shoulder_widths(back[swap], ref) < 0.5


@pytest.mark.parametrize("person", tv.PEOPLE)
def test_the_stock_detector_misses_every_face_hidden_photo(person: str) -> None:
    stock_like = PoseTracker(seed_without_face=False)
    try:
        assert stock_like.process(tv.person_image(person)) is not None
        stock_like.reset()
        assert stock_like.process(tv.hide_face(person, tv.person_image(person))) is None
    finally:
        stock_like.close()


def test_the_body_seed_finds_a_face_hidden_climber(tracker: PoseTracker) -> None:
    ref = reference(tracker, "camera")
    tracker.reset()
    found = tracker.process(tv.hide_face("camera", tv.person_image("camera")))
    assert found is not None
    assert found.source == Source.BODY_SEED
    assert error_in_shoulder_widths(found.landmarks, ref) < 0.6


def track_rate(tracker: PoseTracker, back_view: bool, ref: FloatArray) -> tuple[float, float]:
    """(share of frames with a pose, share within half a shoulder width) on a 960x540 climb."""
    tracker.reset()
    found, good, total = 0, 0, 0
    for frame, m in tv.frames(4, 10, 960, 540, "camera", back_view=back_view):
        total += 1
        result = tracker.process(frame)
        if result is None:
            continue
        found += 1
        truth = ref.copy()
        truth[:, :2] = tv.map_points(ref[:, :2], m)
        good += error_in_shoulder_widths(result.landmarks, truth) < 0.5
    return found / total, good / total


def test_back_view_climb_is_tracked_only_with_the_body_seed(tracker: PoseTracker) -> None:
    ref = reference(tracker, "camera")
    stock_like = PoseTracker(seed_without_face=False)
    try:
        _, without = track_rate(stock_like, True, ref)
    finally:
        stock_like.close()
    found, with_seed = track_rate(tracker, True, ref)
    assert found >= 0.85
    assert with_seed >= 0.45
    assert with_seed >= without + 0.25


def test_front_view_climb_moved_scaled_and_turned_is_tracked(tracker: PoseTracker) -> None:
    ref = reference(tracker, "camera")
    found, good = track_rate(tracker, False, ref)
    assert found >= 0.7
    assert good >= 0.4


def test_nobody_on_the_wall(tracker: PoseTracker) -> None:
    tracker.reset()
    background = tv.wall(640, 360)
    assert all(tracker.process(background) is None for _ in range(6))


def test_person_box_and_seed_rois() -> None:
    mask = np.zeros((100, 200), np.float32)
    mask[20:80, 50:90] = 0.9
    mask[5:7, 5:7] = 0.9  # a speck
    assert person_box(mask) == (50, 20, 90, 80)
    assert person_box(np.zeros((100, 200), np.float32)) is None
    rois = seed_rois((50, 20, 90, 80), 200, 100)
    assert len(rois) == 3
    assert rois[0].x_center == pytest.approx(0.35)
    assert rois[0].y_center == pytest.approx(0.5)
    assert rois[0].width == pytest.approx(1.25 * 60 / 200)
    assert rois[0].height == pytest.approx(1.25 * 60 / 100)


def test_a_tracked_climber_is_tracked_on_a_smaller_frame_as_well(tracker: PoseTracker) -> None:
    ref = reference(tracker, "camera")
    scales: list[float] = []
    real = tracker._tracked_scale

    def spy(frame: Frame) -> float:
        scales.append(real(frame))
        return scales[-1]

    tracker.scale_to_roi = False
    full = track_rate(tracker, False, ref)
    tracker.scale_to_roi = True
    try:
        tracker._tracked_scale = spy  # type: ignore[method-assign]
        scaled = track_rate(tracker, False, ref)
    finally:
        del tracker._tracked_scale
    assert min(scales) < 1.0  # the climber fills enough of the 960x540 frame
    assert scales[0] == 1.0  # nothing tracked yet: the whole frame
    assert all(s * 16 == round(s * 16) for s in scales)
    assert scaled[0] >= full[0] - 0.05
    assert scaled[1] >= full[1] - 0.1


def test_a_small_climber_keeps_the_whole_frame(tracker: PoseTracker) -> None:
    tracker.reset()
    frame = np.zeros((720, 1280, 3), np.uint8)
    tracker._roi = _roi(0.5, 0.5, 0.1, 0.2)  # 144 px tall: less than TRACKED_ROI_PX
    assert tracker._tracked_scale(frame) == 1.0
    tracker._roi = _roi(0.5, 0.5, 0.4, 0.8)  # 576 px: 320 / 576 = 0.56, up to 9/16
    assert tracker._tracked_scale(frame) == 9 / 16
    tracker._roi = _roi(0.5, 0.5, 1.0, 1.0)  # never below half
    assert tracker._tracked_scale(frame) == 0.5
    tracker.reset()
    assert tracker._tracked_scale(frame) == 1.0
