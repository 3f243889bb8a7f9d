"""Pose stage: MediaPipe BlazePose "full" in tracking mode, with a start that needs no face.

BlazePose is a detector-tracker pair.  Its person detector keys on the face, so on a climber
filmed from behind it may never fire, and without a detection the tracker never starts.  This
module wires the same subgraphs the stock ``mp.solutions.pose`` graph uses
(``PoseDetectionCpu``, ``PoseLandmarkByRoiCpu``, ``PoseLandmarksToRoi``; model complexity 1, the
``pose_landmark_full.tflite`` shipped inside the mediapipe 0.10.14 wheel) into two small graphs so
that the region of interest (ROI) is ours to choose:

1. *tracking*: the ROI derived from the previous frame's landmarks (what the stock graph does);
2. *detection*: the stock face-keyed person detector, when tracking is lost;
3. *body seed* (``seed_without_face=True``, the default): the person segmentation model shipped
   in the same wheel (``selfie_segmentation.tflite``) gives a person mask; ROIs around its
   largest blob compete with the detector's ROI, and the pose whose body landmarks are most
   visible *and* lie on the mask wins (on a back-facing climber the face-keyed detector often
   fires on the wrong thing).  Acquisition runs at most every ``seed_every_s`` while lost, so a
   frame without anybody does not cost a dozen model runs, and a tracked pose is checked against
   the mask every ``check_every_s``.

Temporal smoothing is done afterwards over the whole track with real timestamps
(:mod:`cruxlog_vision.smoothing`).  Landmarks come back in pixels of the frame that was passed in.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from cruxlog_vision.video import Frame

MODEL_ID: Final = "mediapipe-0.10.14/pose_landmark_full"
LANDMARKS: Final = 33
BODY: Final = (11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
"""Shoulders, elbows, wrists, hips, knees, ankles: the landmarks a seed is judged on."""
MAX_POSE_SIDE: Final = 1280
"""Frames with a longer side are scaled down first (the models see 224/256 px crops anyway)."""
TRACKED_ROI_PX: Final = 320
"""While a pose is tracked, the frame is scaled down as far as the tracked region keeps this
many pixels on its long side.  The landmark model sees a 256x256 crop of that region, so more
pixels add no detail, only time (converting and cropping a bigger frame): a climber who fills
half of a 720p frame is tracked on a frame of about 830x470.  A small climber keeps the full
frame, and so do detection and acquisition (nothing is tracked then)."""
MIN_TRACKED_SCALE: Final = 0.5
SEED_MIN_SCORE: Final = 0.35
"""Acquisition needs mean body visibility x share of body landmarks on the mask above this."""
SEED_MIN_AREA: Final = 0.003
MIN_ON_MASK: Final = 0.4
"""A tracked pose with fewer body landmarks on the person mask than this is dropped."""
MASK_ON: Final = 0.2
NATIVE_BONUS: Final = 0.0
"""Head start of the detector's and the tracked ROI over body seeds at acquisition.  Measured
(bench): 0.05 and 0.1 kept wrong detections on back views, so none."""

_LANDMARK_GRAPH: Final = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
output_stream: "next_roi"
node { calculator: "ImagePropertiesCalculator" input_stream: "IMAGE_CPU:image"
       output_stream: "SIZE:image_size" }
node { calculator: "PoseLandmarkByRoiCpu" input_stream: "IMAGE:image" input_stream: "ROI:roi"
       output_stream: "LANDMARKS:landmarks" output_stream: "AUXILIARY_LANDMARKS:aux" }
node { calculator: "PoseLandmarksToRoi" input_stream: "LANDMARKS:aux"
       input_stream: "IMAGE_SIZE:image_size" output_stream: "ROI:next_roi" }
"""
_DETECTION_GRAPH: Final = """
input_stream: "image"
output_stream: "roi"
node { calculator: "ImagePropertiesCalculator" input_stream: "IMAGE_CPU:image"
       output_stream: "SIZE:image_size" }
node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image"
       output_stream: "DETECTIONS:detections" }
node { calculator: "SplitDetectionVectorCalculator" input_stream: "detections"
       output_stream: "detection"
       options: { [mediapipe.SplitVectorCalculatorOptions.ext] {
         ranges: { begin: 0 end: 1 } element_only: true } } }
node { calculator: "PoseDetectionToRoi" input_stream: "DETECTION:detection"
       input_stream: "IMAGE_SIZE:image_size" output_stream: "ROI:roi" }
"""


class Source(enum.IntEnum):
    """How the ROI of a frame's pose was found."""

    NONE = 0
    TRACKING = 1
    DETECTOR = 2
    BODY_SEED = 3


@dataclass(frozen=True, slots=True)
class PoseResult:
    landmarks: npt.NDArray[np.float64]
    """``(33, 4)``: x, y (pixels of the input frame), z (BlazePose's relative depth), visibility."""
    source: Source


def _graph(text: str) -> Any:
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2
    from mediapipe.python.solution_base import SolutionBase

    config = text_format.Parse(text, calculator_pb2.CalculatorGraphConfig())
    return SolutionBase(graph_config=config)


def _roi(x: float, y: float, width: float, height: float) -> Any:
    from mediapipe.framework.formats import rect_pb2

    return rect_pb2.NormalizedRect(x_center=x, y_center=y, width=width, height=height, rotation=0.0)


class PoseTracker:
    """One warm set of models; :meth:`process` frames of one video in order, :meth:`reset` between
    videos.  Not thread-safe.

    With ``seed_without_face`` (the default) every (re)acquisition also looks at the person mask:
    the detector's ROI and the body-seed ROIs compete, scored by how visible the body landmarks
    are and how many of them fall on the mask, and a tracked pose that has slid off the mask
    (checked every ``check_every_s``) competes with a fresh acquisition.  Without it the tracker
    behaves like the stock graph: detector when lost, then landmark-derived ROIs.
    """

    def __init__(
        self,
        *,
        seed_without_face: bool = True,
        seed_every_s: float = 0.5,
        check_every_s: float = 1.5,
        scale_to_roi: bool = True,
    ) -> None:
        self.seed_without_face = seed_without_face
        self.scale_to_roi = scale_to_roi
        self.seed_every_s = seed_every_s
        self.check_every_s = check_every_s
        self._landmark = _graph(_LANDMARK_GRAPH)
        self._detector = _graph(_DETECTION_GRAPH)
        self._segmenter: Any = None
        self._roi: Any = None
        self.reset()

    def reset(self, rate_hz: float = 10.0) -> None:
        """Forget the tracked ROI; call before a new video, with its analysed frames per second
        (the acquisition and check intervals are in seconds, so the tracker behaves the same at
        any analysed frame rate)."""
        self.seed_every = max(1, round(self.seed_every_s * rate_hz))
        self.check_every = max(1, round(self.check_every_s * rate_hz))
        self._roi = None
        self._since_seed = self.seed_every
        self._since_check = 0

    def close(self) -> None:
        for graph in (self._landmark, self._detector, self._segmenter):
            if graph is not None:
                graph.close()

    def process(self, frame: Frame) -> PoseResult | None:
        """Pose of the climber in ``frame`` (RGB uint8), or None when nobody was found."""
        image, scale = _model_input(frame, self._tracked_scale(frame))
        found = self._track(image)
        if found is None:
            return None
        landmarks, source = found
        landmarks[:, :2] /= scale
        return PoseResult(landmarks, source)

    def _tracked_scale(self, frame: Frame) -> float:
        """How far ``frame`` may be scaled down for the tracked ROI (1 when nothing is tracked),
        in steps of 1/16 so that the size does not change with every frame."""
        if self._roi is None or not self.scale_to_roi:
            return 1.0
        height, width = frame.shape[:2]
        side = float(max(self._roi.width * width, self._roi.height * height))
        if side <= 0:
            return 1.0
        wanted = max(MIN_TRACKED_SCALE, min(1.0, TRACKED_ROI_PX / side))
        return min(1.0, math.ceil(wanted * 16) / 16)

    def _run_landmarks(self, image: Frame, roi: Any) -> tuple[npt.NDArray[np.float64], Any] | None:
        out = self._landmark.process({"image": image, "roi": roi})
        if out.landmarks is None:
            return None
        height, width = image.shape[:2]
        points = np.array(
            [(p.x * width, p.y * height, p.z, p.visibility) for p in out.landmarks.landmark],
            dtype=np.float64,
        )
        return points, out.next_roi

    def _mask(self, image: Frame) -> npt.NDArray[np.float32] | None:
        if self._segmenter is None:
            from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

            self._segmenter = SelfieSegmentation(model_selection=0)
        mask = self._segmenter.process(image).segmentation_mask
        return None if mask is None else np.asarray(mask, dtype=np.float32)

    def _track(self, image: Frame) -> tuple[npt.NDArray[np.float64], Source] | None:
        if self._roi is not None:
            hit = self._run_landmarks(image, self._roi)
            self._since_check += 1
            if hit is not None and self.seed_without_face and self._since_check >= self.check_every:
                self._since_check = 0
                mask = self._mask(image)
                if mask is not None and on_mask(hit[0], mask) < MIN_ON_MASK:
                    # slid off the person? the tracked pose competes with a fresh acquisition
                    acquired = self._acquire(image, (self._roi, Source.TRACKING), mask)
                    if acquired is None:
                        self._roi = None
                        return None
                    self._roi = acquired[1]
                    return acquired[0], acquired[2]
            if hit is not None:
                self._roi = hit[1]
                return hit[0], Source.TRACKING
            self._roi = None
            self._since_seed = self.seed_every
        if not self.seed_without_face:
            roi = self._detector.process(image).roi
            hit = None if roi is None else self._run_landmarks(image, roi)
            if hit is None:
                return None
            self._roi = hit[1]
            return hit[0], Source.DETECTOR
        self._since_seed += 1
        if self._since_seed < self.seed_every:
            return None
        self._since_seed = 0
        acquired = self._acquire(image)
        if acquired is None:
            return None
        self._roi, self._since_check = acquired[1], 0
        return acquired[0], acquired[2]

    def _acquire(
        self,
        image: Frame,
        current: tuple[Any, Source] | None = None,
        mask: npt.NDArray[np.float32] | None = None,
    ) -> tuple[npt.NDArray[np.float64], Any, Source] | None:
        """Best pose among the detector's ROI, the body-seed ROIs and ``current`` (the tracked
        ROI, if any), judged against the person mask (computed unless given)."""
        candidates: list[tuple[Any, Source]] = [] if current is None else [current]
        roi = self._detector.process(image).roi
        if roi is not None:
            candidates.append((roi, Source.DETECTOR))
        mask = self._mask(image) if mask is None else mask
        box = None if mask is None else person_box(mask)
        if box is not None:
            height, width = image.shape[:2]
            candidates += [(r, Source.BODY_SEED) for r in seed_rois(box, width, height)]
        best: tuple[float, npt.NDArray[np.float64], Any, Source] | None = None
        for candidate, source in candidates:
            hit = self._run_landmarks(image, candidate)
            if hit is None or hit[1] is None:
                continue
            refined = self._run_landmarks(image, hit[1]) or hit
            visibility = float(np.mean(refined[0][list(BODY), 3]))
            score = visibility * (1.0 if mask is None else on_mask(refined[0], mask))
            score += NATIVE_BONUS if source != Source.BODY_SEED else 0.0
            if best is None or score > best[0]:
                best = (score, refined[0], refined[1], source)
        if best is None or best[0] < SEED_MIN_SCORE:
            return None
        return best[1], best[2], best[3]


def on_mask(landmarks: npt.NDArray[np.float64], mask: npt.NDArray[np.float32]) -> float:
    """Share of the visible body landmarks that lie on the person mask (0 when none visible)."""
    height, width = mask.shape[:2]
    body = landmarks[list(BODY)]
    seen = body[body[:, 3] >= 0.5]
    if not len(seen):
        return 0.0
    x = np.clip(seen[:, 0].round().astype(int), 0, width - 1)
    y = np.clip(seen[:, 1].round().astype(int), 0, height - 1)
    inside = (x == seen[:, 0].round()) & (y == seen[:, 1].round())
    return float(np.mean(inside & (mask[y, x] > MASK_ON)))


def _model_input(frame: Frame, limit: float = 1.0) -> tuple[Frame, float]:
    height, width = frame.shape[:2]
    scale = min(limit, MAX_POSE_SIDE / max(height, width))
    if scale >= 1.0:
        return np.ascontiguousarray(frame), 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA)), scale


def person_box(mask: npt.NDArray[np.float32]) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` of the largest blob of ``mask > 0.5``, or None when it is tiny."""
    binary = (mask > 0.5).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = (int(v) for v in stats[best])
    if area < SEED_MIN_AREA * mask.size:
        return None
    return x, y, x + w, y + h


def seed_rois(box: tuple[int, int, int, int], width: int, height: int) -> list[Any]:
    """Candidate landmark ROIs around a person box.

    BlazePose's ROI is a square centred on the hips, about 1.25x the body's extent.  A whole
    climber's box centre is near the hips; a box cut off by the frame edge (upper body only)
    hides hips lower down, so larger squares centred lower are tried too.
    """
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    side = max(bw, bh)
    cx = (x0 + x1) / 2
    candidates = ((0.5, 1.25), (0.75, 2.0), (1.0, 3.0))
    return [
        _roi(cx / width, (y0 + f * bh) / height, k * side / width, k * side / height)
        for f, k in candidates
    ]
