"""Movement-analysis benchmark (issue #6): prints figures, passes or fails nothing.

``make bench-vision`` runs it.  On synthetic 720p/30 fps clips of a photo climbing a wall
(cached under ``.local/bench-vision/``) it measures, in one run:

1. *pipeline vs model*: frames/s of the whole ``movement.analyze`` call (decode to result,
   artifacts included) and of the analysis without the annotated video, against the same pose
   model alone in a tight loop over the same pre-decoded frames (the very frames the pipeline
   feeds it), alternating model and pipeline runs on this shared machine (and the stock
   ``mp.solutions.pose`` graph on them, for reference);
2. the wall time of a 60 s clip and the cost per video-second;
3. the accuracy cost of subsampling: keypoint error against the full-rate run and against the
   ground truth (the photo's pose carried by the transform that placed it), metric deltas;
4. detection on back-view (face painted over) and front-view frames: the stock graph, our tracker
   without and with the face-free start;
5. (``--parts input``, not by default) the pose model fed smaller frames: speed and accuracy.

Usage: ``python bench_vision.py [--quick] [--cache DIR] [--repeat N]
[--parts ratio,long,subsampling,...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cruxlog_vision import pipeline, pose
from cruxlog_vision import testvideo as tv
from cruxlog_vision.movement import DEFAULT_ANALYSIS_FPS, analyze, parse_params
from cruxlog_vision.pose import BODY, PoseTracker
from cruxlog_vision.video import Frame, probe, read_frames

FloatArray = npt.NDArray[np.float64]
ROOT = Path(__file__).resolve().parents[3]
COMPARED = (
    "climb_duration_s", "hip_path_length_torso", "geometric_entropy_nats", "smoothness_ratio",
    "immobility_ratio", "path_efficiency_ratio", "straight_arm_ratio_static", "move_count",
    "reach_time_mean_s",
)  # fmt: skip


def log(text: str) -> None:
    print(text, flush=True)


def clip(cache: Path, seconds: float, back_view: bool = False) -> Path:
    # the name carries the generator's rhythm, so a changed generator makes new clips
    rhythm = f"move{tv.MOVE_S:g}-pause{tv.PAUSE_S:g}"
    path = cache / f"climb-{seconds:g}s-1280x720-30fps-{rhythm}{'-back' if back_view else ''}.mp4"
    if not path.exists():
        started = time.perf_counter()
        tv.make_test_video(path, seconds=seconds, back_view=back_view)
        log(f"  made {path.name} in {time.perf_counter() - started:.1f} s")
    return path


class Timed:
    """Wraps the two passes to time them inside one analyze() call."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._est, self._render = pipeline.estimate_poses, pipeline.render

    def __enter__(self) -> Timed:
        def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def run(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    value = fn(*args, **kwargs)
                    if name == "render":
                        self.seconds["late_frames"] = float(value)
                    return value
                finally:
                    self.seconds[name] = time.perf_counter() - started

            return run

        pipeline.estimate_poses = wrap("pose", self._est)
        pipeline.render = wrap("render", self._render)
        return self

    def __exit__(self, *exc: object) -> None:
        pipeline.estimate_poses, pipeline.render = self._est, self._render


def run_analysis(
    video: Path, out: Path, tracker: PoseTracker, fps: float | None = None
) -> tuple[dict[str, Any], float, dict[str, float]]:
    out.mkdir(parents=True, exist_ok=True)
    options = {} if fps is None else {"analysis_fps": fps}
    raw = {
        "video_path": str(video),
        "out_dir": str(out),
        "analysis_id": "bench",
        "options": options,
    }
    with Timed() as timed:
        started, cpu = time.perf_counter(), cpu_seconds()
        result = analyze(parse_params(raw), tracker)
        total = time.perf_counter() - started
        timed.seconds["cpu"] = cpu_seconds() - cpu
    return result, total, timed.seconds


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and its finished children (ffmpeg, ffprobe)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def sampled_frames(video: Path, step: int) -> list[Frame]:
    return [frame for _, frame in read_frames(probe(video), step=step)]


def raw_model_fps(frames: list[Frame], tracker: PoseTracker) -> float:
    tracker.reset()
    started = time.perf_counter()
    for frame in frames:
        tracker.process(frame)
    return len(frames) / (time.perf_counter() - started)


def stock_fps(frames: list[Frame]) -> float:
    import mediapipe as mp

    with mp.solutions.pose.Pose(model_complexity=1) as pose:
        pose.process(frames[0])
        started = time.perf_counter()
        for frame in frames:
            pose.process(frame)
        return len(frames) / (time.perf_counter() - started)


def keypoints_of(out: Path) -> dict[int, FloatArray]:
    document = json.loads((out / "analysis.json").read_text("utf-8"))
    return {
        f["frame"]: np.array(f["keypoints"], dtype=np.float64)
        for f in document["frames"]
        if f["keypoints"] is not None
    }


def truth(seconds: float, fps: float, reference: FloatArray) -> dict[int, FloatArray]:
    photo_shape = tv.person_image("camera").shape
    out = {}
    for i, at in enumerate(tv.climb_placements(seconds, fps, 1280, 720)):
        points = reference.copy()
        points[:, :2] = tv.map_points(reference[:, :2], tv.affine(photo_shape, at))
        out[i] = points
    return out


def camera_truth(tracker: PoseTracker, seconds: float) -> dict[int, FloatArray]:
    """The truth of a ``seconds`` long 30 fps clip of the ``camera`` photo, by frame."""
    tracker.reset()
    reference = tracker.process(tv.person_image("camera"))
    assert reference is not None
    return truth(seconds, 30.0, reference.landmarks)


def error_px(a: FloatArray, b: FloatArray) -> float:
    use = [i for i in BODY if a[i, 3] >= 0.5 and b[i, 3] >= 0.5]
    return float(np.linalg.norm(a[use, :2] - b[use, :2], axis=1).mean()) if use else np.nan


def frame_errors(run: dict[int, FloatArray], other: dict[int, FloatArray]) -> FloatArray:
    return np.array([error_px(run[i], other[i]) for i in run if i in other])


def input_part(short: Path, short_s: float, out: Path, tracker: PoseTracker) -> None:
    """The pose model fed smaller frames (``pose.MAX_POSE_SIDE``): its speed and accuracy."""
    log(f"\n## pose model input size ({short_s:g} s clip, 1280x720, 10 frames/s analysed)")
    gt = camera_truth(tracker, short_s)
    log("        long side  pose pass  found        px error vs truth (median)  moves  smoothness")
    default, scaled = pose.MAX_POSE_SIDE, tracker.scale_to_roi
    try:
        for side, to_roi in ((1280, True), (1280, False), (960, False), (854, False), (640, False)):
            pose.MAX_POSE_SIDE = side  # type: ignore[misc]  # a bench-only override
            tracker.scale_to_roi = to_roi
            name = f"side{side}{'-roi' if to_roi else ''}"
            res, _, stages = run_analysis(short, out / name, tracker)
            kp = keypoints_of(out / name)
            err = np.nanmedian(frame_errors(kp, gt))
            found, analysed = len(kp), res["video"]["analysed_frames"]
            metrics = res["metrics"]
            label = f"{side}{', to the ROI' if to_roi else ''}"
            log(f"{label:>17}  {stages['pose']:7.2f} s  {found:3d} of {analysed:<4d}  {err:8.1f}"
                f"                    {metrics.get('move_count', 0):5.0f}  "
                f"{metrics.get('smoothness_ratio', float('nan')):.2f}")  # fmt: skip
    finally:
        pose.MAX_POSE_SIDE = default  # type: ignore[misc]
        tracker.scale_to_roi = scaled


def detection_table(tracker: PoseTracker, quick: bool) -> None:
    import mediapipe as mp

    log("\n## detection on front and back views (960x540, 10 fps, person moved/scaled/turned)")
    log("person        view   graph               found   within 0.5 shoulder width")
    seconds = 3 if quick else 6
    plain = PoseTracker(seed_without_face=False)
    for person in tv.PEOPLE:
        tracker.reset()
        ref = tracker.process(tv.person_image(person))
        assert ref is not None
        for back in (False, True):
            clip_frames = list(tv.frames(seconds, 10, 960, 540, person, back_view=back))
            for name in ("stock mp.solutions", "ours, detector only", "ours, face-free"):
                found = good = 0
                stock = (
                    mp.solutions.pose.Pose(model_complexity=1) if name.startswith("stock") else None
                )
                ours = tracker if name.endswith("face-free") else plain
                ours.reset()
                for frame, m in clip_frames:
                    if stock is not None:
                        r = stock.process(frame).pose_landmarks
                        got = (
                            None
                            if r is None
                            else np.array(
                                [(p.x * 960, p.y * 540, p.z, p.visibility) for p in r.landmark]
                            )
                        )
                    else:
                        res = ours.process(frame)
                        got = None if res is None else res.landmarks
                    if got is None:
                        continue
                    found += 1
                    gt = ref.landmarks.copy()
                    gt[:, :2] = tv.map_points(ref.landmarks[:, :2], m)
                    width = float(np.linalg.norm(gt[11, :2] - gt[12, :2]))
                    good += error_px(got, gt) < 0.5 * width
                if stock is not None:
                    stock.close()
                n = len(clip_frames)
                view = "back" if back else "front"
                log(f"{person:<13} {view:<6} {name:<19} {found / n:6.0%}   {good / n:6.0%}")
    plain.close()


def raw_model_run(frames: list[Frame], tracker: PoseTracker) -> tuple[float, float]:
    """Frames/s and CPU seconds per frame of the pose model alone over ``frames``."""
    cpu = cpu_seconds()
    fps = raw_model_fps(frames, tracker)
    return fps, (cpu_seconds() - cpu) / len(frames)


def ratio_part(short: Path, short_s: float, out: Path, tracker: PoseTracker, repeat: int) -> None:
    log(f"\n## pipeline vs the pose model alone ({short_s:g} s clip, 1280x720, 30 fps)")
    step = pipeline.sampling_step(30.0, DEFAULT_ANALYSIS_FPS)
    # like with like: the very frames the pipeline hands the model (same decoder, every step-th
    # frame, upright, full size), decoded beforehand and held in memory
    frames = sampled_frames(short, step)
    log(f"model alone: the tracker's process() in a tight loop over the {len(frames)} frames the "
        f"pipeline feeds it (every {step}th frame, {frames[0].shape[1]}x{frames[0].shape[0]}, "
        "pre-decoded), one thread; the pipeline runs the model on one thread too, decoding and "
        "frame keeping on a second thread, the video drawn on a third during the pose pass "
        "(chunks it could not settle drawn after it on two threads), x264 in ffmpeg.")  # fmt: skip
    log(f"runs alternate model, pipeline, model, ... ({repeat} pipeline runs); each pipeline run "
        "is compared with the mean of the model runs just before and after it.")  # fmt: skip
    log("run  model fps  whole call fps  ratio  pose pass  after it (video)  other   drawn late"
        "   load")  # fmt: skip
    raw, raw_cpu = raw_model_run(frames, tracker)
    ratios: list[float] = []
    cpu_per_frame: list[float] = []
    raw_cpus = [raw_cpu]
    for run in range(1, repeat + 1):
        result, total, stages = run_analysis(short, out / "default", tracker)
        after, after_cpu = raw_model_run(frames, tracker)
        raw_cpus.append(after_cpu)
        model = (raw + after) / 2
        analysed = result["video"]["analysed_frames"]
        whole = analysed / total
        other = total - stages["pose"] - stages["render"]
        ratios.append(whole / model)
        cpu_per_frame.append(stages["cpu"] / analysed)
        late = int(stages["late_frames"])
        log(f"{run:>3}  {model:9.1f}  {whole:14.1f}  {whole / model:5.2f}  "
            f"{stages['pose']:7.2f} s  {stages['render']:13.2f} s  {other:4.2f} s  "
            f"{late:4d} of {analysed:<4d}  {os.getloadavg()[0]:4.1f}")  # fmt: skip
        raw = after
    stock = stock_fps(frames)
    del frames
    log(f"whole call / model     median {np.median(ratios):.2f} (min {min(ratios):.2f}, "
        f"max {max(ratios):.2f})")  # fmt: skip
    log(f"CPU per analysed frame model alone {1000 * np.median(raw_cpus):.1f} ms, whole call "
        f"{1000 * np.median(cpu_per_frame):.1f} ms (all threads and ffmpeg)")  # fmt: skip
    log(f"stock mp.solutions.pose on the same frames {stock:.1f} frames/s (reference)")


def long_part(long: Path, long_s: float, out: Path, tracker: PoseTracker) -> None:
    log(f"\n## {long_s:g} s clip, 1280x720, 30 fps, default settings "
        f"({DEFAULT_ANALYSIS_FPS:g} frames/s analysed)")  # fmt: skip
    load = os.getloadavg()[0]
    result, total, stages = run_analysis(long, out / "long", tracker)
    log(f"wall time                {total:.1f} s  ({total / long_s:.2f} s per video-second, "
        f"load average {load:.1f} -> {os.getloadavg()[0]:.1f})")  # fmt: skip
    log(f"stages                   pose pass {stages['pose']:.1f} s, "
        f"video after it {stages['render']:.1f} s ({int(stages['late_frames'])} frames), "
        f"other {total - stages['pose'] - stages['render']:.1f} s")  # fmt: skip
    log(f"CPU time                 {stages['cpu']:.1f} s (all threads and ffmpeg; "
        f"{stages['cpu'] / long_s:.2f} s per video-second)")  # fmt: skip
    # the model alone over this clip's own frames (its poses cost what they cost: re-acquiring
    # a lost climber runs the model several times), pre-decoded: about 1.7 GB for 60 s
    frames = sampled_frames(long, pipeline.sampling_step(30.0, DEFAULT_ANALYSIS_FPS))
    own = len(frames) / raw_model_fps(frames, tracker)
    del frames
    log(f"the model alone          {own:.1f} s over this clip's "
        f"{result['video']['analysed_frames']} frames, pre-decoded (after the call): the whole "
        f"call takes {total / own:.2f}x that, {own / total:.2f} of the model's rate")  # fmt: skip


def subsampling_part(short: Path, short_s: float, out: Path, tracker: PoseTracker) -> None:
    log(f"\n## subsampling cost ({short_s:g} s clip; 30 = every frame)")
    gt = camera_truth(tracker, short_s)
    runs: dict[float, tuple[dict[str, Any], dict[int, FloatArray], float]] = {}
    for fps in (30.0, 15.0, 10.0):
        res, secs, _ = run_analysis(short, out / f"fps{fps:g}", tracker, fps)
        runs[fps] = (res["metrics"], keypoints_of(out / f"fps{fps:g}"), secs)
    full_kp = runs[30.0][1]
    log("analysed fps  time   px error vs full run (median)  px error vs truth (median)")
    for fps, (_, kp, secs) in runs.items():
        full_px = np.nanmedian(frame_errors(kp, full_kp))
        truth_px = np.nanmedian(frame_errors(kp, gt))
        log(f"{fps:>5g}      {secs:5.1f} s   {full_px:8.1f}               {truth_px:8.1f}")
    log("metric                       full    15 fps   10 fps")
    for key in COMPARED:
        values = [runs[f][0].get(key) for f in (30.0, 15.0, 10.0)]
        text = "  ".join("     -" if v is None else f"{v:7.3f}" for v in values)
        log(f"{key:<26} {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short clips (a smoke run)")
    parser.add_argument("--cache", type=Path, default=ROOT / ".local" / "bench-vision")
    parser.add_argument("--repeat", type=int, default=3, help="pipeline runs in the ratio part")
    parser.add_argument(
        "--parts", default="ratio,long,subsampling,detection", help="comma-separated parts"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    args.cache.mkdir(parents=True, exist_ok=True)
    short_s, long_s = (6.0, 12.0) if args.quick else (20.0, 60.0)
    log(f"# movement analysis benchmark ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    short, long = clip(args.cache, short_s), clip(args.cache, long_s)
    tracker = PoseTracker()
    tracker.process(np.zeros((64, 64, 3), np.uint8))  # load the models: the worker keeps them warm
    out = args.cache / "out"
    if "ratio" in parts:
        ratio_part(short, short_s, out, tracker, max(1, args.repeat))
    if "long" in parts:
        long_part(long, long_s, out, tracker)
    if "subsampling" in parts:
        subsampling_part(short, short_s, out, tracker)
    if "input" in parts:
        input_part(short, short_s, out, tracker)
    if "detection" in parts:
        detection_table(tracker, args.quick)
    tracker.close()


if __name__ == "__main__":
    main()
