"""Is an uploaded data file a valid prepared CSV for this model? Used by the new-data Lambda and the CLI.

The rules are the data contract's (contract/data.py, shipped in the Lambda bundle and next to train.py), so
a file accepted here is read by train.py with the same values, and every reason names the row, the column
and the problem. An accepted file goes to the training channel byte for byte.

Decisions on the variants the contract leaves open:
- accepted: `\\r\\n` line ends (csv readers treat them as `\\n`), a final line end or none, empty feature
  cells (missing), integer-valued decimals as codes or class indexes (`3.0`: pandas writes codes that way
  when a column has missing values, and XGBoost reads them as 3).
- rejected: a UTF-8 byte-order mark (`bom`: the file is not rewritten, and a BOM glued to the first
  label breaks readers that do not strip it), a carriage return without a line feed (`bare_cr`), empty
  lines anywhere but the very end (`blank_line`; no final empty row either), a header row, quoting errors,
  numbers that overflow float32 (`nan_or_inf`: train.py reads features as float32).

Stdlib only (runs in Lambda). A 100 MB file takes a few seconds: each line is first tried against one
compiled regex of the whole row; only lines that fail it are parsed cell by cell to say why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from contract.data import (
    PROBLEM_CODES,
    CsvCheck,
    Feature,
    Problem,
    ProblemCode,
    SchemaError,
    Task,
    int_range_pattern,
    line_blocks,
    parse_schema,
    schema_fingerprint,
)
from contract.data import Schema as SchemaSpec

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PROBLEMS",
    "DEFAULT_MAX_ROWS",
    "PROBLEM_CODES",
    "REPORT_FORMAT_VERSION",
    "Feature",
    "Limits",
    "Problem",
    "ProblemCode",
    "Report",
    "SchemaError",
    "SchemaSpec",
    "Task",
    "derived_max_rows",
    "int_range_pattern",
    "parse_schema",
    "report_for_size",
    "report_to_dict",
    "report_to_json",
    "schema_fingerprint",
    "validate_bytes",
    "validate_chunks",
    "validate_file",
]

REPORT_FORMAT_VERSION: Final = 1
DEFAULT_MAX_BYTES: Final = 100 * 1024 * 1024
DEFAULT_MAX_ROWS: Final = None  # derived from the size limit: see derived_max_rows
DEFAULT_MAX_PROBLEMS: Final = 20
BLOCK_BYTES: Final = 8 * 1024 * 1024  # validate_file reads this much at a time: memory stays flat


def derived_max_rows(max_bytes: int, schema: SchemaSpec) -> int:
    """The most rows a file within `max_bytes` can hold (a one-character label, empty features, `\\n`).

    A row cap derived this way never refuses a file the size limit allows, whatever its shape.
    """
    return max(1, max_bytes // (schema.column_count + 1))


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_rows: int | None = DEFAULT_MAX_ROWS  # None: derived_max_rows(max_bytes, schema)
    max_problems: int = DEFAULT_MAX_PROBLEMS  # the first N problems are reported; at least 1

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or (self.max_rows is not None and self.max_rows < 1) or self.max_problems < 1:
            raise ValueError("limits must be >= 1")

    def resolved(self, schema: SchemaSpec) -> Limits:
        """These limits with the row cap made explicit (the number the report and the sidecar show)."""
        if self.max_rows is not None:
            return self
        return dataclasses.replace(self, max_rows=derived_max_rows(self.max_bytes, schema))


@dataclass(frozen=True)
class Report:
    valid: bool
    problems: tuple[Problem, ...]
    truncated: bool  # more problems exist than `problems` lists; scanning stopped at the cap
    rows_checked: int
    size_bytes: int
    sha256: str | None  # of the original bytes; None when the file was refused unread (too large)
    schema_fingerprint: str
    limits: Limits

    def lines(self) -> list[str]:
        return [p.describe() for p in self.problems]


def report_for_size(
    size_bytes: int, schema: Mapping[str, Any] | SchemaSpec, limits: Limits = Limits()
) -> Report | None:
    """A `too_large` report for a file known only by its size (S3 ContentLength, os.stat); else None.

    Lets callers refuse an oversized object without downloading it.
    """
    spec = schema if isinstance(schema, SchemaSpec) else parse_schema(schema)
    limits = limits.resolved(spec)
    if size_bytes <= limits.max_bytes:
        return None
    problem = Problem("too_large", f"{size_bytes} bytes, over the limit of {limits.max_bytes} bytes")
    return Report(False, (problem,), False, 0, size_bytes, None, spec.fingerprint, limits)


def validate_bytes(data: bytes, schema: Mapping[str, Any] | SchemaSpec, *, limits: Limits = Limits()) -> Report:
    """Check a whole file's bytes against schema.json (parsed dict or SchemaSpec)."""
    spec = schema if isinstance(schema, SchemaSpec) else parse_schema(schema)
    limits = limits.resolved(spec)
    oversize = report_for_size(len(data), spec, limits)
    digest = hashlib.sha256(data).hexdigest()
    if oversize is not None:
        return dataclasses.replace(oversize, sha256=digest)
    check = CsvCheck(data, spec, max_rows=limits.max_rows)
    found, truncated = _collect(check.problems(), limits)
    return Report(not found, found, truncated, check.rows, len(data), digest, spec.fingerprint, limits)


def validate_file(
    path: str | os.PathLike[str],
    schema: Mapping[str, Any] | SchemaSpec,
    *,
    limits: Limits = Limits(),
    fast: Callable[[bytes, SchemaSpec], bool] | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> Report:
    """`validate_bytes` for a file on disk, in flat memory: the same report, read block by block.

    An oversized file is refused from its size alone. Otherwise the file is read twice in line-aligned
    blocks: once for the SHA-256 and the file-level checks, once for the rows. `fast(block, schema)` may vouch
    for a block of complete lines (`sagecycle validate` passes pyarrow's; see contract.data.CsvCheck).
    """
    spec = schema if isinstance(schema, SchemaSpec) else parse_schema(schema)
    limits = limits.resolved(spec)
    oversize = report_for_size(os.stat(path).st_size, spec, limits)
    if oversize is not None:
        return oversize
    digest = hashlib.sha256()
    hashing = [True]  # only the first pass hashes

    def blocks() -> Iterator[bytes]:
        with open(path, "rb") as handle:
            for block in line_blocks(handle.read, block_bytes):
                if hashing[0]:
                    digest.update(block)
                yield block
        hashing[0] = False

    vouch = None if fast is None else (lambda block: fast(block, spec))
    check = CsvCheck(blocks, spec, max_rows=limits.max_rows, fast=vouch)
    found, truncated = _collect(check.problems(), limits)
    return Report(not found, found, truncated, check.rows, check.size, digest.hexdigest(), spec.fingerprint, limits)


def validate_chunks(
    open_chunks: Callable[[], Iterable[bytes]],
    size_bytes: int,
    schema: Mapping[str, Any] | SchemaSpec,
    *,
    limits: Limits = Limits(),
    block_bytes: int = BLOCK_BYTES,
) -> Report:
    """`validate_file` for bytes that arrive as chunks of any size (S3's `iter_chunks`), in flat memory.

    `open_chunks()` yields the file's bytes from the start each time it is called (two passes, as
    `validate_file`; a third only to place a NUL or a non-UTF-8 byte): every call must yield the same bytes
    (an S3 object pinned by its version or ETag). `size_bytes` (ContentLength) refuses an oversized file
    unread. No fast check: this is the exact path the ingest function runs (no pyarrow in Lambda).
    """
    spec = schema if isinstance(schema, SchemaSpec) else parse_schema(schema)
    limits = limits.resolved(spec)
    oversize = report_for_size(size_bytes, spec, limits)
    if oversize is not None:
        return oversize
    digest = hashlib.sha256()
    hashing = [True]  # only the first pass hashes

    def blocks() -> Iterator[bytes]:
        for block in line_blocks(_reader(iter(open_chunks())), block_bytes):
            if hashing[0]:
                digest.update(block)
            yield block
        hashing[0] = False

    check = CsvCheck(blocks, spec, max_rows=limits.max_rows)
    found, truncated = _collect(check.problems(), limits)
    return Report(not found, found, truncated, check.rows, check.size, digest.hexdigest(), spec.fingerprint, limits)


def _reader(chunks: Iterator[bytes]) -> Callable[[int], bytes]:
    """`read(n)` over chunks of any size, for `line_blocks` (which joins them): b"" only at the end."""

    def read(_size: int) -> bytes:
        for chunk in chunks:
            if chunk:
                return bytes(chunk)
        return b""

    return read


def _collect(problems: Iterator[Problem], limits: Limits) -> tuple[tuple[Problem, ...], bool]:
    """The first `max_problems` problems, and whether there were more (scanning stops at the first beyond)."""
    found: list[Problem] = []
    for problem in problems:
        if len(found) >= limits.max_problems:
            return tuple(found), True
        found.append(problem)
    return tuple(found), False


# --------------------------------------------------------------------------------------------- sidecar


def report_to_dict(report: Report, *, source: str, checked_at: datetime | None = None) -> dict[str, Any]:
    """The machine-readable report: the quarantine sidecar the Lambda writes, and `sagecycle validate --json`."""
    when = (checked_at or datetime.now(UTC)).astimezone(UTC)
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "source": source,
        "valid": report.valid,
        "size_bytes": report.size_bytes,
        "sha256": report.sha256,
        "checked_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "schema_fingerprint": report.schema_fingerprint,
        "rows_checked": report.rows_checked,
        "problem_count": len(report.problems),
        "problems_truncated": report.truncated,
        "limits": {
            "max_bytes": report.limits.max_bytes,
            "max_rows": report.limits.max_rows,
            "max_problems": report.limits.max_problems,
        },
        "problems": [p.to_dict() for p in report.problems],
    }


def report_to_json(report: Report, *, source: str, checked_at: datetime | None = None) -> str:
    """`report_to_dict` as indented JSON text."""
    return json.dumps(report_to_dict(report, source=source, checked_at=checked_at), indent=2, ensure_ascii=False)
