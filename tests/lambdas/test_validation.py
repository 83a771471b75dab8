"""The data-file check shared by the new-data Lambda and `sagecycle validate`."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import random
import re
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import pytest

from lambdas.shared.validation import (
    PROBLEM_CODES,
    Limits,
    Problem,
    ProblemCode,
    SchemaError,
    int_range_pattern,
    parse_schema,
    report_for_size,
    report_to_dict,
    report_to_json,
    schema_fingerprint,
    validate_bytes,
    validate_file,
)
from sagecycle import validate as cli
from training_scripts.data_io import block_is_valid

ROOT = Path(__file__).resolve().parents[2]

WORKCLASS = ["Federal-gov", "Local-gov", "Private", "Self-emp"]
COLOR = [f"c{i}" for i in range(12)]  # two-digit codes
BINARY: dict[str, Any] = {
    "format_version": 1,
    "objective": "binary:logistic",
    "label": {"name": "income", "task": "binary", "classes": ["<=50K", ">50K"]},
    "features": [
        {"name": "age", "type": "numeric"},
        {"name": "workclass", "type": "categorical", "categories": WORKCLASS},
        {"name": "hours", "type": "numeric"},
        {"name": "color", "type": "categorical", "categories": COLOR},
    ],
    "missing_tokens": ["", "?"],
}
REGRESSION: dict[str, Any] = {
    **BINARY,
    "objective": "reg:squarederror",
    "label": {"name": "price", "task": "regression", "classes": []},
}
MULTICLASS: dict[str, Any] = {
    **BINARY,
    "objective": "multi:softprob",
    "label": {"name": "grade", "task": "multiclass", "classes": ["a", "b", "c"]},
}
SCHEMAS = {"binary": BINARY, "regression": REGRESSION, "multiclass": MULTICLASS}

GOOD = b"0,39,2,40,11\n1,50.5,0,13.25,0\n"


def check(data: bytes, schema: dict[str, Any] = BINARY, **limits: int) -> Any:
    return validate_bytes(data, schema, limits=Limits(**limits))


# ------------------------------------------------------------------------------------- malformed files

# (id, schema, file bytes, limits, expected code, row, column)
MALFORMED: list[tuple[str, str, bytes, dict[str, int], str, int | None, int | None]] = [
    ("zero-bytes", "binary", b"", {}, "empty", None, None),
    ("only-line-ends", "binary", b"\n\r\n", {}, "empty", None, None),
    ("over-size-limit", "binary", GOOD, {"max_bytes": 10}, "too_large", None, None),
    ("gzip", "binary", gzip.compress(GOOD), {}, "binary_content", None, None),
    ("nul-byte", "binary", b"0,1,2,3,4\n1,\x002,3,4,5\n", {}, "binary_content", 2, None),
    ("latin-1", "binary", b"0,39,2,40,11\n1,caf\xe9,0,1,0\n", {}, "not_utf8", 2, None),
    ("utf-16", "binary", "0,39,2,40,11\n".encode("utf-16"), {}, "not_utf8", None, None),
    ("utf-8-bom", "binary", b"\xef\xbb\xbf" + GOOD, {}, "bom", 1, None),
    ("header", "binary", b"income,age,workclass,hours,color\n" + GOOD, {}, "header_row", 1, None),
    ("header-other-names", "binary", b"y,a,b,c,d\n" + GOOD, {}, "header_row", 1, None),
    ("too-few-columns", "binary", b"0,39,2,40,11\n1,50,0\n", {}, "wrong_column_count", 2, None),
    ("trailing-comma", "binary", b"0,39,2,40,11,\n", {}, "wrong_column_count", 1, None),
    ("text-in-numeric", "binary", b"0,39,2,40,11\n1,old,0,13,0\n", {}, "non_numeric", 2, 1),
    ("raw-missing-token", "binary", b"0,?,2,40,11\n", {}, "non_numeric", 1, 1),
    ("padded-number", "binary", b"0, 39,2,40,11\n", {}, "non_numeric", 1, 1),
    ("category-name", "binary", b"0,39,Private,40,11\n", {}, "non_numeric", 1, 2),
    ("code-too-big", "binary", b"0,39,4,40,11\n", {}, "unknown_category_code", 1, 2),
    ("two-digit-code-too-big", "binary", b"0,39,1,40,12\n", {}, "unknown_category_code", 1, 4),
    ("negative-code", "binary", b"0,39,-1,40,11\n", {}, "unknown_category_code", 1, 2),
    ("fractional-code", "binary", b"0,39,1.5,40,11\n", {}, "unknown_category_code", 1, 2),
    ("nan-numeric", "binary", b"0,NaN,1,40,11\n", {}, "nan_or_inf", 1, 1),
    ("overflow-numeric", "binary", b"0,39,1,1e999,11\n", {}, "nan_or_inf", 1, 3),
    ("missing-label", "binary", b"0,39,2,40,11\n,39,2,40,11\n", {}, "missing_label", 2, 0),
    ("binary-label-2", "binary", b"2,39,2,40,11\n", {}, "label_out_of_domain", 1, 0),
    ("label-class-name", "binary", b">50K,39,2,40,11\n", {}, "label_out_of_domain", 1, 0),
    ("label-probability", "binary", b"0.7,39,2,40,11\n", {}, "label_out_of_domain", 1, 0),
    ("multiclass-label-3", "multiclass", b"2,39,2,40,11\n3,39,2,40,11\n", {}, "label_out_of_domain", 2, 0),
    ("regression-text-label", "regression", b"12.5,39,2,40,11\nabc,39,2,40,11\n", {}, "non_numeric", 2, 0),
    ("regression-inf-label", "regression", b"inf,39,2,40,11\n", {}, "nan_or_inf", 1, 0),
    ("blank-line", "binary", b"0,39,2,40,11\n\n1,50,0,13,0\n", {}, "blank_line", 2, None),
    ("two-final-line-ends", "binary", GOOD + b"\n", {}, "blank_line", 3, None),
    ("bare-carriage-return", "binary", b"0,39,2,40,11\r1,50,0,13,0\n", {}, "bare_cr", 1, None),
    ("bad-quoting", "binary", b'0,"39,2,40,11\n', {}, "malformed_csv", 1, None),
    ("too-many-rows", "binary", GOOD + b"0,1,1,1,1\n", {"max_rows": 2}, "too_many_rows", 3, None),
]


@pytest.mark.parametrize(
    ("schema", "data", "limits", "code", "row", "column"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_file_is_invalid_with_the_expected_first_problem(
    schema: str, data: bytes, limits: dict[str, int], code: str, row: int | None, column: int | None
) -> None:
    # GIVEN a malformed file
    # WHEN it is checked
    report = check(data, SCHEMAS[schema], **limits)
    # THEN it is invalid, and the first problem names the code and place
    assert not report.valid
    first = report.problems[0]
    assert (first.problem, first.row, first.column) == (code, row, column)


def test_malformed_table_covers_every_problem_code() -> None:
    # GIVEN the documented problem codes
    # WHEN compared with the table above and the ProblemCode type
    # THEN each code is exercised and documented
    assert {m[4] for m in MALFORMED} == set(PROBLEM_CODES) == set(get_args(ProblemCode))


# ------------------------------------------------------------------------------------------ good files

GOOD_FILES: list[tuple[str, str, bytes]] = [
    ("lf-with-final-newline", "binary", GOOD),
    ("no-final-newline", "binary", GOOD.rstrip(b"\n")),
    ("crlf", "binary", GOOD.replace(b"\n", b"\r\n")),
    ("missing-values", "binary", b"0,,,,\n1,,3,,\n0,22,,7.5,\n"),
    ("every-category-code", "binary", b"".join(b"1,1,%d,1,%d\n" % (i % 4, i) for i in range(12))),
    ("integer-valued-decimals", "binary", b"1.0,39,3.0,40,11.0\n"),
    ("exponents-and-signs", "binary", b"0,-1.5e3,1,+.25,0\n1,1E-3,1,7.,0\n"),
    ("quoted-numbers", "binary", b'0,"39",2,"40",11\n'),
    ("regression-floats", "regression", b"-12.75,39,2,40,11\n3e5,,,,\n0,1,1,1,1\n"),
    ("multiclass-indexes", "multiclass", b"0,1,1,1,1\n1,1,1,1,1\n2,1,1,1,1\n"),
]


@pytest.mark.parametrize(("schema", "data"), [g[1:] for g in GOOD_FILES], ids=[g[0] for g in GOOD_FILES])
def test_good_file_is_valid(schema: str, data: bytes) -> None:
    # GIVEN a well-formed file in an accepted variant
    # WHEN it is checked
    report = check(data, SCHEMAS[schema])
    # THEN there are no problems
    assert report.problems == ()
    assert report.valid


def test_rows_are_counted() -> None:
    # GIVEN a two-row file
    # WHEN it is checked
    # THEN both rows were looked at
    assert check(GOOD).rows_checked == 2


# --------------------------------------------------------------------------------------------- behaviour


def test_problems_are_capped_but_the_first_is_always_reported() -> None:
    # GIVEN 30 bad rows after a good one
    data = GOOD + b"9,1,1,1,1\n" * 30
    # WHEN checked with a cap of 5
    report = check(data, max_problems=5)
    # THEN 5 problems are listed, starting at the first bad row, and the report says there are more
    assert [p.row for p in report.problems] == [3, 4, 5, 6, 7]
    assert report.truncated


def test_every_bad_cell_of_a_row_is_reported() -> None:
    # GIVEN one row with three bad cells
    # WHEN checked
    report = check(b"0,x,9,y,11\n")
    # THEN each cell has its own problem, in column order
    assert [(p.problem, p.column) for p in report.problems] == [
        ("non_numeric", 1),
        ("unknown_category_code", 2),
        ("non_numeric", 3),
    ]


def test_bom_file_is_still_checked_after_the_bom() -> None:
    # GIVEN a BOM and a bad label further down
    # WHEN checked
    report = check(b"\xef\xbb\xbf" + GOOD + b"5,1,1,1,1\n")
    # THEN both are reported
    assert [p.problem for p in report.problems] == ["bom", "label_out_of_domain"]


def test_problem_message_hints_at_the_category_code() -> None:
    # GIVEN a category written by name
    # WHEN checked
    (problem,) = check(b"0,39,Private,40,11\n").problems
    # THEN the message says which code to write, and the line names the column
    assert problem.describe() == "row 1, column 2 (workclass): 'Private' is a category name; write its code 2"


@pytest.mark.parametrize(
    ("problem", "line"),
    [
        (Problem("bom", "m", row=1), "row 1: m"),
        (Problem("too_large", "m"), "file: m"),
        (Problem("nan_or_inf", "m", row=4, column=3, column_name="hours"), "row 4, column 3 (hours): m"),
    ],
)
def test_problem_lines_name_what_is_known(problem: Problem, line: str) -> None:
    # GIVEN problems with and without a place
    # WHEN described
    # THEN the line carries the row and column when known
    assert problem.describe() == line


def test_oversized_object_is_refused_from_its_size_alone() -> None:
    # GIVEN only an object's size (S3 ContentLength)
    # WHEN checked against a small limit
    report = report_for_size(10_000, BINARY, Limits(max_bytes=1000))
    # THEN it is too large, without a hash (the bytes were never read)
    assert report is not None and report.problems[0].problem == "too_large" and report.sha256 is None


def test_size_within_limit_needs_a_full_check() -> None:
    # GIVEN a size within the limit
    # WHEN checked by size
    # THEN no verdict is given
    assert report_for_size(10, BINARY) is None


@pytest.mark.parametrize("count", [*range(1, 130), 999, 1000, 1001, 1234, 2000])
def test_int_range_pattern_matches_exactly_the_codes(count: int) -> None:
    # GIVEN a category count
    pattern = re.compile(int_range_pattern(count))
    # WHEN every candidate up to beyond the count is tried
    matched = [i for i in range(count + 150) if pattern.fullmatch(str(i))]
    # THEN exactly 0..count-1 match, and leading zeros do not
    assert matched == list(range(count))
    assert not pattern.fullmatch("0" + str(count - 1))


def test_fast_path_never_accepts_what_the_cell_checks_reject() -> None:
    # GIVEN random rows built from valid and invalid cell values
    rng = random.Random(7)
    cells = [
        "",
        "0",
        "1",
        "2",
        "3",
        "4",
        "11",
        "12",
        "-1",
        "1.0",
        "1.5",
        ".5",
        "7.",
        "+3",
        "1e3",
        "nan",
        "x",
        " 1",
        "0" * 320,
    ]
    spec = parse_schema(BINARY)
    for _ in range(3000):
        line = ",".join(rng.choice(cells) for _ in range(5))
        # WHEN the whole-row regex accepts a row
        if spec.line_pattern.fullmatch(line):
            # THEN the full check finds nothing wrong with it either
            assert check(line.encode()).valid, line


# ------------------------------------------------------------------------------------------------- schema


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"format_version": 2}, "format_version"),
        ({"objective": "reg:squarederror"}, "label.task"),
        ({"label": {"name": "y", "task": "binary", "classes": ["a"]}}, "label.classes"),
        ({"features": []}, "features"),
        ({"features": [{"name": "c", "type": "categorical", "categories": []}]}, "features[0].categories"),
        ({"features": [{"name": "x", "type": "text"}]}, "features[0].type"),
        ({"features": [{"name": "income", "type": "numeric"}]}, "features"),
    ],
)
def test_invalid_schema_is_refused_with_a_reason(change: dict[str, Any], field: str) -> None:
    # GIVEN a broken schema
    # WHEN parsed
    with pytest.raises(SchemaError) as caught:
        parse_schema({**BINARY, **change})
    # THEN SchemaError names the field at fault
    assert caught.value.field == field


def test_schema_fingerprint_ignores_key_order() -> None:
    # GIVEN the same schema with keys in another order
    reordered = dict(reversed(list(BINARY.items())))
    # WHEN fingerprinted
    # THEN the fingerprints agree
    assert schema_fingerprint(reordered) == schema_fingerprint(BINARY)


# ------------------------------------------------------------------------------------------------ sidecar


def test_sidecar_json_describes_file_schema_and_problems() -> None:
    # GIVEN an invalid file
    data = GOOD + b"7,1,1,1,1\n"
    report = check(data)
    # WHEN the sidecar is written
    sidecar = json.loads(
        report_to_json(
            report, source="s3://bucket/incoming/a.csv", checked_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        )
    )
    # THEN it carries the source, size, hash, time, schema fingerprint and structured problems
    assert sidecar == {
        "format_version": 1,
        "source": "s3://bucket/incoming/a.csv",
        "valid": False,
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "checked_at": "2025-01-02T03:04:05Z",
        "schema_fingerprint": schema_fingerprint(BINARY),
        "rows_checked": 3,
        "problem_count": 1,
        "problems_truncated": False,
        "limits": {"max_bytes": 100 * 1024 * 1024, "max_rows": 100 * 1024 * 1024 // 6, "max_problems": 20},
        "problems": [
            {
                "row": 3,
                "column": {"index": 0, "name": "income"},
                "problem": "label_out_of_domain",
                "message": "label '7' is not a class index 0..1",
            }
        ],
    }


def test_sidecar_of_a_valid_file_has_no_problems() -> None:
    # GIVEN a valid file
    # WHEN the sidecar is made
    sidecar = report_to_dict(check(GOOD), source="a.csv")
    # THEN it says valid with an empty problem list
    assert sidecar["valid"] is True and sidecar["problems"] == []


# ---------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "schema.json").write_text(json.dumps(BINARY))
    (tmp_path / "good.csv").write_bytes(GOOD)
    (tmp_path / "bad.csv").write_bytes(b"0,39,2,40,11\n1,50,Private,13,0\n")
    return tmp_path


def test_cli_valid_file_exits_0(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a valid file with schema.json beside it
    # WHEN validated
    code = cli.main([str(folder / "good.csv")])
    # THEN exit 0, no reasons on stdout, the verdict on stderr
    out, err = capsys.readouterr()
    assert (code, out) == (0, "")
    assert "valid (2 rows)" in err


def test_cli_invalid_file_exits_1_with_one_line_per_problem(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN an invalid file
    # WHEN validated
    code = cli.main([str(folder / "bad.csv")])
    # THEN exit 1 and the Lambda's reason lines
    out, err = capsys.readouterr()
    assert code == 1
    assert out == "row 2, column 2 (workclass): 'Private' is a category name; write its code 2\n"
    assert "invalid, 1 problem(s)" in err


def test_cli_json_prints_the_sidecar(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN an invalid file
    # WHEN validated with --json
    code = cli.main([str(folder / "bad.csv"), "--json"])
    # THEN stdout is the sidecar JSON
    sidecar = json.loads(capsys.readouterr().out)
    assert code == 1
    assert sidecar["source"] == str(folder / "bad.csv")
    assert sidecar["problems"][0]["problem"] == "non_numeric"


def test_cli_reads_schema_from_a_model_tarball(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a model.tar.gz with schema.json inside, and no schema.json next to the data
    model = folder / "model.tar.gz"
    with tarfile.open(model, "w:gz") as archive:
        payload = json.dumps(BINARY).encode()
        info = tarfile.TarInfo("schema.json")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    data = folder / "elsewhere" / "good.csv"
    data.parent.mkdir()
    data.write_bytes(GOOD)
    # WHEN validated against the tarball
    # THEN the schema inside is used
    assert cli.main([str(data), "--schema", str(model)]) == 0


def test_cli_max_bytes_refuses_a_large_file(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a small size limit
    # WHEN validated
    code = cli.main([str(folder / "good.csv"), "--max-bytes", "5"])
    # THEN the file is invalid as too large
    assert code == 1
    assert capsys.readouterr().out == f"file: {len(GOOD)} bytes, over the limit of 5 bytes\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["missing.csv"],  # no such file
        ["good.csv", "--schema", "nope.json"],  # unreadable schema
        ["good.csv", "--schema", "broken.json"],  # not JSON
        ["good.csv", "--schema", "wrong.json"],  # JSON but not a schema
        ["good.csv", "--max-bytes", "0"],  # bad flag value
        ["good.csv", "--frobnicate"],  # unknown flag
        [],  # no file at all
    ],
)
def test_cli_usage_errors_exit_2(folder: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a usage mistake
    (folder / "broken.json").write_text("{not json")
    (folder / "wrong.json").write_text(json.dumps({**BINARY, "format_version": 9}))
    args = [str(folder / a) if a.endswith((".csv", ".json")) else a for a in argv]
    # WHEN the command runs
    code = cli.main(args)
    # THEN it exits 2 and says why on stderr
    assert code == 2
    assert capsys.readouterr().err


def test_cli_without_schema_beside_the_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a data file with no schema.json beside it and no --schema
    (tmp_path / "good.csv").write_bytes(GOOD)
    # WHEN validated
    code = cli.main([str(tmp_path / "good.csv")])
    # THEN it is a usage error naming the missing schema
    assert code == 2
    assert "schema.json" in capsys.readouterr().err


def test_cli_runs_as_a_real_subcommand(folder: Path) -> None:
    # GIVEN the installed command line
    # WHEN `python -m sagecycle.cli validate` runs in a separate process
    result = subprocess.run(
        [sys.executable, "-m", "sagecycle.cli", "validate", str(folder / "bad.csv")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # THEN it exits 1 with the reason on stdout
    assert result.returncode == 1, result.stderr
    assert result.stdout == "row 2, column 2 (workclass): 'Private' is a category name; write its code 2\n"


# ----------------------------------------------------------------------------------------- files on disk

ALL_FILES = [(m[0], m[1], m[2], m[3]) for m in MALFORMED] + [(g[0], g[1], g[2], {}) for g in GOOD_FILES]
ALL_FILES += [("many-rows", "binary", GOOD * 40 + b"7,1,1,1,1\n" + GOOD * 40 + b"0,x,1,1,1\n", {})]


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("fast", [None, block_is_valid], ids=["exact", "pyarrow"])
@pytest.mark.parametrize(("schema", "data", "limits"), [f[1:] for f in ALL_FILES], ids=[f[0] for f in ALL_FILES])
def test_a_file_read_in_blocks_gets_the_same_report(
    tmp_path: Path, schema: str, data: bytes, limits: dict[str, int], block_bytes: int, fast: Any
) -> None:
    # GIVEN a file on disk
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    # WHEN it is checked block by block (any block size, with or without pyarrow vouching for blocks)
    streamed = validate_file(path, SCHEMAS[schema], limits=Limits(**limits), fast=fast, block_bytes=block_bytes)
    # THEN the report is the one the whole bytes get: problems, rows, size and hash (none when refused unread)
    whole = check(data, SCHEMAS[schema], **limits)
    if whole.problems and whole.problems[0].problem == "too_large":
        whole = dataclasses.replace(whole, sha256=None)
    assert streamed == whole


def test_the_row_cap_follows_the_size_limit() -> None:
    # GIVEN the default limits and a 1,000-byte size limit
    # WHEN the row cap is not given
    # THEN it is the most rows the size limit can hold (label + empty features + line end), not a fixed count
    assert check(GOOD).limits.max_rows == 100 * 1024 * 1024 // 6
    tight = b"0,,,,\n" * 200
    assert check(tight, max_bytes=len(tight)).valid
    assert check(tight, max_bytes=len(tight), max_rows=199).problems[0].problem == "too_many_rows"


@pytest.mark.parametrize("fast", [None, block_is_valid], ids=["exact", "pyarrow"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_row_one_column_short_is_caught_even_when_its_cells_look_valid_shifted(
    tmp_path: Path, fast: Any, where: str
) -> None:
    # GIVEN rows that each lost one column, so every cell still reads as valid one place to the left:
    # label 0, age 3 (a workclass code), workclass 2 (a code), hours 1 (a number) -- 4 columns instead of 5
    short = b"0,3,2,1\n"
    rows = [GOOD] * 200
    rows.insert({"first": 0, "middle": 100, "last": 200}[where], short)
    data = b"".join(rows)
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    # WHEN the file is checked whole, and block by block with and without the pyarrow fast path
    whole = check(data)
    streamed = validate_file(path, BINARY, fast=fast, block_bytes=64)
    # THEN it is refused for its column count, naming the short row, and both paths say exactly the same
    first = whole.problems[0]
    assert first.problem == "wrong_column_count"
    assert first.row == {"first": 1, "middle": 201, "last": 401}[where]
    assert streamed == whole
