"""Request rows to the feature matrix: every cell of a CSV, JSON or LIBSVM row read under the data contract
(contract.data), with an error that names the row, column and problem of the first bad cell.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from contract import data

if __package__:  # training_scripts.<module>, imported from the repository
    from training_scripts import serving_media, serving_model, serving_requests
else:  # imported by name from the model's code/ directory, beside inference.py
    import serving_media  # type: ignore[no-redef]
    import serving_model  # type: ignore[no-redef]
    import serving_requests  # type: ignore[no-redef]

VECTORISE_MIN_ROWS, NAN = serving_media.VECTORISE_MIN_ROWS, serving_model.NAN
BadRequest = serving_media.BadRequest
Model = serving_model.Model
ParsedInput = serving_requests.ParsedInput
preview, show, type_name = serving_media.preview, serving_media.show, serving_media.type_name


def to_features(input_data: ParsedInput, model: Model) -> np.ndarray:
    """Checks every row of a parsed request against the schema and returns the (rows, features) float matrix.

    NaN marks a missing value; categorical columns hold the category codes. Raises `BadRequest` (400).
    """
    try:
        return _to_features(input_data, model)
    except csv.Error as e:  # e.g. a quoted field over the csv module's field size limit
        raise BadRequest(f"the CSV body cannot be read: {e}") from None
    except (OverflowError, RecursionError) as e:  # a number or nesting no float can hold: the client's input
        raise BadRequest(f"the request holds a value that cannot be read as a number: {type(e).__name__}") from None


def _to_features(input_data: ParsedInput, model: Model) -> np.ndarray:
    if input_data.text is not None:
        return _csv_features(input_data.text, model)
    if input_data.libsvm is not None:
        return np.array(
            [_libsvm_row(model, line, r) for r, line in enumerate(input_data.libsvm, start=1)], dtype=np.float64
        )
    rows = input_data.rows or []
    return np.array([_json_row(model, row, r) for r, row in enumerate(rows, start=1)], dtype=np.float64)


def _csv_features(text: str, model: Model) -> np.ndarray:
    if text.count("\n") + 1 >= VECTORISE_MIN_ROWS and '"' not in text and model.n_features > 1:
        features = _parse_csv_vectorised(text, model)
        if features is not None:
            return features
    # The reference path: exact, and the one that finds the row and column of any error.
    if '"' in text:
        rows: Any = csv.reader(io.StringIO(text))
    else:
        rows = (line.split(",") for line in text.split("\n"))
    out = []
    r = 0
    for cells in rows:
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # blank line
        r += 1
        try:
            out.append(_csv_row(model, cells, r))
        except BadRequest as e:
            raise _maybe_header(model, cells, r) or e from None
    if not out:
        raise BadRequest("the request body is empty; send at least one row")
    return np.array(out, dtype=np.float64)


def _csv_row(model: Model, cells: list[str], r: int) -> list[float]:
    if len(cells) != model.n_features:
        raise _count_error(model, len(cells), r)
    out = []
    for j, cell in enumerate(cells):
        lookup = model.csv_maps[j]
        if lookup is None:
            v = data.parse_number(cell)  # a clean contract number: the common case
            if v is None:
                v = _numeric_token(model, cell, r, j)
        else:
            v = lookup.get(cell)
            if v is None:
                v = _categorical_token(model, cell, r, j)
        out.append(v)
    return out


def _parse_csv_vectorised(text: str, model: Model) -> np.ndarray | None:
    """Parses a large unquoted CSV body with pyarrow, cell for cell as `contract.data.request_csv_cell` would.

    First as numbers: pyarrow's float parser reads the contract's decimal grammar with the same correctly
    rounded doubles as Python's float(), and besides it only space/tab padding (which the contract strips
    too) and nan/inf words (NaN or inf in the result, sent to the exact path); schema missing tokens come back
    null. A body with category names is read as strings: cells in the decimal grammar are cast by pyarrow,
    every other distinct token is resolved once by the contract. None sends the body to the exact Python
    path, which also names the row and column of any error.
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv
    except ImportError:  # pragma: no cover - the framework container has pyarrow
        return None
    body = text.strip().encode("utf-8")
    if not body:
        return None
    n = model.n_features
    # pyarrow refuses a line with more or fewer than n fields (ArrowInvalid: the exact path names it) but skips a
    # blank line, and takes a bare carriage return for a line end: either way the row count differs from this.
    lines = body.count(b"\n") + 1
    names = [str(j) for j in range(n)]
    spec = model.spec

    def read(kind: Any) -> Any:
        return pacsv.read_csv(
            pa.py_buffer(body),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(quote_char=False, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, kind),
                null_values=sorted(model.missing_tokens),
                strings_can_be_null=kind != pa.string(),
                quoted_strings_can_be_null=False,
            ),
        )

    try:
        table = read(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        table = None  # text in some cell: the string path below
    if table is not None:
        if table.num_rows != lines:
            return None  # a blank line, or a bare carriage return split a line: the exact path skips or names it
        features = np.column_stack([table.column(j).to_numpy(zero_copy_only=False) for j in range(n)])
        missing = np.isnan(features)
        if (missing.sum(axis=0) != [table.column(j).null_count for j in range(n)]).any():  # NaN, not null
            return None  # a nan word pyarrow read as NaN: the contract decides (and names it) on the exact path
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isinf(features.astype(np.float32)).any():
                return None  # inf, or overflows float32: the Python path names the cell
            categorical = [j for j, codes in enumerate(spec.category_codes) if codes is not None]
            if categorical:
                codes = features[:, categorical]
                sizes = np.array([len(spec.category_codes[j] or ()) for j in categorical])
                invalid = (codes != np.floor(codes)) | (codes < 0) | (codes >= sizes)
                if (invalid & ~missing[:, categorical]).any():
                    return None  # not a category code: a category name, or the exact path names the cell
        return features
    try:
        table = read(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != lines:
        return None
    decimal = f"^(?:{data.DECIMAL_PATTERN})$"
    features = np.empty((table.num_rows, n), dtype=np.float64)
    for j in range(n):
        column = table.column(j)
        if spec.category_codes[j] is None:
            is_number = pc.match_substring_regex(column, decimal)
            features[:, j] = pc.cast(pc.if_else(is_number, column, "0"), pa.float64()).to_numpy()
            with np.errstate(over="ignore"):
                if np.isinf(features[:, j].astype(np.float32)).any():
                    return None  # overflows float32: the Python path names the cell
            others = ~is_number.to_numpy(zero_copy_only=False)
            if others.any():
                resolved = _resolve_tokens(column.filter(pc.invert(is_number)), model, j)
                if resolved is None:
                    return None
                features[others, j] = resolved
        else:
            resolved = _resolve_tokens(column, model, j)
            if resolved is None:
                return None
            features[:, j] = resolved
    return features


def _resolve_tokens(cells: Any, model: Model, j: int) -> np.ndarray | None:
    """The contract's value of every cell of a pyarrow string array, resolving each distinct token once."""
    import pyarrow.compute as pc

    distinct = pc.unique(cells)
    lookup = model.csv_maps[j] or {}
    values = np.empty(len(distinct), dtype=np.float64)
    for k, token in enumerate(distinct.to_pylist()):
        value = lookup.get(token)
        if value is None:
            try:
                value = data.request_csv_cell(token, model.spec, j)
            except data.CellError:
                return None
        values[k] = value
    return values[pc.index_in(cells, value_set=distinct).to_numpy(zero_copy_only=False)]


def _libsvm_row(model: Model, line: str, r: int) -> list[float]:
    """One LIBSVM row, read as XGBoost reads the format: the first token is always the label (ignored here),
    then zero-based `index:value` pairs; an absent feature is missing. Values follow the CSV cell rules."""
    tokens = line.split()
    label = tokens[0].split(":")
    if len(label) > 2 or not all(_is_number(part) for part in label):
        raise BadRequest(
            f"row {r}: the first LIBSVM token must be the label (<label> or <label>:<weight>), "
            f"got {show(tokens[0])}; features are <index>:<value> after it",
            row=r,
        )
    cells = [""] * model.n_features
    seen = set()
    for token in tokens[1:]:
        index, sep, value = token.partition(":")
        if not sep or not index.isascii() or not index.isdigit():
            raise BadRequest(f"row {r}: {show(token)} is not <index>:<value>", row=r)
        j = int(index)
        if j >= model.n_features:
            raise BadRequest(
                f"row {r}: feature index {j} is out of range; the model has {model.n_features} features, "
                f"indexed from 0",
                row=r,
            )
        if j in seen:
            raise BadRequest(f"row {r}: feature index {j} appears twice", row=r, column=j + 1)
        seen.add(j)
        cells[j] = value
    return _csv_row(model, cells, r)


def _is_number(text: str) -> bool:
    return data.parse_number(text) is not None  # the contract's number grammar, as every other cell


def _json_row(model: Model, row: Any, r: int) -> list[float]:
    n = model.n_features
    if isinstance(row, dict):
        if "features" in row and len(row) == 1 and "features" not in model.feature_index:
            row = row["features"]  # the {"features": [...]} row shape of SageMaker's built-in algorithms
        else:
            out = [NAN] * n
            for key, value in row.items():
                j = model.feature_index.get(key)
                if j is None:
                    raise BadRequest(
                        f"row {r}: unknown feature {show(key)}; the features are {preview(model.feature_names)}",
                        row=r,
                        feature=str(key),
                    )
                out[j] = _json_cell(model, value, r, j)
            return out
    if not isinstance(row, list):
        raise BadRequest(
            f"row {r}: expected a list of values or an object keyed by feature name, got {type_name(row)}", row=r
        )
    if len(row) != n:
        raise _count_error(model, len(row), r)
    return [_json_cell(model, value, r, j) for j, value in enumerate(row)]


def _json_cell(model: Model, value: Any, r: int, j: int) -> float:
    if type(value) is float and model.csv_maps[j] is None and abs(value) <= data.FLOAT32_MAX:
        return value  # a finite float32-range JSON number in a numeric column: the common case
    try:
        return data.request_json_cell(value, model.spec, j)
    except data.CellError as e:
        raise _cell_error(model, r, j, e.message) from None


# Cell and row errors ----------------------------------------------------------------------------------------


def _numeric_token(model: Model, cell: str, r: int, j: int) -> float:
    """A numeric request cell that is not a clean number: the contract strips it, reads missing tokens, or
    says why it is refused."""
    try:
        return data.request_csv_cell(cell, model.spec, j)
    except data.CellError as e:
        raise _cell_error(model, r, j, e.message) from None


def _categorical_token(model: Model, cell: str, r: int, j: int) -> float:
    """CSV semantics (contract.data.request_csv_cell): missing token, then a valid code, then a category name."""
    try:
        return data.request_csv_cell(cell, model.spec, j)
    except data.CellError as e:
        raise _cell_error(model, r, j, e.message) from None


def _cell_error(model: Model, r: int, j: int, problem: str) -> BadRequest:
    name = model.feature_names[j]
    return BadRequest(f"row {r}, column {j + 1} ({name}): {problem}", row=r, column=j + 1, feature=name)


def _count_error(model: Model, got: int, r: int) -> BadRequest:
    n = model.n_features
    hint = " (is the label column included? send features only)" if got == n + 1 else ""
    return BadRequest(
        f"row {r} has {got} values; the model expects {n} features in schema order "
        f"({preview(model.feature_names)}){hint}",
        row=r,
    )


def _maybe_header(model: Model, cells: list[str], r: int) -> BadRequest | None:
    if r == 1 and [c.strip() for c in cells] == list(model.feature_names):
        return BadRequest("row 1 is a header row; send headerless rows in schema order", row=1)
    return None
