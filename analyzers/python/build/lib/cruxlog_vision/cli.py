"""``cruxlog-vision``: command line for data people (runs the analyzers without Kafka/Rust).

Subcommands:

* ``version``: print the package and protocol version.
* ``warmup [FILE]``: read ``warmup.plan`` params as JSON from FILE (or stdin, or ``-``) and print
  the plan (JSON, or a readable table with ``--format text``).

Exit status: 0 on success, 2 on bad usage or invalid input (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from cruxlog_vision import __version__
from cruxlog_vision.protocol import PROTOCOL_VERSION, InvalidInputError
from cruxlog_vision.warmup import WarmupPlan, parse_params, plan_warmup

EXIT_OK = 0
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
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cruxlog-vision`` console script."""
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
