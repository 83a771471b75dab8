"""One contract, four readers: the same generated files and rows get the same verdict and the same values.

The readers: `sagecycle validate` (the CLI), the ingest validation (`validate_bytes`, what the new-data
function calls), train.py's reader (`data_io.read_channel` + `check_split`) and the endpoint
(`inference.model_fn` on a real model, then `input_fn` + `to_features`, single rows and a body large enough
for the vectorised parse). The rules asserted:
- a file passes validation exactly when train.py reads it (and the CLI and ingest say the same, with the same
  first problem), and train.py then reads the values the contract's own reader gives;
- every row of a file training reads is scored by the endpoint with the same float32 values;
- a row the endpoint scores is, once prepared (missing tokens emptied, category names coded), a row training
  reads with the same float32 values; and the endpoint scores it exactly when the contract says it should.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from contract import data
from lambdas.shared.validation import validate_bytes
from sagecycle import validate as cli
from training_scripts import data_io, inference

_spec = importlib.util.spec_from_file_location(
    "model_factory", Path(__file__).resolve().parents[1] / "serving" / "model_factory.py"
)
assert _spec is not None and _spec.loader is not None
model_factory = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("model_factory", model_factory)
_spec.loader.exec_module(model_factory)

EXAMPLES = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

# Cells on which float(), pyarrow, pandas and regexes disagree, or that sit on the float32 boundary.
NASTY = [
    "1e39",
    "-1e39",
    "3.4028236e38",
    "3.4028235e38",
    "-3.4028235e38",
    "3.4028235677973366e38",
    "1e-50",
    "3_9",
    "1_000",
    "\u0663",  # Arabic-Indic three
    "\U0001d7d3",  # mathematical bold five
    "\uff15",  # fullwidth five
    " 5 ",
    "\t7",
    "\u20035",  # em space
    "5\u00a0",  # no-break space
    "\x1c5",  # a separator str.strip() removes
    "+5",
    ".5",
    "5.",
    "-0",
    "00012",
    "1.0",
    "2.0",
    "1e0",
    "nan",
    "NaN",
    "NAN",
    "-nan",
    "nan(1)",
    "inf",
    "-inf",
    "Infinity",
    "?",
    " ? ",
    "",
    " ",
    "1" * 400,
    "0." + "0" * 400 + "1",
    "9" * 38,
    "9" * 39,
    "0x10",
    "1,5",
    "5e",
    "e5",
    ".",
    "-",
    "+",
    "1.5.2",
    "1e+05",
    "NA",
    "None",
]


def chance(numerator: int, denominator: int) -> st.SearchStrategy[bool]:
    return st.sampled_from([True] * numerator + [False] * (denominator - numerator))


NUMBER_CELLS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(width=32, allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(10**40), 10**40).map(str),
    st.text(alphabet="0123456789.+-eE", min_size=1, max_size=8),
)
# What prepare.py writes: doubles (repr), integers, empty cells.
PREPARED_NUMBERS = st.one_of(
    st.floats(min_value=-3.4e38, max_value=3.4e38, allow_nan=False).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.just(""),
)


def prepared_codes(categories: list[str]) -> st.SearchStrategy[str]:
    k = len(categories)
    return st.one_of(st.integers(0, k - 1).map(str), st.integers(0, k - 1).map(lambda i: f"{i}.0"), st.just(""))


def raw_categories(categories: list[str]) -> st.SearchStrategy[str]:
    """What a client sends: names (padded or not), codes in and out of range, decimals."""
    k = len(categories)
    return st.one_of(
        st.sampled_from(categories),
        st.sampled_from([f" {c} " for c in categories] + [c.lower() for c in categories]),
        st.integers(-2, k + 1).map(str),
        st.sampled_from([f"{i}.0" for i in range(k)] + [f"+{i}" for i in range(k)] + ["0.5", "1e0", "01"]),
    )


def prepared_label(task: str) -> st.SearchStrategy[str]:
    if task == "regression":
        return st.one_of(
            st.floats(min_value=-3.4e38, max_value=3.4e38, allow_nan=False).map(repr),
            st.integers(-(10**6), 10**6).map(str),
        )
    k = 2 if task == "binary" else len(model_factory.CLASSES["multiclass"])
    return st.one_of(st.integers(0, k - 1).map(str), st.integers(0, k - 1).map(lambda i: f"{i}.0"))


def any_label(task: str) -> st.SearchStrategy[str]:
    words = ["0", "1", "2", "0.0", "1.0", "+1", "-1", "1.5", "", "nan", "1e39", " 1", ">50K", "low", "mid", "01"]
    return st.one_of(st.sampled_from(words), NUMBER_CELLS, prepared_label(task))


@st.composite
def cell(draw: Callable[..., Any], feature: dict[str, Any], mode: str) -> str:
    categorical = feature["type"] == "categorical"
    if mode == "prepared" or (mode == "mostly-prepared" and not draw(chance(1, 12))):
        return draw(prepared_codes(feature["categories"]) if categorical else PREPARED_NUMBERS)
    if mode == "raw" and draw(chance(2, 3)):
        return draw(raw_categories(feature["categories"]) if categorical else st.one_of(NUMBER_CELLS, PREPARED_NUMBERS))
    return draw(st.sampled_from(NASTY))


def encoded(text: str, quote: bool) -> str:
    """The cell as written in the file: quoted (csv style) when asked and possible."""
    return '"' + text + '"' if quote and '"' not in text else text


@dataclass(frozen=True)
class Case:
    task: str
    rows: list[list[str]]  # cells as they appear in the file (maybe quoted), label first
    line_end: str
    final_newline: bool
    bom: bool

    def file_bytes(self) -> bytes:
        text = self.line_end.join(",".join(row) for row in self.rows) + (self.line_end if self.final_newline else "")
        return (b"\xef\xbb\xbf" if self.bom else b"") + text.encode("utf-8")


@st.composite
def cases(draw: Callable[..., Any]) -> Case:
    task = draw(st.sampled_from(model_factory.TASKS))
    schema = model_factory.schema_for(task)
    # Prepared files (valid, or spoilt in one cell), raw client rows, and nasty cells anywhere.
    mode = draw(st.sampled_from(["prepared", "mostly-prepared", "mostly-prepared", "raw", "nasty"]))
    rows = []
    for _ in range(draw(st.integers(1, 5))):
        label = draw(prepared_label(task) if mode != "nasty" and draw(chance(9, 10)) else any_label(task))
        cells = [label] + [draw(cell(feature, mode)) for feature in schema["features"]]
        rows.append([encoded(c, draw(chance(1, 15))) for c in cells])
    return Case(
        task=task,
        rows=rows,
        line_end=draw(st.sampled_from(["\n", "\n", "\r\n"])),
        final_newline=draw(st.booleans()),
        bom=draw(chance(1, 40)),
    )


# ------------------------------------------------------------------------------------------------- readers


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, inference.Model]:
    root = tmp_path_factory.mktemp("models")
    return {
        task: inference.model_fn(str(model_factory.build_model_dir(root / task, task))) for task in model_factory.TASKS
    }


@contextlib.contextmanager
def channel(raw: bytes, schema_doc: dict[str, Any]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "train"
        folder.mkdir()
        (folder / "part.csv").write_bytes(raw)
        (Path(tmp) / "schema.json").write_text(json.dumps(schema_doc))
        yield folder


def read_by_cli(path: Path) -> tuple[bool, str | None]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(path), "--schema", str(path.parent.parent / "schema.json"), "--json"])
    assert code in (cli.EXIT_VALID, cli.EXIT_INVALID), err.getvalue()
    report = json.loads(out.getvalue())
    return report["valid"], report["problems"][0]["problem"] if report["problems"] else None


def read_by_training(folder: Path, schema: data.Schema) -> data_io.Split | data_io.DataError:
    try:
        split = data_io.read_channel(folder, schema.n_columns, channel="train", schema=schema)
    except data_io.DataError as error:
        return error
    num_class = len(schema.classes) if schema.task == "multiclass" else None
    data_io.check_split(split, schema, schema.objective, num_class)  # CSV values already follow the contract
    return split


def score(model: inference.Model, body: str) -> np.ndarray | inference.BadRequest:
    try:
        return inference.to_features(inference.input_fn(body, "text/csv"), model)
    except inference.BadRequest as error:
        assert error.status in (400, 413), error.to_dict()
        return error


def feature_line(row: list[str]) -> str:
    return ",".join(row[1:])


def contract_row(line: str, schema: data.Schema) -> list[float] | None:
    """What the contract says the endpoint must make of one CSV request line (None: refuse it)."""
    (cells,) = list(csv.reader([line])) or [[""]]
    if len(cells) != len(schema.features):
        return None
    try:
        return [data.request_csv_cell(cell, schema, j) for j, cell in enumerate(cells)]
    except data.CellError:
        return None


def same32(a: Any, b: Any) -> bool:
    return np.array_equal(
        np.asarray(a, np.float64).astype(np.float32), np.asarray(b, np.float64).astype(np.float32), equal_nan=True
    )


# --------------------------------------------------------------------------------------------------- property


@EXAMPLES
@given(case=cases())
def test_every_reader_gives_the_same_verdict_and_values(case: Case, models: dict[str, inference.Model]) -> None:
    # GIVEN a generated file (label + features) for a model's schema
    model = models[case.task]
    schema, doc = model.spec, model.schema
    raw = case.file_bytes()
    with channel(raw, doc) as folder:
        # WHEN the CLI, the ingest validation and train.py's reader read it
        cli_valid, cli_first = read_by_cli(folder / "part.csv")
        report = validate_bytes(raw, doc)
        trained = read_by_training(folder, schema)
    # THEN they agree: valid exactly when train.py reads it, with the same first problem
    event("file valid" if report.valid else f"file invalid: {report.problems[0].problem}")
    assert cli_valid == report.valid == isinstance(trained, data_io.Split), (report.lines(), trained)
    assert cli_first == (report.problems[0].problem if report.problems else None)
    if isinstance(trained, data_io.DataError) and trained.problem is not None:
        assert trained.problem == report.problems[0].problem, (str(trained), report.lines())
    if isinstance(trained, data_io.Split):
        # AND train.py's values are the contract reader's (fast path or not)
        reference = data.CsvCheck(raw, schema, collect=True)
        assert list(reference.problems()) == []
        assert same32(trained.y, reference.labels) and np.array_equal(trained.y, reference.labels)
        assert same32(trained.X, reference.features)

    # WHEN the endpoint scores each row's features, alone and in a body big enough to be vectorised
    lines = [feature_line(row) for row in case.rows]
    accepted: list[tuple[int, np.ndarray]] = []
    for i, line in enumerate(lines):
        single = score(model, line)
        expected = contract_row(line, schema)
        # THEN it scores exactly the rows the contract accepts, with the contract's values
        assert isinstance(single, np.ndarray) == (expected is not None), (line, single)
        if isinstance(single, np.ndarray):
            assert same32(single[0], expected)
            accepted.append((i, single[0]))
        if '"' not in line:
            tiled = score(model, "\n".join([line] * 70))
            assert isinstance(tiled, np.ndarray) == isinstance(single, np.ndarray), (line, tiled)
            if isinstance(tiled, np.ndarray):
                assert same32(tiled, np.tile(single, (70, 1)))
    if isinstance(trained, data_io.Split):
        # THEN every row training reads is scored, with training's float32 values
        assert [i for i, _ in accepted] == list(range(len(case.rows)))
        assert same32(np.array([v for _, v in accepted]), trained.X)

    event(f"{len(accepted)} of {len(lines)} rows scored")
    if accepted:
        # AND a scored row, prepared as prepare.py would, is a row training reads with the same values
        prepared = []
        for i, _ in accepted:
            (cells,) = list(csv.reader([lines[i]]))
            prepared.append(",".join(["0", *(data.prepare_token(c, schema, j) for j, c in enumerate(cells))]))
        prepared_raw = ("\n".join(prepared) + "\n").encode("utf-8")
        with channel(prepared_raw, doc) as folder:
            again = read_by_training(folder, schema)
        assert isinstance(again, data_io.Split), (prepared, again)
        assert same32(again.X, np.array([v for _, v in accepted]))
        assert validate_bytes(prepared_raw, doc).valid


@EXAMPLES
@given(case=cases())
def test_json_rows_read_like_csv_rows(case: Case, models: dict[str, inference.Model]) -> None:
    # GIVEN each generated row as a JSON row: decimal cells as JSON numbers, every other cell as a string
    model = models[case.task]
    for row in case.rows:
        line = feature_line(row)
        (cells,) = list(csv.reader([line]))
        if len(cells) != model.n_features:
            continue
        values: list[Any] = [float(c) if data.is_decimal(c) else c for c in cells]
        body = json.dumps({"instances": [values]})
        # WHEN the endpoint reads the JSON and the CSV spelling
        try:
            from_json: Any = inference.to_features(inference.input_fn(body, "application/json"), model)
        except inference.BadRequest as error:
            assert error.status == 400
            from_json = None
        from_csv = score(model, line)
        # THEN both are refused, or both give the same float32 values
        assert (from_json is None) == isinstance(from_csv, inference.BadRequest), (cells, from_json, from_csv)
        if from_json is not None:
            assert same32(from_json, from_csv)
