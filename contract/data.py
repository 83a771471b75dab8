"""The data contract (docs/artifacts.md): schema.json, prepared CSV files and request cells. Stdlib only.

Every reader imports these rules, so none can drift from the others:
- `sagecycle validate` and the ingest function (lambdas/shared/validation.py) report `Problem`s from
  `CsvCheck`;
- train.py's reader (training_scripts/data_io.py) takes a vectorised fast path only where it provably gives
  the same values, and otherwise reads the file with `CsvCheck`;
- the endpoint (training_scripts/inference.py) reads request cells with `request_csv_cell`/`request_json_cell`;
- prepare.py decides numeric columns and missing values with `parse_number`/`is_missing`.

The rule they share: a file that passes validation trains, and a row the endpoint scores is a row training
reads with the same values (after the raw-to-prepared mapping prepare.py does: missing tokens become empty
cells, category names become their codes).

What a number is (one verdict everywhere):
- the ASCII decimal grammar `DECIMAL_PATTERN`: optional sign, digits with an optional point, an optional
  exponent. No spaces, no `_` separators, no non-ASCII digits, no hex, no nan/inf words (all of which
  Python's float() accepts and pyarrow refuses or reads otherwise);
- whose value, parsed to the nearest double and then rounded to float32 (what train.py's DMatrix and
  XGBoost's inplace_predict both do), is finite: `1e39` and `3.4028236e38` are refused everywhere.

Prepared files (training data): headerless UTF-8 CSV, label first, then the features in schema order;
missing = an empty cell (nothing else); categorical cells are integer codes 0..len(categories)-1 (`3.0`
too); labels are class indexes 0..k-1 for classification, numbers for regression.

Requests (the endpoint): the same numbers, plus the raw tokens prepare.py maps: surrounding whitespace is
stripped; an empty cell, a schema missing token or `nan` (any case; what numpy and the SDK's CSVSerializer
print for a missing float) is missing; in a categorical column a valid code wins, then a category name.

Where each part lives (this module re-exports them all, so `from contract import data` keeps working):
- contract/numbers.py: the decimal grammar and the float32 verdict;
- contract/problems.py: the problem codes, `CellError` and `Problem`;
- contract/schema.py: schema.json and `parse_schema`;
- contract/cells.py: prepared cells, request cells and `prepare_token`;
- contract/csv_check.py: `CsvCheck`, `line_blocks`, `fast_path_safe`.
"""

from __future__ import annotations

from contract.cells import (
    is_missing,
    prepare_token,
    prepared_feature,
    prepared_label,
    request_csv_cell,
    request_json_cell,
)
from contract.csv_check import (
    FAST_PATH_BYTES,
    UTF8_BOM,
    CsvCheck,
    fast_path_safe,
    first_problem,
    line_blocks,
    looks_like_header,
)
from contract.numbers import (
    DECIMAL_PATTERN,
    FLOAT32_MAX,
    NON_FINITE_WORDS,
    REQUEST_NAN_WORD,
    fits_float32,
    is_decimal,
    parse_number,
    to_float32,
)
from contract.problems import (
    PROBLEM_CODES,
    CellError,
    Problem,
    ProblemCode,
)
from contract.schema import (
    FORMAT_VERSION,
    OBJECTIVES,
    SCHEMA_FILE,
    TASKS,
    Feature,
    Schema,
    SchemaError,
    Task,
    int_range_pattern,
    parse_schema,
    schema_fingerprint,
)

__all__ = [
    "DECIMAL_PATTERN",
    "FAST_PATH_BYTES",
    "FLOAT32_MAX",
    "FORMAT_VERSION",
    "NON_FINITE_WORDS",
    "OBJECTIVES",
    "PROBLEM_CODES",
    "REQUEST_NAN_WORD",
    "SCHEMA_FILE",
    "TASKS",
    "UTF8_BOM",
    "CellError",
    "CsvCheck",
    "Feature",
    "Problem",
    "ProblemCode",
    "Schema",
    "SchemaError",
    "Task",
    "fast_path_safe",
    "first_problem",
    "fits_float32",
    "int_range_pattern",
    "is_decimal",
    "is_missing",
    "line_blocks",
    "looks_like_header",
    "parse_number",
    "parse_schema",
    "prepare_token",
    "prepared_feature",
    "prepared_label",
    "request_csv_cell",
    "request_json_cell",
    "schema_fingerprint",
    "to_float32",
]
