"""``movement.analyze``: movement analysis of one climbing video (issue #6).

Params and result are specified in ``docs/worker-protocol.md`` (section 7.4); the stages are:
:mod:`video` (probe, decode, rotation) -> :mod:`pose` (BlazePose tracking with a face-free start)
-> :mod:`tracks` (smoothing, torso units) -> :mod:`phases` and :mod:`analysis` (metrics)
-> :mod:`rules` (errors and strengths, comparison with earlier attempts) -> :mod:`pipeline`
(annotated video, summary image).  Permanent failures are ``InvalidInputError`` whose message
starts with a stable code: ``video.unreadable``, ``video.unsupported``, ``video.too_long``,
``pose.no_person``, or the name of the offending param.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from cruxlog_vision import pipeline, rules
from cruxlog_vision.analysis import arm_state, compute_metrics, summary
from cruxlog_vision.phases import Phases, find_phases
from cruxlog_vision.pipeline import Overlay, PoseTrack, Progress, Tracker
from cruxlog_vision.pose import MODEL_ID, Source
from cruxlog_vision.protocol import InvalidInputError, JsonObject, json_type_name
from cruxlog_vision.streaming import EarlyVideo
from cruxlog_vision.tracks import body_tracks, smooth_keypoints
from cruxlog_vision.video import ROTATIONS, VideoError, VideoInfo, frame_limit, probe

ANALYZER: Final = {"name": "movement", "version": 1, "model_id": MODEL_ID}
DEFAULT_MAX_SECONDS: Final = 120.0
HARD_MAX_SECONDS: Final = 600.0
DEFAULT_ANALYSIS_FPS: Final = 10.0
MIN_POSE_SHARE: Final = 0.1
MIN_POSE_FRAMES: Final = 3
VIDEO_NAME: Final = "annotated.mp4"
IMAGE_NAME: Final = "summary.jpg"
JSON_NAME: Final = "analysis.json"


@dataclass(frozen=True, slots=True)
class MovementParams:
    video_path: Path
    out_dir: Path
    analysis_id: str
    rotation_degrees: int | None = None
    history: tuple[tuple[str, dict[str, float]], ...] = ()
    max_seconds: float = DEFAULT_MAX_SECONDS
    analysis_fps: float = DEFAULT_ANALYSIS_FPS


def _path(params: JsonObject, field: str) -> Path:
    value = params.get(field)
    if value is None:
        raise InvalidInputError(field, "is required")
    if not isinstance(value, str) or not value:
        raise InvalidInputError(field, f"must be a non-empty string, got {json_type_name(value)}")
    path = Path(value)
    if not path.is_absolute():
        raise InvalidInputError(field, f"must be an absolute path, got {value!r}")
    return path


def _number(options: JsonObject, key: str, default: float, low: float, high: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"options.{key}", f"must be a number, got {json_type_name(value)}")
    if not low <= value <= high:
        raise InvalidInputError(f"options.{key}", f"must be between {low:g} and {high:g}")
    return float(value)


def _history(raw: object) -> tuple[tuple[str, dict[str, float]], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidInputError("history", f"must be an array, got {json_type_name(raw)}")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise InvalidInputError(f"history[{i}]", "must be an object")
        aid, metrics = entry.get("analysis_id"), entry.get("metrics")
        if not isinstance(aid, str):
            raise InvalidInputError(f"history[{i}].analysis_id", "must be a string")
        if not isinstance(metrics, dict):
            raise InvalidInputError(f"history[{i}].metrics", "must be an object")
        clean = {
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }
        out.append((aid, clean))
    return tuple(out)


def parse_params(params: JsonObject) -> MovementParams:
    """Validate ``movement.analyze`` params (fields in protocol order; the first error wins)."""
    video = _path(params, "video_path")
    if not video.is_file():
        raise InvalidInputError("video_path", f"no such file: {video}")
    out_dir = _path(params, "out_dir")
    if not out_dir.is_dir():
        raise InvalidInputError("out_dir", f"no such directory: {out_dir}")
    if not os.access(out_dir, os.W_OK):
        raise InvalidInputError("out_dir", f"not writable: {out_dir}")
    aid = params.get("analysis_id")
    if not isinstance(aid, str) or not aid.strip() or len(aid) > 200:
        raise InvalidInputError("analysis_id", "must be a non-blank string of at most 200 chars")
    rotation = params.get("rotation_degrees")
    if rotation is not None and (isinstance(rotation, bool) or rotation not in ROTATIONS):
        raise InvalidInputError(
            "rotation_degrees", f"must be null or one of 0, 90, 180, 270, got {rotation!r}"
        )
    history = _history(params.get("history"))
    options = params.get("options")
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise InvalidInputError("options", f"must be an object, got {json_type_name(options)}")
    return MovementParams(
        video_path=video,
        out_dir=out_dir,
        analysis_id=aid,
        rotation_degrees=None if rotation is None else int(rotation),
        history=history,
        max_seconds=_number(options, "max_seconds", DEFAULT_MAX_SECONDS, 1, HARD_MAX_SECONDS),
        analysis_fps=_number(options, "analysis_fps", DEFAULT_ANALYSIS_FPS, 1, 240),
    )


def open_video(params: MovementParams) -> VideoInfo:
    """Probe the video and apply the rotation and length rules."""
    try:
        info = probe(params.video_path)
    except VideoError as exc:
        raise InvalidInputError(None, str(exc)) from exc
    if params.rotation_degrees is not None:
        info = info.with_rotation(params.rotation_degrees)
    if info.duration_ms > params.max_seconds * 1000:
        raise InvalidInputError(
            None,
            f"video.too_long: the video lasts {info.duration_ms / 1000:.1f} s; "
            f"the limit is {params.max_seconds:g} s",
        )
    return info


def _frames_json(track: PoseTrack) -> list[JsonObject]:
    # x, y to 0.01 px, z and visibility to 1e-4 (np.round: n / 100 is the double nearest the
    # decimal, as with round(); vectorised, it is 10x faster than rounding value by value)
    k = track.keypoints
    rounded = np.concatenate([np.round(k[:, :, :2], 2), np.round(k[:, :, 2:], 4)], axis=2)
    found = np.isfinite(k[:, 0, 0])
    times = np.round(track.times_s * 1000).astype(np.int64)
    return [
        {
            "frame": int(index),
            "t_ms": int(times[i]),
            "source": Source(int(track.sources[i])).name.lower(),
            "keypoints": rounded[i].tolist() if found[i] else None,
        }
        for i, index in enumerate(track.frame_index)
    ]


def _poses(
    info: VideoInfo,
    tracker: Tracker,
    step: int,
    limit: int,
    store: pipeline.FrameStore,
    progress: Progress | None,
    poses: pipeline.PoseLog,
) -> PoseTrack:
    try:
        return pipeline.estimate_poses(
            info, tracker, step=step, max_frames=limit, store=store, progress=progress, log=poses
        )
    except VideoError as exc:
        raise InvalidInputError(None, str(exc)) from exc


@dataclass(frozen=True, slots=True)
class _Analysis:
    phases: Phases
    metrics: dict[str, float]
    findings: list[rules.Finding]
    comparison: JsonObject
    overlay: Overlay


def _analysis(track: PoseTrack, params: MovementParams) -> _Analysis:
    """Metrics, findings, the comparison with earlier attempts and the overlay of one track."""
    analysed = len(track.frame_index)
    if track.found < max(MIN_POSE_FRAMES, MIN_POSE_SHARE * analysed):
        raise InvalidInputError(
            None, f"pose.no_person: a climber was found in {track.found} of {analysed} frames"
        )
    smoothed = smooth_keypoints(track.times_s, track.keypoints)
    try:
        reacquired = (track.sources == Source.DETECTOR) | (track.sources == Source.BODY_SEED)
        body = body_tracks(track.times_s, smoothed, smooth=False, breaks=reacquired)
    except ValueError as exc:
        raise InvalidInputError(None, f"pose.no_person: {exc}") from exc
    phases = find_phases(body)
    arms = arm_state(body)
    metrics = compute_metrics(body, phases, arms)
    metrics["pose_found_ratio"] = track.found / analysed
    findings = rules.find_all(body, phases, arms, metrics)
    history = [m for _, m in params.history]
    comparison = rules.history_comparison(metrics, history)
    known = np.flatnonzero(np.all(np.isfinite(body.hip), axis=1))
    window = (
        (0, 0)
        if not len(known)
        else (
            round(track.times_s[known[0]] * 1000),
            round(track.times_s[known[-1]] * 1000),
        )
    )
    findings += rules.history_findings(comparison, len(history), window)
    overlay = Overlay(
        keypoints=smoothed,
        findings=findings,
        metrics=metrics,
        move_starts_s=[iv.start_s for iv in phases.moves],
    )
    return _Analysis(phases, metrics, findings, comparison, overlay)


def _early_overlay(params: MovementParams) -> Callable[[PoseTrack], Overlay | None]:
    """The analysis of the climb so far, for the video drawn during pass 1."""

    def analyse(prefix: PoseTrack) -> Overlay | None:
        try:
            return _analysis(prefix, params).overlay
        except InvalidInputError:
            return None  # no climber yet: nothing is drawn early

    return analyse


def analyze(
    params: MovementParams, tracker: Tracker, progress: Progress | None = None
) -> JsonObject:
    """Run the whole analysis, write the artifacts into ``out_dir``, return the result."""
    info = open_video(params)
    step = pipeline.sampling_step(info.fps, params.analysis_fps)
    limit = min(frame_limit(info), int((params.max_seconds + 1) * info.fps))
    out = params.out_dir
    poses = pipeline.PoseLog()
    with (
        pipeline.FrameStore(info.width, info.height) as store,
        pipeline.annotated_video(out / VIDEO_NAME, store.size, info.fps / step) as video,
        EarlyVideo(
            poses,
            store,
            video,
            _early_overlay(params),
            expected_frames=pipeline.expected_frames(info, step, limit),
        ) as early,
    ):
        track = _poses(info, tracker, step, limit, store, progress, poses)
        early.stop(wait=False)  # it finishes its chunk while the final analysis runs
        done = _analysis(track, params)
        early.stop()
        pipeline.render(
            track,
            done.overlay,
            store,
            video,
            image_out=out / IMAGE_NAME,
            progress=progress,
            drawn=early.drawn,
        )
    phases, metrics = done.phases, done.metrics
    findings, comparison = done.findings, done.comparison
    analysed = len(track.frame_index)
    history = [m for _, m in params.history]
    artifacts = {
        "annotated_video": str(out / VIDEO_NAME),
        "summary_image": str(out / IMAGE_NAME),
        "analysis_json": str(out / JSON_NAME),
    }
    duration_ms = info.duration_ms or round(track.decoded_frames / info.fps * 1000)
    result: JsonObject = {
        "analyzer": dict(ANALYZER),
        "metrics": {k: round(v, 6) for k, v in sorted(metrics.items())},
        "summary": summary(metrics, phases),
        "findings": [f.to_dict() for f in findings],
        "artifacts": artifacts,
        "video": {
            "frames": track.decoded_frames,
            "analysed_frames": analysed,
            "fps": round(info.fps, 6),
            "width": info.width,
            "height": info.height,
            "duration_ms": duration_ms,
            "rotation_degrees": info.rotation_degrees,
        },
        "comparison": {"attempts": len(history), "metrics": comparison},
    }
    document = {**result, "analysis_id": params.analysis_id, "frames": _frames_json(track)}
    part = out / (JSON_NAME + ".part")
    part.write_text(json.dumps(document, allow_nan=False, separators=(",", ":")), "utf-8")
    os.replace(part, out / JSON_NAME)
    return result


class MovementAnalyzer:
    """Keeps one pose model warm between calls (created on the first call)."""

    def __init__(self) -> None:
        self._tracker: Any = None

    def tracker(self) -> Tracker:
        if self._tracker is None:
            from cruxlog_vision.pose import PoseTracker

            self._tracker = PoseTracker()
        return self._tracker  # type: ignore[no-any-return]

    def handle(self, params: JsonObject) -> JsonObject:
        return analyze(parse_params(params), self.tracker())
