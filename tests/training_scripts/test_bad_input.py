"""Bad input: each writes the reason (file, row, problem on the first line) to the failure file, exits
non-zero and leaves no model files behind, not even a stale one from an earlier run."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from lambdas.shared.validation import validate_bytes
from tests.training_scripts.conftest import Job, make_job
from training_scripts import train
from training_scripts.prepare import Prepared


def _edit(path: Path, change: Callable[[list[str]], list[str]]) -> None:
    path.write_text("\n".join(change(path.read_text().splitlines())) + "\n")


def _set_cell(row: int, column: int, value: str) -> Callable[[list[str]], list[str]]:
    def change(lines: list[str]) -> list[str]:
        cells = lines[row - 1].split(",")
        cells[column] = value
        lines[row - 1] = ",".join(cells)
        return lines

    return change


def _train_file(job: Job) -> Path:
    return job.channels["train"] / "train.csv"


def _empty_validation(job: Job) -> Path:
    for path in job.channels["validation"].iterdir():
        path.unlink()
    return job.channels["validation"]


def _empty_train_file(job: Job) -> Path:
    _train_file(job).write_text("")
    return job.channels["train"]


def _header_row(job: Job) -> Path:
    _edit(_train_file(job), lambda lines: ["income,age,workclass,fnlwgt," + ",".join("x" * 11), *lines])
    return _train_file(job)


def _ragged_row(job: Job) -> Path:
    _edit(_train_file(job), lambda lines: [*lines[:4], lines[4] + ",1", *lines[5:]])
    return _train_file(job)


def _non_numeric_cell(job: Job) -> Path:
    _edit(_train_file(job), _set_cell(7, 3, "abc"))
    return _train_file(job)


def _label_two(job: Job) -> Path:
    _edit(_train_file(job), _set_cell(3, 0, "2"))
    return _train_file(job)


def _missing_label(job: Job) -> Path:
    _edit(_train_file(job), _set_cell(4, 0, ""))
    return _train_file(job)


def _category_code_out_of_range(job: Job) -> Path:
    _edit(_train_file(job), _set_cell(2, 2, "99"))
    return _train_file(job)


def _infinite_feature(job: Job) -> Path:
    _edit(_train_file(job), _set_cell(6, 1, "inf"))
    return _train_file(job)


def _float32_overflow(job: Job) -> Path:
    # A finite double that overflows float32, which the DMatrix holds: refused before training, not by it.
    _edit(_train_file(job), _set_cell(3, 1, "1e39"))
    return _train_file(job)


def _single_class_validation(job: Job) -> Path:
    path = job.channels["validation"] / "validation.csv"
    _edit(path, lambda lines: [line for line in lines if line.startswith("0,")])
    return path


def _single_class_test(job: Job) -> Path:
    path = job.channels["test"] / "test.csv"
    _edit(path, lambda lines: [line for line in lines if line.startswith("1,")])
    return path


def _no_schema_no_objective(job: Job) -> Path:
    (job.channels["train"] / "schema.json").unlink()
    return job.channels["train"]


def _parquet_missing_column(job: Job) -> Path:
    frame = pd.read_csv(_train_file(job), header=None)
    frame.columns = ["income", "age", *[f"x{i}" for i in range(13)]]
    path = job.channels["train"] / "train.parquet"
    frame.to_parquet(path)
    _train_file(job).unlink()
    return path


# The same file checked by the ingest validation: train.py must fail with its first problem, word for word.
CONTRACT = "the contract's first problem"

BINARY_CASES = {
    "empty-channel": (_empty_validation, "channel 'validation' is empty (no files)"),
    "empty-file": (_empty_train_file, "channel 'train' is empty (1 file(s) but no data rows)"),
    "header-row": (_header_row, CONTRACT),
    "ragged-row": (_ragged_row, CONTRACT),
    "non-numeric-cell": (_non_numeric_cell, CONTRACT),
    "binary-label-2": (_label_two, CONTRACT),
    "missing-label": (_missing_label, CONTRACT),
    "category-code": (_category_code_out_of_range, CONTRACT),
    "infinite-value": (_infinite_feature, CONTRACT),
    "float32-overflow": (_float32_overflow, CONTRACT),
    "one-class-validation": (_single_class_validation, "every validation label is class 0 ('<=50K')"),
    "one-class-test": (_single_class_test, "every test label is class 1 ('>50K')"),
    "no-schema": (_no_schema_no_objective, "no schema.json in the train (or schema) channel"),
    "parquet-columns": (_parquet_missing_column, "missing column(s) ['workclass'"),
}


CONTRACT_CASES = {case for case, (_, message) in BINARY_CASES.items() if message == CONTRACT}


def _contract_problem(path: Path) -> str:
    schema = json.loads((path.parent / "schema.json").read_text())
    report = validate_bytes(path.read_bytes(), schema)
    assert not report.valid
    return report.problems[0].describe()


@pytest.mark.parametrize("case", list(BINARY_CASES))
def test_bad_binary_input_fails_cleanly(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN a copy of the small Adult job spoilt in one way, and a stale model from an earlier run
    job = make_job(tmp_path, adult_small)
    spoil, message = BINARY_CASES[case]
    where = spoil(job)
    if message == CONTRACT:
        message = _contract_problem(where)
    (job.model_dir / "xgboost-model").write_text("{}")
    # WHEN train.py runs
    code = job.run(monkeypatch)
    # THEN it exits 2, the failure's first line names the file and the problem, and no model is left
    assert code == train.EXIT_BAD_INPUT
    assert job.failure is not None
    first_line = job.failure.splitlines()[0]
    assert first_line.startswith(str(where)), first_line
    assert first_line.endswith(message) if case in CONTRACT_CASES else message in first_line
    assert job.model_files() == []


@pytest.mark.parametrize(
    ("label", "message"),
    [("1.5", "label '1.5' is not a class index 0..9"), ("10", "label '10' is not a class index 0..9")],
    ids=["non-integer", "beyond-num-class"],
)
def test_bad_multiclass_label_fails_cleanly(
    label: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digits_prepared: Prepared
) -> None:
    # GIVEN digits with one bad label in row 2 of train
    job = make_job(tmp_path, digits_prepared)
    path = job.channels["train"] / "train.csv"
    _edit(path, _set_cell(2, 0, label))
    # WHEN train.py runs
    code = job.run(monkeypatch)
    # THEN it fails naming the file, row 2 and the label
    assert code == train.EXIT_BAD_INPUT
    assert job.failure is not None and job.failure.startswith(f"{path}: row 2, column 0 (digit): {message}")
    assert job.model_files() == []


def test_missing_validation_channel_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN a job with only a train channel
    job = make_job(tmp_path, adult_small, channels=("train",))
    # WHEN train.py runs
    code = job.run(monkeypatch)
    # THEN it fails saying the validation channel is needed
    assert code == train.EXIT_BAD_INPUT
    assert job.failure is not None and "no validation channel" in job.failure


def test_failure_goes_next_to_output_data_without_sm_output_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN SM_OUTPUT_DATA_DIR but no SM_OUTPUT_DIR, and an empty validation channel
    job = make_job(tmp_path, adult_small)
    shutil.rmtree(job.channels["validation"])
    job.channels["validation"].mkdir()
    for name in [k for k in os.environ if k.startswith("SM_")]:
        monkeypatch.delenv(name)
    for name, value in job.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SM_OUTPUT_DIR")
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "elsewhere" / "data"))
    # WHEN train.py runs
    code = train.main([])
    # THEN the failure file is in the parent of SM_OUTPUT_DATA_DIR
    assert code == train.EXIT_BAD_INPUT
    assert "channel 'validation' is empty" in (tmp_path / "elsewhere" / "failure").read_text()
