"""Reading prepared channels and schema.json (docs/artifacts.md), shared by prepare.py and train.py.

Runs inside the SageMaker XGBoost framework container, so it imports only the stdlib, numpy, pyarrow and
the data contract (contract/, shipped next to train.py in the source tarball). The contract decides every
verdict: a CSV file is read by pyarrow only when `contract.data.fast_path_safe` and the value checks below
prove pyarrow reads it exactly as `contract.data.CsvCheck` would; anything else is read by CsvCheck itself,
which names the first problem. Values are parsed as doubles and then rounded to float32, as the endpoint's
`inplace_predict` does with the same cells.

Every problem with the data raises `DataError`, whose message starts with the file, the row and the
problem: train.py writes it verbatim to the failure file, which SageMaker shows as the FailureReason.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contract import data

SCHEMA_FILE = data.SCHEMA_FILE
FORMAT_VERSION = data.FORMAT_VERSION
OBJECTIVES = data.OBJECTIVES  # objective -> task, the three objectives the contract knows
PARQUET_SUFFIXES = (".parquet", ".pq")
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"

Schema = data.Schema


class DataError(ValueError):
    """Input the job cannot use; the message names the file, the row and the problem.

    `problem` is the contract's problem code (contract.data.PROBLEM_CODES) when one applies.
    """

    def __init__(self, message: str, problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem


def schema_from_dict(doc: Any, source: str = SCHEMA_FILE) -> Schema:
    """Validate a schema document with the contract's rules; DataError names what is wrong and where."""
    try:
        return data.parse_schema(doc)
    except data.SchemaError as exc:
        raise DataError(f"{source}: {exc}") from None


def load_schema(path: str | os.PathLike[str]) -> Schema:
    """Read and validate schema.json."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read schema: {exc}") from exc
    return schema_from_dict(doc, str(path))


def find_schema(*directories: str | os.PathLike[str] | None) -> Path | None:
    """The first schema.json directly in, or anywhere under, the given directories (in order)."""
    for directory in directories:
        if not directory or not Path(directory).is_dir():
            continue
        direct = Path(directory) / SCHEMA_FILE
        if direct.is_file():
            return direct
        for candidate in sorted(Path(directory).rglob(SCHEMA_FILE)):
            if candidate.is_file():
                return candidate
    return None


def synthesize_schema(n_features: int, objective: str, num_class: int | None) -> dict[str, Any]:
    """A schema for data that came without one: all-numeric features f0..fN-1, classes '0'..'k-1'."""
    task = OBJECTIVES[objective]
    k = 2 if task == "binary" else (num_class or 0) if task == "multiclass" else 0
    return {
        "format_version": FORMAT_VERSION,
        "objective": objective,
        "label": {"name": "label", "task": task, "classes": [str(i) for i in range(k)]},
        "features": [{"name": f"f{i}", "type": "numeric"} for i in range(n_features)],
        "missing_tokens": [""],
    }


@dataclass
class Split:
    """One channel's rows: labels (float64) and features (float32, NaN = missing)."""

    y: np.ndarray
    X: np.ndarray
    files: list[Path]
    rows_per_file: list[int]

    @property
    def rows(self) -> int:
        return len(self.y)


def channel_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Data files of a channel, recursively, in key order; skips schema.json, hidden and `_`-marker files."""
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"{root}: channel directory does not exist")
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if not path.is_file() or path.name == SCHEMA_FILE or any(p.startswith((".", "_")) for p in relative):
            continue
        files.append(path)
    return files


def read_channel(
    directory: str | os.PathLike[str],
    n_columns: int,
    *,
    channel: str,
    schema: Schema | None = None,
    allow_empty: bool = False,
) -> Split:
    """All rows of a channel (every file in it, CSV or Parquet), checked for shape and numeric cells."""
    ys: list[np.ndarray] = []
    xs: list[np.ndarray] = []
    files = channel_files(directory)
    used: list[Path] = []
    for path in files:
        if _is_parquet(path):
            table = read_parquet_file(path, n_columns, schema)
        else:
            table = read_csv_file(path, n_columns, schema)
        if len(table[0]) == 0:
            continue
        ys.append(table[0])
        xs.append(table[1])
        used.append(path)
    if not ys:
        if allow_empty:
            return Split(np.empty(0), np.empty((0, n_columns - 1), dtype=np.float32), [], [])
        what = "no files" if not files else f"{len(files)} file(s) but no data rows"
        raise DataError(f"{directory}: channel '{channel}' is empty ({what})")
    return Split(np.concatenate(ys), np.concatenate(xs), used, [len(y) for y in ys])


def first_row_width(directory: str | os.PathLike[str]) -> int | None:
    """Number of cells in the first CSV row of a channel (for data that came without a schema)."""
    for path in channel_files(directory):
        if _is_parquet(path):
            import pyarrow.parquet as pq

            return len(pq.read_schema(path).names)
        for _, cells in _iter_csv_rows(path):
            return len(cells)
    return None


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return True
    with open(path, "rb") as handle:
        return handle.read(4) == _PARQUET_MAGIC


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def read_csv_file(path: Path, n_columns: int, schema: Schema | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels float64, features float32) of one label-first headerless CSV file (optionally gzipped).

    The contract's verdict, fast: pyarrow reads files whose bytes `contract.data.fast_path_safe` vouches
    for and whose values pass the contract's checks; any other file goes to `contract.data.CsvCheck`, which
    either names its first problem (DataError) or reads it. A file with no rows gives empty arrays.
    """
    if schema is None:  # data that came without a schema: numeric features, any numeric label
        schema = schema_from_dict(synthesize_schema(n_columns - 1, "reg:squarederror", None))
    if schema.n_columns != n_columns:
        raise ValueError(f"n_columns {n_columns} does not match the schema's {schema.n_columns}")
    raw = _read_bytes(path)
    if data.fast_path_safe(raw):
        table = _read_vectorised(raw, schema)
        if table is not None:
            return table
    check = data.CsvCheck(raw, schema)
    problem = next(check.problems(), None)
    if problem is not None:
        if problem.problem == "empty":
            return np.empty(0), np.empty((0, n_columns - 1), dtype=np.float32)
        raise DataError(f"{path}: {problem.describe()}", problem.problem)
    # A valid file the fast path could not vouch for (quoted cells, \r\n): the same reader, then the contract's.
    table = _read_vectorised(raw, schema)
    if table is not None:
        return table
    check = data.CsvCheck(raw, schema, collect=True)
    for _ in check.problems():
        raise AssertionError("CsvCheck found a problem on its second pass")  # pragma: no cover
    features = np.array(check.features, dtype=np.float64).reshape(len(check.labels), n_columns - 1)
    return np.array(check.labels, dtype=np.float64), features.astype(np.float32)


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw.startswith(_GZIP_MAGIC) else raw
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read the file: {exc}") from None


def block_is_valid(block: bytes, schema: Schema) -> bool:
    """True when pyarrow can vouch that a block of complete prepared-CSV lines breaks no contract rule.

    The fast hook of `contract.data.CsvCheck` for `sagecycle validate`: False only means "look closer".
    """
    return data.fast_path_safe(block) and _read_vectorised(block, schema) is not None


def _read_vectorised(raw: bytes, schema: Schema) -> tuple[np.ndarray, np.ndarray] | None:
    """pyarrow's parse when it provably equals the contract's, else None.

    pyarrow's float64 parser accepts exactly the contract's decimal grammar over FAST_PATH_BYTES and rounds
    like Python's float(); what remains to check here are the values: labels present and in their domain,
    every value finite once rounded to float32, category codes integers in range.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    n = schema.n_columns
    names = [f"c{i}" for i in range(n)]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(raw),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.float64()),
                null_values=[""],
                quoted_strings_can_be_null=True,
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.column(0).null_count:
        return None  # a missing label
    y = table.column(0).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    with np.errstate(over="ignore", invalid="ignore"):
        if not np.isfinite(y.astype(np.float32)).all():
            return None
        if schema.task != "regression":
            k = len(schema.classes)
            if ((y != np.floor(y)) | (y < 0) | (y >= k)).any():
                return None
        X = np.empty((len(y), n - 1), dtype=np.float32)
        for j, feature in enumerate(schema.features):
            column = table.column(j + 1)
            values = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            present = ~np.isnan(values)
            if int(present.size - present.sum()) != column.null_count:
                return None  # a NaN pyarrow parsed (it cannot, over FAST_PATH_BYTES; belt and braces)
            X[:, j] = values
            if np.isinf(X[:, j]).any():
                return None  # overflows float32
            if feature.categorical:
                codes = values[present]
                if codes.size and (
                    (codes != np.floor(codes)).any() or codes.min() < 0 or codes.max() >= len(feature.categories)
                ):
                    return None
    return y, X


def _iter_csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(row number counting non-empty lines from 1, cells) of a CSV file, gzip or not."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        row = 0
        for cells in csv.reader(handle):
            if not cells or cells == [""]:
                continue
            row += 1
            yield row, cells


def read_parquet_file(path: Path, n_columns: int, schema: Schema | None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, features) of a Parquet file whose columns carry the schema's names, label first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: unreadable Parquet file: {exc}") from exc
    if schema is not None:
        wanted = [schema.label_name, *schema.feature_names]
        missing = [name for name in wanted if name not in table.column_names]
        if missing:
            raise DataError(f"{path}: row 0 (Parquet schema): missing column(s) {missing}")
        table = table.select(wanted)
    elif table.num_columns != n_columns:
        raise DataError(f"{path}: row 0 (Parquet schema): has {table.num_columns} columns, expected {n_columns}")
    columns: list[np.ndarray] = []
    for index, name in enumerate(table.column_names):
        column = table.column(index)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        values = column.to_numpy(zero_copy_only=False)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            cats = schema.categories.get(name) if schema is not None and index > 0 else None
            if cats is None:
                raise DataError(f"{path}: column {name!r}: holds strings but must be numeric")
            values = _encode_categories(values, cats, path, name)
        elif not any(check(column.type) for check in (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)):
            raise DataError(f"{path}: column {name!r}: type {column.type} is not numeric")
        columns.append(np.asarray(values, dtype=np.float64))
    y = columns[0]
    X = np.column_stack(columns[1:]).astype(np.float32) if len(columns) > 1 else np.empty((len(y), 0), np.float32)
    return y, X


def _encode_categories(values: np.ndarray, categories: tuple[str, ...], path: Path, name: str) -> np.ndarray:
    index = {category: code for code, category in enumerate(categories)}
    codes = np.full(len(values), np.nan)
    for row, value in enumerate(values):
        if value is None or value == "":
            continue
        if value not in index:
            raise DataError(f"{path}: row {row + 1}, column {name!r}: unknown category {value!r}")
        codes[row] = index[value]
    return codes


def check_labels(y: np.ndarray, objective: str, num_class: int | None, path: Path | str, offset: int = 0) -> None:
    """Labels must fit the objective: {0,1} for binary, 0..num_class-1 for multiclass, finite in float32 otherwise.

    CSV files were already read under the contract; this is the check for Parquet channels.
    """
    with np.errstate(over="ignore"):
        finite = np.isfinite(y.astype(np.float32))  # the DMatrix holds labels as float32
    if not finite.all():
        row = int(np.argmin(finite))
        what = "missing" if np.isnan(y[row]) else f"not finite in float32 ({y[row]})"
        raise DataError(f"{path}: row {row + 1 + offset}: the label is {what}")
    task = OBJECTIVES[objective]
    if task == "binary":
        bad = (y != 0) & (y != 1)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{path}: row {row + 1 + offset}: label {_fmt(y[row])} is not 0 or 1 ({objective})")
    elif task == "multiclass":
        bad = y != np.round(y)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"{path}: row {row + 1 + offset}: label {_fmt(y[row])} is not an integer class index ({objective})"
            )
        k = num_class or 0
        bad = (y < 0) | (y >= k)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"{path}: row {row + 1 + offset}: label {_fmt(y[row])} is outside 0..{k - 1} (num_class={k})"
            )


def check_features(X: np.ndarray, schema: Schema, path: Path | str, offset: int = 0) -> None:
    """No infinities (X is float32: overflow shows as inf); categorical cells are codes into the category list."""
    infinite = np.isinf(X)
    if infinite.any():
        row, column = np.argwhere(infinite)[0]
        name = schema.feature_names[column]
        raise DataError(f"{path}: row {row + 1 + offset}, column {column + 1} ({name!r}): infinite value")
    for column, (name, kind) in enumerate(zip(schema.feature_names, schema.feature_kinds, strict=True)):
        if kind != "categorical":
            continue
        values = X[:, column]
        k = len(schema.categories[name])
        present = ~np.isnan(values)
        bad = present & ((values != np.round(values)) | (values < 0) | (values >= k))
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"{path}: row {row + 1 + offset}, column {column + 1} ({name!r}): {_fmt(values[row])} is not a "
                f"category code 0..{k - 1}"
            )


def check_split(split: Split, schema: Schema, objective: str, num_class: int | None) -> None:
    """Run the label and feature checks file by file, so errors name the right file and row."""
    start = 0
    # Rows were concatenated in file order; recover each file's slice for the messages.
    for path, rows in zip(split.files, split.rows_per_file, strict=True):
        check_labels(split.y[start : start + rows], objective, num_class, path)
        check_features(split.X[start : start + rows], schema, path)
        start += rows


def _fmt(value: float) -> str:
    return str(int(value)) if math.isfinite(value) and value == int(value) else repr(float(value))


def to_json(doc: Any) -> str:
    """Indented JSON without NaN (invalid JSON): NaN and infinities become null."""
    return json.dumps(_clean(doc), indent=2, allow_nan=False) + "\n"


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    return value


def write_text_atomic(path: Path, text: str | bytes) -> None:
    """Write then rename, so a reader (or a resumed job) never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
