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
