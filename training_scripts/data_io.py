"""Reading prepared channels and schema.json (docs/artifacts.md), shared by prepare.py and train.py.

Runs inside the SageMaker XGBoost framework container, so it imports only the stdlib, numpy and pyarrow.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_FILE = "schema.json"
FORMAT_VERSION = 1
# objective -> task, the three objectives the contract knows
OBJECTIVES: dict[str, str] = {
    "binary:logistic": "binary",
    "multi:softprob": "multiclass",
    "reg:squarederror": "regression",
}
PARQUET_SUFFIXES = (".parquet", ".pq")
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"


class DataError(ValueError):
    """Input the job cannot use; the message names the file, the row and the problem."""


@dataclass(frozen=True)
class Schema:
    """schema.json, validated. `raw` is the document as read, written back unchanged into the model."""

    raw: dict[str, Any]
    objective: str
    task: str
    label_name: str
    classes: tuple[str, ...]
    feature_names: tuple[str, ...]
    feature_kinds: tuple[str, ...]  # "numeric" | "categorical", per feature
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def n_columns(self) -> int:
        """Columns of a prepared row: the label, then the features."""
        return 1 + len(self.feature_names)

    @property
    def xgb_feature_types(self) -> list[str]:
        """XGBoost's feature_types: 'c' makes the integer codes native categorical splits."""
        return ["c" if kind == "categorical" else "q" for kind in self.feature_kinds]


def schema_from_dict(doc: Any, source: str = SCHEMA_FILE) -> Schema:
    """Validate a schema document; DataError names what is wrong and where."""

    def bad(problem: str) -> DataError:
        return DataError(f"{source}: {problem}")

    if not isinstance(doc, dict):
        raise bad("the document is not a JSON object")
    if doc.get("format_version") != FORMAT_VERSION:
        raise bad(f"format_version is {doc.get('format_version')!r}, expected {FORMAT_VERSION}")
    objective = doc.get("objective")
    if objective not in OBJECTIVES:
        raise bad(f"objective {objective!r} is not one of {sorted(OBJECTIVES)}")
    label = doc.get("label")
    if not isinstance(label, dict) or not isinstance(label.get("name"), str):
        raise bad("label must be an object with a string 'name'")
    task = label.get("task", OBJECTIVES[objective])
    if task != OBJECTIVES[objective]:
        raise bad(f"label.task {task!r} does not match objective {objective!r}")
    classes = label.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise bad("label.classes must be a list of strings")
    if task == "binary" and len(classes) != 2:
        raise bad(f"a binary label needs exactly 2 classes, found {len(classes)}")
    if task == "multiclass" and len(classes) < 2:
        raise bad(f"a multiclass label needs at least 2 classes, found {len(classes)}")
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise bad("features must be a non-empty list")
    names: list[str] = []
    kinds: list[str] = []
    categories: dict[str, tuple[str, ...]] = {}
    for index, feature in enumerate(features):
        if not isinstance(feature, dict) or not isinstance(feature.get("name"), str):
            raise bad(f"features[{index}] must be an object with a string 'name'")
        kind = feature.get("type")
        if kind not in ("numeric", "categorical"):
            raise bad(f"feature {feature['name']!r} has type {kind!r}; expected 'numeric' or 'categorical'")
        if kind == "categorical":
            cats = feature.get("categories")
            if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
                raise bad(f"categorical feature {feature['name']!r} needs a 'categories' list of strings")
            categories[feature["name"]] = tuple(cats)
        names.append(feature["name"])
        kinds.append(kind)
    if len(set(names)) != len(names):
        raise bad("feature names are not unique")
    return Schema(
        raw=doc,
        objective=objective,
        task=task,
        label_name=label["name"],
        classes=tuple(classes),
        feature_names=tuple(names),
        feature_kinds=tuple(kinds),
        categories=categories,
    )


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
        table = read_parquet_file(path, n_columns, schema) if _is_parquet(path) else read_csv_file(path, n_columns)
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


def read_csv_file(path: Path, n_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, features) of one label-first headerless CSV file (optionally gzipped)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if path.stat().st_size == 0:
        return np.empty(0), np.empty((0, n_columns - 1), dtype=np.float32)
    names = [f"c{i}" for i in range(n_columns)]
    types = {name: (pa.float64() if i == 0 else pa.float32()) for i, name in enumerate(names)}
    try:
        source = pa.input_stream(str(path), compression="gzip" if _is_gzip(path) else None)
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=names),
            convert_options=pacsv.ConvertOptions(column_types=types, null_values=[""], quoted_strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        if "Empty CSV file" in str(exc):
            return np.empty(0), np.empty((0, n_columns - 1), dtype=np.float32)
        # The fast reader says *that* something is wrong; the slow scan says which row and why.
        raise _diagnose_csv(path, n_columns) or DataError(f"{path}: unreadable CSV: {exc}") from exc
    y = table.column(0).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    if n_columns > 1:
        X = np.column_stack([table.column(i).to_numpy(zero_copy_only=False) for i in range(1, n_columns)])
    else:
        X = np.empty((len(y), 0), dtype=np.float32)
    return y, X.astype(np.float32, copy=False)


def _iter_csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(row number counting non-empty lines from 1, cells) of a CSV file, gzip or not."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        row = 0
        for cells in csv.reader(handle):
            if not cells or cells == [""]:
                continue  # pyarrow skips empty lines too, so row numbers agree
            row += 1
            yield row, cells


def _is_number(cell: str) -> bool:
    if cell.strip() == "":
        return True  # missing value
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _diagnose_csv(path: Path, n_columns: int) -> DataError | None:
    """Find the first row that breaks the prepared-CSV convention and say what is wrong with it."""
    try:
        for row, cells in _iter_csv_rows(path):
            if row == 1 and sum(not _is_number(c) for c in cells) > len(cells) // 2:
                preview = ", ".join(repr(c) for c in cells[:4])
                return DataError(
                    f"{path}: row 1: looks like a header row ({preview}, ...); prepared CSV has no header, "
                    "the label first and then the features in schema order"
                )
            if len(cells) != n_columns:
                return DataError(
                    f"{path}: row {row}: has {len(cells)} fields, expected {n_columns} (the label + "
                    f"{n_columns - 1} features)"
                )
            for column, cell in enumerate(cells):
                if not _is_number(cell):
                    what = "the label" if column == 0 else f"feature {column}"
                    return DataError(
                        f"{path}: row {row}, column {column} ({what}): non-numeric value {cell[:40]!r}; "
                        "categorical features must be integer codes (run `sagecycle prepare`)"
                    )
    except (UnicodeDecodeError, OSError, EOFError, csv.Error) as exc:
        return DataError(f"{path}: not a readable UTF-8 CSV file ({exc})")
    return None


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
    """Labels must fit the objective: {0,1} for binary, 0..num_class-1 for multiclass, finite otherwise."""
    finite = np.isfinite(y)
    if not finite.all():
        row = int(np.argmin(finite))
        what = "missing" if np.isnan(y[row]) else f"not finite ({y[row]})"
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
    """No infinities; categorical cells are integer codes that index the feature's category list."""
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
