"""What can be wrong with a prepared file or a cell: the problem codes every reader reports, `CellError` for one
cell and `Problem` for one place in a file. Stdlib only (ships in the Lambda bundle and beside train.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

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


class CellError(ValueError):
    """One cell breaks the contract: `code` is a PROBLEM_CODES key, the message says why."""

    def __init__(self, code: ProblemCode, message: str) -> None:
        super().__init__(message)
        self.code: ProblemCode = code
        self.message = message


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
