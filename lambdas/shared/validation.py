"""Is an uploaded data file a valid prepared CSV for this model? Used by the new-data Lambda and the CLI.

The contract is docs/artifacts.md ("Prepared data"): headerless UTF-8 CSV, column 0 the label, then the
features in schema order; numeric cells are decimals, categorical cells integer codes, missing = empty.
An accepted file goes to the training channel byte for byte, so this check accepts only what training
reads the same way, and says precisely what is wrong with anything else.

Decisions on the variants the contract leaves open:
- accepted: `\\r\\n` line ends (csv readers treat them as `\\n`), a final line end or none, empty feature
  cells (missing), integer-valued decimals as codes or class indexes (`3.0`: pandas writes codes that way
  when a column has missing values, and XGBoost reads them as 3).
- rejected: a UTF-8 byte-order mark (`bom`: the file is not rewritten, and a BOM glued to the first
  label breaks readers that do not strip it), a carriage return without a line feed (`bare_cr`), empty
  lines anywhere but the very end (`blank_line`; no final empty row either), a header row, quoting errors.

Stdlib only (runs in Lambda). A 100 MB file takes a few seconds: each line is first tried against one
compiled regex of the whole row; only lines that fail it are parsed cell by cell to say why.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

REPORT_FORMAT_VERSION: Final = 1
DEFAULT_MAX_BYTES: Final = 100 * 1024 * 1024
DEFAULT_MAX_ROWS: Final = 5_000_000
DEFAULT_MAX_PROBLEMS: Final = 20

# problem code -> what it means. Every code is an error: a file with any problem is invalid.
PROBLEM_CODES: Final[Mapping[str, str]] = {
    "too_large": "the file is larger than the size limit",
    "empty": "the file has no data rows",
    "binary_content": "the file is binary (NUL bytes, gzip, zip or parquet), not CSV text",
    "not_utf8": "the file is not valid UTF-8",
    "bom": "the file starts with a UTF-8 byte-order mark",
    "too_many_rows": "the file has more rows than the row limit",
    "blank_line": "an empty line before the end of the file",
    "bare_cr": "a carriage return that does not end a \\r\\n line end",
    "malformed_csv": "the line is not valid CSV (quoting)",
    "header_row": "the first row is a header; prepared files have none",
    "wrong_column_count": "the row does not have 1 label + one column per feature",
    "missing_label": "the label cell is empty",
    "label_out_of_domain": "the label is not a class index 0..k-1 of the schema",
    "non_numeric": "a numeric or categorical cell is not a number",
    "nan_or_inf": "a cell is NaN or infinite (missing values are empty cells)",
    "unknown_category_code": "a categorical cell is not an integer code 0..len(categories)-1",
}
ProblemCode = Literal[
    "too_large",
    "empty",
    "binary_content",
    "not_utf8",
    "bom",
    "too_many_rows",
    "blank_line",
    "bare_cr",
    "malformed_csv",
    "header_row",
    "wrong_column_count",
    "missing_label",
    "label_out_of_domain",
    "non_numeric",
    "nan_or_inf",
    "unknown_category_code",
]
Task = Literal["binary", "multiclass", "regression"]

_TASK_FAMILY: Final = {"binary": "binary", "multiclass": "multi", "regression": "reg"}
_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_NON_FINITE_WORDS: Final = frozenset(
    {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
)
# Fast-path cells: plain decimals without exponent (no overflow to inf possible), canonical integer codes.
# At most 300 integer digits: float() turns longer digit strings into inf.
_PLAIN_DECIMAL: Final = r"[-+]?(?:[0-9]{1,300}(?:\.[0-9]*)?|\.[0-9]+)"
_MAGIC: Final = ((b"\x1f\x8b", "gzip-compressed"), (b"PK\x03\x04", "a zip archive"), (b"PAR1", "a parquet file"))
_UTF16_BOMS: Final = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM: Final = b"\xef\xbb\xbf"


class SchemaError(ValueError):
    """schema.json is not a valid schema (docs/artifacts.md)."""


# ----------------------------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Feature:
    name: str
    type: Literal["numeric", "categorical"]
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class SchemaSpec:
    """The parts of schema.json a data check needs, plus a fingerprint of the whole document."""

    objective: str
    task: Task
    label_name: str
    classes: tuple[str, ...]
    features: tuple[Feature, ...]
    missing_tokens: tuple[str, ...]
    fingerprint: str
    line_pattern: re.Pattern[str] = field(compare=False, repr=False)

    @property
    def column_count(self) -> int:
        return 1 + len(self.features)

    def column_name(self, index: int) -> str:
        return self.label_name if index == 0 else self.features[index - 1].name


def schema_fingerprint(schema: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the canonical JSON of schema.json (key order and spacing do not matter)."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_schema(schema: Mapping[str, Any]) -> SchemaSpec:
    """Check a parsed schema.json and keep what validation needs; raises SchemaError naming the field."""
    if not isinstance(schema, Mapping):
        raise SchemaError("schema must be a JSON object")
    if schema.get("format_version") != 1:
        raise SchemaError(f"schema format_version must be 1, got {schema.get('format_version')!r}")
    objective = schema.get("objective")
    label = schema.get("label")
    if not isinstance(objective, str) or ":" not in objective:
        raise SchemaError(f"schema objective must be like 'binary:logistic', got {objective!r}")
    if not isinstance(label, Mapping):
        raise SchemaError("schema label must be an object with name, task and classes")
    task, label_name, classes = label.get("task"), label.get("name"), label.get("classes", [])
    if task not in _TASK_FAMILY:
        raise SchemaError(f"schema label.task must be binary, multiclass or regression, got {task!r}")
    if _TASK_FAMILY[task] != objective.split(":", 1)[0]:
        raise SchemaError(f"schema objective {objective!r} does not fit label.task {task!r}")
    if not isinstance(label_name, str) or not label_name:
        raise SchemaError("schema label.name must be a non-empty string")
    if not isinstance(classes, list):
        raise SchemaError("schema label.classes must be a list")
    wanted = {"binary": len(classes) == 2, "multiclass": len(classes) >= 2, "regression": not classes}[task]
    if not wanted:
        raise SchemaError(f"schema label.classes has {len(classes)} entries, which does not fit task {task!r}")
    raw_features = schema.get("features")
    if not isinstance(raw_features, list) or not raw_features:
        raise SchemaError("schema features must be a non-empty list")
    features: list[Feature] = []
    for i, item in enumerate(raw_features):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            raise SchemaError(f"schema features[{i}] needs a non-empty name")
        if item.get("type") == "numeric":
            features.append(Feature(item["name"], "numeric"))
        elif item.get("type") == "categorical":
            categories = item.get("categories")
            if not isinstance(categories, list) or not categories:
                raise SchemaError(f"schema features[{i}] ({item['name']}) needs a non-empty categories list")
            features.append(Feature(item["name"], "categorical", tuple(str(c) for c in categories)))
        else:
            raise SchemaError(f"schema features[{i}].type must be numeric or categorical, got {item.get('type')!r}")
    names = [label_name, *(f.name for f in features)]
    if len(set(names)) != len(names):
        raise SchemaError("schema label and feature names must be unique")
    tokens = schema.get("missing_tokens", [])
    if not isinstance(tokens, list):
        raise SchemaError("schema missing_tokens must be a list")
    spec_classes = tuple(str(c) for c in classes)
    return SchemaSpec(
        objective=objective,
        task=task,
        label_name=label_name,
        classes=spec_classes,
        features=tuple(features),
        missing_tokens=tuple(str(t) for t in tokens),
        fingerprint=schema_fingerprint(schema),
        line_pattern=_line_pattern(task, len(spec_classes), features),
    )


def int_range_pattern(count: int) -> str:
    """A regex matching exactly the canonical decimal integers 0..count-1 (count >= 1)."""
    if count < 1:
        raise ValueError("count must be >= 1")
    top = str(count - 1)
    alternatives = ["[0-9]" if width == 1 else f"[1-9][0-9]{{{width - 1}}}" for width in range(1, len(top))]
    alternatives += _up_to(top, leading=True)
    return "(?:" + "|".join(alternatives) + ")"


def _up_to(digits: str, *, leading: bool) -> list[str]:
    """Patterns for strings of len(digits) digits that are <= digits (no leading zero when `leading`)."""
    low = 1 if leading and len(digits) > 1 else 0
    first = int(digits[0])
    if len(digits) == 1:
        return [f"[{low}-{first}]"]
    parts = [f"[{low}-{first - 1}][0-9]{{{len(digits) - 1}}}"] if first > low else []
    parts.append(f"{first}(?:{'|'.join(_up_to(digits[1:], leading=False))})")
    return parts


def _line_pattern(task: str, n_classes: int, features: Sequence[Feature]) -> re.Pattern[str]:
    """One regex for a whole well-formed row; a match needs no further checks."""
    label = _PLAIN_DECIMAL if task == "regression" else int_range_pattern(n_classes)
    cells = [label]
    for feature in features:
        inner = _PLAIN_DECIMAL if feature.type == "numeric" else int_range_pattern(len(feature.categories))
        cells.append(f"(?:{inner})?")
    return re.compile(",".join(cells))


# --------------------------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One reason a file is invalid: where (1-based row, 0-based column) and what."""

    problem: str
    message: str
    row: int | None = None
    column: int | None = None
    column_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        column = None if self.column is None else {"index": self.column, "name": self.column_name}
        return {"row": self.row, "column": column, "problem": self.problem, "message": self.message}

    def describe(self) -> str:
        """`row R, column C (name): message`, the line the CLI prints and the Lambda logs."""
        if self.row is None:
            return f"file: {self.message}"
        if self.column is None:
            return f"row {self.row}: {self.message}"
        return f"row {self.row}, column {self.column} ({self.column_name}): {self.message}"


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_rows: int = DEFAULT_MAX_ROWS
    max_problems: int = DEFAULT_MAX_PROBLEMS  # the first N problems are reported; at least 1

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_rows < 1 or self.max_problems < 1:
            raise ValueError("limits must be >= 1")


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


class _Collector:
    def __init__(self, spec: SchemaSpec, cap: int) -> None:
        self.spec = spec
        self.cap = cap
        self.problems: list[Problem] = []
        self.truncated = False

    def add(self, code: ProblemCode, message: str, row: int | None = None, column: int | None = None) -> None:
        if len(self.problems) >= self.cap:
            self.truncated = True
            return
        name = None if column is None else self.spec.column_name(column)
        self.problems.append(Problem(code, message, row, column, name))


def report_for_size(
    size_bytes: int, schema: Mapping[str, Any] | SchemaSpec, limits: Limits = Limits()
) -> Report | None:
    """A `too_large` report for a file known only by its size (S3 ContentLength, os.stat); else None.

    Lets callers refuse an oversized object without downloading it.
    """
    spec = schema if isinstance(schema, SchemaSpec) else parse_schema(schema)
    if size_bytes <= limits.max_bytes:
        return None
    problem = Problem("too_large", f"{size_bytes} bytes, over the limit of {limits.max_bytes} bytes")
    return Report(False, (problem,), False, 0, size_bytes, None, spec.fingerprint, limits)


def validate_bytes(data: bytes, schema: Mapping[str, Any] | SchemaSpec, *, limits: Limits = Limits()) -> Report:
    """Check a whole file's bytes against schema.json (parsed dict or SchemaSpec)."""
    spec = schema if isinstance(schema, SchemaSpec) else parse_schema(schema)
    oversize = report_for_size(len(data), spec, limits)
    digest = hashlib.sha256(data).hexdigest()
    if oversize is not None:
        return dataclasses.replace(oversize, sha256=digest)
    found = _Collector(spec, limits.max_problems)
    rows = _check(data, spec, limits, found)
    problems = tuple(found.problems)
    return Report(not problems, problems, found.truncated, rows, len(data), digest, spec.fingerprint, limits)


def _check(raw: bytes, spec: SchemaSpec, limits: Limits, found: _Collector) -> int:
    """Record problems in `found`; returns the number of rows looked at."""
    if not raw:
        found.add("empty", "0 bytes: nothing to check")
        return 0
    for magic, what in _MAGIC:
        if raw.startswith(magic):
            found.add("binary_content", f"{what}, not CSV text; upload the uncompressed CSV")
            return 0
    if raw.startswith(_UTF16_BOMS):
        found.add("not_utf8", "UTF-16 (byte-order mark), not UTF-8; save it as UTF-8")
        return 0
    nul = raw.find(b"\x00")
    if nul >= 0:
        found.add("binary_content", "NUL byte: the file is binary, not CSV text", raw.count(b"\n", 0, nul) + 1)
        return 0
    start = 0
    if raw.startswith(_UTF8_BOM):
        # Reported, then checked without it, so one upload shows every problem at once.
        found.add("bom", "starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM", 1)
        start = len(_UTF8_BOM)
    try:
        text = (raw[start:] if start else raw).decode("utf-8")
    except UnicodeDecodeError as error:
        offset = start + error.start
        found.add(
            "not_utf8", f"byte 0x{raw[offset]:02x} at offset {offset} is not UTF-8", raw.count(b"\n", 0, offset) + 1
        )
        return 0
    if re.fullmatch(r"[\r\n]*", text):
        found.add("empty", "no data rows, only line ends")
        return 0
    return _check_lines(text, spec, limits, found)


def _check_lines(text: str, spec: SchemaSpec, limits: Limits, found: _Collector) -> int:
    fast = spec.line_pattern.fullmatch
    size, pos, row = len(text), 0, 0
    while pos < size and not found.truncated:
        end = text.find("\n", pos)
        if end < 0:
            end = size
        line = text[pos:end]
        pos = end + 1
        row += 1
        if row > limits.max_rows:
            found.add("too_many_rows", f"more than {limits.max_rows} rows; split the file", row)
            return row - 1
        if line.endswith("\r"):
            line = line[:-1]
        if not fast(line):
            _check_line(row, line, spec, found)
    return row


def _check_line(row: int, line: str, spec: SchemaSpec, found: _Collector) -> None:
    """The slow path: say exactly what is wrong with a line the row regex did not match."""
    if not line:
        found.add("blank_line", "empty line; remove it (missing values are empty cells, not empty rows)", row)
        return
    if "\r" in line:
        found.add("bare_cr", "carriage return inside the line; use \\n or \\r\\n line ends", row)
        return
    try:
        cells = next(csv.reader([line], strict=True))
    except csv.Error as error:
        found.add("malformed_csv", f"not valid CSV: {error}", row)
        return
    if row == 1 and _looks_like_header(cells, spec):
        found.add("header_row", "first row is a header; prepared files have no header row", row)
        return
    if len(cells) != spec.column_count:
        found.add(
            "wrong_column_count",
            f"{len(cells)} columns; expected {spec.column_count} (label + {len(spec.features)} features)",
            row,
        )
        return
    _check_label(row, cells[0], spec, found)
    for index, (cell, feature) in enumerate(zip(cells[1:], spec.features, strict=True), start=1):
        if cell == "":
            continue
        if feature.type == "numeric":
            _check_numeric(row, index, cell, spec, found)
        else:
            _check_categorical(row, index, cell, feature, found)


def _looks_like_header(cells: Sequence[str], spec: SchemaSpec) -> bool:
    names = {spec.label_name.lower(), *(f.name.lower() for f in spec.features)}
    if _number(cells[0]) is not None:
        return False
    texts = [c for c in cells if c.strip()]
    return any(c.strip().lower() in names for c in cells) or (
        len(texts) > 1 and all(_number(c) is None and c.strip().lower() not in _NON_FINITE_WORDS for c in texts)
    )


def _number(cell: str) -> float | None:
    """The value of a decimal cell (strict syntax: no spaces, `_`, nan or inf words), else None."""
    return float(cell) if _DECIMAL.fullmatch(cell) else None


def _check_label(row: int, cell: str, spec: SchemaSpec, found: _Collector) -> None:
    if cell == "":
        found.add("missing_label", "label is empty; every row needs a label", row, 0)
        return
    if cell.strip().lower() in _NON_FINITE_WORDS:
        found.add("nan_or_inf", f"label {cell!r} is not a finite number", row, 0)
        return
    value = _number(cell)
    if value is not None and not math.isfinite(value):
        found.add("nan_or_inf", f"label {cell!r} overflows to infinity", row, 0)
        return
    if spec.task == "regression":
        if value is None:
            found.add("non_numeric", f"label {cell!r} is not a number", row, 0)
        return
    k = len(spec.classes)
    if value is not None and value.is_integer() and 0 <= value < k:
        return
    hint = f" ({cell!r} is a class name: write its index {spec.classes.index(cell)})" if cell in spec.classes else ""
    found.add("label_out_of_domain", f"label {cell!r} is not a class index 0..{k - 1}{hint}", row, 0)


def _check_numeric(row: int, column: int, cell: str, spec: SchemaSpec, found: _Collector) -> None:
    if cell.strip().lower() in _NON_FINITE_WORDS:
        found.add(
            "nan_or_inf", f"{cell!r} is not a finite number; leave the cell empty for a missing value", row, column
        )
        return
    value = _number(cell)
    if value is None:
        if cell in spec.missing_tokens:
            hint = f"; {cell!r} is a raw missing token, prepared files leave the cell empty"
        elif _number(cell.strip()) is not None:
            hint = "; remove the surrounding spaces"
        else:
            hint = ""
        found.add("non_numeric", f"{cell!r} is not a number{hint}", row, column)
    elif not math.isfinite(value):
        found.add("nan_or_inf", f"{cell!r} overflows to infinity", row, column)


def _check_categorical(row: int, column: int, cell: str, feature: Feature, found: _Collector) -> None:
    n = len(feature.categories)
    if cell.strip().lower() in _NON_FINITE_WORDS:
        found.add(
            "nan_or_inf", f"{cell!r} is not a category code; leave the cell empty for a missing value", row, column
        )
        return
    value = _number(cell)
    if value is None:
        if cell in feature.categories:
            message = f"{cell!r} is a category name; write its code {feature.categories.index(cell)}"
        else:
            message = f"{cell!r} is not a category code (an integer 0..{n - 1})"
        found.add("non_numeric", message, row, column)
    elif not (value.is_integer() and 0 <= value < n):
        found.add("unknown_category_code", f"{cell!r} is not a category code 0..{n - 1} ({n} categories)", row, column)


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
