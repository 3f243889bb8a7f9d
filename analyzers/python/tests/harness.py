"""Spawns ``python -m cruxlog_vision.worker`` as a subprocess and talks the protocol to it."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any

SRC_DIR = Path(__file__).resolve().parents[1] / "src"
DEFAULT_TIMEOUT = 20.0

Frame = dict[str, Any]


class WorkerProcess:
    """A worker subprocess with background readers for its stdout (frames) and stderr."""

    def __init__(self, *, debug: bool = False, env: dict[str, str] | None = None) -> None:
        child_env = dict(os.environ)
        child_env.pop("CRUXLOG_WORKER_DEBUG", None)
        if debug:
            child_env["CRUXLOG_WORKER_DEBUG"] = "1"
        child_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(SRC_DIR), child_env.get("PYTHONPATH", "")) if p
        )
        child_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cruxlog_vision.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._stdin: IO[bytes] = self.proc.stdin
        self._frames: queue.Queue[bytes | None] = queue.Queue()
        self.stdout_lines: list[bytes] = []
        self.stderr_lines: list[bytes] = []
        self._threads = [
            threading.Thread(target=self._pump_stdout, args=(self.proc.stdout,), daemon=True),
            threading.Thread(target=self._pump_stderr, args=(self.proc.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._next_id = 0

    # -- readers ----------------------------------------------------------------------------

    def _pump_stdout(self, stream: IO[bytes]) -> None:
        for line in stream:
            self.stdout_lines.append(line)
            self._frames.put(line)
        self._frames.put(None)

    def _pump_stderr(self, stream: IO[bytes]) -> None:
        for line in stream:
            self.stderr_lines.append(line)

    # -- protocol ---------------------------------------------------------------------------

    def read_frame(self, timeout: float = DEFAULT_TIMEOUT) -> Frame | None:
        """Next frame from stdout, or None when stdout closed."""
        line = self._frames.get(timeout=timeout)
        if line is None:
            self._frames.put(None)  # keep reporting EOF
            return None
        assert line.endswith(b"\n"), line
        frame = json.loads(line)
        assert isinstance(frame, dict), frame
        return frame

    def hello(self) -> Frame:
        frame = self.read_frame()
        assert frame is not None, self.stderr_text()
        assert frame.get("type") == "hello", frame
        return frame

    def send_raw(self, data: bytes) -> None:
        self._stdin.write(data)
        self._stdin.flush()

    def send(self, method: str, params: Any = None, request_id: str | None = None) -> str:
        if request_id is None:
            self._next_id += 1
            request_id = f"req-{self._next_id}"
        request: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        self.send_raw(json.dumps(request).encode() + b"\n")
        return request_id

    def call(self, method: str, params: Any = None, request_id: str | None = None) -> Frame:
        sent_id = self.send(method, params, request_id)
        frame = self.read_frame()
        assert frame is not None, f"worker closed stdout; stderr:\n{self.stderr_text()}"
        assert frame["id"] == sent_id, frame
        return frame

    # -- lifecycle --------------------------------------------------------------------------

    def close_stdin(self) -> None:
        self._stdin.close()

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        code = self.proc.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=timeout)
        return code

    def stderr_text(self) -> str:
        return b"".join(self.stderr_lines).decode("utf-8", "replace")

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEFAULT_TIMEOUT)
        for thread in self._threads:
            thread.join(timeout=DEFAULT_TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
