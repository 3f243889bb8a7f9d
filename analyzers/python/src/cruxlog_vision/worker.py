"""Worker process: serves the JSON-lines protocol on stdin/stdout.

Run as ``python -m cruxlog_vision.worker`` or ``cruxlog-worker``.  See ``docs/worker-protocol.md``.

Start-up order matters: :func:`main` first moves the real stdout to a private fd (protocol frames
only) and points fd 1 at stderr, and only *then* imports analyzer modules, so that native
libraries (mediapipe/absl/opencv) printing to stdout cannot corrupt the protocol stream.  Keep the
module-level imports of this file (and of ``cruxlog_vision/__init__.py``) free of heavy or
chatty libraries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any, Final

from cruxlog_vision import __version__
from cruxlog_vision.protocol import (
    MAX_LINE_BYTES,
    ErrorKind,
    Handler,
    InvalidInputError,
    JsonObject,
    RequestError,
    encode_frame,
    error_response,
    hello_frame,
    json_type_name,
    ok_response,
    parse_request,
)

DEBUG_ENV: Final = "CRUXLOG_WORKER_DEBUG"
LOG_LEVEL_ENV: Final = "CRUXLOG_WORKER_LOG_LEVEL"
CRASH_EXIT_CODE: Final = 3
"""Exit status of ``debug.crash``."""
EXIT_OK: Final = 0
EXIT_PROTOCOL_PIPE_CLOSED: Final = 1
EXIT_STARTUP_FAILED: Final = 2

SHUTDOWN_METHOD: Final = "shutdown"

log = logging.getLogger("cruxlog_vision.worker")

FrameSink = Callable[[bytes], None]


class ProtocolPipeClosedError(Exception):
    """The protocol output (the analyzer's read end) is gone."""


# --------------------------------------------------------------------------------------------
# stdout protection and logging


def protect_stdout() -> int:
    """Reserve the real stdout for protocol frames and send fd 1 / ``sys.stdout`` to stderr.

    Returns the private protocol fd (a duplicate of the original fd 1, not inherited by child
    processes).  Afterwards anything written to fd 1 -- ``print``, C ``printf``, absl/glog,
    subprocesses inheriting fd 1 -- ends up on stderr.
    """
    if sys.stdout is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
    protocol_fd = os.dup(1)  # non-inheritable by default (PEP 446)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol_fd


def fd_sink(fd: int) -> FrameSink:
    """A :data:`FrameSink` writing whole frames to ``fd`` (handles short writes)."""

    def write(frame: bytes) -> None:
        view = memoryview(frame)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:  # EPIPE & co: the analyzer closed its end
            raise ProtocolPipeClosedError(str(exc)) from exc

    return write


_RECORD_ATTRS: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)
_LEVEL_NAMES: Final = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record: ``{"ts","level","msg","logger","pid",...extra,"exc"?}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
            "msg": record.getMessage(),
            "logger": record.name,
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str)


def configure_logging(stream: IO[str] | None = None) -> None:
    """Send all logging to stderr as JSON lines (level from ``CRUXLOG_WORKER_LOG_LEVEL``)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    level_name = os.environ.get(LOG_LEVEL_ENV, "info").strip().lower()
    level = {"warn": "warning"}.get(level_name, level_name).upper()
    root.setLevel(level if level in logging.getLevelNamesMapping() else logging.INFO)
    logging.captureWarnings(True)


# --------------------------------------------------------------------------------------------
# methods


def _ping(params: JsonObject) -> JsonObject:
    return {"pong": True}


def _shutdown(params: JsonObject) -> JsonObject:
    return {"bye": True}


def _debug_sleep(params: JsonObject) -> JsonObject:
    seconds = params.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise InvalidInputError("seconds", f"must be a number, got {json_type_name(seconds)}")
    if not 0 <= seconds <= 3600:
        raise InvalidInputError("seconds", f"must be between 0 and 3600, got {seconds}")
    time.sleep(seconds)
    return {"slept": seconds}


def _debug_crash(params: JsonObject) -> JsonObject:
    log.warning("debug.crash: exiting hard", extra={"exit_code": CRASH_EXIT_CODE})
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    os._exit(CRASH_EXIT_CODE)


def _debug_raise(params: JsonObject) -> JsonObject:
    message = params.get("message", "debug.raise: injected failure")
    raise RuntimeError(str(message))


def _debug_stdout(params: JsonObject) -> JsonObject:
    text = params.get("text", "debug.stdout: noise a native library printed to stdout")
    if not isinstance(text, str):
        raise InvalidInputError("text", f"must be a string, got {json_type_name(text)}")
    data = (text + "\n").encode("utf-8")
    os.write(1, data)  # what a C library's printf would do
    print(text)  # what a chatty Python library would do
    sys.stdout.flush()
    return {"written": len(data)}


def build_methods(*, debug: bool) -> dict[str, Handler]:
    """The method table, in the order advertised by ``hello``.

    Analyzer modules are imported here, i.e. after :func:`protect_stdout` has run.
    """
    from cruxlog_vision import movement, warmup

    analyzer = movement.MovementAnalyzer()  # loads the pose model on first use, then keeps it
    methods: dict[str, Handler] = {
        "ping": _ping,
        "warmup.plan": warmup.handle,
        "movement.analyze": analyzer.handle,
        SHUTDOWN_METHOD: _shutdown,
    }
    if debug:
        methods |= {
            "debug.sleep": _debug_sleep,
            "debug.crash": _debug_crash,
            "debug.raise": _debug_raise,
            "debug.stdout": _debug_stdout,
        }
    return methods


def debug_enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(DEBUG_ENV, "").strip() == "1"


# --------------------------------------------------------------------------------------------
# the serving loop


class Worker:
    """Reads request lines from ``stdin`` and writes one response frame per request to ``sink``.

    Strictly sequential: a request is fully handled (and its response written) before the next
    line is read.
    """

    def __init__(self, methods: Mapping[str, Handler], sink: FrameSink, stdin: IO[bytes]) -> None:
        self._methods = dict(methods)
        self._sink = sink
        self._stdin = stdin

    def send_hello(self) -> None:
        self._sink(
            encode_frame(
                hello_frame(version=__version__, pid=os.getpid(), methods=list(self._methods))
            )
        )

    def run(self) -> int:
        """Send ``hello`` and serve until EOF or ``shutdown``.  Returns the exit status."""
        try:
            self.send_hello()
            while True:
                line = self._stdin.readline(MAX_LINE_BYTES + 1)
                if not line:
                    log.info("stdin closed, exiting")
                    return EXIT_OK
                started = time.perf_counter()
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    self._drain_line()
                    frame: JsonObject = error_response(
                        None,
                        ErrorKind.INVALID_REQUEST,
                        f"request line longer than {MAX_LINE_BYTES} bytes",
                        _ms_since(started),
                    )
                    self._sink(encode_frame(frame))
                    continue
                line = line.rstrip(b"\r\n")
                if not line.strip():
                    continue  # blank lines are ignored, no response
                frame, stop = self.handle_line(line, started)
                self._sink(self._encode(frame, started))
                if stop:
                    log.info("shutdown requested, exiting")
                    return EXIT_OK
        except ProtocolPipeClosedError as exc:
            log.error("protocol output closed, exiting", extra={"error": str(exc)})
            return EXIT_PROTOCOL_PIPE_CLOSED

    def handle_line(self, line: bytes, started: float) -> tuple[JsonObject, bool]:
        """Turn one request line into a response frame; the flag asks the loop to stop."""
        try:
            request = parse_request(line)
        except RequestError as exc:
            log.warning(
                "invalid request", extra={"request_id": exc.request_id, "error": exc.message}
            )
            return error_response(exc.request_id, exc.kind, exc.message, _ms_since(started)), False

        handler = self._methods.get(request.method)
        if handler is None:
            message = f"unknown method {request.method!r}; this worker serves: " + ", ".join(
                self._methods
            )
            return error_response(
                request.id, ErrorKind.UNKNOWN_METHOD, message, _ms_since(started)
            ), False

        context = {"request_id": request.id, "method": request.method}
        try:
            result: object = handler(request.params)
        except InvalidInputError as exc:
            elapsed = _ms_since(started)
            log.info(
                "invalid input",
                extra={**context, "error": str(exc), "elapsed_ms": round(elapsed, 3)},
            )
            return error_response(request.id, ErrorKind.INVALID_INPUT, str(exc), elapsed), False
        except Exception as exc:
            elapsed = _ms_since(started)
            log.exception("method failed", extra={**context, "elapsed_ms": round(elapsed, 3)})
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return error_response(request.id, ErrorKind.INTERNAL, message, elapsed), False

        if not isinstance(result, dict):
            log.error("method returned a non-object result", extra=context)
            message = f"method returned {type(result).__name__}, expected an object"
            return error_response(
                request.id, ErrorKind.INTERNAL, message, _ms_since(started)
            ), False
        elapsed = _ms_since(started)
        log.debug("request done", extra={**context, "elapsed_ms": round(elapsed, 3)})
        return ok_response(request.id, result, elapsed), request.method == SHUTDOWN_METHOD

    def _encode(self, frame: JsonObject, started: float) -> bytes:
        try:
            return encode_frame(frame)
        except (TypeError, ValueError) as exc:
            log.exception("result is not JSON-serialisable", extra={"request_id": frame.get("id")})
            fallback = error_response(
                frame.get("id"),
                ErrorKind.INTERNAL,
                f"result is not JSON-serialisable: {exc}",
                _ms_since(started),
            )
            return encode_frame(fallback)

    def _drain_line(self) -> None:
        while True:
            chunk = self._stdin.readline(MAX_LINE_BYTES)
            if not chunk or chunk.endswith(b"\n"):
                return


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def main() -> int:
    """Entry point of ``cruxlog-worker`` / ``python -m cruxlog_vision.worker``."""
    try:
        protocol_fd = protect_stdout()
    except OSError as exc:
        sys.stderr.write(
            json.dumps({"level": "error", "msg": f"cannot set up protocol stdout: {exc}"}) + "\n"
        )
        return EXIT_STARTUP_FAILED
    configure_logging()
    # The analyzer owns our lifecycle (shutdown request, stdin EOF, SIGTERM/SIGKILL); a Ctrl-C in
    # its terminal must not kill workers behind its back.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    debug = debug_enabled()
    try:
        methods = build_methods(debug=debug)
    except Exception:
        log.exception("worker start-up failed")
        return EXIT_STARTUP_FAILED
    log.info(
        "worker started",
        extra={"version": __version__, "debug": debug, "methods": list(methods)},
    )
    return Worker(methods, fd_sink(protocol_fd), sys.stdin.buffer).run()


if __name__ == "__main__":
    sys.exit(main())
