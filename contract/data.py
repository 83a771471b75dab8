"""The data contract (docs/artifacts.md): schema.json, prepared CSV files and request cells. Stdlib only.

Every reader imports these rules, so none can drift from the others:
- `sagecycle validate` and the ingest function (lambdas/shared/validation.py) report `Problem`s from
  `CsvCheck`;
- train.py's reader (training_scripts/data_io.py) takes a vectorised fast path only where it provably gives
  the same values, and otherwise reads the file with `CsvCheck`;
- the endpoint (training_scripts/inference.py) reads request cells with `request_csv_cell`/`request_json_cell`;
- prepare.py decides numeric columns and missing values with `parse_number`/`is_missing`.

The rule they share: a file that passes validation trains, and a row the endpoint scores is a row training
reads with the same values (after the raw-to-prepared mapping prepare.py does: missing tokens become empty
cells, category names become their codes).

What a number is (one verdict everywhere):
- the ASCII decimal grammar `DECIMAL_PATTERN`: optional sign, digits with an optional point, an optional
  exponent. No spaces, no `_` separators, no non-ASCII digits, no hex, no nan/inf words (all of which
  Python's float() accepts and pyarrow refuses or reads otherwise);
- whose value, parsed to the nearest double and then rounded to float32 (what train.py's DMatrix and
  XGBoost's inplace_predict both do), is finite: `1e39` and `3.4028236e38` are refused everywhere.

Prepared files (training data): headerless UTF-8 CSV, label first, then the features in schema order;
missing = an empty cell (nothing else); categorical cells are integer codes 0..len(categories)-1 (`3.0`
too); labels are class indexes 0..k-1 for classification, numbers for regression.

Requests (the endpoint): the same numbers, plus the raw tokens prepare.py maps: surrounding whitespace is
stripped; an empty cell, a schema missing token or `nan` (any case; what numpy and the SDK's CSVSerializer
print for a missing float) is missing; in a categorical column a valid code wins, then a category name.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

SCHEMA_FILE: Final = "schema.json"
FORMAT_VERSION: Final = 1
# objective -> task: the three objectives train.py, the endpoint and validation know.
OBJECTIVES: Final[Mapping[str, str]] = {
    "binary:logistic": "binary",
    "multi:softprob": "multiclass",
    "reg:squarederror": "regression",
}
TASKS: Final = ("binary", "multiclass", "regression")
Task = Literal["binary", "multiclass", "regression"]

# A finite decimal. `[0-9]`, not `\d`: `\d` matches Arabic-Indic and other Unicode digits.
DECIMAL_PATTERN: Final = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_DECIMAL: Final = re.compile(DECIMAL_PATTERN)
# The largest finite float32; anything that rounds beyond it becomes inf in a DMatrix.
FLOAT32_MAX: Final = 3.4028234663852886e38
# Plain decimals that cannot leave float32's range (at most 38 integer digits, < 1e38), for whole-row regexes.
_PLAIN_DECIMAL: Final = r"[-+]?(?:[0-9]{1,38}(?:\.[0-9]*)?|\.[0-9]+)"
# Words float() and pyarrow read as NaN or infinity: never a value in a prepared file.
NON_FINITE_WORDS: Final = frozenset(
    {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
)
# A request cell that reads `nan` (any case) is missing: numpy and the SDK's serializers print NaN that way.
REQUEST_NAN_WORD: Final = "nan"
UTF8_BOM: Final = b"\xef\xbb\xbf"
_UTF16_BOMS: Final = (b"\xff\xfe", b"\xfe\xff")
_MAGIC: Final = ((b"\x1f\x8b", "gzip-compressed"), (b"PK\x03\x04", "a zip archive"), (b"PAR1", "a parquet file"))
_NAN: Final = float("nan")

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
    "nan_or_inf": "a cell is NaN or infinite, or overflows float32 (missing values are empty cells)",
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


class SchemaError(ValueError):
    """schema.json is not a valid schema (docs/artifacts.md); the message names the field."""


class CellError(ValueError):
    """One cell breaks the contract: `code` is a PROBLEM_CODES key, the message says why."""

    def __init__(self, code: ProblemCode, message: str) -> None:
        super().__init__(message)
        self.code: ProblemCode = code
        self.message = message


# ------------------------------------------------------------------------------------------------- numbers


def to_float32(value: float) -> float | None:
    """`value` rounded to float32 (ties to even, as numpy and XGBoost cast), or None when that is not finite."""
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        return None


def fits_float32(value: float) -> bool:
    """True when a double stays finite once rounded to float32 (NaN is not finite)."""
    return math.isfinite(value) and (abs(value) <= FLOAT32_MAX or to_float32(value) is not None)


def is_decimal(text: str) -> bool:
    """True when `text` is in the decimal grammar (whatever its value)."""
    return _DECIMAL.fullmatch(text) is not None


def parse_number(text: str) -> float | None:
    """The value of a contract number (decimal grammar, finite in float32), as a double; else None."""
    if _DECIMAL.fullmatch(text) is None:
        return None
    value = float(text)
    return value if fits_float32(value) else None


def _number_problem(text: str, what: str) -> CellError:
    """Why `text` is not a contract number (non_numeric, or nan_or_inf for words and overflow)."""
    if text.strip().lower() in NON_FINITE_WORDS:
        return CellError("nan_or_inf", f"{what}{text!r} is not a finite number")
    if _DECIMAL.fullmatch(text):
        return CellError("nan_or_inf", f"{what}{_show(text)} overflows float32 (the largest is about 3.4e38)")
    hint = "; remove the surrounding spaces" if text != text.strip() and is_decimal(text.strip()) else ""
    return CellError("non_numeric", f"{what}{_show(text)} is not a number{hint}")


def _show(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


# -------------------------------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Feature:
    name: str
    type: Literal["numeric", "categorical"]
    categories: tuple[str, ...] = ()

    @property
    def categorical(self) -> bool:
        return self.type == "categorical"


@dataclass(frozen=True)
class Schema:
    """schema.json, checked. `raw` is the document as read (train.py writes it back unchanged)."""

    raw: Mapping[str, Any] = field(compare=False, repr=False)
    objective: str
    task: Task
    label_name: str
    classes: tuple[str, ...]
    features: tuple[Feature, ...]
    missing_tokens: tuple[str, ...]
    fingerprint: str
    line_pattern: re.Pattern[str] = field(compare=False, repr=False)
    # Request-time lookups, built once.
    missing_set: frozenset[str] = field(compare=False, repr=False)
    category_codes: tuple[Mapping[str, int] | None, ...] = field(compare=False, repr=False)

    @property
    def column_count(self) -> int:
        """Columns of a prepared row: the label, then the features."""
        return 1 + len(self.features)

    n_columns = column_count

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def feature_kinds(self) -> tuple[str, ...]:
        return tuple(f.type for f in self.features)

    @property
    def categories(self) -> dict[str, tuple[str, ...]]:
        """Category lists of the categorical features, by name."""
        return {f.name: f.categories for f in self.features if f.categorical}

    @property
    def xgb_feature_types(self) -> list[str]:
        """XGBoost's feature_types: 'c' makes the integer codes native categorical splits."""
        return ["c" if f.categorical else "q" for f in self.features]

    def column_name(self, index: int) -> str:
        """Prepared column `index` (0 = the label)."""
        return self.label_name if index == 0 else self.features[index - 1].name


def schema_fingerprint(schema: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the canonical JSON of schema.json (key order and spacing do not matter)."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def parse_schema(doc: Any) -> Schema:
    """Check a parsed schema.json and keep what the readers need; raises SchemaError naming the field.

    Variants accepted everywhere: `label.task` may be left out (the objective implies it); `missing_tokens`
    may be left out (none besides the empty cell); `label.classes` may be left out for regression.
    """
    if not isinstance(doc, Mapping):
        raise SchemaError("schema must be a JSON object")
    version = doc.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise SchemaError(f"schema format_version must be {FORMAT_VERSION}, got {version!r}")
    objective = doc.get("objective")
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise SchemaError(f"schema objective {objective!r} is not one of {', '.join(OBJECTIVES)}")
    label = doc.get("label")
    if not isinstance(label, Mapping):
        raise SchemaError("schema label must be an object with name, task and classes")
    task = label.get("task", OBJECTIVES[objective])
    if task not in TASKS:
        raise SchemaError(f"schema label.task must be binary, multiclass or regression, got {task!r}")
    if task != OBJECTIVES[objective]:
        raise SchemaError(f"schema objective {objective!r} does not fit label.task {task!r}")
    label_name = label.get("name")
    if not isinstance(label_name, str) or not label_name:
        raise SchemaError("schema label.name must be a non-empty string")
    classes = label.get("classes", [])
    if not _strings(classes):
        raise SchemaError("schema label.classes must be a list of strings")
    if len(set(classes)) != len(classes):
        raise SchemaError("schema label.classes must be unique")
    wanted = {"binary": len(classes) == 2, "multiclass": len(classes) >= 2, "regression": not classes}[task]
    if not wanted:
        raise SchemaError(f"schema label.classes has {len(classes)} entries, which does not fit task {task!r}")
    tokens = doc.get("missing_tokens", [])
    if not _strings(tokens):
        raise SchemaError("schema missing_tokens must be a list of strings")
    missing = frozenset(t.strip() for t in tokens) | {""}
    for token in missing:
        # A token that reads as a number would mean two things: prepare.py's missing value and the number.
        if is_decimal(token):
            raise SchemaError(f"schema missing_tokens: {token!r} reads as a number; a missing token must not")
    raw_features = doc.get("features")
    if not isinstance(raw_features, list) or not raw_features:
        raise SchemaError("schema features must be a non-empty list")
    features: list[Feature] = []
    for i, item in enumerate(raw_features):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            raise SchemaError(f"schema features[{i}] needs a non-empty name")
        name = item["name"]
        if item.get("type") == "numeric":
            features.append(Feature(name, "numeric"))
        elif item.get("type") == "categorical":
            categories = item.get("categories")
            if not _strings(categories) or not categories:
                raise SchemaError(f"schema features[{i}] ({name}) needs a non-empty categories list of strings")
            if len(set(categories)) != len(categories):
                raise SchemaError(f"schema features[{i}] ({name}) categories must be unique")
            clash = sorted(c for c in categories if c.strip() in missing or c.strip().lower() == REQUEST_NAN_WORD)
            if clash:
                raise SchemaError(f"schema features[{i}] ({name}) category {clash[0]!r} is also a missing token")
            features.append(Feature(name, "categorical", tuple(categories)))
        else:
            raise SchemaError(f"schema features[{i}].type must be numeric or categorical, got {item.get('type')!r}")
    names = [label_name, *(f.name for f in features)]
    if len(set(names)) != len(names):
        raise SchemaError("schema label and feature names must be unique")
    return Schema(
        raw=doc,
        objective=objective,
        task=task,
        label_name=label_name,
        classes=tuple(classes),
        features=tuple(features),
        missing_tokens=tuple(tokens),
        fingerprint=schema_fingerprint(doc),
        line_pattern=_line_pattern(task, len(classes), features),
        missing_set=missing,
        category_codes=tuple(
            {c: code for code, c in enumerate(f.categories)} if f.categorical else None for f in features
        ),
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
    """One regex for a whole well-formed prepared row; a match needs no further checks."""
    label = _PLAIN_DECIMAL if task == "regression" else int_range_pattern(n_classes)
    cells = [label]
    for feature in features:
        inner = int_range_pattern(len(feature.categories)) if feature.categorical else _PLAIN_DECIMAL
        cells.append(f"(?:{inner})?")
    return re.compile(",".join(cells))


# ------------------------------------------------------------------------------------- prepared cells


def prepared_label(cell: str, schema: Schema) -> float:
    """The label of a prepared row, or CellError: a class index 0..k-1, or a number for regression."""
    if cell == "":
        raise CellError("missing_label", "label is empty; every row needs a label")
    value = parse_number(cell)
    if value is None:
        problem = _number_problem(cell, "label ")
        if problem.code == "nan_or_inf" or schema.task == "regression":
            raise problem
    if schema.task == "regression":
        return value  # type: ignore[return-value]
    k = len(schema.classes)
    if value is not None and value.is_integer() and 0 <= value < k:
        return value
    hint = (
        f" ({cell!r} is a class name: write its index {schema.classes.index(cell)})" if cell in schema.classes else ""
    )
    raise CellError("label_out_of_domain", f"label {_show(cell)} is not a class index 0..{k - 1}{hint}")


def prepared_feature(cell: str, schema: Schema, index: int) -> float:
    """Feature `index` (0-based) of a prepared row: NaN for an empty cell, else its value; or CellError."""
    if cell == "":
        return _NAN
    feature = schema.features[index]
    value = parse_number(cell)
    if not feature.categorical:
        if value is not None:
            return value
        problem = _number_problem(cell, "")
        if problem.code == "non_numeric" and cell.strip() in schema.missing_set:
            problem = CellError("non_numeric", f"{cell!r} is a raw missing token; prepared files leave the cell empty")
        elif problem.code == "nan_or_inf" and cell.strip().lower() in NON_FINITE_WORDS:
            problem = CellError(
                "nan_or_inf", f"{cell!r} is not a finite number; leave the cell empty for a missing value"
            )
        raise problem
    n = len(feature.categories)
    if value is not None and value.is_integer() and 0 <= value < n:
        return value
    if cell.strip().lower() in NON_FINITE_WORDS:
        raise CellError("nan_or_inf", f"{cell!r} is not a category code; leave the cell empty for a missing value")
    if is_decimal(cell):
        raise CellError("unknown_category_code", f"{_show(cell)} is not a category code 0..{n - 1} ({n} categories)")
    if cell in feature.categories:
        raise CellError("non_numeric", f"{cell!r} is a category name; write its code {feature.categories.index(cell)}")
    raise CellError("non_numeric", f"{_show(cell)} is not a category code (an integer 0..{n - 1})")


# -------------------------------------------------------------------------------------------- request cells


def is_missing(token: str, schema: Schema) -> bool:
    """A stripped raw or request token that means "missing": empty, a schema missing token, or `nan`."""
    return token in schema.missing_set or token.lower() == REQUEST_NAN_WORD


def request_csv_cell(cell: str, schema: Schema, index: int) -> float:
    """A request's CSV cell for feature `index`: its value, NaN when missing, or CellError.

    The raw-to-prepared mapping of prepare.py, then the prepared rules: surrounding whitespace is stripped; a
    missing token is NaN; a numeric column takes a contract number; a categorical column takes a valid code
    (a number), else a category name.
    """
    token = cell.strip()
    if is_missing(token, schema):
        return _NAN
    value = parse_number(token)
    codes = schema.category_codes[index]
    if codes is None:
        if value is None:
            raise _number_problem(token, "")
        return value
    if value is not None and value.is_integer() and 0 <= value < len(codes):
        return value
    code = codes.get(token)
    if code is not None:
        return float(code)
    raise _unknown_category(schema, index, _show(cell))


def request_json_cell(value: Any, schema: Schema, index: int) -> float:
    """A JSON request value for feature `index`: null/NaN is missing; a number is a value or a category code;
    a string is a category name first, else read like a CSV cell. Anything else is a CellError."""
    kind = type(value)
    codes = schema.category_codes[index]
    if kind is str:
        if codes is not None:
            code = codes.get(value)
            if code is not None:
                return float(code)
        return request_csv_cell(value, schema, index)
    if value is None:
        return _NAN
    if kind is int or kind is float:
        try:
            number = float(value)
        except OverflowError:  # an integer with hundreds of digits
            raise CellError(
                "nan_or_inf", f"{_show(str(value))} overflows float32 (the largest is about 3.4e38)"
            ) from None
        if number != number:
            return _NAN
        if codes is None:
            if not fits_float32(number):
                raise CellError("nan_or_inf", f"{value!r} is not a finite float32 number")
            return number
        if number.is_integer() and 0 <= number < len(codes):
            return number
        raise _unknown_category(schema, index, repr(value))
    raise CellError("non_numeric", f"expected a number, a string or null, got {_type_name(value)}")


def _unknown_category(schema: Schema, index: int, shown: str) -> CellError:
    cats = schema.features[index].categories
    preview = ", ".join(repr(c) for c in cats[:6]) + (f", ... ({len(cats)} in all)" if len(cats) > 6 else "")
    return CellError(
        "unknown_category_code",
        f"unknown category {shown}; expected one of {preview} or an integer code 0-{len(cats) - 1}",
    )


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean"}.get(type(value), type(value).__name__)


def prepare_token(raw: str, schema: Schema, index: int) -> str:
    """The prepared cell prepare.py writes for one raw value of feature `index` (strip, missing -> "", name ->
    code). A request cell the endpoint accepts maps to a prepared cell training reads with the same value."""
    token = raw.strip()
    if is_missing(token, schema):
        return ""
    codes = schema.category_codes[index]
    if codes is not None:
        value = parse_number(token)
        if not (value is not None and value.is_integer() and 0 <= value < len(codes)) and token in codes:
            return str(codes[token])
    return token


# -------------------------------------------------------------------------------------------------- files


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
        """`row R, column C (name): message`: the line the CLI prints, the Lambda logs and train.py fails with."""
        if self.row is None:
            return f"file: {self.message}"
        if self.column is None:
            return f"row {self.row}: {self.message}"
        return f"row {self.row}, column {self.column} ({self.column_name}): {self.message}"


class CsvCheck:
    """Check (and optionally read) a whole prepared CSV file: the one exact reader.

    The file is its bytes, or a function that opens it afresh as an iterable of line-aligned blocks (see
    `line_blocks`; two passes are made: file-level checks, then rows), so a large file is checked in flat
    memory with the very same problems. `problems()` yields every problem in file order; `rows` counts the
    rows looked at so far. `fast`, when given, may vouch for a whole block of complete lines (it must only
    say True for blocks CsvCheck finds nothing wrong with); such blocks are counted, not parsed. With
    `collect=True` the values of rows without problems are kept in `labels` and `features` (NaN = missing),
    which is how train.py reads a file its fast path cannot vouch for. A file that is `empty` has no rows.
    """

    def __init__(
        self,
        raw: bytes | Callable[[], Iterable[bytes]],
        schema: Schema,
        *,
        max_rows: int | None = None,
        collect: bool = False,
        fast: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.blocks: Callable[[], Iterable[bytes]] = (lambda: (raw,)) if isinstance(raw, bytes) else raw
        self.schema, self.max_rows, self.collect, self.fast = schema, max_rows, collect, fast
        self.rows = 0
        self.size = 0  # bytes seen by the first pass
        self.labels: list[float] = []
        self.features: list[list[float]] = []

    def _problem(self, code: ProblemCode, message: str, row: int | None = None, column: int | None = None) -> Problem:
        name = None if column is None else self.schema.column_name(column)
        return Problem(code, message, row, column, name)

    def problems(self) -> Iterator[Problem]:
        verdict = self._file_level()
        if isinstance(verdict, Problem):
            yield verdict
            return
        bom, content = verdict
        if bom:
            # Reported, then checked without it, so one upload shows every problem at once.
            yield self._problem("bom", "starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM", 1)
        if not content:
            yield self._problem("empty", "no data rows, only line ends")
            return
        first = True
        for block in self.blocks():
            if first and bom:
                block = block[len(UTF8_BOM) :]
            first = False
            if not block:
                continue
            lines = block.count(b"\n") + (not block.endswith(b"\n"))
            fits = self.max_rows is None or self.rows + lines <= self.max_rows
            if fits and not self.collect and self.fast is not None and self.fast(block):
                self.rows += lines
                continue
            for problem in self.lines(block.decode("utf-8")):
                yield problem
                if problem.problem == "too_many_rows":
                    return

    def _file_level(self) -> Problem | tuple[bool, bool]:
        """The first pass: a problem that stops the check, else (starts with a BOM, has more than line ends)."""
        size = 0
        bom = content = False
        stop: Problem | None = None  # a verdict from the first bytes; the pass still reads on (the caller hashes)
        nul: int | None = None  # offset
        bad: tuple[int, int] | None = None  # (offset, byte)
        for block in self.blocks():
            if stop is not None:
                size += len(block)
                continue
            if not size:
                bom = block.startswith(UTF8_BOM)
                for magic, what in _MAGIC:
                    if block.startswith(magic):
                        stop = self._problem("binary_content", f"{what}, not CSV text; upload the uncompressed CSV")
                if block.startswith(_UTF16_BOMS):
                    stop = self._problem("not_utf8", "UTF-16 (byte-order mark), not UTF-8; save it as UTF-8")
                if stop is not None:
                    size += len(block)
                    continue
            skip = len(UTF8_BOM) if bom and not size else 0
            at = block.find(b"\x00") if nul is None else -1
            if at >= 0:
                nul = size + at
            if bad is None and nul is None and not block.isascii():  # ASCII is UTF-8: skip the decode
                try:
                    block[skip:].decode("utf-8")
                except UnicodeDecodeError as error:
                    at = skip + error.start
                    bad = (size + at, block[at])
            content = content or bool(block[skip:].translate(None, b"\r\n"))
            size += len(block)
        self.size = size
        if stop is not None:
            return stop
        if not size:
            return self._problem("empty", "0 bytes: nothing to check")
        if nul is not None:
            return self._problem("binary_content", "NUL byte: the file is binary, not CSV text", self._row_at(nul))
        if bad is not None:
            message = f"byte 0x{bad[1]:02x} at offset {bad[0]} is not UTF-8"
            return self._problem("not_utf8", message, self._row_at(bad[0]))
        return bom, content

    def _row_at(self, offset: int) -> int:
        """The 1-based row holding byte `offset` (read again: only a refused file needs it)."""
        newlines = start = 0
        for block in self.blocks():
            if start + len(block) > offset:
                return newlines + block.count(b"\n", 0, offset - start) + 1
            newlines += block.count(b"\n")
            start += len(block)
        return newlines + 1

    def lines(self, text: str) -> Iterator[Problem]:
        """Check the complete lines of `text`, which continue the file after `rows` rows."""
        fast = self.schema.line_pattern.fullmatch
        size, pos, row = len(text), 0, self.rows
        while pos < size:
            end = text.find("\n", pos)
            if end < 0:
                end = size
            line = text[pos:end]
            pos = end + 1
            row += 1
            self.rows = row
            if self.max_rows is not None and row > self.max_rows:
                self.rows = row - 1
                yield self._problem("too_many_rows", f"more than {self.max_rows} rows; split the file", row)
                return
            if line.endswith("\r"):
                line = line[:-1]
            if fast(line):
                if self.collect:
                    cells = line.split(",")
                    self.labels.append(float(cells[0]))
                    self.features.append([float(c) if c else _NAN for c in cells[1:]])
            else:
                yield from self._line(row, line)

    def _line(self, row: int, line: str) -> Iterator[Problem]:
        """The slow path: say exactly what is wrong with a line the row regex did not match."""
        schema = self.schema
        if not line:
            yield self._problem(
                "blank_line", "empty line; remove it (missing values are empty cells, not empty rows)", row
            )
            return
        if "\r" in line:
            yield self._problem("bare_cr", "carriage return inside the line; use \\n or \\r\\n line ends", row)
            return
        try:
            cells = next(csv.reader([line], strict=True))
        except csv.Error as error:
            yield self._problem("malformed_csv", f"not valid CSV: {error}", row)
            return
        if row == 1 and looks_like_header(cells, schema):
            yield self._problem("header_row", "first row is a header; prepared files have no header row", row)
            return
        if len(cells) != schema.column_count:
            yield self._problem(
                "wrong_column_count",
                f"{len(cells)} columns; expected {schema.column_count} (label + {len(schema.features)} features)",
                row,
            )
            return
        bad = False
        label = _NAN
        try:
            label = prepared_label(cells[0], schema)
        except CellError as error:
            bad = True
            yield self._problem(error.code, error.message, row, 0)
        values: list[float] = []
        for index, cell in enumerate(cells[1:]):
            try:
                values.append(prepared_feature(cell, schema, index))
            except CellError as error:
                bad = True
                yield self._problem(error.code, error.message, row, index + 1)
        if self.collect and not bad:
            self.labels.append(label)
            self.features.append(values)


def looks_like_header(cells: Sequence[str], schema: Schema) -> bool:
    """A first row that names columns, or is all text, is a header (a prepared file has none)."""
    names = {schema.label_name.lower(), *(f.name.lower() for f in schema.features)}
    if is_decimal(cells[0]):
        return False
    texts = [c for c in cells if c.strip()]
    return any(c.strip().lower() in names for c in cells) or (
        len(texts) > 1 and all(not is_decimal(c) and c.strip().lower() not in NON_FINITE_WORDS for c in texts)
    )


def line_blocks(read: Callable[[int], bytes], size: int = 16 * 1024 * 1024) -> Iterator[bytes]:
    """Blocks of about `size` bytes from `read(n)` (a file's read, S3's iter_chunks), each ending after a line end
    (except the last), so every block decodes and checks on its own. A line longer than `size` is one block."""
    rest = b""
    while True:
        chunk = read(size)
        if not chunk:
            if rest:
                yield rest
            return
        joined = rest + chunk
        cut = joined.rfind(b"\n") + 1
        if cut:
            yield joined[:cut]
            rest = joined[cut:]
        else:
            rest = joined


def first_problem(raw: bytes, schema: Schema) -> Problem | None:
    """The first problem of a file's bytes, or None when it is a valid prepared file."""
    return next(CsvCheck(raw, schema).problems(), None)


# Bytes a prepared file may hold for train.py's vectorised reader to be exact without a second look: digits,
# signs, points, exponents, commas and line ends. Any other byte (spaces, quotes, letters of nan/inf words,
# a BOM, non-ASCII digits) sends the file to CsvCheck.
FAST_PATH_BYTES: Final = b"0123456789+-.eE,\n\r"


def fast_path_safe(raw: bytes) -> bool:
    """True when a vectorised CSV reader that accepts the decimal grammar reads `raw` exactly like CsvCheck.

    Holds only the bytes of FAST_PATH_BYTES, every carriage return ends a `\\r\\n`, and no line is empty (a
    reader that skips blank lines would otherwise accept what CsvCheck refuses).
    """
    if not raw or raw.translate(None, FAST_PATH_BYTES):
        return False
    body = raw
    if b"\r" in raw:
        if raw.count(b"\r") != raw.count(b"\r\n"):
            return False
        body = raw.replace(b"\r\n", b"\n")
    return not (body.startswith(b"\n") or b"\n\n" in body)
