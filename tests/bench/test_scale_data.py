"""bench/scale.py's generated data: what every section measures has to be data the project accepts, or a
section would time the quarantine path instead of the work."""

from __future__ import annotations

from pathlib import Path

from bench.scale_data import adult_schema, prepared_block, repeat_to_size, write_prepared_csv
from lambdas.shared.validation import Limits, validate_bytes


def test_generated_rows_are_valid_under_the_data_contract() -> None:
    # GIVEN a block of generated Adult-shaped prepared rows
    block = prepared_block(5_000, seed=3)
    # WHEN the contract's checker reads it against the generated schema
    report = validate_bytes(block, adult_schema(), limits=Limits(max_bytes=len(block)))
    # THEN every row passes, and some cells are empty (missing) and some numbers are decimals
    assert report.valid, report.lines()[:5]
    assert report.rows_checked == 5_000
    assert b",," in block
    assert b".5," in block


def test_a_size_capped_file_holds_whole_rows_within_the_cap(tmp_path: Path) -> None:
    # GIVEN a byte cap that falls inside a row
    cap = 123_457
    # WHEN a file is generated to that cap, and another one repeated from it to a larger cap
    path, larger = tmp_path / "a.csv", tmp_path / "b.csv"
    written = write_prepared_csv(path, max_bytes=cap, seed=1)
    repeated = repeat_to_size(path, larger, 3 * cap + 17)
    # THEN both end after a whole row, within their caps, and the repeated one is the first one over and over
    assert written == path.stat().st_size <= cap
    assert repeated == larger.stat().st_size <= 3 * cap + 17
    assert path.read_bytes().endswith(b"\n") and larger.read_bytes().endswith(b"\n")
    assert larger.read_bytes().startswith(path.read_bytes() * 3)


def test_a_row_count_gives_exactly_that_many_rows(tmp_path: Path) -> None:
    # GIVEN a row count that is not a multiple of the generator's block
    rows = 100_000 + 7
    # WHEN a file of that many rows is written
    path = tmp_path / "rows.csv"
    write_prepared_csv(path, rows=rows, seed=2)
    # THEN it holds exactly that many lines
    assert path.read_bytes().count(b"\n") == rows
