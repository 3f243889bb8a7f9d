"""``cruxlog-vision``: command line for data people (runs the analyzers without Kafka/Rust).

Subcommands:

* ``version``: print the package and protocol version.
* ``warmup [FILE]``: read ``warmup.plan`` params as JSON from FILE (or stdin, or ``-``) and print
  the plan (JSON, or a readable table with ``--format text``).
* ``events roundtrip IN_DIR OUT_DIR``: decode every ``IN_DIR/*.bin`` Kafka record value (envelope
  and payload) and write it re-encoded with the same schema versions to ``OUT_DIR/<same name>``.
* ``events generate OUT_DIR [--seed N]``: write one random event of every event schema (newest
  version) in a random envelope to ``OUT_DIR/gen-<full.name>.bin``.
* ``analyze VIDEO --out DIR``: movement analysis of a climbing video (see
  :mod:`cruxlog_vision.cli_movement`): ``analysis.json``, ``annotated.mp4`` and ``summary.jpg``.
* ``make-test-video OUT.mp4``: a synthetic H.264 clip of a person climbing a textured wall.
* ``events fingerprints``: print every schema version as ``NAME<TAB>VERSION<TAB>FINGERPRINT<TAB>
  PARSING-CANONICAL-FORM``, the fingerprint as 0x-prefixed hex of the little-endian integer.

The ``events`` commands read the Avro schemas from ``$CRUXLOG_SCHEMAS_DIR`` (the repository's
``schemas/avro``), found above the package when unset; they are the cross-language check of the
wire format against the Rust crate ``cruxlog-schemas`` (its ``tests/cross_language.rs``).

Exit status: 0 on success, 1 when the schemas cannot be loaded or output cannot be written, 2 on
bad usage or invalid input (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from cruxlog_vision import __version__, cli_movement, events
from cruxlog_vision.protocol import PROTOCOL_VERSION, InvalidInputError
from cruxlog_vision.warmup import WarmupPlan, parse_params, plan_warmup

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cruxlog-vision", description="Cruxlog vision analyzers from the command line."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("version", help="print the package and worker-protocol version")

    warmup = sub.add_parser(
        "warmup",
        help="print a warm-up plan for the session described by JSON params",
        description=(
            'Params: {"session_id": str, "discipline": "boulder"|"sport"|"trad"|"top_rope"|'
            '"board", "indoor": bool, "planned_minutes": int|null}'
        ),
    )
    warmup.add_argument(
        "params",
        nargs="?",
        default="-",
        help="JSON file with the params ('-' or omitted: read stdin)",
    )
    warmup.add_argument(
        "--format",
        choices=("json", "text"),
        default="json",
        help="output format (default: json)",
    )
    warmup.add_argument("--compact", action="store_true", help="single-line JSON output")

    events_parser = sub.add_parser(
        "events",
        help="Kafka event encoding (Avro single-object envelopes), for cross-language checks",
        description=f"Schemas are read from ${events.SCHEMAS_DIR_ENV} (schemas/avro).",
    )
    events_sub = events_parser.add_subparsers(dest="events_command", required=True)
    roundtrip = events_sub.add_parser(
        "roundtrip",
        help="decode IN_DIR/*.bin and write them re-encoded with the same schema versions",
    )
    roundtrip.add_argument("in_dir", type=Path, metavar="IN_DIR")
    roundtrip.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    generate = events_sub.add_parser(
        "generate", help="write one random message per event schema to OUT_DIR/gen-<name>.bin"
    )
    generate.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    generate.add_argument(
        "--seed", type=int, default=None, help="random seed (default: a random one, printed)"
    )
    events_sub.add_parser(
        "fingerprints",
        help="print name, version, fingerprint and canonical form of every schema (tab-separated)",
    )
    cli_movement.add_parsers(sub)
    return parser


def _read_params(source: str, stdin: TextIO) -> Any:
    if source == "-":
        text = stdin.read()
    else:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    return json.loads(text)


def _render_text(plan: WarmupPlan) -> str:
    width = max(len(step.name) for step in plan.steps)
    lines = [f"{plan.plan_id}: {plan.total_minutes} min"]
    for step in plan.steps:
        lines.append(f"  {step.minutes:>2} min  {step.name:<{width}}  {step.cue}")
    return "\n".join(lines)


def _warmup(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    try:
        raw = _read_params(args.params, stdin)
    except OSError as exc:
        stderr.write(f"cruxlog-vision: cannot read params: {exc}\n")
        return EXIT_USAGE
    except ValueError as exc:
        stderr.write(f"cruxlog-vision: params are not valid JSON: {exc}\n")
        return EXIT_USAGE
    if not isinstance(raw, dict):
        stderr.write("cruxlog-vision: params must be a JSON object\n")
        return EXIT_USAGE
    try:
        plan = plan_warmup(parse_params(raw))
    except InvalidInputError as exc:
        stderr.write(f"cruxlog-vision: invalid params: {exc}\n")
        return EXIT_USAGE
    if args.format == "text":
        stdout.write(_render_text(plan) + "\n")
    elif args.compact:
        stdout.write(json.dumps(plan.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        stdout.write(json.dumps(plan.to_dict(), ensure_ascii=False, indent=2) + "\n")
    return EXIT_OK


class _EventsFailure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise _EventsFailure(EXIT_FAILURE, f"cannot write {path}: {exc}") from exc


def _events_roundtrip(catalogue: events.Catalogue, in_dir: Path, out_dir: Path) -> str:
    if not in_dir.is_dir():
        raise _EventsFailure(EXIT_USAGE, f"{in_dir} is not a folder")
    inputs = sorted(in_dir.glob("*.bin"))
    if not inputs:
        raise _EventsFailure(EXIT_USAGE, f"no *.bin files in {in_dir}")
    for path in inputs:
        try:
            message = path.read_bytes()
        except OSError as exc:
            raise _EventsFailure(EXIT_USAGE, f"cannot read {path}: {exc}") from exc
        try:
            decoded = catalogue.decode(message, resolve=False)
            assert decoded.envelope_writer is not None
            assert decoded.payload_writer is not None
            again = catalogue.encode(
                decoded.event_type,
                decoded.payload,
                decoded.envelope,
                payload_version=decoded.payload_writer.version,
                envelope_version=decoded.envelope_writer.version,
            )
        except events.CodecError as exc:
            raise _EventsFailure(EXIT_USAGE, f"{path}: {type(exc).__name__}: {exc}") from exc
        _write(out_dir / path.name, again)
    return f"roundtrip: {len(inputs)} messages from {in_dir} re-encoded into {out_dir}"


def _events_generate(catalogue: events.Catalogue, out_dir: Path, seed: int | None) -> str:
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    random.seed(seed)
    names = catalogue.event_names()
    for name in names:
        try:
            message = events.random_message(catalogue, name)
            catalogue.decode(message)
        except events.CodecError as exc:
            raise _EventsFailure(
                EXIT_FAILURE, f"{name} (seed {seed}): {type(exc).__name__}: {exc}"
            ) from exc
        _write(out_dir / f"gen-{name}.bin", message)
    return f"generate: {len(names)} events (seed {seed}) written to {out_dir}"


def _events(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    try:
        catalogue = events.default_catalogue()
        if args.events_command == "fingerprints":
            summary = "\n".join(
                f"{v.name}\t{v.version}\t{v.fingerprint:#018x}\t{v.canonical_form}"
                for v in catalogue.versions()
            )
        elif args.events_command == "roundtrip":
            summary = _events_roundtrip(catalogue, args.in_dir, args.out_dir)
        else:
            summary = _events_generate(catalogue, args.out_dir, args.seed)
    except events.CatalogueError as exc:
        stderr.write(f"cruxlog-vision: events: {exc}\n")
        return EXIT_FAILURE
    except _EventsFailure as exc:
        stderr.write(f"cruxlog-vision: events {args.events_command}: {exc}\n")
        return exc.status
    stdout.write(summary + "\n")
    return EXIT_OK


def run(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the CLI with explicit streams (for tests); returns the exit status."""
    in_ = stdin if stdin is not None else sys.stdin
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args = _build_parser().parse_args(argv)
    if args.command == "version":
        out.write(f"cruxlog-vision {__version__} (worker protocol {PROTOCOL_VERSION})\n")
        return EXIT_OK
    if args.command == "warmup":
        return _warmup(args, in_, out, err)
    if args.command == "events":
        return _events(args, out, err)
    if args.command == "analyze":
        return cli_movement.run_analyze(args, out, err)
    if args.command == "make-test-video":
        return cli_movement.run_make_test_video(args, out, err)
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cruxlog-vision`` console script."""
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
