"""Cruxlog's Kafka events in Python: the same wire format as the Rust crate ``cruxlog-schemas``.

A Kafka record value is the ``cruxlog.Envelope`` record in Avro single-object encoding: the marker
``C3 01``, the writer schema's 64-bit Rabin fingerprint (CRC-64-AVRO of its Parsing Canonical
Form) as 8 little-endian bytes, then the Avro binary datum. The envelope's ``payload`` field is
the event, itself single-object encoded with its own schema, and ``event_type`` names that
schema (docs/adr/0003-event-encoding.md).

Every version of every schema is a file ``<schemas dir>/<full.name>/v<N>.avsc``. A reader looks
the writer schema up by the fingerprint in the message and resolves the datum to the newest
version of that name; a writer uses the newest version unless told otherwise.

Decoded data is what fastavro returns: ``uuid`` strings as :class:`uuid.UUID`, ``timestamp-micros``
as timezone-aware :class:`datetime.datetime`, ``bytes`` as :class:`bytes`. Writing accepts those
or their plain forms (UUID strings, integer microseconds).

Every failure to encode or decode is a :class:`CodecError` subclass; no other exception escapes
:meth:`Catalogue.decode` and friends, whatever the bytes.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import io
import json
import os
import random
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint as avro_fingerprint
from fastavro.schema import to_parsing_canonical_form
from fastavro.utils import generate_one
from fastavro.validation import validate

MARKER: Final = b"\xc3\x01"
"""First two bytes of every single-object encoded message."""

HEADER_LEN: Final = 10
"""Marker plus the 8-byte fingerprint."""

ENVELOPE_SCHEMA: Final = "cruxlog.Envelope"
"""Full name of the envelope schema; every other name in the catalogue is an event."""

SCHEMAS_DIR_ENV: Final = "CRUXLOG_SCHEMAS_DIR"
"""Environment variable naming the ``schemas/avro`` folder (the one holding ``<full.name>/``)."""

_VERSION_FILE = re.compile(r"v([0-9]+)\.avsc")

Datum = dict[str, Any]


# --- errors -------------------------------------------------------------------------------------


class CodecError(Exception):
    """Anything that can go wrong turning bytes into events or back."""


class CatalogueError(CodecError):
    """The schema folder is missing or holds an invalid schema file."""


class UnknownSchemaError(CatalogueError):
    """No schema (or no such version of it) has this name."""


class TruncatedError(CodecError):
    """The message ends before its header or its datum does."""


class BadMarkerError(CodecError):
    """The message does not start with the single-object marker ``C3 01``."""


class UnknownFingerprintError(CodecError):
    """No schema in the catalogue has the writer fingerprint of the message."""

    def __init__(self, fingerprint: int) -> None:
        super().__init__(f"no schema in the catalogue has fingerprint {fingerprint:#018x}")
        self.fingerprint = fingerprint


class UnexpectedSchemaError(CodecError):
    """The message was written with a schema other than the one the reader expects."""

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(f"payload schema {found} is not the expected {expected}")
        self.expected = expected
        self.found = found


class MalformedDatumError(CodecError):
    """The Avro datum after the header cannot be read with the writer schema."""


class TrailingBytesError(CodecError):
    """Bytes are left over after the datum."""


class EncodeError(CodecError):
    """The datum does not fit the schema it is written with."""


# --- catalogue ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SchemaVersion:
    """One published version of one schema, parsed once."""

    name: str
    version: int
    fingerprint: int
    """The Rabin fingerprint (Rust's ``u64``): the header bytes read little-endian."""
    path: Path = field(repr=False)
    schema: Mapping[str, Any] = field(repr=False)
    """The schema as written in its file."""
    parsed: Any = field(repr=False)
    """The fastavro-parsed schema, for the readers and writers."""
    named: Mapping[str, Any] = field(repr=False)
    """Named types of the parsed schema, by full name."""

    @property
    def canonical_form(self) -> str:
        """The schema's Parsing Canonical Form, which the fingerprint hashes."""
        return to_parsing_canonical_form(cast(Any, self.schema))

    @property
    def header(self) -> bytes:
        """The single-object header of messages written with this version."""
        return MARKER + self.fingerprint.to_bytes(8, "little")

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.fingerprint:#018x})"


def fingerprint_of(schema: Mapping[str, Any] | str | list[Any]) -> int:
    """The 64-bit Rabin fingerprint (CRC-64-AVRO) of the schema's Parsing Canonical Form.

    fastavro returns the digest as the hex of its little-endian bytes (as Java does), which are
    exactly the 8 bytes that follow the marker; the integer is those bytes read little-endian.

    The canonical form is the specification's, as Java and fastavro write it: ``logicalType`` is
    dropped and ``{"type": "string", "logicalType": "uuid"}`` becomes ``"string"``. apache-avro
    0.22 (Rust) keeps ``{"type":"string"}`` there, so ``cruxlog-schemas`` must not hash its
    ``canonical_form()`` as it is; ``schemas/tests/cross_language.rs`` checks both sides agree.
    """
    canonical = to_parsing_canonical_form(cast(Any, schema))
    return int.from_bytes(bytes.fromhex(avro_fingerprint(canonical, "CRC-64-AVRO")), "little")


def _full_name(schema: Mapping[str, Any]) -> str:
    name = str(schema.get("name", ""))
    namespace = schema.get("namespace")
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


@dataclass(frozen=True)
class DecodedEvent:
    """A decoded Kafka record value."""

    envelope: Datum
    """The envelope fields, ``payload`` still as bytes."""
    event_type: str
    payload: Datum
    envelope_writer: SchemaVersion | None = field(default=None, compare=False)
    """The schema version the envelope was written with."""
    payload_writer: SchemaVersion | None = field(default=None, compare=False)
    """The schema version the payload was written with."""


class Catalogue:
    """Every schema version under one ``schemas/avro`` folder, indexed by fingerprint and name."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise CatalogueError(f"schema folder {self.root} does not exist")
        self._versions: list[SchemaVersion] = []
        self._by_fingerprint: dict[int, SchemaVersion] = {}
        self._by_name: dict[str, dict[int, SchemaVersion]] = {}
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for path in sorted(folder.glob("*.avsc")):
                self._add(self._load(folder.name, path))
        if not self._versions:
            raise CatalogueError(f"schema folder {self.root} holds no <name>/v<N>.avsc files")

    @staticmethod
    def _load(name: str, path: Path) -> SchemaVersion:
        match = _VERSION_FILE.fullmatch(path.name)
        if match is None:
            raise CatalogueError(f"schema file {path} must be named v<N>.avsc")
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CatalogueError(f"{path}: {exc}") from exc
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise CatalogueError(f"{path}: not a record schema")
        declared = _full_name(schema)
        if declared != name:
            raise CatalogueError(f"{path}: declares the name {declared}, not {name}")
        named: dict[str, Any] = {}
        try:
            parsed = parse_schema(schema, named)
            fingerprint = fingerprint_of(schema)
        except Exception as exc:
            raise CatalogueError(f"{path}: {exc}") from exc
        return SchemaVersion(
            name=name,
            version=int(match.group(1)),
            fingerprint=fingerprint,
            path=path,
            schema=schema,
            parsed=parsed,
            named=named,
        )

    def _add(self, version: SchemaVersion) -> None:
        earlier = self._by_fingerprint.get(version.fingerprint)
        if earlier is not None:
            raise CatalogueError(f"{version.path}: identical to {earlier.path}")
        self._versions.append(version)
        self._by_fingerprint[version.fingerprint] = version
        self._by_name.setdefault(version.name, {})[version.version] = version

    # --- lookups --------------------------------------------------------------------------------

    def versions(self) -> Iterator[SchemaVersion]:
        return iter(self._versions)

    def names(self) -> list[str]:
        """Every schema name, sorted."""
        return sorted(self._by_name)

    def event_names(self) -> list[str]:
        """Every event schema name (all but the envelope), sorted."""
        return [name for name in self.names() if name != ENVELOPE_SCHEMA]

    def by_fingerprint(self, fingerprint: int) -> SchemaVersion:
        try:
            return self._by_fingerprint[fingerprint]
        except KeyError:
            raise UnknownFingerprintError(fingerprint) from None

    def latest(self, name: str) -> SchemaVersion:
        """The newest version of a schema: what writers use and readers resolve to."""
        versions = self._by_name.get(name)
        if not versions:
            raise UnknownSchemaError(f"no schema named {name}")
        return versions[max(versions)]

    def version(self, name: str, version: int | None = None) -> SchemaVersion:
        """One version of a schema; the newest when ``version`` is None."""
        if version is None:
            return self.latest(name)
        found = self._by_name.get(name, {}).get(version)
        if found is None:
            raise UnknownSchemaError(f"no schema {name} v{version}")
        return found

    # --- single objects -------------------------------------------------------------------------

    def write_single(
        self, name: str, datum: Mapping[str, Any], *, version: int | None = None
    ) -> bytes:
        """Single-object encodes ``datum`` with a version of ``name`` (the newest by default)."""
        schema = self.version(name, version)
        try:
            datum = map_uuids(schema.parsed, datum, schema.named, _uuid_to_wire, name)
            validate(datum, schema.parsed, raise_errors=True)
            out = io.BytesIO()
            out.write(schema.header)
            schemaless_writer(out, schema.parsed, datum)
        except CodecError:
            raise
        except Exception as exc:
            raise EncodeError(f"{schema}: {_one_line(exc)}") from exc
        return out.getvalue()

    def read_single_with_writer(
        self, message: bytes, expected_name: str, *, resolve: bool = True
    ) -> tuple[Datum, SchemaVersion]:
        """Reads a single-object message written with a version of ``expected_name``.

        With ``resolve`` (the default) the datum is resolved to the newest version; without, it
        is returned as written. Also returns the writer's schema version.
        """
        if len(message) < HEADER_LEN:
            raise TruncatedError(
                f"message is {len(message)} bytes, shorter than the {HEADER_LEN}-byte "
                "single-object header"
            )
        data = bytes(message)
        if data[:2] != MARKER:
            raise BadMarkerError("message does not start with the Avro single-object marker C3 01")
        writer = self.by_fingerprint(int.from_bytes(data[2:HEADER_LEN], "little"))
        if writer.name != expected_name:
            raise UnexpectedSchemaError(expected_name, writer.name)
        newest = self.latest(expected_name) if resolve else writer
        body = io.BytesIO(data)
        body.seek(HEADER_LEN)
        try:
            datum = schemaless_reader(
                body, writer.parsed, None if newest is writer else newest.parsed
            )
        except Exception as exc:
            # fastavro reports running out of bytes as EOFError, or as IndexError when a varint
            # is cut short; either way it has read everything there was.
            if isinstance(exc, EOFError) or body.tell() >= len(data):
                raise TruncatedError(f"{writer}: datum is cut short") from exc
            raise MalformedDatumError(f"{writer}: {_one_line(exc)}") from exc
        if body.tell() != len(data):
            raise TrailingBytesError(
                f"{expected_name}: {len(data) - body.tell()} trailing bytes after the datum"
            )
        if not isinstance(datum, dict):  # pragma: no cover - every catalogue schema is a record
            raise MalformedDatumError(f"{writer}: datum is not a record")
        reader = newest if resolve else writer
        datum = map_uuids(reader.parsed, datum, reader.named, _uuid_from_wire, expected_name)
        return datum, writer

    def read_single(self, message: bytes, expected_name: str, *, resolve: bool = True) -> Datum:
        """Reads a single-object message written with a version of ``expected_name``."""
        return self.read_single_with_writer(message, expected_name, resolve=resolve)[0]

    # --- envelopes ------------------------------------------------------------------------------

    def encode(
        self,
        event_type: str,
        payload: Mapping[str, Any],
        envelope_fields: Mapping[str, Any],
        *,
        payload_version: int | None = None,
        envelope_version: int | None = None,
    ) -> bytes:
        """Encodes an event with its envelope into a Kafka record value.

        ``envelope_fields`` are the envelope fields the writer chooses (``event_id``,
        ``aggregate_id``, ``occurred_at``, ``actor``...); ``event_type``, ``schema_version``
        and ``payload`` are filled in here, overriding any given. Newest versions by default.
        """
        if event_type == ENVELOPE_SCHEMA:
            raise UnexpectedSchemaError("an event", event_type)
        payload_schema = self.version(event_type, payload_version)
        envelope = {
            **envelope_fields,
            "event_type": event_type,
            "schema_version": payload_schema.version,
            "payload": self.write_single(event_type, payload, version=payload_version),
        }
        return self.write_single(ENVELOPE_SCHEMA, envelope, version=envelope_version)

    def decode(self, message: bytes, *, resolve: bool = True) -> DecodedEvent:
        """Decodes a Kafka record value into its envelope and payload.

        With ``resolve`` (the default) both are resolved to the newest versions; without, they
        are returned as written (to re-encode them with the same versions).
        """
        envelope, envelope_writer = self.read_single_with_writer(
            message, ENVELOPE_SCHEMA, resolve=resolve
        )
        event_type = envelope.get("event_type")
        payload_bytes = envelope.get("payload")
        if (
            not isinstance(event_type, str)
            or event_type == ENVELOPE_SCHEMA
            or event_type not in self._by_name
        ):
            raise UnexpectedSchemaError("a known event", str(event_type))
        if not isinstance(payload_bytes, bytes):  # pragma: no cover - the schema says bytes
            raise MalformedDatumError(f"{envelope_writer}: payload is not bytes")
        payload, payload_writer = self.read_single_with_writer(
            payload_bytes, event_type, resolve=resolve
        )
        return DecodedEvent(
            envelope=envelope,
            event_type=event_type,
            payload=payload,
            envelope_writer=envelope_writer,
            payload_writer=payload_writer,
        )

    def decode_envelope(self, message: bytes, *, resolve: bool = True) -> Datum:
        """Decodes only the envelope, leaving the payload as bytes (for generic consumers)."""
        return self.read_single(message, ENVELOPE_SCHEMA, resolve=resolve)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- uuid fields --------------------------------------------------------------------------------

_PRIMITIVE_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "int": (int,),
    "long": (int, datetime.datetime, datetime.time),
    "float": (float, int),
    "double": (float, int),
    "bytes": (bytes, bytearray, decimal.Decimal),
    "string": (str, uuid.UUID),
}


def _resolve(schema: Any, named: Mapping[str, Any]) -> Any:
    while isinstance(schema, str) and schema in named:
        schema = named[schema]
    return schema


def _is_uuid_schema(schema: Any) -> bool:
    """A ``uuid`` field: ``fixed(16)`` (what Cruxlog writes) or ``string`` (the older form)."""
    return (
        isinstance(schema, dict)
        and schema.get("logicalType") == "uuid"
        and (
            schema.get("type") == "string"
            or (schema.get("type") == "fixed" and schema.get("size") == 16)
        )
    )


def _fits(schema: Any, datum: Any, named: Mapping[str, Any]) -> bool:
    """Whether ``datum`` has the shape of ``schema`` (shallow: picks a union branch)."""
    schema = _resolve(schema, named)
    kind = schema.get("type") if isinstance(schema, dict) else schema
    if isinstance(kind, str) and kind in _PRIMITIVE_TYPES:
        if kind in ("int", "long") and isinstance(datum, bool):
            return False
        return isinstance(datum, _PRIMITIVE_TYPES[kind])
    if kind in ("record", "error"):
        if not isinstance(datum, Mapping):
            return False
        fields = {f["name"]: f for f in schema["fields"]}
        return set(datum) <= set(fields) and all(
            name in datum or "default" in f for name, f in fields.items()
        )
    if kind == "enum":
        return isinstance(datum, str) and datum in schema["symbols"]
    if kind == "fixed":
        if _is_uuid_schema(schema) and isinstance(datum, uuid.UUID | str):
            return True
        return isinstance(datum, bytes | bytearray) and len(datum) == schema["size"]
    if kind == "array":
        return isinstance(datum, list | tuple)
    if kind == "map":
        return isinstance(datum, Mapping)
    return False


UuidHook = Callable[[str, Any, bool], Any]
"""Called with the path, the value and whether the field is ``fixed`` (else ``string``) of every
``uuid`` field; returns the value to keep."""


def map_uuids(schema: Any, datum: Any, named: Mapping[str, Any], hook: UuidHook, path: str) -> Any:
    """A copy of ``datum`` with every value of a ``uuid`` field replaced by ``hook``'s result."""
    schema = _resolve(schema, named)
    if isinstance(schema, list):
        branch = next((b for b in schema if _fits(b, datum, named)), None)
        return datum if branch is None else map_uuids(branch, datum, named, hook, path)
    if not isinstance(schema, dict):
        return datum
    kind = schema.get("type")
    if _is_uuid_schema(schema):
        return hook(path, datum, schema.get("type") == "fixed")
    if kind in ("record", "error") and isinstance(datum, Mapping):
        out = dict(datum)
        for fld in schema["fields"]:
            name = fld["name"]
            if name in out:
                out[name] = map_uuids(fld["type"], out[name], named, hook, f"{path}.{name}")
        return out
    if kind == "array" and isinstance(datum, list | tuple):
        return [
            map_uuids(schema["items"], item, named, hook, f"{path}[{index}]")
            for index, item in enumerate(datum)
        ]
    if kind == "map" and isinstance(datum, Mapping):
        return {
            key: map_uuids(schema["values"], value, named, hook, f"{path}[{key!r}]")
            for key, value in datum.items()
        }
    return datum


def _uuid_to_wire(path: str, value: Any, fixed: bool) -> Any:
    """Any UUID spelling to what the field holds on the wire: 16 bytes for ``fixed`` uuids.

    fastavro knows the ``uuid`` logical type only on strings, and writes any string there;
    typed readers (Rust) reject non-UUIDs, so they are refused here.
    """
    if isinstance(value, bytes | bytearray) and fixed:
        if len(value) != 16:
            raise EncodeError(f"{path}: {len(value)} bytes is not a UUID")
        return bytes(value)
    if isinstance(value, str):
        try:
            value = uuid.UUID(value)
        except ValueError:
            raise EncodeError(f"{path}: {value!r} is not a UUID") from None
    if isinstance(value, uuid.UUID):
        return value.bytes if fixed else str(value)
    return value


def _uuid_from_wire(_path: str, value: Any, _fixed: bool) -> Any:
    """16 bytes of a ``fixed`` uuid back to :class:`uuid.UUID` (strings fastavro converts)."""
    if isinstance(value, bytes | bytearray) and len(value) == 16:
        return uuid.UUID(bytes=bytes(value))
    return value


# --- random data ---------------------------------------------------------------------------------

_AGGREGATE_DOC = re.compile(r"Aggregate: ([a-z_]+)")


def _seeded_uuid(_path: str, _value: Any, _fixed: bool) -> uuid.UUID:
    return uuid.UUID(int=random.getrandbits(128), version=4)


def random_datum(schema: SchemaVersion) -> Datum:
    """A random datum of ``schema`` that typed readers accept, from the ``random`` module's state.

    :func:`fastavro.utils.generate_one` fills ``uuid`` fields with ``uuid4().hex`` (valid, but
    not the hyphenated form, and not seeded by :func:`random.seed`), so they are replaced with
    seeded UUIDs. Its timestamps lie between 1970 and 3111, inside chrono's range; enum symbols
    and strings come from the schema and ASCII letters.
    """
    generated = generate_one(cast(Any, schema.parsed))
    datum = map_uuids(schema.parsed, generated, schema.named, _seeded_uuid, schema.name)
    if not isinstance(datum, dict):  # pragma: no cover - every catalogue schema is a record
        raise EncodeError(f"{schema}: generated datum is not a record")
    return datum


def random_message(catalogue: Catalogue, event_type: str) -> bytes:
    """A Kafka record value: a random ``event_type`` (newest version) in a random envelope."""
    payload_schema = catalogue.latest(event_type)
    payload = random_datum(payload_schema)
    envelope = random_datum(catalogue.latest(ENVELOPE_SCHEMA))
    aggregate = _AGGREGATE_DOC.search(str(payload_schema.schema.get("doc", "")))
    if aggregate is not None:
        envelope["aggregate_type"] = aggregate.group(1)
    return catalogue.encode(event_type, payload, envelope)


# --- the default catalogue ----------------------------------------------------------------------


def find_schemas_dir() -> Path:
    """The ``schemas/avro`` folder: ``$CRUXLOG_SCHEMAS_DIR``, else found above this module."""
    configured = os.environ.get(SCHEMAS_DIR_ENV)
    if configured:
        path = Path(configured)
        if not path.is_dir():
            raise CatalogueError(f"{SCHEMAS_DIR_ENV}={configured} is not a folder")
        return path
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "schemas" / "avro"
        if candidate.is_dir():
            return candidate
    raise CatalogueError(
        f"cannot find the Avro schemas: set {SCHEMAS_DIR_ENV} to the repository's schemas/avro "
        "folder (the one holding <full.name>/v<N>.avsc)"
    )


@functools.lru_cache(maxsize=8)
def _catalogue_at(root: Path) -> Catalogue:
    return Catalogue(root)


def default_catalogue() -> Catalogue:
    """The catalogue of :func:`find_schemas_dir`, parsed once per folder."""
    return _catalogue_at(find_schemas_dir().resolve())


def encode(
    event_type: str, payload: Mapping[str, Any], envelope_fields: Mapping[str, Any]
) -> bytes:
    """:meth:`Catalogue.encode` with the default catalogue."""
    return default_catalogue().encode(event_type, payload, envelope_fields)


def decode(message: bytes) -> DecodedEvent:
    """:meth:`Catalogue.decode` with the default catalogue."""
    return default_catalogue().decode(message)


def decode_envelope(message: bytes) -> Datum:
    """:meth:`Catalogue.decode_envelope` with the default catalogue."""
    return default_catalogue().decode_envelope(message)


def write_single(name: str, datum: Mapping[str, Any]) -> bytes:
    """:meth:`Catalogue.write_single` with the default catalogue."""
    return default_catalogue().write_single(name, datum)


def read_single(message: bytes, expected_name: str) -> Datum:
    """:meth:`Catalogue.read_single` with the default catalogue."""
    return default_catalogue().read_single(message, expected_name)
