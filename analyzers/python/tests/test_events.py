"""Kafka event encoding: single-object framing, envelopes, schema evolution, typed errors.

The Rust side of the same format is checked against this module by the Rust crate's
``schemas/tests/cross_language.rs``.
"""

from __future__ import annotations

import datetime
import io
import json
import random
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cruxlog_vision import events
from cruxlog_vision.cli import run
from cruxlog_vision.events import (
    ENVELOPE_SCHEMA,
    BadMarkerError,
    Catalogue,
    CatalogueError,
    CodecError,
    EncodeError,
    SchemaVersion,
    TrailingBytesError,
    TruncatedError,
    UnexpectedSchemaError,
    UnknownFingerprintError,
    UnknownSchemaError,
)

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
SESSION = "cruxlog.session.SessionStarted"
FAILED = "cruxlog.analysis.AnalysisFailed"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return events.default_catalogue()


def all_versions() -> list[SchemaVersion]:
    return list(events.default_catalogue().versions())


def plain(value: Any) -> Any:
    """Decoded values in their written form: UUIDs as strings, timestamps as microseconds."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        return (value - EPOCH) // datetime.timedelta(microseconds=1)
    return value


def session_started() -> dict[str, Any]:
    return {
        "session_id": uuid.uuid4(),
        "user_id": uuid.uuid4(),
        "started_at": datetime.datetime(2026, 5, 4, 9, 12, 1, 532_123, tzinfo=datetime.UTC),
        "discipline": "BOULDER",
        "indoor": True,
        "location_name": "Arkose Nation",
        "planned_minutes": 90,
    }


def envelope_fields(**overrides: Any) -> dict[str, Any]:
    event_id = uuid.uuid4()
    fields: dict[str, Any] = {
        "event_id": event_id,
        "aggregate_type": "climbing_session",
        "aggregate_id": uuid.uuid4(),
        "aggregate_version": 1,
        "occurred_at": datetime.datetime.now(datetime.UTC).replace(microsecond=123_456),
        "command_id": None,
        "correlation_id": event_id,
        "causation_id": None,
        "actor": {"user_id": uuid.uuid4(), "role": "USER"},
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def message(catalogue: Catalogue) -> bytes:
    return catalogue.encode(SESSION, session_started(), envelope_fields())


# --- fingerprints -------------------------------------------------------------------------------


def test_fingerprints_follow_the_avro_spec() -> None:
    # The spec's (and Java's) CRC-64-AVRO of "null"; logicalType is not part of the canonical form.
    assert events.fingerprint_of("null") == 0x63DD24E7CC258F8A
    assert events.fingerprint_of({"type": "string", "logicalType": "uuid"}) == (
        events.fingerprint_of("string")
    )


def test_header_is_marker_and_little_endian_fingerprint(catalogue: Catalogue) -> None:
    envelope = catalogue.latest(ENVELOPE_SCHEMA)
    assert envelope.header[:2] == b"\xc3\x01"
    assert envelope.header[2:] == envelope.fingerprint.to_bytes(8, "little")


def test_catalogue_has_every_schema_folder(catalogue: Catalogue) -> None:
    assert ENVELOPE_SCHEMA in catalogue.names()
    assert {SESSION, FAILED} <= set(catalogue.event_names())
    assert ENVELOPE_SCHEMA not in catalogue.event_names()
    for version in catalogue.versions():
        assert catalogue.by_fingerprint(version.fingerprint) is version
        assert version.path == catalogue.root / version.name / f"v{version.version}.avsc"


# --- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", all_versions(), ids=str)
def test_every_schema_version_round_trips(catalogue: Catalogue, schema: SchemaVersion) -> None:
    for seed in range(5):
        random.seed(seed)
        datum = events.random_datum(schema)
        message = catalogue.write_single(schema.name, datum, version=schema.version)
        assert message[:10] == schema.header
        decoded = catalogue.read_single(message, schema.name, resolve=False)
        assert plain(decoded) == plain(datum)
        assert catalogue.write_single(schema.name, decoded, version=schema.version) == message


@pytest.mark.parametrize("event_type", events.default_catalogue().event_names())
def test_every_event_round_trips_in_an_envelope(catalogue: Catalogue, event_type: str) -> None:
    random.seed(event_type)
    message = events.random_message(catalogue, event_type)
    decoded = catalogue.decode(message)
    assert decoded.event_type == event_type
    assert decoded.envelope["event_type"] == event_type
    assert decoded.envelope["schema_version"] == catalogue.latest(event_type).version
    assert decoded.payload == catalogue.read_single(decoded.envelope["payload"], event_type)
    assert decoded.envelope_writer is catalogue.latest(ENVELOPE_SCHEMA)
    assert decoded.payload_writer is catalogue.latest(event_type)
    assert catalogue.decode_envelope(message) == decoded.envelope
    again = catalogue.encode(event_type, decoded.payload, decoded.envelope)
    assert again == message


def test_envelope_nests_a_single_object_payload(catalogue: Catalogue) -> None:
    payload = session_started()
    fields = envelope_fields(command_id=uuid.uuid4())
    message = events.encode(SESSION, payload, fields)
    assert message[:10] == catalogue.latest(ENVELOPE_SCHEMA).header
    decoded = events.decode(message)
    inner = decoded.envelope["payload"]
    assert inner[:10] == catalogue.latest(SESSION).header
    assert events.read_single(inner, SESSION) == decoded.payload
    assert inner == events.write_single(SESSION, payload)
    assert decoded.payload == payload
    assert decoded.event_type == SESSION
    envelope = decoded.envelope
    assert {key: envelope[key] for key in fields} == fields
    assert envelope["schema_version"] == 1
    assert events.decode_envelope(message) == envelope


def test_encode_overrides_what_it_fills_in(catalogue: Catalogue) -> None:
    fields = envelope_fields(event_type="x.Wrong", schema_version=99, payload=b"junk")
    decoded = catalogue.decode(catalogue.encode(SESSION, session_started(), fields))
    assert decoded.envelope["event_type"] == SESSION
    assert decoded.envelope["schema_version"] == 1


def test_plain_forms_are_accepted_on_write(catalogue: Catalogue) -> None:
    payload = session_started()
    as_written = {**payload, "session_id": str(payload["session_id"]), "started_at": 1_000_001}
    decoded = catalogue.read_single(catalogue.write_single(SESSION, as_written), SESSION)
    assert decoded["session_id"] == payload["session_id"]
    assert decoded["started_at"] == EPOCH + datetime.timedelta(microseconds=1_000_001)


# --- typed errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", TruncatedError),
        (b"\xc3\x01\x00", TruncatedError),
        (bytes(9), TruncatedError),
        (bytes(12), BadMarkerError),
        (b"\x01\xc3" + bytes(10), BadMarkerError),
        (b"garbage, not avro at all", BadMarkerError),
        (b"\xc3\x01" + bytes(8) + b"\x02", UnknownFingerprintError),
    ],
)
def test_garbage_is_a_typed_error(
    catalogue: Catalogue, data: bytes, error: type[CodecError]
) -> None:
    with pytest.raises(error):
        catalogue.decode(data)


def test_every_truncation_is_a_typed_error(catalogue: Catalogue, message: bytes) -> None:
    for cut in range(len(message)):
        with pytest.raises(TruncatedError):
            catalogue.decode(message[:cut])


def test_unknown_fingerprint(catalogue: Catalogue, message: bytes) -> None:
    unknown = bytearray(message)
    unknown[2] ^= 0xFF
    with pytest.raises(UnknownFingerprintError) as caught:
        catalogue.decode(bytes(unknown))
    assert caught.value.fingerprint == int.from_bytes(unknown[2:10], "little")
    assert f"{caught.value.fingerprint:#018x}" in str(caught.value)


def test_trailing_bytes_after_envelope_or_payload(catalogue: Catalogue, message: bytes) -> None:
    with pytest.raises(TrailingBytesError):
        catalogue.decode(message + b"\x00")
    envelope = catalogue.decode_envelope(message)
    envelope["payload"] += b"\x00"
    with pytest.raises(TrailingBytesError):
        catalogue.decode(catalogue.write_single(ENVELOPE_SCHEMA, envelope))


def test_payload_of_another_schema_is_rejected(catalogue: Catalogue, message: bytes) -> None:
    with pytest.raises(UnexpectedSchemaError, match=f"{ENVELOPE_SCHEMA} is not the expected"):
        catalogue.read_single(message, SESSION)
    envelope = catalogue.decode_envelope(message)
    for event_type in (FAILED, "cruxlog.NoSuchEvent", ENVELOPE_SCHEMA):
        wrong = catalogue.write_single(ENVELOPE_SCHEMA, {**envelope, "event_type": event_type})
        with pytest.raises(UnexpectedSchemaError):
            catalogue.decode(wrong)


def test_encode_errors_are_typed(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownSchemaError):
        catalogue.encode("cruxlog.NoSuchEvent", {}, envelope_fields())
    with pytest.raises(UnknownSchemaError):
        catalogue.write_single(SESSION, session_started(), version=99)
    with pytest.raises(UnexpectedSchemaError):
        catalogue.encode(ENVELOPE_SCHEMA, {}, envelope_fields())
    with pytest.raises(EncodeError, match=r"SessionStarted\.user_id: 'nope' is not a UUID"):
        catalogue.write_single(SESSION, {**session_started(), "user_id": "nope"})
    with pytest.raises(EncodeError, match=r"actor\.user_id: 'nope' is not a UUID"):
        catalogue.encode(
            SESSION, session_started(), envelope_fields(actor={"user_id": "nope", "role": "USER"})
        )
    for bad in ({"discipline": "ICE"}, {"planned_minutes": 2**40}, {"indoor": "yes"}):
        with pytest.raises(EncodeError):
            catalogue.write_single(SESSION, {**session_started(), **bad})
    missing = session_started()
    del missing["user_id"]
    with pytest.raises(EncodeError):
        catalogue.write_single(SESSION, missing)


def _mutations(valid: list[bytes], rng: random.Random) -> Iterator[bytes]:
    headers = [version.header for version in events.default_catalogue().versions()]
    while True:
        choice = rng.randrange(6)
        if choice == 0:
            yield rng.randbytes(rng.randrange(64))
        elif choice == 1:
            yield rng.choice(headers) + rng.randbytes(rng.randrange(256))
        else:
            data = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                at = rng.randrange(len(data))
                if choice == 2:
                    data[at] ^= 1 << rng.randrange(8)
                elif choice == 3:
                    data[at] = rng.randrange(256)
                elif choice == 4:
                    data.insert(at, rng.randrange(256))
                else:
                    del data[at]
            yield bytes(data)


def test_fuzzed_bytes_raise_only_codec_errors(catalogue: Catalogue) -> None:
    rng = random.Random(20260504)
    random.seed(20260504)
    valid = [
        events.random_message(catalogue, name) for name in catalogue.event_names() for _ in range(3)
    ]
    deadline = time.monotonic() + 2.0
    tried = decoded = 0
    for data in _mutations(valid, rng):
        if time.monotonic() > deadline:
            break
        tried += 1
        try:
            catalogue.decode(data)
            decoded += 1
        except CodecError:
            pass
    assert tried > 1000
    assert decoded < tried


# --- schema evolution ---------------------------------------------------------------------------

THING_V1 = {
    "type": "record",
    "name": "Thing",
    "namespace": "test",
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "name", "type": "string"},
    ],
}
THING_V2 = {
    **THING_V1,
    "fields": [
        *THING_V1["fields"],
        {"name": "count", "type": "int", "default": 7},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


def write_schema(root: Path, schema: dict[str, Any], version: int) -> None:
    name = f"{schema['namespace']}.{schema['name']}"
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / f"v{version}.avsc").write_text(json.dumps(schema), encoding="utf-8")


@pytest.fixture
def evolved(tmp_path: Path, catalogue: Catalogue) -> Catalogue:
    shutil.copytree(catalogue.root / ENVELOPE_SCHEMA, tmp_path / ENVELOPE_SCHEMA)
    write_schema(tmp_path, THING_V1, 1)
    write_schema(tmp_path, THING_V2, 2)
    return Catalogue(tmp_path)


def test_old_version_is_read_as_the_newest_with_defaults(evolved: Catalogue) -> None:
    thing = {"id": uuid.uuid4(), "name": "crimp"}
    old = evolved.write_single("test.Thing", thing, version=1)
    assert old[:10] == evolved.version("test.Thing", 1).header
    assert evolved.read_single(old, "test.Thing") == {**thing, "count": 7, "note": None}
    assert evolved.read_single(old, "test.Thing", resolve=False) == thing
    new = evolved.write_single("test.Thing", {**thing, "count": 3})
    assert new[:10] == evolved.latest("test.Thing").header
    assert evolved.read_single(new, "test.Thing") == {**thing, "count": 3, "note": None}


def test_old_payload_in_an_envelope_is_resolved(evolved: Catalogue) -> None:
    thing = {"id": uuid.uuid4(), "name": "sloper"}
    message = evolved.encode("test.Thing", thing, envelope_fields(), payload_version=1)
    decoded = evolved.decode(message)
    assert decoded.envelope["schema_version"] == 1
    assert decoded.payload == {**thing, "count": 7, "note": None}
    assert decoded.payload_writer is evolved.version("test.Thing", 1)
    as_written = evolved.decode(message, resolve=False)
    assert as_written.payload == thing
    again = evolved.encode("test.Thing", as_written.payload, as_written.envelope, payload_version=1)
    assert again == message


def test_reader_without_the_writer_version_rejects_it(tmp_path: Path, evolved: Catalogue) -> None:
    write_schema(tmp_path / "old", THING_V1, 1)
    newer = evolved.write_single("test.Thing", {"id": uuid.uuid4(), "name": "x"})
    with pytest.raises(UnknownFingerprintError):
        Catalogue(tmp_path / "old").read_single(newer, "test.Thing")


# --- the schema folder --------------------------------------------------------------------------


def test_schemas_dir_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catalogue: Catalogue
) -> None:
    write_schema(tmp_path, THING_V1, 1)
    monkeypatch.setenv(events.SCHEMAS_DIR_ENV, str(tmp_path))
    assert events.default_catalogue().names() == ["test.Thing"]
    monkeypatch.setenv(events.SCHEMAS_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(CatalogueError, match=events.SCHEMAS_DIR_ENV):
        events.default_catalogue()
    monkeypatch.delenv(events.SCHEMAS_DIR_ENV)
    assert events.default_catalogue() is catalogue


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"test.Thing/v1.avsc": THING_V1, "test.Thing/v2.avsc": THING_V1}, "identical to"),
        ({"test.Other/v1.avsc": THING_V1}, "declares the name test.Thing"),
        ({"test.Thing/first.avsc": THING_V1}, "must be named v<N>.avsc"),
        ({"test.Thing/v1.avsc": "{not json"}, "v1.avsc"),
        ({"test.Thing/v1.avsc": {"type": "enum", "name": "Thing"}}, "not a record"),
        ({"test.Thing/v1.avsc": {**THING_V1, "fields": [{"name": "a"}]}}, "v1.avsc"),
        ({}, "holds no"),
    ],
)
def test_invalid_schema_folders_are_rejected(
    tmp_path: Path, files: dict[str, Any], fragment: str
) -> None:
    for relative, content in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else json.dumps(content)
        path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError, match=fragment):
        Catalogue(tmp_path)


# --- command line -------------------------------------------------------------------------------


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(argv, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_generate_and_roundtrip(tmp_path: Path, catalogue: Catalogue) -> None:
    code, out, err = _cli(["events", "generate", str(tmp_path / "gen"), "--seed", "7"])
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    assert "seed 7" in out
    generated = sorted(tmp_path.joinpath("gen").iterdir())
    assert [path.name for path in generated] == [
        f"gen-{name}.bin" for name in catalogue.event_names()
    ]
    for path in generated:
        assert catalogue.decode(path.read_bytes()).event_type == path.stem.removeprefix("gen-")
    code, out, err = _cli(["events", "roundtrip", str(tmp_path / "gen"), str(tmp_path / "rt")])
    assert (code, err) == (0, "")
    assert out.startswith(f"roundtrip: {len(generated)} messages")
    for path in generated:
        assert (tmp_path / "rt" / path.name).read_bytes() == path.read_bytes()
    _cli(["events", "generate", str(tmp_path / "again"), "--seed", "7"])
    for path in generated:
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes()


def test_cli_fingerprints(catalogue: Catalogue) -> None:
    code, out, err = _cli(["events", "fingerprints"])
    assert (code, err) == (0, "")
    lines = [line.split("\t") for line in out.splitlines()]
    assert len(lines) == len(list(catalogue.versions()))
    for (name, version, fingerprint, canonical), schema in zip(
        lines, catalogue.versions(), strict=True
    ):
        assert (name, int(version), int(fingerprint, 16)) == (
            schema.name,
            schema.version,
            schema.fingerprint,
        )
        assert events.fingerprint_of(json.loads(canonical)) == schema.fingerprint


def test_cli_roundtrip_keeps_old_writer_versions(tmp_path: Path, evolved: Catalogue) -> None:
    (tmp_path / "in").mkdir()
    old = evolved.encode(
        "test.Thing", {"id": uuid.uuid4(), "name": "x"}, envelope_fields(), payload_version=1
    )
    (tmp_path / "in" / "old.bin").write_bytes(old)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(events.SCHEMAS_DIR_ENV, str(evolved.root))
        code, _, err = _cli(["events", "roundtrip", str(tmp_path / "in"), str(tmp_path / "out")])
    assert (code, err) == (0, "")
    assert (tmp_path / "out" / "old.bin").read_bytes() == old


def test_cli_roundtrip_failures(tmp_path: Path, message: bytes) -> None:
    (tmp_path / "in").mkdir()
    code, _, err = _cli(["events", "roundtrip", str(tmp_path / "in"), str(tmp_path / "out")])
    assert code == 2
    assert "no *.bin files" in err
    (tmp_path / "in" / "good.bin").write_bytes(message)
    (tmp_path / "in" / "torn.bin").write_bytes(message[:-3])
    code, out, err = _cli(["events", "roundtrip", str(tmp_path / "in"), str(tmp_path / "out")])
    assert (code, out) == (2, "")
    assert "torn.bin: TruncatedError" in err
    code, _, err = _cli(["events", "roundtrip", str(tmp_path / "nope"), str(tmp_path / "out")])
    assert code == 2
    assert "is not a folder" in err


def test_cli_without_schemas_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(events.SCHEMAS_DIR_ENV, str(tmp_path / "missing"))
    code, out, err = _cli(["events", "generate", str(tmp_path / "gen")])
    assert (code, out) == (1, "")
    assert events.SCHEMAS_DIR_ENV in err
