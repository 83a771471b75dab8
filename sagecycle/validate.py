"""`sagecycle validate FILE`: check a data file against a model's schema.json before uploading it.

The same check and the same reasons as the new-data Lambda (lambdas/shared/validation.py, under the data
contract in contract/data.py), so a file that passes here is not quarantined there and trains. The file is
read in blocks (memory stays flat whatever its size), and pyarrow vouches for the blocks it can, which is
what train.py's reader does too. Exit status: 0 valid, 1 invalid, 2 usage error (missing file, unreadable
or invalid schema, bad flags).
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

from contract.data import SchemaError, parse_schema
from lambdas.shared.validation import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PROBLEMS,
    Limits,
    report_to_json,
    validate_file,
)
from sagecycle.cli import HelpFormatter

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
_MAX_SCHEMA_BYTES = 16 * 1024 * 1024


class UsageError(Exception):
    """Bad input to the command itself (exit 2), as opposed to an invalid data file (exit 1)."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sagecycle validate",
        description="Check a prepared CSV against schema.json (docs/artifacts.md) the way the new-data Lambda does.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("file", type=Path, help="the data file to check")
    parser.add_argument(
        "--schema",
        type=Path,
        help="schema.json, or a model.tar.gz holding one (default: schema.json next to FILE)",
    )
    parser.add_argument("--max-bytes", type=_positive_int, default=DEFAULT_MAX_BYTES, help="size limit in bytes")
    parser.add_argument(
        "--max-rows", type=_positive_int, default=None, help="row limit (default: the most rows --max-bytes can hold)"
    )
    parser.add_argument(
        "--max-problems", type=_positive_int, default=DEFAULT_MAX_PROBLEMS, help="report at most this many problems"
    )
    parser.add_argument("--json", action="store_true", help="print the JSON report (the quarantine sidecar)")
    return parser.parse_args(argv)


def load_schema(path: Path) -> dict[str, Any]:
    """schema.json from a JSON file or from inside a model.tar.gz; raises UsageError with the reason."""
    try:
        raw = _schema_from_tarball(path) if tarfile.is_tarfile(path) else path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read schema {path}: {error.strerror or error}") from None
    except tarfile.TarError as error:
        raise UsageError(f"cannot read model archive {path}: {error}") from None
    try:
        schema = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"schema {path} is not JSON: {error}") from None
    if not isinstance(schema, dict):
        raise UsageError(f"schema {path} must be a JSON object")
    return schema


def _schema_from_tarball(path: Path) -> bytes:
    with tarfile.open(path, "r:*") as archive:
        # Only read the one regular member; nothing is extracted to disk.
        for member in archive.getmembers():
            if member.isfile() and member.name.removeprefix("./") == "schema.json":
                if member.size > _MAX_SCHEMA_BYTES:
                    raise UsageError(f"schema.json in {path} is implausibly large ({member.size} bytes)")
                handle = archive.extractfile(member)
                if handle is not None:
                    return handle.read()
    raise UsageError(f"{path} has no schema.json at its top level")


def _pyarrow_vouches() -> Any:
    """train.py's vectorised block check (pyarrow), or None where pyarrow is missing (the exact reader alone)."""
    try:
        from training_scripts.data_io import block_is_valid
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return None
    return block_is_valid


def _resolve_schema_path(file: Path, schema: Path | None) -> Path:
    if schema is not None:
        return schema
    candidate = file.parent / "schema.json"
    if not candidate.is_file():
        raise UsageError(f"no --schema given and no schema.json next to {file}")
    return candidate


def run(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise UsageError(f"no such file: {args.file}")
    schema_path = _resolve_schema_path(args.file, args.schema)
    try:
        spec = parse_schema(load_schema(schema_path))
    except SchemaError as error:
        raise UsageError(f"{schema_path}: {error}") from None
    limits = Limits(max_bytes=args.max_bytes, max_rows=args.max_rows, max_problems=args.max_problems)
    try:
        # An oversized file is refused from its size alone, as the Lambda does from S3's ContentLength.
        report = validate_file(args.file, spec, limits=limits, fast=_pyarrow_vouches())
    except OSError as error:
        raise UsageError(f"cannot read {args.file}: {error.strerror or error}") from None
    if args.json:
        print(report_to_json(report, source=str(args.file)))
    else:
        for line in report.lines():
            print(line)
        # stdout carries only the reasons; the verdict goes to stderr.
        if report.valid:
            print(f"{args.file}: valid ({report.rows_checked} rows)", file=sys.stderr)
        else:
            more = " (the first ones; there are more)" if report.truncated else ""
            print(f"{args.file}: invalid, {len(report.problems)} problem(s){more}", file=sys.stderr)
    return EXIT_VALID if report.valid else EXIT_INVALID


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help (0) and on bad flags (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        return run(args)
    except UsageError as error:
        print(f"sagecycle validate: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
