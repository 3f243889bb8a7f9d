"""In-process tests of the wire format and of the serving loop (no subprocess)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping

import pytest

from cruxlog_vision.protocol import (
    MAX_MESSAGE_CHARS,
    ErrorKind,
    Handler,
    InvalidInputError,
    JsonObject,
    Request,
    RequestError,
    encode_frame,
    error_response,
    hello_frame,
    ok_response,
    one_line,
    parse_request,
)
from cruxlog_vision.worker import JsonLogFormatter, Worker, build_methods, debug_enabled


def test_parse_request_minimal_and_full() -> None:
    assert parse_request(b'{"id":"1","method":"ping"}') == Request("1", "ping", {})
    assert parse_request(b'{"id":"1","method":"ping","params":null}\n') == Request("1", "ping", {})
    assert parse_request(
        '{"id":"é","method":"m","params":{"a":[1,2]},"extra":true}'.encode()
    ) == Request("é", "m", {"a": [1, 2]})


@pytest.mark.parametrize(
    ("line", "request_id", "fragment"),
    [
        (b"nope", None, "not valid JSON"),
        (b"\xc3\x28", None, "not valid UTF-8"),
        (b"[]", None, "must be a JSON object, got array"),
        (b"{}", None, "missing 'id'"),
        (b'{"id":null,"method":"ping"}', None, "'id' must be a string, got null"),
        (b'{"id":"a"}', "a", "missing 'method'"),
        (b'{"id":"a","method":""}', "a", "'method' must be a non-empty string"),
        (b'{"id":"a","method":"m","params":"x"}', "a", "'params' must be a JSON object"),
        (b'{"id":"a","method":"m","params":{"x":Infinity}}', None, "not valid JSON"),
    ],
)
def test_parse_request_rejects(line: bytes, request_id: str | None, fragment: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_request(line)
    assert info.value.kind is ErrorKind.INVALID_REQUEST
    assert info.value.request_id == request_id
    assert fragment in info.value.message


def test_frames_are_compact_single_lines() -> None:
    frame = encode_frame(ok_response("1", {"text": "a\nb", "name": "Zoë"}, 1.23456))
    expected = '{"id":"1","ok":true,"result":{"text":"a\\nb","name":"Zoë"},"elapsed_ms":1.235}\n'
    assert frame == expected.encode()
    assert frame.count(b"\n") == 1
    with pytest.raises(ValueError, match="JSON compliant"):
        encode_frame({"x": float("nan")})


def test_hello_and_error_shapes() -> None:
    assert hello_frame(version="1.2.3", pid=42, methods=["ping"]) == {
        "type": "hello",
        "protocol": 1,
        "worker": "cruxlog-vision",
        "version": "1.2.3",
        "pid": 42,
        "methods": ["ping"],
    }
    assert error_response(None, ErrorKind.INVALID_REQUEST, "bad\n  line", -1.0) == {
        "id": None,
        "ok": False,
        "error": {"kind": "invalid_request", "message": "bad line"},
        "elapsed_ms": 0.0,
    }


def test_one_line_bounds_messages() -> None:
    assert one_line(" a\r\n\tb ") == "a b"
    long = one_line("x" * (MAX_MESSAGE_CHARS * 2))
    assert len(long) == MAX_MESSAGE_CHARS
    assert long.endswith("...")


def test_invalid_input_error_is_a_value_error_naming_the_field() -> None:
    err = InvalidInputError("params.discipline", "must be one of ...")
    assert isinstance(err, ValueError)
    assert str(err) == "params.discipline: must be one of ..."
    assert err.field == "params.discipline"
    assert str(InvalidInputError(None, "video is corrupt")) == "video is corrupt"


# ------------------------------------------------------------------------------------------------
# the serving loop, in-process


def _serve(
    lines: list[bytes], methods: Mapping[str, Handler] | None = None
) -> tuple[int, list[JsonObject]]:
    out: list[bytes] = []
    table = build_methods(debug=False)
    table.update(methods or {})
    code = Worker(table, out.append, io.BytesIO(b"".join(lines))).run()
    assert all(frame.endswith(b"\n") and frame.count(b"\n") == 1 for frame in out)
    return code, [json.loads(frame) for frame in out]


def _boom_value_error(params: JsonObject) -> JsonObject:
    raise ValueError("a bug, not bad input")


def _not_an_object(params: JsonObject) -> JsonObject:
    return [1, 2]  # type: ignore[return-value]


def _not_json(params: JsonObject) -> JsonObject:
    return {"x": float("inf")}


def _reject(params: JsonObject) -> JsonObject:
    raise InvalidInputError("video", "cannot be decoded")


def test_worker_loop_maps_failures_to_error_kinds() -> None:
    code, frames = _serve(
        [
            b'{"id":"1","method":"t.value_error"}\n',
            b'{"id":"2","method":"t.not_object"}\n',
            b'{"id":"3","method":"t.not_json"}\n',
            b'{"id":"4","method":"t.reject"}\n',
            b'{"id":"5","method":"ping"}\n',
        ],
        {
            "t.value_error": _boom_value_error,
            "t.not_object": _not_an_object,
            "t.not_json": _not_json,
            "t.reject": _reject,
        },
    )
    assert code == 0
    assert frames[0]["type"] == "hello"
    kinds = [(f["id"], f["ok"], f.get("error", {}).get("kind")) for f in frames[1:]]
    assert kinds == [
        ("1", False, "internal"),
        ("2", False, "internal"),
        ("3", False, "internal"),
        ("4", False, "invalid_input"),
        ("5", True, None),
    ]
    assert frames[1]["error"]["message"] == "ValueError: a bug, not bad input"
    assert frames[4]["error"]["message"] == "video: cannot be decoded"


def test_worker_loop_stops_at_shutdown_and_ignores_the_rest() -> None:
    code, frames = _serve([b'{"id":"1","method":"shutdown"}\n', b'{"id":"2","method":"ping"}\n'])
    assert code == 0
    assert [f.get("id") for f in frames] == [None, "1"]
    assert frames[1]["result"] == {"bye": True}


def test_worker_loop_handles_last_line_without_newline() -> None:
    _, frames = _serve([b'{"id":"1","method":"ping"}'])
    assert frames[1]["result"] == {"pong": True}


def test_worker_loop_exits_1_when_protocol_output_is_gone() -> None:
    from cruxlog_vision.worker import ProtocolPipeClosedError

    def closed(frame: bytes) -> None:
        raise ProtocolPipeClosedError("EPIPE")

    worker = Worker(build_methods(debug=False), closed, io.BytesIO(b""))
    assert worker.run() == 1


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), (" 1 ", True), ("0", False), ("true", False), ("", False)]
)
def test_debug_enabled(value: str, expected: bool) -> None:
    assert debug_enabled({"CRUXLOG_WORKER_DEBUG": value}) is expected
    assert debug_enabled({}) is False


def test_json_log_formatter() -> None:
    logger = logging.getLogger("test.json")
    record = logger.makeRecord(
        "test.json",
        logging.WARNING,
        __file__,
        1,
        "hello %s",
        ("world",),
        None,
        extra={"request_id": "r-1"},
    )
    entry = json.loads(JsonLogFormatter().format(record))
    assert entry["level"] == "warn"
    assert entry["msg"] == "hello world"
    assert entry["logger"] == "test.json"
    assert entry["request_id"] == "r-1"
    assert isinstance(entry["pid"], int)
    assert entry["ts"].endswith("+00:00")
