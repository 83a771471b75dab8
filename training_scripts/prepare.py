"""`sagecycle prepare`: a raw CSV with a header -> label-first headerless CSV splits + schema.json.

The output follows docs/artifacts.md: OUTPUT/{train,validation,test}/ hold headerless CSV (or Parquet) with
the label first, categorical features as integer codes into the schema's category lists, and empty cells
for missing values; OUTPUT/schema.json (also copied into train/, where train.py looks) describes them.
Splits are seeded and stratified for classification: `--test-size` of all rows (default 0.2, the seed
tutorial's 80/20 split: 6,513 test rows of Adult), then `--validation-size` of the rest (default 0.1).

With no input file the embedded default data is used: UCI Adult ("Census Income"), Becker & Kohavi,
1996, https://doi.org/10.24432/C5XW20, licensed CC BY 4.0; 32,561 rows, target `income`.

Runs on the developer's machine (pandas, scikit-learn), not in the training container.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contract import data

try:
    from training_scripts import data_io
except ImportError:  # run from inside training_scripts/
    import data_io  # type: ignore[no-redef]

EMBEDDED_ADULT = Path(__file__).resolve().parent.parent / "sagecycle" / "data" / "adult.csv.gz"
ADULT_TARGET = "income"
DEFAULT_MISSING_TOKENS = ("", "?")
# An integer label with at most this many distinct values is taken as classes, more as a regression target.
MAX_INFERRED_CLASSES = 20
SPLITS = ("train", "validation", "test")


class PrepareError(ValueError):
    """The input cannot be prepared; the message says why."""


@dataclass(frozen=True)
class Prepared:
    """What `prepare` wrote: the output directory, schema, files per split and rows per split."""

    output_dir: Path
    schema_path: Path
    schema: dict[str, Any]
    files: dict[str, list[Path]]
    sizes: dict[str, int]
    dropped_rows: int

    def channel(self, split: str) -> Path:
        """The directory to hand to train.py (or upload) as the channel `split`."""
        return self.output_dir / split


def _open_text(path: Path) -> Any:
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if gzipped else open(path, encoding="utf-8")


def read_raw(path: Path, missing_tokens: Sequence[str]) -> pd.DataFrame:
    """All cells as stripped strings, missing values as NaN: the contract's missing tokens (the given ones, the
    empty cell and `nan`), the same ones the endpoint reads as missing."""
    if not path.is_file():
        raise PrepareError(f"{path}: no such file")
    try:
        with _open_text(path) as handle:
            frame = pd.read_csv(
                handle, dtype=str, keep_default_na=False, na_filter=False, skipinitialspace=True, engine="c"
            )
    except pd.errors.EmptyDataError:
        raise PrepareError(f"{path}: the file is empty (expected a header row and data rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise PrepareError(f"{path}: not a readable CSV file: {str(exc).strip()}") from None
    if frame.empty:
        raise PrepareError(f"{path}: has a header but no data rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    tokens = {t.strip() for t in missing_tokens} | {""}
    for column in frame.columns:
        values = frame[column].str.strip()
        missing = values.isin(tokens) | values.str.lower().eq(data.REQUEST_NAN_WORD) | values.isna()
        frame[column] = values.where(~missing, np.nan)
    return frame


def _numeric(values: pd.Series) -> pd.Series | None:
    """The column as floats if every present cell is a contract number (contract.data), else None.

    A column of decimals of which one overflows float32 is an error, not a categorical column: train.py and
    the endpoint read numbers as float32.
    """
    present = values.dropna()
    if not present.map(data.is_decimal).all():
        return None
    converted = values.astype(float)  # float() per cell: the correctly rounded double the readers get
    overflow = present[~present.map(lambda cell: data.parse_number(cell) is not None)]
    if len(overflow):
        where = f"column {values.name!r}: " if values.name is not None else ""
        raise PrepareError(f"{where}value {overflow.iloc[0]!r} overflows float32 (the largest is about 3.4e38)")
    return converted


def _class_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def infer_objective(labels: pd.Series) -> str:
    """binary for two distinct values; multiclass for strings or few integers; regression otherwise."""
    distinct = labels.dropna().unique()
    numbers = _numeric(labels)
    if len(distinct) == 2:
        return "binary:logistic"
    if numbers is None:
        return "multi:softprob"
    present = numbers.dropna()
    if (present == present.round()).all() and present.nunique() <= MAX_INFERRED_CLASSES:
        return "multi:softprob"
    return "reg:squarederror"


def _encode_label(labels: pd.Series, objective: str, target: str) -> tuple[np.ndarray, list[str]]:
    task = data_io.OBJECTIVES[objective]
    numbers = _numeric(labels)
    if task == "regression":
        if numbers is None:
            bad = labels[~_numeric_mask(labels)].iloc[0]
            raise PrepareError(f"target {target!r}: value {bad!r} is not a number, but the objective is {objective}")
        return numbers.to_numpy(np.float64), []
    if numbers is not None:  # numeric classes sort by value: "2" before "10"
        values = sorted(numbers.unique())
        classes = [_class_name(v) for v in values]
        codes = np.searchsorted(np.asarray(values), numbers.to_numpy())
    else:
        classes = sorted(labels.unique())
        codes = pd.Categorical(labels, categories=classes).codes
    if task == "binary" and len(classes) != 2:
        raise PrepareError(
            f"target {target!r} has {len(classes)} classes ({', '.join(classes[:5])}...), binary:logistic needs 2"
        )
    if len(classes) < 2:
        raise PrepareError(f"target {target!r} has a single value {classes[0]!r}; nothing to learn")
    return codes.astype(np.int64), classes


def _split_indices(
    y: np.ndarray, stratify: bool, test_size: float, validation_size: float, seed: int
) -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    try:
        if test_size:
            rest, test = train_test_split(
                index, test_size=test_size, random_state=seed, stratify=y if stratify else None
            )
        else:
            rest, test = index, index[:0]
        train, validation = train_test_split(
            rest, test_size=validation_size, random_state=seed, stratify=y[rest] if stratify else None
        )
    except ValueError as exc:
        raise PrepareError(
            f"cannot split {len(y)} rows (test {test_size}, validation {validation_size}): {exc}"
        ) from None
    return {"train": np.sort(train), "validation": np.sort(validation), "test": np.sort(test)}


def _size(text: str) -> float:
    """A split size: a fraction in (0, 1) or a row count >= 1."""
    value = float(text)
    if value < 0 or (value >= 1 and not value.is_integer()):
        raise argparse.ArgumentTypeError(f"{text!r} is neither a fraction in (0, 1) nor a row count")
    return int(value) if value >= 1 else value


def prepare(
    input_path: str | Path | None = None,
    *,
    output_dir: str | Path,
    target: str | None = None,
    objective: str | None = None,
    test_size: float = 0.2,
    validation_size: float = 0.1,
    seed: int = 42,
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
    missing_tokens: Sequence[str] = DEFAULT_MISSING_TOKENS,
    train_files: int = 1,
    file_format: str = "csv",
) -> Prepared:
    """Read a raw CSV, encode it, split it and write the prepared channels plus schema.json.

    Args:
        input_path: raw CSV with a header (gzip allowed); None = the embedded Adult data.
        target: label column; default `income` for Adult, else the last column.
        test_size / validation_size: fraction (or row count) of all rows / of the rest.
        train_files: write the train split as this many files (one per host for ShardedByS3Key).
    Returns:
        Prepared, with the files of each split and their row counts.
    """
    path = Path(input_path) if input_path is not None else EMBEDDED_ADULT
    frame = read_raw(path, missing_tokens)
    if target is None:
        target = ADULT_TARGET if input_path is None else str(frame.columns[-1])
    if target not in frame.columns:
        raise PrepareError(
            f"{path}: target column {target!r} is not in the header; columns: {', '.join(frame.columns)}"
        )
    for name in [*categorical, *drop]:
        if name not in frame.columns:
            raise PrepareError(f"{path}: column {name!r} is not in the header; columns: {', '.join(frame.columns)}")
    if objective is not None and objective not in data_io.OBJECTIVES:
        raise PrepareError(f"objective {objective!r} is not one of {', '.join(data_io.OBJECTIVES)}")
    if train_files < 1:
        raise PrepareError(f"train_files must be >= 1, got {train_files}")
    labels = frame[target]
    if objective != "reg:squarederror":
        # adult.test writes ">50K." where adult.data writes ">50K"
        labels = labels.where(_numeric_mask(labels), labels.str.rstrip("."))
    keep = labels.notna().to_numpy()
    dropped = int((~keep).sum())
    frame, labels = frame.loc[keep].reset_index(drop=True), labels[keep].reset_index(drop=True)
    if frame.empty:
        raise PrepareError(f"{path}: every row lacks the target {target!r}")
    objective = objective or infer_objective(labels)
    y, classes = _encode_label(labels, objective, target)

    features: list[dict[str, Any]] = []
    columns: dict[str, pd.Series] = {target: pd.Series(y)}
    for name in frame.columns:
        if name == target or name in drop:
            continue
        values = frame[name]
        numbers = None if name in categorical else _numeric(values)
        if numbers is not None:
            features.append({"name": name, "type": "numeric"})
            integral = numbers.dropna()
            columns[name] = numbers.astype("Int64") if (integral == integral.round()).all() else numbers
        else:
            cats = sorted(values.dropna().unique())
            features.append({"name": name, "type": "categorical", "categories": cats})
            codes = pd.Categorical(values, categories=cats).codes
            columns[name] = pd.Series(codes, dtype="Int64").mask(codes < 0)
    if not features:
        raise PrepareError(f"{path}: no feature columns besides the target {target!r}")
    schema = {
        "format_version": data_io.FORMAT_VERSION,
        "objective": objective,
        "label": {"name": target, "task": data_io.OBJECTIVES[objective], "classes": classes},
        "features": features,
        "missing_tokens": list(missing_tokens),
    }
    data_io.schema_from_dict(schema)  # what we write must pass our own reader
    table = pd.DataFrame(columns)
    stratify = data_io.OBJECTIVES[objective] != "regression"
    indices = _split_indices(y, stratify, test_size, validation_size, seed)
    return _write(Path(output_dir), table, schema, indices, train_files, file_format, dropped)


def _numeric_mask(labels: pd.Series) -> pd.Series:
    return labels.isna() | labels.map(lambda cell: isinstance(cell, str) and data.is_decimal(cell))


def _write(
    out: Path,
    table: pd.DataFrame,
    schema: dict[str, Any],
    indices: dict[str, np.ndarray],
    train_files: int,
    file_format: str,
    dropped: int,
) -> Prepared:
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {}
    for split in SPLITS:
        directory = out / split
        if directory.exists():
            shutil.rmtree(directory)  # stale part files would be read as data
        rows = indices[split]
        if len(rows) == 0:
            continue
        directory.mkdir()
        parts = np.array_split(rows, train_files) if split == "train" else [rows]
        files[split] = []
        for number, part in enumerate(parts):
            stem = split if len(parts) == 1 else f"{split}-{number:05d}"
            chunk = table.iloc[part]
            if file_format == "parquet":
                target = directory / f"{stem}.parquet"
                chunk.to_parquet(target, index=False)
            else:
                target = directory / f"{stem}.csv"
                chunk.to_csv(target, header=False, index=False, lineterminator="\n", na_rep="")
            files[split].append(target)
    text = data_io.to_json(schema)
    (out / data_io.SCHEMA_FILE).write_text(text, encoding="utf-8")
    (out / "train" / data_io.SCHEMA_FILE).write_text(text, encoding="utf-8")
    sizes = {split: len(indices[split]) for split in SPLITS if len(indices[split])}
    return Prepared(out, out / data_io.SCHEMA_FILE, schema, files, sizes, dropped)


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows defaults, except empty ones and those the help text already states."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action) or ""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sagecycle prepare",
        description="Raw CSV with a header -> label-first headerless splits + schema.json (docs/artifacts.md).",
        formatter_class=_Defaults,
    )
    parser.add_argument("input", nargs="?", help="raw CSV with a header, gzip allowed (default: embedded Adult)")
    parser.add_argument("--target", help="label column (default: income for Adult, else the last column)")
    parser.add_argument("-o", "--output", default="prepared", help="output directory (default: ./prepared)")
    parser.add_argument("--objective", choices=list(data_io.OBJECTIVES), help="default: inferred from the target")
    parser.add_argument("--test-size", type=_size, default=0.2, help="fraction or rows of all data (default 0.2)")
    parser.add_argument("--validation-size", type=_size, default=0.1, help="fraction or rows of the rest (0.1)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--categorical", nargs="*", default=[], help="treat these numeric columns as categorical")
    parser.add_argument("--drop", nargs="*", default=[], help="columns to leave out (ids, leaks)")
    parser.add_argument("--missing-tokens", default=",?", help="comma-separated tokens read as missing (',?')")
    parser.add_argument("--train-files", type=int, default=1, help="split train into N files (one per host)")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """`sagecycle prepare`; returns 0, or 2 with a message on stderr."""
    args = parse_args(argv)
    try:
        prepared = prepare(
            args.input,
            output_dir=args.output,
            target=args.target,
            objective=args.objective,
            test_size=args.test_size,
            validation_size=args.validation_size,
            seed=args.seed,
            categorical=args.categorical,
            drop=args.drop,
            missing_tokens=args.missing_tokens.split(","),
            train_files=args.train_files,
            file_format=args.format,
        )
    except PrepareError as exc:
        print(f"sagecycle prepare: error: {exc}", file=sys.stderr)
        return 2
    sizes = ", ".join(f"{split} {rows:,}" for split, rows in prepared.sizes.items())
    schema = prepared.schema
    print(
        f"prepared {sum(prepared.sizes.values()):,} rows (target {schema['label']['name']!r}, {schema['objective']}, "
        f"{len(schema['features'])} features): {sizes} -> {prepared.output_dir}/"
    )
    if prepared.dropped_rows:
        print(f"dropped {prepared.dropped_rows:,} rows without a target value")
    return 0


if __name__ == "__main__":
    sys.exit(main())
