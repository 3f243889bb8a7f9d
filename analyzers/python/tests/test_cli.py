"""``cruxlog-vision`` command line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cruxlog_vision import __version__
from cruxlog_vision.cli import run
from tests.harness import SRC_DIR

PARAMS = {"session_id": "s", "discipline": "sport", "indoor": False, "planned_minutes": 60}


def _run(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(argv, stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_version() -> None:
    code, out, _ = _run(["version"])
    assert code == 0
    assert out == f"cruxlog-vision {__version__} (worker protocol 1)\n"


def test_warmup_from_stdin() -> None:
    code, out, err = _run(["warmup"], json.dumps(PARAMS))
    assert (code, err) == (0, "")
    plan = json.loads(out)
    assert plan["plan_id"] == "warmup-v1"
    assert plan["total_minutes"] == 10


def test_warmup_from_file_compact_and_text(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps(PARAMS), encoding="utf-8")
    code, out, _ = _run(["warmup", str(path), "--compact"])
    assert code == 0
    assert out.count("\n") == 1
    assert json.loads(out)["total_minutes"] == 10
    code, out, _ = _run(["warmup", str(path), "--format", "text"])
    assert code == 0
    assert out.splitlines()[0] == "warmup-v1: 10 min"
    assert "approach" in out


@pytest.mark.parametrize(
    ("stdin", "fragment"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({**PARAMS, "discipline": "ice"}), "invalid params: discipline:"),
    ],
)
def test_warmup_bad_input_exits_2(stdin: str, fragment: str) -> None:
    code, out, err = _run(["warmup", "-"], stdin)
    assert code == 2
    assert out == ""
    assert fragment in err


def test_warmup_missing_file_exits_2(tmp_path: Path) -> None:
    code, _, err = _run(["warmup", str(tmp_path / "missing.json")])
    assert code == 2
    assert "cannot read params" in err


def test_module_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cruxlog_vision", "warmup", "--compact"],
        input=json.dumps(PARAMS).encode(),
        capture_output=True,
        env={"PYTHONPATH": str(SRC_DIR)},
        timeout=30,
        check=True,
    )
    assert json.loads(done.stdout)["total_minutes"] == 10


def test_make_test_video_and_analyze(tmp_path: Path) -> None:
    video = tmp_path / "climb.mp4"
    code, out, err = _run(
        [
            "make-test-video",
            str(video),
            "--seconds",
            "3",
            "--width",
            "480",
            "--height",
            "270",
            "--rotate",
            "90",
        ]
    )
    assert (code, out, err) == (0, f"{video}\n", "")
    from cruxlog_vision.video import probe

    info = probe(video)
    assert (info.codec, info.rotation_degrees, info.width, info.height) == ("h264", 90, 480, 270)
    assert info.frames == 90

    history = tmp_path / "history.json"
    history.write_text(json.dumps([{"analysis_id": "h", "metrics": {"climb_duration_s": 50}}]))
    code, out, err = _run(
        ["analyze", str(video), "--out", str(tmp_path / "out"), "--history", str(history)]
    )
    assert code == 0, err
    assert "pose" in err  # the progress bar
    lines = out.splitlines()
    assert "findings" in lines[0]
    assert lines[1:] == [
        f"annotated_video: {tmp_path / 'out' / 'annotated.mp4'}",
        f"summary_image: {tmp_path / 'out' / 'summary.jpg'}",
        f"analysis_json: {tmp_path / 'out' / 'analysis.json'}",
    ]
    document = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert document["analysis_id"] == "climb.mp4"
    assert document["video"]["rotation_degrees"] == 90
    assert document["comparison"]["attempts"] == 1


def test_analyze_bad_video_exits_2(tmp_path: Path) -> None:
    video = tmp_path / "bad.mp4"
    video.write_bytes(b"junk" * 100)
    code, out, err = _run(["analyze", str(video), "--out", str(tmp_path / "o"), "--no-progress"])
    assert (code, out) == (2, "")
    assert "video.unreadable" in err


def test_make_test_video_rejects_odd_sizes(tmp_path: Path) -> None:
    code, _, err = _run(["make-test-video", str(tmp_path / "x.mp4"), "--width", "33"])
    assert code == 2
    assert "even" in err


def test_installed_console_script_has_the_movement_commands() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cruxlog_vision", "--help"],
        capture_output=True,
        env={"PYTHONPATH": str(SRC_DIR)},
        timeout=30,
        check=True,
    )
    assert b"analyze" in done.stdout
    assert b"make-test-video" in done.stdout
