"""prepare.py: raw CSV with a header -> label-first headerless splits + schema.json (docs/artifacts.md)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lambdas.shared.validation import validate_bytes
from training_scripts import data_io
from training_scripts.prepare import EMBEDDED_ADULT, Prepared, main, prepare

ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, header=None, keep_default_na=True)


def test_embedded_adult_has_a_header_and_every_row() -> None:
    # GIVEN the embedded copy of Adult
    # WHEN it is read as a plain CSV
    frame = pd.read_csv(EMBEDDED_ADULT)
    # THEN it has the named header, all 32,561 rows and no leading spaces left in the values
    assert list(frame.columns) == ADULT_COLUMNS
    assert len(frame) == 32_561
    assert not frame["workclass"].str.startswith(" ").any()


def test_adult_splits_like_the_seed_tutorial(adult_prepared: Prepared) -> None:
    # GIVEN the default prepare of the embedded Adult data (a session fixture)
    sizes = adult_prepared.sizes
    # THEN test is the seed's 20% (6,513 rows) and train + validation the other 26,048
    assert sizes["test"] == 6_513
    assert sizes["train"] + sizes["validation"] == 26_048
    assert (sizes["train"], sizes["validation"]) == (23_443, 2_605)


def test_adult_files_hold_the_counted_rows(adult_prepared: Prepared) -> None:
    # GIVEN the prepared Adult splits
    # WHEN each split's file is read back
    rows = {split: sum(len(_read(p)) for p in paths) for split, paths in adult_prepared.files.items()}
    # THEN the files hold exactly the reported rows
    assert rows == adult_prepared.sizes


def test_adult_splits_are_stratified(adult_prepared: Prepared) -> None:
    # GIVEN the prepared Adult splits
    # WHEN the share of >50K is computed per split
    shares = {split: _read(paths[0])[0].mean() for split, paths in adult_prepared.files.items()}
    # THEN every split keeps the overall share (7,841 / 32,561) to within a tenth of a point
    for share in shares.values():
        assert share == pytest.approx(7_841 / 32_561, abs=0.001)


def test_adult_schema_follows_the_contract(adult_prepared: Prepared) -> None:
    # GIVEN the schema.json prepare wrote
    doc = json.loads(adult_prepared.schema_path.read_text())
    schema = data_io.schema_from_dict(doc)
    # THEN it is binary on income with the raw class names, and lists the 14 features in file order
    assert schema.objective == "binary:logistic"
    assert schema.label_name == "income"
    assert schema.classes == ("<=50K", ">50K")
    assert list(schema.feature_names) == ADULT_COLUMNS[:-1]
    assert schema.feature_kinds[:3] == ("numeric", "categorical", "numeric")
    # AND '?' is a missing token, not a category
    assert "?" not in schema.categories["workclass"]
    assert doc["missing_tokens"] == ["", "?"]


def test_schema_is_also_in_the_train_channel(adult_prepared: Prepared) -> None:
    # GIVEN the prepared output
    # THEN train.py finds the same schema.json inside the train channel
    assert (adult_prepared.channel("train") / "schema.json").read_text() == adult_prepared.schema_path.read_text()


def test_rows_are_label_first_codes_and_empty_missing_cells(adult_prepared: Prepared) -> None:
    # GIVEN the prepared Adult train file and its schema
    frame = _read(adult_prepared.files["train"][0])
    workclass = adult_prepared.schema["features"][1]
    # THEN there are 15 columns: the 0/1 label, then features; workclass holds integer codes into its list
    assert frame.shape[1] == 15
    assert set(frame[0].unique()) == {0, 1}
    codes = frame[2].dropna()
    assert (codes == codes.round()).all() and codes.min() >= 0 and codes.max() < len(workclass["categories"])
    # AND the raw '?' rows became empty cells
    assert frame[2].isna().sum() > 0


def test_the_same_seed_gives_the_same_files(tmp_path: Path, adult_small_raw: Path) -> None:
    # GIVEN two prepares of the same data with the same seed
    first = prepare(adult_small_raw, target="income", output_dir=tmp_path / "a", seed=7)
    second = prepare(adult_small_raw, target="income", output_dir=tmp_path / "b", seed=7)
    # THEN the split files are byte-identical
    for split in ("train", "validation", "test"):
        assert first.files[split][0].read_bytes() == second.files[split][0].read_bytes()


def test_sizes_can_be_row_counts(tmp_path: Path, adult_small_raw: Path) -> None:
    # GIVEN explicit row counts for test and validation
    prepared = prepare(adult_small_raw, target="income", output_dir=tmp_path, test_size=1000, validation_size=500)
    # THEN the splits have exactly those rows
    assert prepared.sizes == {"train": 2_500, "validation": 500, "test": 1_000}


def test_train_can_be_split_into_files_for_sharding(tmp_path: Path, adult_small_raw: Path) -> None:
    # GIVEN three train files asked for (one per host)
    prepared = prepare(adult_small_raw, target="income", output_dir=tmp_path, train_files=3)
    # THEN train/ holds three files that together hold every train row
    assert len(prepared.files["train"]) == 3
    assert sum(len(_read(p)) for p in prepared.files["train"]) == prepared.sizes["train"]


def test_trailing_dots_in_labels_are_normalised(tmp_path: Path) -> None:
    # GIVEN an adult.test-style gzipped file whose labels end in '.' and whose cells have leading spaces
    raw = tmp_path / "adult-test.csv.gz"
    rows = ["age, sex, income"] + [
        f"{20 + i}, {'Male' if i % 2 else 'Female'}, {'>50K.' if i % 3 else '<=50K.'}" for i in range(60)
    ]
    with gzip.open(raw, "wt") as handle:
        handle.write("\n".join(rows) + "\n")
    # WHEN it is prepared
    prepared = prepare(raw, target="income", output_dir=tmp_path / "out")
    # THEN the classes are the dot-less names and the categories carry no spaces
    assert prepared.schema["label"]["classes"] == ["<=50K", ">50K"]
    assert prepared.schema["features"][1]["categories"] == ["Female", "Male"]


def test_objective_is_inferred_for_multiclass_and_regression(
    digits_prepared: Prepared, diabetes_prepared: Prepared
) -> None:
    # GIVEN digits (ten integer classes) and diabetes (a continuous target) prepared without --objective
    # THEN one is multiclass with classes '0'..'9', the other regression without classes
    assert digits_prepared.schema["objective"] == "multi:softprob"
    assert digits_prepared.schema["label"]["classes"] == [str(i) for i in range(10)]
    assert diabetes_prepared.schema["objective"] == "reg:squarederror"
    assert diabetes_prepared.schema["label"]["classes"] == []


def test_parquet_output_names_the_columns(tmp_path: Path, adult_small_raw: Path) -> None:
    # GIVEN parquet output asked for
    prepared = prepare(adult_small_raw, target="income", output_dir=tmp_path, file_format="parquet")
    # THEN the train file carries the schema's names, label first
    frame = pd.read_parquet(prepared.files["train"][0])
    assert list(frame.columns) == ADULT_COLUMNS[-1:] + ADULT_COLUMNS[:-1]


def test_cli_writes_the_default_adult_splits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN `sagecycle prepare -o DIR` with no input file
    # WHEN it runs
    code = main(["-o", str(tmp_path / "prepared")])
    # THEN it exits 0, says what it wrote, and leaves the three channels and schema.json
    assert code == 0
    assert "test 6,513" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "prepared").iterdir()) == ["schema.json", "test", "train", "validation"]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("a,b,label\n1,2,x\n3,4,y\n", ["--target", "income"], "target column 'income' is not in the header"),
        ("", [], "is empty"),
        ("a,b,label\n", [], "no data rows"),
        ("a,b,label\n" + "1,2,x\n" * 10, [], "single value 'x'"),
        ("a,b,label\n1,2,x\n3,4,y\n5,6,z\n", ["--objective", "binary:logistic"], "binary:logistic needs 2"),
        ("a,b,label\n1,2,x\n3,4,y\n", ["--objective", "reg:squarederror"], "is not a number"),
        ("a,b,label\n1,2,x\n1e39,4,y\n", [], "column 'a': value '1e39' overflows float32"),
    ],
    ids=[
        "missing-target",
        "empty-file",
        "header-only",
        "one-class",
        "three-classes-binary",
        "text-regression",
        "float32-overflow",
    ],
)
def test_bad_input_exits_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, args: list[str], message: str
) -> None:
    # GIVEN a raw file with a problem
    raw = tmp_path / "raw.csv"
    raw.write_text(content)
    # WHEN it is prepared
    code = main([str(raw), "-o", str(tmp_path / "out"), *args])
    # THEN the command exits 2 and the error names the problem
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_missing_input_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a path that does not exist
    # WHEN it is prepared
    code = main([str(tmp_path / "nope.csv"), "-o", str(tmp_path / "out")])
    # THEN exit 2 with "no such file"
    assert code == 2
    assert "no such file" in capsys.readouterr().err


def test_prepared_files_pass_train_py_reader(adult_prepared: Prepared) -> None:
    # GIVEN the prepared Adult validation channel and schema
    schema = data_io.load_schema(adult_prepared.schema_path)
    # WHEN train.py's reader loads it
    split = data_io.read_channel(adult_prepared.channel("validation"), schema.n_columns, channel="validation")
    # THEN all rows come back with float32 features and 0/1 labels
    assert split.rows == adult_prepared.sizes["validation"]
    assert split.X.dtype == np.float32 and set(np.unique(split.y)) == {0.0, 1.0}


def test_raw_cells_are_read_by_the_data_contract(tmp_path: Path) -> None:
    # GIVEN raw cells the contract decides: padded numbers, `nan` and `?` (missing), digit forms float() takes
    raw = tmp_path / "raw.csv"
    rows = ["num,code,label", "1.5,3_9,x", "nan,\u0663,y", " 7 ,?,x", "?,5,y"]
    raw.write_text("\n".join(rows * 1 + rows[1:] * 9) + "\n", encoding="utf-8")
    # WHEN it is prepared
    prepared = prepare(raw, target="label", output_dir=tmp_path / "out", test_size=0)
    # THEN `num` is numeric with NaN for nan and ?, and the digit forms are category names, not numbers
    features = {f["name"]: f for f in prepared.schema["features"]}
    assert features["num"]["type"] == "numeric"
    assert features["code"] == {"name": "code", "type": "categorical", "categories": ["3_9", "5", "\u0663"]}
    schema = data_io.load_schema(prepared.schema_path)
    X = np.concatenate(
        [
            data_io.read_channel(prepared.channel(name), schema.n_columns, channel=name, schema=schema).X
            for name in ("train", "validation")
        ]
    )
    assert set(np.unique(X[:, 0][~np.isnan(X[:, 0])])) == {1.5, 7.0}
    assert (np.isnan(X[:, 0]).sum(), np.isnan(X[:, 1]).sum(), len(X)) == (20, 10, 40)


def test_prepared_files_pass_the_ingest_validation(adult_prepared: Prepared) -> None:
    # GIVEN every prepared Adult file
    schema = json.loads(adult_prepared.schema_path.read_text())
    for files in adult_prepared.files.values():
        for path in files:
            # WHEN the ingest function's check reads it / THEN it is valid: what prepare writes, ingest accepts
            report = validate_bytes(path.read_bytes(), schema)
            assert report.valid, report.lines()[:3]
