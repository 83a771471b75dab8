"""Generated Adult-shaped data for bench/scale.py: the schema every section uses, and prepared CSV files
(label first, no header, categories as codes, 2% of the feature cells empty) of a chosen size, written in
blocks so a 400 MB file never sits in memory. Heavy imports stay inside the functions: the measured
processes import this module too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.adult import ADULT

BLOCK_ROWS = 100_000  # about 4 MB of CSV: the most a size-capped file overshoots before it is cut


def adult_schema() -> dict[str, Any]:
    """schema.json (docs/artifacts.md) for the Adult columns, categories named `<column>_<i>`."""
    features = [
        {"name": n, "type": "categorical", "categories": [f"{n}_{i}" for i in range(k)]}
        if k
        else {"name": n, "type": "numeric"}
        for n, k in ADULT
    ]
    label = {"name": "income", "task": "binary", "classes": ["<=50K", ">50K"]}
    return {
        "format_version": 1,
        "objective": "binary:logistic",
        "label": label,
        "features": features,
        "missing_tokens": ["", "?"],
    }


def prepared_block(rows: int, seed: int) -> bytes:
    """`rows` prepared CSV rows: the label depends on a few features (so a model has something to learn)."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for name, k in ADULT:
        if k:
            weights = np.linspace(2.0, 1.0, k)
            values: Any = rng.choice(k, size=rows, p=weights / weights.sum())
        elif name == "fnlwgt":
            values = rng.integers(12_000, 1_500_000, rows)
        elif name.startswith("capital"):
            values = np.where(rng.random(rows) < 0.1, rng.integers(1, 99_999, rows), 0)
        elif name == "education_num":
            values = rng.integers(1, 17, rows)
        elif name == "hours_per_week":
            values = np.round(np.clip(rng.normal(40, 12, rows), 1, 99) * 2) / 2  # some halves: decimals too
        else:
            values = np.clip(np.round(rng.normal(40, 13, rows)), 17, 90).astype(np.int64)
        columns[name] = values
    score = (
        (columns["age"] - 40) / 13
        + (columns["education_num"] - 7) / 5
        + (columns["hours_per_week"] - 40) / 12
        + 2.0 * (columns["capital_gain"] > 0)
        - 0.8 * (columns["marital_status"] > 1)
        + 0.5 * columns["sex"]
        - 1.5
    )
    label = (rng.random(rows) < 1 / (1 + np.exp(-score))).astype(np.int64)
    arrays = [pa.array(label)]
    for name, _ in ADULT:
        arrays.append(pa.array(columns[name], mask=rng.random(rows) < 0.02))  # masked: an empty cell
    table = pa.table(arrays, names=["income", *(name for name, _ in ADULT)])
    sink = io.BytesIO()
    pcsv.write_csv(table, sink, write_options=pcsv.WriteOptions(include_header=False))
    return sink.getvalue()


def write_prepared_csv(path: Path, *, max_bytes: int | None = None, rows: int | None = None, seed: int = 0) -> int:
    """Write a prepared CSV of `rows` rows, or of as many whole rows as fit in `max_bytes`; returns its size."""
    if (max_bytes is None) == (rows is None):
        raise ValueError("give exactly one of max_bytes and rows")
    written = done = 0
    with open(path, "wb") as out:
        block_number = 0
        while True:
            n = BLOCK_ROWS if rows is None else min(BLOCK_ROWS, rows - done)
            if n <= 0:
                break
            block = prepared_block(n, seed * 100_003 + block_number)
            block_number += 1
            if max_bytes is not None and written + len(block) > max_bytes:
                block = block[: block.rfind(b"\n", 0, max_bytes - written) + 1]  # whole rows only
                out.write(block)
                written += len(block)
                break
            out.write(block)
            written += len(block)
            done += n
    return written


def repeat_to_size(source: Path, target: Path, max_bytes: int) -> int:
    """`target`: `source` (whole rows) repeated up to `max_bytes`, cut after the last whole row; returns its
    size. A large file from a small generated one in the time of a copy: the checks read every row alike."""
    data = source.read_bytes()
    written = 0
    with open(target, "wb") as out:
        while written < max_bytes:
            piece = data[: max_bytes - written]
            if len(piece) < len(data):
                piece = piece[: piece.rfind(b"\n") + 1]
                if not piece:
                    break
            out.write(piece)
            written += len(piece)
            if len(piece) < len(data):
                break
    return written
