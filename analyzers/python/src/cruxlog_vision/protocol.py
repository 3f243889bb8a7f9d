"""Wire format of the worker protocol (version 1).

The Rust analyzer spawns ``python -m cruxlog_vision.worker`` and exchanges newline-delimited JSON
with it: requests on stdin, responses on stdout, JSON log lines on stderr.  This module holds the
pure, I/O-free part of that protocol (parsing requests, building frames); the process loop lives
in :mod:`cruxlog_vision.worker`.  The normative description is ``docs/worker-protocol.md``; keep
the two in sync.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

PROTOCOL_VERSION: Final = 1
"""Bumped only for incompatible changes; see the versioning rule in the protocol doc."""

WORKER_NAME: Final = "cruxlog-vision"

MAX_LINE_BYTES: Final = 16 * 1024 * 1024
"""Longest accepted request line (without its newline); longer lines get ``invalid_request``."""

MAX_MESSAGE_CHARS: Final = 2000
"""Error messages are collapsed to one line and cut to this length."""

JsonObject = dict[str, Any]
Handler = Callable[[JsonObject], JsonObject]
"""A protocol method: takes the request's ``params`` object, returns the ``result`` object."""


class ErrorKind(StrEnum):
    """Value of ``error.kind`` in a failed response."""

    INVALID_REQUEST = "invalid_request"
    """The line is not a request: not UTF-8/JSON, not an object, missing/ill-typed id or method."""
    UNKNOWN_METHOD = "unknown_method"
    """``method`` names no method this worker serves (see ``hello.methods``)."""
    INVALID_INPUT = "invalid_input"
    """The params are wrong or the input can never succeed: permanent, do not retry."""
    INTERNAL = "internal"
    """Unexpected failure inside the worker: transient as far as the caller knows, may retry."""


class InvalidInputError(ValueError):
    """Raised by a method when its params/input can never succeed.

    The worker maps it to an ``invalid_input`` error.  ``field`` names the offending param (dotted
    path) when there is one, and the message always starts with it.
    """

    def __init__(self, field: str | None, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class RequestError(Exception):
    """A line that could not be turned into a :class:`Request`."""

    def __init__(self, kind: ErrorKind, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Request:
    id: str
    method: str
    params: JsonObject


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def parse_request(line: bytes) -> Request:
    """Parse one request line (trailing ``\\n``/``\\r\\n`` allowed).

    Raises :class:`RequestError` (always of kind ``invalid_request``) when the line is not a
    well-formed request.  ``request_id`` is set on the error when the id itself could be read, so
    the error response can still be correlated.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(ErrorKind.INVALID_REQUEST, f"request is not valid UTF-8: {exc}") from exc
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise RequestError(ErrorKind.INVALID_REQUEST, f"request is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise RequestError(
            ErrorKind.INVALID_REQUEST,
            f"request must be a JSON object, got {json_type_name(obj)}",
        )

    raw_id = obj.get("id")
    if "id" not in obj:
        raise RequestError(ErrorKind.INVALID_REQUEST, "request is missing 'id'")
    if not isinstance(raw_id, str):
        raise RequestError(
            ErrorKind.INVALID_REQUEST, f"'id' must be a string, got {json_type_name(raw_id)}"
        )
    request_id = raw_id

    method = obj.get("method")
    if "method" not in obj:
        raise RequestError(ErrorKind.INVALID_REQUEST, "request is missing 'method'", request_id)
    if not isinstance(method, str) or not method:
        raise RequestError(
            ErrorKind.INVALID_REQUEST,
            f"'method' must be a non-empty string, got {json_type_name(method)}",
            request_id,
        )

    params = obj.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RequestError(
            ErrorKind.INVALID_REQUEST,
            f"'params' must be a JSON object, got {json_type_name(params)}",
            request_id,
        )
    return Request(id=request_id, method=method, params=params)


def json_type_name(value: object) -> str:
    """JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def one_line(message: str) -> str:
    """Collapse a message to a single, bounded line."""
    collapsed = " ".join(message.split())
    if len(collapsed) > MAX_MESSAGE_CHARS:
        collapsed = collapsed[: MAX_MESSAGE_CHARS - 3] + "..."
    return collapsed


def encode_frame(frame: Mapping[str, Any]) -> bytes:
    """Serialise a frame as one compact UTF-8 JSON line ending in ``\\n``.

    Raises ``ValueError``/``TypeError`` when the frame is not representable as standard JSON
    (NaN/Infinity, non-string keys, unknown types).
    """
    text = json.dumps(frame, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def _elapsed(elapsed_ms: float) -> float:
    return round(elapsed_ms, 3) if math.isfinite(elapsed_ms) and elapsed_ms >= 0 else 0.0


def hello_frame(*, version: str, pid: int, methods: list[str]) -> JsonObject:
    return {
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "worker": WORKER_NAME,
        "version": version,
        "pid": pid,
        "methods": list(methods),
    }


def ok_response(request_id: str, result: JsonObject, elapsed_ms: float) -> JsonObject:
    return {"id": request_id, "ok": True, "result": result, "elapsed_ms": _elapsed(elapsed_ms)}


def error_response(
    request_id: str | None, kind: ErrorKind, message: str, elapsed_ms: float
) -> JsonObject:
    return {
        "id": request_id,
        "ok": False,
        "error": {"kind": str(kind), "message": one_line(message) or str(kind)},
        "elapsed_ms": _elapsed(elapsed_ms),
    }
