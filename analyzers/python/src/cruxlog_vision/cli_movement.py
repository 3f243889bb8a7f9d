"""``cruxlog-vision analyze`` and ``cruxlog-vision make-test-video`` (movement analysis, issue #6).

* ``analyze VIDEO --out DIR``: the same analysis the worker's ``movement.analyze`` runs, on a
  local file; writes ``analysis.json`` (metrics, errors, strengths, per-frame keypoints),
  ``annotated.mp4`` and ``summary.jpg`` into DIR (created if missing) and prints a short summary.
  A progress bar goes to stderr.
* ``make-test-video OUT.mp4``: a synthetic H.264 clip of a person photo climbing a textured wall
  (see :mod:`cruxlog_vision.testvideo`), for tests and demos.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from cruxlog_vision.protocol import InvalidInputError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def add_parsers(sub: Any) -> None:
    """Register both subcommands on the main parser's subparsers object."""
    analyze = sub.add_parser(
        "analyze",
        help="movement analysis of a climbing video (writes analysis.json and videos into DIR)",
    )
    analyze.add_argument("video", type=Path, metavar="VIDEO")
    analyze.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    analyze.add_argument(
        "--rotation",
        type=int,
        choices=(0, 90, 180, 270),
        default=None,
        help="clockwise rotation to apply (default: from the file's metadata)",
    )
    analyze.add_argument(
        "--history",
        type=Path,
        default=None,
        help='JSON file: [{"analysis_id": str, "metrics": {...}}] of earlier attempts',
    )
    analyze.add_argument("--analysis-fps", type=float, default=None, help="frames/s analysed")
    analyze.add_argument("--max-seconds", type=float, default=None, help="longest video accepted")
    analyze.add_argument("--analysis-id", default=None, help="default: the video's file name")
    analyze.add_argument("--no-progress", action="store_true", help="no progress bar")

    make = sub.add_parser(
        "make-test-video",
        help="write a synthetic H.264 clip of a person climbing a textured wall",
    )
    make.add_argument("out", type=Path, metavar="OUT.mp4")
    make.add_argument("--seconds", type=float, default=6.0)
    make.add_argument("--width", type=int, default=1280)
    make.add_argument("--height", type=int, default=720)
    make.add_argument("--fps", type=float, default=30.0)
    make.add_argument(
        "--rotate",
        type=int,
        choices=(0, 90, 180, 270),
        default=0,
        help="store the frames turned and tag the file to turn them back (like a phone)",
    )
    make.add_argument("--person", choices=("camera", "astronaut", "grace_hopper"), default="camera")
    make.add_argument("--back-view", action="store_true", help="paint the face over")
    make.add_argument("--codec", choices=("h264", "hevc"), default="h264")


class _Bars:
    """tqdm progress bars on stderr, one per stage."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self._enabled:
            return
        from tqdm import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            bar = tqdm(
                total=total, desc=f"{stage:>5}", unit="frame", file=self._stream, mininterval=0.3
            )
            self._bars[stage] = bar
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


def run_analyze(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from cruxlog_vision.encode import EncodeError
    from cruxlog_vision.movement import analyze, parse_params
    from cruxlog_vision.pose import PoseTracker

    try:
        args.out.mkdir(parents=True, exist_ok=True)
        history = json.loads(args.history.read_text("utf-8")) if args.history else []
    except (OSError, ValueError) as exc:
        stderr.write(f"cruxlog-vision: analyze: {exc}\n")
        return EXIT_USAGE
    options: dict[str, float] = {}
    if args.analysis_fps is not None:
        options["analysis_fps"] = args.analysis_fps
    if args.max_seconds is not None:
        options["max_seconds"] = args.max_seconds
    raw = {
        "video_path": str(args.video.resolve()),
        "out_dir": str(args.out.resolve()),
        "analysis_id": args.analysis_id or args.video.name,
        "rotation_degrees": args.rotation,
        "history": history,
        "options": options,
    }
    bars = _Bars(stderr, not args.no_progress)
    tracker = None
    try:
        params = parse_params(raw)
        tracker = PoseTracker()
        result = analyze(params, tracker, progress=bars)
    except InvalidInputError as exc:
        bars.close()
        stderr.write(f"cruxlog-vision: analyze: {exc}\n")
        return EXIT_USAGE
    except EncodeError as exc:
        bars.close()
        stderr.write(f"cruxlog-vision: analyze: {exc}\n")
        return EXIT_FAILURE
    finally:
        bars.close()
        if tracker is not None:
            tracker.close()
    summary = result["summary"]
    stdout.write(
        f"{len(result['findings'])} findings, {summary['move_count']} moves, "
        f"{summary['rest_count']} rests, smoothness {summary['smoothness']}\n"
    )
    for name, path in result["artifacts"].items():
        stdout.write(f"{name}: {path}\n")
    return EXIT_OK


def run_make_test_video(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from cruxlog_vision.encode import EncodeError
    from cruxlog_vision.testvideo import make_test_video

    if args.seconds <= 0 or args.fps <= 0 or args.width < 16 or args.height < 16:
        stderr.write("cruxlog-vision: make-test-video: sizes, seconds and fps must be positive\n")
        return EXIT_USAGE
    if args.width % 2 or args.height % 2:
        stderr.write("cruxlog-vision: make-test-video: width and height must be even\n")
        return EXIT_USAGE
    try:
        make_test_video(
            args.out,
            seconds=args.seconds,
            width=args.width,
            height=args.height,
            fps=args.fps,
            rotate_degrees=args.rotate,
            person=args.person,
            back_view=args.back_view,
            codec="libx265" if args.codec == "hevc" else "libx264",
        )
    except (EncodeError, OSError) as exc:
        stderr.write(f"cruxlog-vision: make-test-video: {exc}\n")
        return EXIT_FAILURE
    stdout.write(f"{args.out}\n")
    return EXIT_OK
