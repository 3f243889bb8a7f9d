"""``movement.analyze`` in process: params, the result contract, artifacts and failures."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cruxlog_vision import movement
from cruxlog_vision.movement import MovementParams, analyze, parse_params
from cruxlog_vision.pose import PoseTracker
from cruxlog_vision.protocol import InvalidInputError

SUMMARY_KEYS = {
    "climb_duration_ms",
    "move_count",
    "rest_count",
    "rest_ms",
    "smoothness",
    "reached_top",
}
FINDING_KEYS = {"code", "kind", "start_ms", "end_ms", "severity", "explanation"}


def params(video: Path, out: Path, **extra: Any) -> dict[str, Any]:
    return {"video_path": str(video), "out_dir": str(out), "analysis_id": "a-1", **extra}


def assert_contract(result: dict[str, Any], out: Path) -> None:
    assert result["analyzer"] == {
        "name": "movement",
        "version": 1,
        "model_id": "mediapipe-0.10.14/pose_landmark_full",
    }
    assert result["metrics"]
    for key, value in result["metrics"].items():
        assert key == key.lower()
        assert " " not in key
        assert isinstance(value, float)
        assert math.isfinite(value), key
    assert set(result["summary"]) == SUMMARY_KEYS
    smooth = result["summary"]["smoothness"]
    assert smooth is None or 0 <= smooth <= 1
    for f in result["findings"]:
        assert set(f) == FINDING_KEYS
        assert f["kind"] in ("ERROR", "STRENGTH")
        assert 0 <= f["severity"] <= 1
        assert 0 <= f["start_ms"] <= f["end_ms"]
        assert f["explanation"]
        assert "\n" not in f["explanation"]
    artifacts = result["artifacts"]
    assert artifacts == {
        "annotated_video": str(out / "annotated.mp4"),
        "summary_image": str(out / "summary.jpg"),
        "analysis_json": str(out / "analysis.json"),
    }
    assert all(Path(p).is_file() for p in artifacts.values())
    assert sorted(p.name for p in out.iterdir()) == [
        "analysis.json",
        "annotated.mp4",
        "summary.jpg",
    ]
    assert set(result["video"]) == {
        "frames", "analysed_frames", "fps", "width", "height", "duration_ms", "rotation_degrees"
    }  # fmt: skip
    json.dumps(result, allow_nan=False)


def ffprobe_stream(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,profile,pix_fmt,width,height,nb_frames", "-of", "json", str(path)],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    stream: dict[str, Any] = json.loads(done.stdout)["streams"][0]
    return stream


def test_analyze_clip(clip: Path, tmp_path: Path, tracker: PoseTracker) -> None:
    history = [
        {"analysis_id": "old", "metrics": {"smoothness_ratio": 0.01, "climb_duration_s": 99.0}}
    ]
    result = analyze(parse_params(params(clip, tmp_path, history=history)), tracker)
    assert_contract(result, tmp_path)
    video = result["video"]
    assert video == {
        "frames": 120, "analysed_frames": 40, "fps": 30.0, "width": 640, "height": 360,
        "duration_ms": 4000, "rotation_degrees": 0,
    }  # fmt: skip
    assert result["metrics"]["pose_found_ratio"] >= 0.5
    assert result["metrics"]["vertical_gain_torso"] > 0.5  # the photo climbs up the frame
    codes = {f["code"] for f in result["findings"]}
    assert "IMPROVED_VS_HISTORY" in codes
    assert result["comparison"]["attempts"] == 1
    assert result["comparison"]["metrics"]["climb_duration_s"]["better"] is True
    # the annotated video plays on phones: H.264 High, yuv420p, moov before mdat
    stream = ffprobe_stream(tmp_path / "annotated.mp4")
    assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p")
    assert (stream["width"], stream["height"], int(stream["nb_frames"])) == (640, 360, 40)
    head = (tmp_path / "annotated.mp4").read_bytes()
    assert 0 <= head.find(b"moov") < head.find(b"mdat")
    assert (tmp_path / "summary.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    document = json.loads((tmp_path / "analysis.json").read_text("utf-8"))
    assert document["analysis_id"] == "a-1"
    assert document["metrics"] == result["metrics"]
    assert len(document["frames"]) == 40
    with_pose = [f for f in document["frames"] if f["keypoints"] is not None]
    assert len(with_pose[0]["keypoints"]) == 33
    assert with_pose[0]["source"] in ("tracking", "detector", "body_seed")
    assert [f["frame"] for f in document["frames"][:3]] == [0, 3, 6]


def test_rotated_clip_is_analysed_upright(
    rotated_clip: Path, tmp_path: Path, tracker: PoseTracker
) -> None:
    result = analyze(parse_params(params(rotated_clip, tmp_path)), tracker)
    video = result["video"]
    assert (video["width"], video["height"], video["rotation_degrees"]) == (640, 360, 90)
    assert result["metrics"]["vertical_gain_torso"] > 0.5
    stream = ffprobe_stream(tmp_path / "annotated.mp4")
    assert (stream["width"], stream["height"]) == (640, 360)


def test_analysis_fps_option_and_rotation_override(
    clip: Path, tmp_path: Path, tracker: PoseTracker
) -> None:
    raw = params(clip, tmp_path, rotation_degrees=180, options={"analysis_fps": 5})
    result = analyze(parse_params(raw), tracker)
    assert result["video"]["analysed_frames"] == 20
    assert result["video"]["rotation_degrees"] == 180
    assert result["metrics"]["vertical_gain_torso"] < 0  # upside down: the climber goes down


def test_nobody_in_the_video(empty_wall_clip: Path, tmp_path: Path, tracker: PoseTracker) -> None:
    with pytest.raises(
        InvalidInputError, match=r"^pose\.no_person: a climber was found in 0 of 20"
    ):
        analyze(parse_params(params(empty_wall_clip, tmp_path)), tracker)
    assert list(tmp_path.iterdir()) == []


def test_too_long(clip: Path, tmp_path: Path, tracker: PoseTracker) -> None:
    raw = params(clip, tmp_path, options={"max_seconds": 3})
    with pytest.raises(InvalidInputError, match=r"^video\.too_long: the video lasts 4\.0 s"):
        analyze(parse_params(raw), tracker)


def test_corrupt_video(corrupt_clip: Path, tmp_path: Path, tracker: PoseTracker) -> None:
    with pytest.raises(InvalidInputError, match=r"^video\.unreadable: "):
        analyze(parse_params(params(corrupt_clip, tmp_path)), tracker)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"video_path": None}, "video_path: is required"),
        ({"video_path": "relative.mp4"}, "video_path: must be an absolute path"),
        ({"video_path": "/nonexistent/x.mp4"}, "video_path: no such file"),
        ({"video_path": 3}, "video_path: must be a non-empty string, got number"),
        ({"out_dir": "/nonexistent/dir"}, "out_dir: no such directory"),
        ({"analysis_id": " "}, "analysis_id: must be a non-blank string"),
        ({"rotation_degrees": 45}, "rotation_degrees: must be null or one of 0, 90, 180, 270"),
        ({"rotation_degrees": True}, "rotation_degrees: must be null or one of"),
        ({"history": {}}, "history: must be an array, got object"),
        ({"history": [1]}, "history[0]: must be an object"),
        ({"history": [{"analysis_id": "x"}]}, "history[0].metrics: must be an object"),
        ({"options": []}, "options: must be an object, got array"),
        ({"options": {"max_seconds": 0}}, "options.max_seconds: must be between 1 and 600"),
        ({"options": {"analysis_fps": "fast"}}, "options.analysis_fps: must be a number"),
    ],
)
def test_bad_params(clip: Path, tmp_path: Path, change: dict[str, Any], message: str) -> None:
    raw = params(clip, tmp_path)
    raw.update(change)
    with pytest.raises(InvalidInputError) as err:
        parse_params(raw)
    assert str(err.value).startswith(message)


def test_params_defaults_and_history_cleaning(clip: Path, tmp_path: Path) -> None:
    history = [{"analysis_id": "h", "metrics": {"a_s": 1, "b": "x", "c": True, "d_ratio": 0.5}}]
    parsed = parse_params(params(clip, tmp_path, history=history))
    assert parsed == MovementParams(
        video_path=clip,
        out_dir=tmp_path,
        analysis_id="a-1",
        history=(("h", {"a_s": 1.0, "d_ratio": 0.5}),),
    )
    assert parsed.max_seconds == movement.DEFAULT_MAX_SECONDS
    assert parsed.analysis_fps == movement.DEFAULT_ANALYSIS_FPS
