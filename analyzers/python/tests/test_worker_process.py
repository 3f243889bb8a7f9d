"""End-to-end protocol tests: the worker runs as a real subprocess, as the Rust analyzer runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from cruxlog_vision import __version__
from cruxlog_vision.protocol import MAX_LINE_BYTES
from cruxlog_vision.warmup import Discipline as D
from cruxlog_vision.warmup import WarmupParams, plan_warmup
from tests.harness import SRC_DIR, Frame, WorkerProcess

BASE_METHODS = ["ping", "warmup.plan", "movement.analyze", "shutdown"]
DEBUG_METHODS = ["debug.sleep", "debug.crash", "debug.raise", "debug.stdout"]


def assert_error(frame: Frame, request_id: str | None, kind: str) -> str:
    assert set(frame) == {"id", "ok", "error", "elapsed_ms"}, frame
    assert frame["id"] == request_id
    assert frame["ok"] is False
    assert set(frame["error"]) == {"kind", "message"}
    assert frame["error"]["kind"] == kind, frame
    message = frame["error"]["message"]
    assert isinstance(message, str)
    assert message
    assert "\n" not in message
    assert isinstance(frame["elapsed_ms"], float)
    return message


def assert_ok(frame: Frame, request_id: str) -> Frame:
    assert set(frame) == {"id", "ok", "result", "elapsed_ms"}, frame
    assert frame["id"] == request_id
    assert frame["ok"] is True
    assert isinstance(frame["elapsed_ms"], float)
    assert frame["elapsed_ms"] >= 0
    result = frame["result"]
    assert isinstance(result, dict)
    return result


def assert_clean_protocol_stream(worker: WorkerProcess) -> None:
    """Every line the worker wrote to its stdout is a compact protocol frame."""
    for line in worker.stdout_lines:
        assert line.endswith(b"\n")
        frame = json.loads(line)
        assert isinstance(frame, dict)
        assert frame.get("type") == "hello" or {"id", "ok", "elapsed_ms"} <= frame.keys(), frame
        assert line.rstrip(b"\n") == json.dumps(
            frame, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")


def test_hello_is_the_first_frame() -> None:
    with WorkerProcess() as worker:
        hello = worker.hello()
        assert hello == {
            "type": "hello",
            "protocol": 1,
            "worker": "cruxlog-vision",
            "version": __version__,
            "pid": worker.proc.pid,
            "methods": BASE_METHODS,
        }
        assert (
            worker.stdout_lines[0].rstrip(b"\n")
            == json.dumps(hello, separators=(",", ":")).encode()
        )


def test_ping() -> None:
    with WorkerProcess() as worker:
        worker.hello()
        frame = worker.call("ping", {}, request_id="p-1")
        assert assert_ok(frame, "p-1") == {"pong": True}
        # params may be omitted
        assert assert_ok(worker.call("ping", request_id="p-2"), "p-2") == {"pong": True}


def test_warmup_plan() -> None:
    params = {
        "session_id": "0190a0c4-0000-7000-8000-000000000001",
        "discipline": "boulder",
        "indoor": True,
        "planned_minutes": 120,
    }
    with WorkerProcess() as worker:
        worker.hello()
        result = assert_ok(worker.call("warmup.plan", params, request_id="w-1"), "w-1")
    expected = plan_warmup(
        WarmupParams(session_id="x", discipline=D.BOULDER, indoor=True, planned_minutes=120)
    )
    assert result == expected.to_dict()
    assert result["plan_id"] == "warmup-v1"
    assert result["total_minutes"] == 20
    assert sum(step["minutes"] for step in result["steps"]) == 20


@pytest.mark.parametrize(
    ("line", "expected_id"),
    [
        (b"this is not json\n", None),
        (b'{"id": "a", "method": "ping"\n', None),  # truncated JSON
        (b"[1, 2, 3]\n", None),
        (b'"ping"\n', None),
        (b'{"method": "ping"}\n', None),  # missing id
        (b'{"id": 7, "method": "ping"}\n', None),  # id not a string
        (b'{"id": "m-1"}\n', "m-1"),  # missing method
        (b'{"id": "m-2", "method": 5}\n', "m-2"),
        (b'{"id": "m-3", "method": "ping", "params": [1]}\n', "m-3"),
        (b'{"id": "m-4", "method": "ping", "params": NaN}\n', None),
        (b'\xff\xfe{"id": "x"}\n', None),  # not UTF-8
    ],
)
def test_malformed_line_gets_invalid_request_and_worker_survives(
    line: bytes, expected_id: str | None
) -> None:
    with WorkerProcess() as worker:
        worker.hello()
        worker.send_raw(line)
        frame = worker.read_frame()
        assert frame is not None
        assert_error(frame, expected_id, "invalid_request")
        assert assert_ok(worker.call("ping", request_id="after"), "after") == {"pong": True}
        assert_clean_protocol_stream(worker)


def test_blank_lines_are_ignored_and_crlf_is_accepted() -> None:
    with WorkerProcess() as worker:
        worker.hello()
        worker.send_raw(b"\n   \n\r\n")
        worker.send_raw(b'{"id":"crlf","method":"ping"}\r\n')
        frame = worker.read_frame()
        assert frame is not None
        assert assert_ok(frame, "crlf") == {"pong": True}


def test_oversized_line_is_rejected_and_worker_survives() -> None:
    with WorkerProcess() as worker:
        worker.hello()
        big = b'{"id":"big","method":"ping","params":{"pad":"' + b"x" * MAX_LINE_BYTES + b'"}}\n'
        worker.send_raw(big)
        frame = worker.read_frame()
        assert frame is not None
        assert "longer than" in assert_error(frame, None, "invalid_request")
        assert assert_ok(worker.call("ping", request_id="after"), "after") == {"pong": True}


def test_unknown_method() -> None:
    with WorkerProcess() as worker:
        worker.hello()
        frame = worker.call("pose.estimate", {"video": "x"}, request_id="u-1")
        message = assert_error(frame, "u-1", "unknown_method")
        assert "pose.estimate" in message
        assert assert_ok(worker.call("ping", request_id="after"), "after") == {"pong": True}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"session_id": "s", "discipline": "ice", "indoor": True}, "discipline"),
        ({"session_id": "s", "discipline": "sport", "indoor": "yes"}, "indoor"),
        (
            {"session_id": "s", "discipline": "sport", "indoor": True, "planned_minutes": -5},
            "planned_minutes",
        ),
        ({"discipline": "sport", "indoor": True}, "session_id"),
    ],
)
def test_invalid_params_give_invalid_input(params: dict[str, object], field: str) -> None:
    with WorkerProcess() as worker:
        worker.hello()
        message = assert_error(worker.call("warmup.plan", params, "v-1"), "v-1", "invalid_input")
        assert message.startswith(f"{field}:"), message
        assert assert_ok(worker.call("ping", request_id="after"), "after") == {"pong": True}


def test_exception_in_method_gives_internal_and_worker_keeps_serving() -> None:
    with WorkerProcess(debug=True) as worker:
        worker.hello()
        frame = worker.call("debug.raise", {"message": "boom\nsecond line"}, "r-1")
        message = assert_error(frame, "r-1", "internal")
        assert message == "RuntimeError: boom second line"
        assert assert_ok(worker.call("ping", request_id="after"), "after") == {"pong": True}
    # the traceback went to stderr as a JSON log line
    records = [json.loads(line) for line in worker.stderr_lines if line.startswith(b"{")]
    failures = [r for r in records if r["msg"] == "method failed"]
    assert len(failures) == 1
    assert failures[0]["level"] == "error"
    assert failures[0]["request_id"] == "r-1"
    assert "RuntimeError: boom" in failures[0]["exc"]


def test_eof_on_stdin_exits_zero() -> None:
    with WorkerProcess() as worker:
        worker.hello()
        assert_ok(worker.call("ping", request_id="x"), "x")
        worker.close_stdin()
        assert worker.wait() == 0
        assert worker.read_frame() is None
        assert len(worker.stdout_lines) == 2
        assert_clean_protocol_stream(worker)


def test_eof_before_any_request_exits_zero() -> None:
    with WorkerProcess() as worker:
        worker.hello()
        worker.close_stdin()
        assert worker.wait() == 0


def test_shutdown_responds_then_exits_zero() -> None:
    with WorkerProcess() as worker:
        worker.hello()
        frame = worker.call("shutdown", {}, "s-1")
        assert assert_ok(frame, "s-1") == {"bye": True}
        # exits without stdin being closed
        assert worker.wait() == 0
        assert worker.read_frame() is None


def test_requests_are_answered_in_order_when_pipelined() -> None:
    with WorkerProcess() as worker:
        worker.hello()
        ids = [worker.send("ping", request_id=f"q-{i}") for i in range(20)]
        ids.append(worker.send("shutdown", request_id="q-end"))
        frames = [worker.read_frame() for _ in ids]
        assert [f["id"] for f in frames if f is not None] == ids
        assert worker.wait() == 0


def test_native_stdout_writes_do_not_reach_the_protocol_stream() -> None:
    marker = "NATIVE-NOISE-1234"
    with WorkerProcess(debug=True) as worker:
        worker.hello()
        frame = worker.call("debug.stdout", {"text": marker}, "n-1")
        assert assert_ok(frame, "n-1")["written"] == len(marker) + 1
        assert assert_ok(worker.call("ping", request_id="after"), "after") == {"pong": True}
        worker.close_stdin()
        assert worker.wait() == 0
    assert_clean_protocol_stream(worker)
    assert not any(marker.encode() in line for line in worker.stdout_lines)
    # both the fd-1 write and the print() ended up on stderr
    noise = [line for line in worker.stderr_lines if line == marker.encode() + b"\n"]
    assert len(noise) == 2


def test_debug_crash_exits_nonzero_without_a_response() -> None:
    with WorkerProcess(debug=True) as worker:
        worker.hello()
        worker.send("debug.crash", {}, "c-1")
        assert worker.wait() == 3
        assert worker.read_frame() is None
        assert len(worker.stdout_lines) == 1  # just the hello


def test_debug_sleep() -> None:
    with WorkerProcess(debug=True) as worker:
        worker.hello()
        started = time.monotonic()
        frame = worker.call("debug.sleep", {"seconds": 0.2}, "z-1")
        assert time.monotonic() - started >= 0.2
        assert assert_ok(frame, "z-1") == {"slept": 0.2}
        assert frame["elapsed_ms"] >= 200
        bad = worker.call("debug.sleep", {"seconds": "long"}, "z-2")
        assert assert_error(bad, "z-2", "invalid_input").startswith("seconds:")


def test_debug_methods_listed_only_with_env_var() -> None:
    with WorkerProcess(debug=True) as worker:
        assert worker.hello()["methods"] == BASE_METHODS + DEBUG_METHODS
    with WorkerProcess(env={"CRUXLOG_WORKER_DEBUG": "0"}) as worker:
        assert worker.hello()["methods"] == BASE_METHODS


@pytest.mark.parametrize("method", DEBUG_METHODS)
def test_debug_methods_absent_without_env_var(method: str) -> None:
    with WorkerProcess() as worker:
        worker.hello()
        assert_error(worker.call(method, {}, "d-1"), "d-1", "unknown_method")
        assert worker.proc.poll() is None


def test_stderr_carries_json_logs() -> None:
    with WorkerProcess(env={"CRUXLOG_WORKER_LOG_LEVEL": "debug"}) as worker:
        worker.hello()
        assert_ok(worker.call("ping", request_id="l-1"), "l-1")
        worker.close_stdin()
        assert worker.wait() == 0
    records = [json.loads(line) for line in worker.stderr_lines]
    for record in records:
        assert {"ts", "level", "msg", "logger", "pid"} <= record.keys()
        assert record["level"] in {"debug", "info", "warn", "error"}
    messages = [r["msg"] for r in records]
    assert "worker started" in messages
    assert "stdin closed, exiting" in messages
    done = next(r for r in records if r["msg"] == "request done")
    assert done["request_id"] == "l-1"
    assert done["method"] == "ping"


def test_protect_stdout_covers_prints_native_writes_and_child_processes() -> None:
    code = textwrap.dedent(
        """
        import os, subprocess, sys
        from cruxlog_vision.worker import protect_stdout
        fd = protect_stdout()
        assert not os.get_inheritable(fd)
        subprocess.run([sys.executable, "-c", "print('child-noise')"], check=True)
        os.write(1, b"fd1-noise\\n")
        print("print-noise")
        os.write(fd, b"FRAME\\n")
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC_DIR), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=env, timeout=30, check=True
    )
    assert done.stdout == b"FRAME\n"
    assert done.stderr.splitlines() == [b"child-noise", b"fd1-noise", b"print-noise"]
