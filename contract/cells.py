"""One cell: of a prepared row (training data: `prepared_label`, `prepared_feature`) and of a request (the endpoint:
`request_csv_cell`, `request_json_cell`), and the raw-to-prepared mapping prepare.py applies (`prepare_token`).
A request cell the endpoint accepts maps to a prepared cell training reads with the same value. Stdlib only."""

from __future__ import annotations

from typing import Any, Final

from contract.numbers import (
    NON_FINITE_WORDS,
    REQUEST_NAN_WORD,
    fits_float32,
    is_decimal,
    number_problem,
    parse_number,
    show,
)
from contract.problems import CellError
from contract.schema import Schema

NAN: Final = float("nan")


def prepared_label(cell: str, schema: Schema) -> float:
    """The label of a prepared row, or CellError: a class index 0..k-1, or a number for regression."""
    if cell == "":
        raise CellError("missing_label", "label is empty; every row needs a label")
    value = parse_number(cell)
    if value is None:
        problem = number_problem(cell, "label ")
        if problem.code == "nan_or_inf" or schema.task == "regression":
            raise problem
    if schema.task == "regression":
        return value  # type: ignore[return-value]
    k = len(schema.classes)
    if value is not None and value.is_integer() and 0 <= value < k:
        return value
    hint = (
        f" ({cell!r} is a class name: write its index {schema.classes.index(cell)})" if cell in schema.classes else ""
    )
    raise CellError("label_out_of_domain", f"label {show(cell)} is not a class index 0..{k - 1}{hint}")


def prepared_feature(cell: str, schema: Schema, index: int) -> float:
    """Feature `index` (0-based) of a prepared row: NaN for an empty cell, else its value; or CellError."""
    if cell == "":
        return NAN
    feature = schema.features[index]
    value = parse_number(cell)
    if not feature.categorical:
        if value is not None:
            return value
        problem = number_problem(cell, "")
        if problem.code == "non_numeric" and cell.strip() in schema.missing_set:
            problem = CellError("non_numeric", f"{cell!r} is a raw missing token; prepared files leave the cell empty")
        elif problem.code == "nan_or_inf" and cell.strip().lower() in NON_FINITE_WORDS:
            problem = CellError(
                "nan_or_inf", f"{cell!r} is not a finite number; leave the cell empty for a missing value"
            )
        raise problem
    n = len(feature.categories)
    if value is not None and value.is_integer() and 0 <= value < n:
        return value
    if cell.strip().lower() in NON_FINITE_WORDS:
        raise CellError("nan_or_inf", f"{cell!r} is not a category code; leave the cell empty for a missing value")
    if is_decimal(cell):
        raise CellError("unknown_category_code", f"{show(cell)} is not a category code 0..{n - 1} ({n} categories)")
    if cell in feature.categories:
        raise CellError("non_numeric", f"{cell!r} is a category name; write its code {feature.categories.index(cell)}")
    raise CellError("non_numeric", f"{show(cell)} is not a category code (an integer 0..{n - 1})")


# -------------------------------------------------------------------------------------------- request cells


def is_missing(token: str, schema: Schema) -> bool:
    """A stripped raw or request token that means "missing": empty, a schema missing token, or `nan`."""
    return token in schema.missing_set or token.lower() == REQUEST_NAN_WORD


def request_csv_cell(cell: str, schema: Schema, index: int) -> float:
    """A request's CSV cell for feature `index`: its value, NaN when missing, or CellError.

    The raw-to-prepared mapping of prepare.py, then the prepared rules: surrounding whitespace is stripped; a
    missing token is NaN; a numeric column takes a contract number; a categorical column takes a valid code
    (a number), else a category name.
    """
    token = cell.strip()
    if is_missing(token, schema):
        return NAN
    value = parse_number(token)
    codes = schema.category_codes[index]
    if codes is None:
        if value is None:
            raise number_problem(token, "")
        return value
    if value is not None and value.is_integer() and 0 <= value < len(codes):
        return value
    code = codes.get(token)
    if code is not None:
        return float(code)
    raise _unknown_category(schema, index, show(cell))


def request_json_cell(value: Any, schema: Schema, index: int) -> float:
    """A JSON request value for feature `index`: null/NaN is missing; a number is a value or a category code;
    a string is a category name first, else read like a CSV cell. Anything else is a CellError."""
    kind = type(value)
    codes = schema.category_codes[index]
    if kind is str:
        if codes is not None:
            code = codes.get(value)
            if code is not None:
                return float(code)
        return request_csv_cell(value, schema, index)
    if value is None:
        return NAN
    if kind is int or kind is float:
        try:
            number = float(value)
        except OverflowError:  # an integer with hundreds of digits
            raise CellError(
                "nan_or_inf", f"{show(str(value))} overflows float32 (the largest is about 3.4e38)"
            ) from None
        if number != number:
            return NAN
        if codes is None:
            if not fits_float32(number):
                raise CellError("nan_or_inf", f"{value!r} is not a finite float32 number")
            return number
        if number.is_integer() and 0 <= number < len(codes):
            return number
        raise _unknown_category(schema, index, repr(value))
    raise CellError("non_numeric", f"expected a number, a string or null, got {_type_name(value)}")


def _unknown_category(schema: Schema, index: int, shown: str) -> CellError:
    cats = schema.features[index].categories
    preview = ", ".join(repr(c) for c in cats[:6]) + (f", ... ({len(cats)} in all)" if len(cats) > 6 else "")
    return CellError(
        "unknown_category_code",
        f"unknown category {shown}; expected one of {preview} or an integer code 0-{len(cats) - 1}",
    )


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean"}.get(type(value), type(value).__name__)


def prepare_token(raw: str, schema: Schema, index: int) -> str:
    """The prepared cell prepare.py writes for one raw value of feature `index` (strip, missing -> "", name ->
    code). A request cell the endpoint accepts maps to a prepared cell training reads with the same value."""
    token = raw.strip()
    if is_missing(token, schema):
        return ""
    codes = schema.category_codes[index]
    if codes is not None:
        value = parse_number(token)
        if not (value is not None and value.is_integer() and 0 <= value < len(codes)) and token in codes:
            return str(codes[token])
    return token
