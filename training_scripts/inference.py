"""Serving entry points for the SageMaker XGBoost framework container (and for `sagecycle serve`).

The container imports this file from the model's own code/ directory (train.py writes it there), runs it through
sagemaker-inference's Transformer, calls `model_fn` once, then `input_fn` -> `predict_fn` -> `output_fn` per
request. It imports only what that container has: the standard library, numpy, pandas and xgboost, the shared
`contract` package shipped beside it, and the toolkit's error class, so client errors keep their 4xx status
(any other exception becomes a 500 there).

Requests (`Content-Type`; `charset` must be UTF-8):
- `text/csv`: headerless rows, the features in schema order (what the SageMaker SDK's CSVSerializer sends).
  `label_size=1` says each row starts with a label column, which is ignored; `label_size=0` or none: features
  only. In CSV a categorical cell that reads as a number is the category's integer code; anything else must be
  one of the category strings. An empty cell, `nan` or a schema missing token is a missing value. A missing
  Content-Type means CSV.
- `application/json`: `{"instances": [row, ...]}` (a bare list of rows is accepted too); a row is a list in
  schema order or an object keyed by feature name, where an absent key is a missing value. A JSON number
  in a categorical column is a code, a string is a category name (or, failing that, a code), null is missing.
- `application/jsonlines`: one row per line, each a list or an object as above.
- `text/libsvm` (the SDK XGBoostPredictor's default; also `text/x-libsvm`): `<label>[:<weight>] <index>:<value>
  ...` per line, read as XGBoost reads LIBSVM: the first token is the label (ignored), indices are zero-based,
  an absent feature is missing.
A request holds 1 to 100,000 rows. Rows are numbered from 1, blank lines not counted.

Responses (`Accept`): the toolkit replaces a missing Accept or `*/*` by SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT
(text/csv in every model sagecycle deploys); without that variable the answer is in the request's format.
- `text/csv`: like the built-in XGBoost algorithm, one value per row joined by commas for a binary or
  regression model (`0.12,0.87`); rows on separate lines when a row has several values (multiclass
  probabilities, or a label). Batch transform (`SAGEMAKER_BATCH` set) always writes one line per row.
- `application/json`: `{"predictions": [{"score": 0.87}, ...]}`.
- `application/jsonlines`: one `{"score": 0.87}` per line.
`score` is P(class 1) for binary, the probability vector for multiclass and the value for regression.

Labels: add the parameter `labels=true` to Accept (e.g. `Accept: text/csv; labels=true`, or
`invoke_endpoint(..., Accept="application/json; labels=true")`). Each row then also carries the predicted
class name (`predicted_label` in JSON, a last CSV column): binary uses the threshold chosen in
evaluation.json (P(class 1) >= threshold), multiclass the most probable class. Regression has no labels (406).

Errors raise `BadRequest` with an HTTP status (400 bad data, 406 unsupported Accept, 413 too many rows,
415 unsupported Content-Type) and a message that names the row, column and problem. No client input may
raise anything else: the container would answer it with a 500, which counts against the canary.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import xgboost as xgb

from contract import data

try:  # the framework container answers this class with its status code; any other exception becomes a 500
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # outside the container

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        """Stand-in for sagemaker_inference's BaseInferenceToolkitError."""


CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
LIBSVM = "text/libsvm"
MAX_ROWS = 100_000

_RESPONSE_TYPES = {
    CSV: CSV,
    JSON: JSON,
    JSONLINES: JSONLINES,
    "application/x-jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
}
# text/libsvm is the SageMaker SDK XGBoostPredictor's default serializer; text/x-libsvm the container's alias.
_REQUEST_TYPES = {**_RESPONSE_TYPES, LIBSVM: LIBSVM, "text/x-libsvm": LIBSVM}
_ACCEPTED_REQUEST_TYPES = "text/csv, application/json, application/jsonlines or text/libsvm"
# The toolkit answers a missing Accept or `*/*` with this (the container's Environment sets it to text/csv);
# `*/*` inside a longer Accept list resolves to it too, so the two paths agree.
_DEFAULT_ACCEPT = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or None
_UTF8_CHARSETS = {"utf-8", "utf8", "us-ascii", "ascii"}
_PHRASES = {400: "Bad Request", 406: "Not Acceptable", 413: "Payload Too Large", 415: "Unsupported Media Type"}
# Below this many lines a plain Python loop beats pandas' fixed start-up cost (about 0.3 ms).
_VECTORISE_MIN_ROWS = 64
# Up to this many rows one OpenMP thread is faster: a thread team costs more than it saves, and when the CPUs
# are busy its barriers wait on descheduled threads, which turned a 0.25 ms single-row p99 into 40+ ms.
_SINGLE_THREAD_MAX_ROWS = 1000
# Batch transform joins the response lines back to the input records, so there every row needs its own line.
_BATCH = os.environ.get("SAGEMAKER_BATCH", "").lower() in {"true", "1"}
_NAN = float("nan")


class BadRequest(ValueError, _ToolkitError):
    """A client error: the request, not the server, is wrong.

    Attributes:
        status: HTTP status (400, 406, 413 or 415); also `status_code` for the framework container.
        message: what is wrong, naming the row/column when there is one.
        row, column, feature: 1-based row and column and the feature name, where known.
    """

    def __init__(
        self,
        message: str,
        status: int = 400,
        *,
        row: int | None = None,
        column: int | None = None,
        feature: str | None = None,
    ) -> None:
        ValueError.__init__(self, message)
        self.message = message
        self.status = self.status_code = status
        self.phrase = _PHRASES.get(status, "Bad Request")
        self.row, self.column, self.feature = row, column, feature

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON error body: `message`, `status`, `error`, and `row`/`column`/`feature` when known."""
        body: dict[str, Any] = {"message": self.message, "status": self.status, "error": self.phrase}
        for key in ("row", "column", "feature"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


@dataclass(frozen=True, slots=True)
class Model:
    """The loaded model: booster, schema and the per-column lookups that make parsing fast."""

    booster: xgb.Booster  # all cores: large requests
    small_booster: xgb.Booster  # one thread: small requests (see _SINGLE_THREAD_MAX_ROWS)
    schema: dict[str, Any]
    task: str  # binary | multiclass | regression
    classes: tuple[str, ...]
    threshold: float | None  # binary only
    iteration_range: tuple[int, int]
    feature_names: tuple[str, ...]
    feature_index: dict[str, int]
    categories: tuple[tuple[str, ...] | None, ...]  # None for a numeric column
    csv_maps: tuple[dict[str, float] | None, ...]  # CSV cell -> value for categorical columns (codes win)
    name_maps: tuple[dict[str, float] | None, ...]  # category name -> code
    missing_tokens: frozenset[str]
    spec: data.Schema  # schema.json under the data contract: the authority on every cell

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


@dataclass(frozen=True, slots=True)
class ParsedInput:
    """`input_fn`'s result: the decoded request, not yet checked against the schema."""

    content_type: str  # canonical request media type, also the default response type
    text: str | None = None  # CSV body
    rows: list[Any] | None = None  # JSON / JSON Lines rows (lists or objects)
    libsvm: list[str] | None = None  # LIBSVM lines: "<label>[:<weight>] <index>:<value> ..."


@dataclass(frozen=True, slots=True)
class Prediction:
    """`predict_fn`'s result: raw model output plus what `output_fn` needs to encode it."""

    scores: np.ndarray  # (rows,) binary/regression, (rows, classes) multiclass
    content_type: str
    model: Model


# --------------------------------------------------------------------------------------------------- model_fn


def model_fn(model_dir: str) -> Model:
    """Loads the booster, schema.json and the threshold from evaluation.json, once per process.

    Args:
        model_dir: directory holding `xgboost-model`, `schema.json` and (optionally) `evaluation.json`.

    Returns:
        The `Model` the other entry points use.
    """
    with open(os.path.join(model_dir, "schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    evaluation: dict[str, Any] = {}
    evaluation_path = os.path.join(model_dir, "evaluation.json")
    if os.path.exists(evaluation_path):
        with open(evaluation_path, encoding="utf-8") as f:
            evaluation = json.load(f)

    booster = xgb.Booster()
    with open(os.path.join(model_dir, "xgboost-model"), "rb") as f:
        # From a buffer XGBoost reads JSON or UBJSON by content; from a path it guesses by file extension.
        booster.load_model(bytearray(f.read()))

    try:  # the same schema rules as training and ingest (contract/data.py)
        spec = data.parse_schema(schema)
    except data.SchemaError as e:
        raise ValueError(f"schema.json: {e}") from None
    if booster.num_features() != len(spec.features):
        raise ValueError(
            f"the booster has {booster.num_features()} features but schema.json lists {len(spec.features)}"
        )
    task, classes = spec.task, spec.classes

    threshold = None
    if task == "binary":
        chosen = (evaluation.get("threshold") or {}).get("value")
        threshold = float(chosen) if chosen is not None else 0.5
    # An early-stopped booster keeps every tree; predict with the best ones, as evaluation did.
    best = booster.attr("best_iteration")
    iteration_range = (0, int(best) + 1) if best is not None else (0, 0)

    # Exact-token shortcuts for the contract's request rules (contract.data.request_csv_cell decides the rest):
    # a missing token, then a valid code, then a category name.
    missing = spec.missing_set | {data.REQUEST_NAN_WORD, "NaN", "NAN"}
    names: list[str] = []
    categories: list[tuple[str, ...] | None] = []
    csv_maps: list[dict[str, float] | None] = []
    name_maps: list[dict[str, float] | None] = []
    for feature in spec.features:
        names.append(feature.name)
        if feature.categorical:
            cats = feature.categories
            by_name = {c: float(i) for i, c in enumerate(cats)}
            csv_map: dict[str, float] = dict(by_name)
            csv_map.update({str(i): float(i) for i in range(len(cats))})
            csv_map.update({f"{i}.0": float(i) for i in range(len(cats))})  # numpy float arrays serialise as 3.0
            csv_map.update(dict.fromkeys(missing, _NAN))
            categories.append(cats)
            csv_maps.append(csv_map)
            name_maps.append(by_name)
        else:
            categories.append(None)
            csv_maps.append(None)
            name_maps.append(None)
    small_booster = booster.copy()
    small_booster.set_param({"nthread": 1})
    return Model(
        booster=booster,
        small_booster=small_booster,
        schema=schema,
        task=task,
        classes=classes,
        threshold=threshold,
        iteration_range=iteration_range,
        feature_names=tuple(names),
        feature_index={n: i for i, n in enumerate(names)},
        categories=tuple(categories),
        csv_maps=tuple(csv_maps),
        name_maps=tuple(name_maps),
        missing_tokens=missing,
        spec=spec,
    )


# --------------------------------------------------------------------------------------------------- input_fn


def input_fn(request_body: bytes | str | Any, request_content_type: str | None) -> ParsedInput:
    """Decodes a CSV, JSON or JSON Lines request and checks its envelope (type, encoding, JSON syntax, row count).

    The cells are checked against the schema in `predict_fn`, the first entry point that sees the model.

    Args:
        request_body: the raw body (bytes or str; the container may hand over already-decoded JSON).
        request_content_type: the request's Content-Type header, parameters allowed; None means text/csv.

    Returns:
        A `ParsedInput` for `predict_fn`. Raises `BadRequest` (400/413/415) naming the row and problem.
    """
    media = request_media_type(request_content_type)
    if media == CSV:
        text = _text(request_body)
        if _label_columns(request_content_type):
            text = _drop_first_column(text)
        lines = text.count("\n") + 1
        if lines > MAX_ROWS and (n := _count_rows(text)) > MAX_ROWS:
            raise _too_many_rows(n)
        if not text.strip():
            raise BadRequest("the request body is empty; send at least one row")
        return ParsedInput(content_type=media, text=text)
    if media == JSON:
        return ParsedInput(content_type=media, rows=_json_rows(request_body))
    if media == LIBSVM:
        return ParsedInput(content_type=media, libsvm=_libsvm_lines(request_body))
    return ParsedInput(content_type=media, rows=_jsonlines_rows(request_body))


def request_media_type(content_type: str | None) -> str:
    """Returns the canonical request media type for a Content-Type header, or raises BadRequest(415)."""
    if not content_type:
        return CSV
    media, params = _parse_media_range(content_type)
    kind = _REQUEST_TYPES.get(media)
    if kind is None:
        raise BadRequest(f"unsupported Content-Type {content_type!r}; send {_ACCEPTED_REQUEST_TYPES}", 415)
    options = dict(params)
    charset = options.get("charset")
    if charset is not None and charset not in _UTF8_CHARSETS:
        raise BadRequest(f"unsupported charset {charset!r}; send UTF-8", 415)
    label_size = options.get("label_size")
    if label_size is not None and (kind != CSV or label_size not in {"0", "1"}):
        raise BadRequest(
            f"unsupported parameter label_size={label_size!r} in Content-Type {content_type!r}; text/csv takes "
            "label_size=0 (features only, the default) or label_size=1 (a label column first, ignored)",
            415,
        )
    return kind


def _label_columns(content_type: str | None) -> int:
    """text/csv's label_size parameter, as the container reads it: 1 means the first column is the label."""
    if not content_type:
        return 0
    return int(dict(_parse_media_range(content_type)[1]).get("label_size") or 0)


def _drop_first_column(text: str) -> str:
    """Label-first rows (label_size=1) become feature rows; each line must have the label column."""
    out = []
    rows: Any = csv.reader(io.StringIO(text)) if '"' in text else (line.split(",") for line in text.split("\n"))
    try:
        for r, cells in enumerate(rows, start=1):
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if len(cells) < 2:
                raise BadRequest(f"row {r} has no feature after its label column (label_size=1)", row=r)
            tail = cells[1:]
            out.append(",".join(_csv_field(c) for c in tail) if '"' in text else ",".join(tail))
    except csv.Error as e:
        raise BadRequest(f"the CSV body cannot be read: {e}") from None
    return "\n".join(out)


@lru_cache(maxsize=256)
def _parse_media_range(value: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    media, *rest = value.split(";")
    params = []
    for item in rest:
        key, _, val = item.partition("=")
        if key.strip():
            params.append((key.strip().lower(), val.strip().strip('"').lower()))
    return media.strip().lower(), tuple(params)


def _text(body: Any) -> str:
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadRequest(f"the body is not valid UTF-8 (byte {e.start})") from None
    if not isinstance(body, str):
        raise BadRequest(f"unsupported request body of type {type(body).__name__}")
    return body[1:] if body.startswith("\ufeff") else body  # a byte-order mark some CSV writers add


def _too_many_rows(n: int) -> BadRequest:
    return BadRequest(f"the request has {n:,} rows; the limit is {MAX_ROWS:,} rows per request", 413)


def _count_rows(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


# CSV --------------------------------------------------------------------------------------------------------


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
    if text.count("\n") + 1 >= _VECTORISE_MIN_ROWS and '"' not in text and model.n_features > 1:
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


# JSON -------------------------------------------------------------------------------------------------------


def _json_rows(body: Any) -> list[Any]:
    if isinstance(body, (dict, list)):
        payload = body  # the container's model server may decode JSON bodies itself
    else:
        text = _text(body)
        if not text.strip():
            raise BadRequest('the request body is empty; send {"instances": [...]}')
        payload = _loads(text, "")
    if isinstance(payload, dict):
        if "instances" not in payload:
            raise BadRequest('a JSON request must be {"instances": [row, ...]}; the "instances" key is missing')
        rows = payload["instances"]
        if not isinstance(rows, list):
            raise BadRequest(f'"instances" must be a list of rows, not {_type_name(rows)}')
    elif isinstance(payload, list):
        # A bare list of rows, or one row of scalars (what a JSON serializer makes of a 1-D array).
        rows = payload if all(isinstance(r, (list, dict)) for r in payload) else [payload]
    else:
        raise BadRequest(f'a JSON request must be {{"instances": [row, ...]}}, not {_type_name(payload)}')
    if not rows:
        raise BadRequest('the request has no rows; "instances" is empty')
    if len(rows) > MAX_ROWS:
        raise _too_many_rows(len(rows))
    return rows


def _jsonlines_rows(body: Any) -> list[Any]:
    text = _text(body)
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        raise BadRequest("the request body is empty; send one JSON row per line")
    if len(lines) > MAX_ROWS:
        raise _too_many_rows(len(lines))
    return [_loads(line, f"row {r}: ") for r, line in enumerate(lines, start=1)]


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadRequest(f"{where}invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise BadRequest(f"{where}the JSON is nested too deeply") from None
    except ValueError as e:  # e.g. an integer longer than Python's int-from-string digit limit
        raise BadRequest(f"{where}invalid JSON: {e}") from None


# LIBSVM ------------------------------------------------------------------------------------------------------


def _libsvm_lines(body: Any) -> list[str]:
    text = _text(body)
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        raise BadRequest("the request body is empty; send one LIBSVM row per line")
    if len(lines) > MAX_ROWS:
        raise _too_many_rows(len(lines))
    return lines


def _libsvm_row(model: Model, line: str, r: int) -> list[float]:
    """One LIBSVM row, read as XGBoost reads the format: the first token is always the label (ignored here),
    then zero-based `index:value` pairs; an absent feature is missing. Values follow the CSV cell rules."""
    tokens = line.split()
    label = tokens[0].split(":")
    if len(label) > 2 or not all(_is_number(part) for part in label):
        raise BadRequest(
            f"row {r}: the first LIBSVM token must be the label (<label> or <label>:<weight>), "
            f"got {_show(tokens[0])}; features are <index>:<value> after it",
            row=r,
        )
    cells = [""] * model.n_features
    seen = set()
    for token in tokens[1:]:
        index, sep, value = token.partition(":")
        if not sep or not index.isascii() or not index.isdigit():
            raise BadRequest(f"row {r}: {_show(token)} is not <index>:<value>", row=r)
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
            out = [_NAN] * n
            for key, value in row.items():
                j = model.feature_index.get(key)
                if j is None:
                    raise BadRequest(
                        f"row {r}: unknown feature {_show(key)}; the features are {_preview(model.feature_names)}",
                        row=r,
                        feature=str(key),
                    )
                out[j] = _json_cell(model, value, r, j)
            return out
    if not isinstance(row, list):
        raise BadRequest(
            f"row {r}: expected a list of values or an object keyed by feature name, got {_type_name(row)}", row=r
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
        f"({_preview(model.feature_names)}){hint}",
        row=r,
    )


def _maybe_header(model: Model, cells: list[str], r: int) -> BadRequest | None:
    if r == 1 and [c.strip() for c in cells] == list(model.feature_names):
        return BadRequest("row 1 is a header row; send headerless rows in schema order", row=1)
    return None


def _show(value: Any, limit: int = 40) -> str:
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _preview(items: tuple[str, ...], limit: int = 6) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


# ------------------------------------------------------------------------------------------------- predict_fn


def predict_fn(input_data: ParsedInput, model: Model) -> Prediction:
    """Checks the rows against the schema, then scores them with `Booster.inplace_predict` (no DMatrix).

    Args:
        input_data: `input_fn`'s result.
        model: `model_fn`'s result.

    Returns:
        A `Prediction` holding P(class 1), the class probabilities or the regression value per row.
        Raises `BadRequest` (400) naming the row, column and problem of the first bad cell.
    """
    features = to_features(input_data, model)
    booster = model.small_booster if len(features) <= _SINGLE_THREAD_MAX_ROWS else model.booster
    scores = booster.inplace_predict(features, iteration_range=model.iteration_range, validate_features=False)
    return Prediction(scores=np.asarray(scores), content_type=input_data.content_type, model=model)


# -------------------------------------------------------------------------------------------------- output_fn


def output_fn(prediction: Prediction, accept: str | None) -> tuple[bytes, str]:
    """Encodes the prediction as CSV, JSON or JSON Lines, with labels when Accept carries `labels=true`.

    Args:
        prediction: `predict_fn`'s result.
        accept: the Accept header (the toolkit has already replaced a missing one or `*/*` by
            SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT); `*/*` in a list means that default, else the request's format.

    Returns:
        (UTF-8 body, response media type): the toolkit sends the type as the response's Content-Type, without
        parameters such as `labels=true`. Raises `BadRequest` (406) for an unsupported Accept.
    """
    media, want_labels = resolve_accept(accept, prediction.content_type)
    model = prediction.model
    scores = prediction.scores
    labels = _labels(prediction) if want_labels else None
    if media == CSV:
        texts = _float_texts(scores)
        if scores.ndim == 1 and labels is None:
            body = ("\n" if _BATCH else ",").join(texts)
        else:
            escaped = [_csv_field(c) for c in model.classes]
            width = 1 if scores.ndim == 1 else scores.shape[1]
            lines = [",".join(texts[i : i + width]) for i in range(0, len(texts), width)]
            if labels is not None:
                lines = [f"{line},{escaped[k]}" for line, k in zip(lines, labels, strict=True)]
            body = "\n".join(lines)
        if _BATCH:
            body += "\n"
        return body.encode("utf-8"), media
    values = scores.tolist()
    if labels is None:
        records = [{"score": v} for v in values]
    else:
        records = [{"score": v, "predicted_label": model.classes[k]} for v, k in zip(values, labels, strict=True)]
    if media == JSON:
        return json.dumps({"predictions": records}).encode("utf-8"), media
    return ("\n".join(map(json.dumps, records)) + "\n").encode("utf-8"), media


@lru_cache(maxsize=256)
def resolve_accept(accept: str | None, request_content_type: str | None = None) -> tuple[str, bool]:
    """Picks the response media type and whether labels were asked for.

    Args:
        accept: the Accept header (q-values honoured); None, empty or `*/*` means the request's own type.
        request_content_type: the request's Content-Type (or its canonical media type).

    Returns:
        (canonical media type, labels requested). Raises `BadRequest` (406) when nothing acceptable is offered.
    """
    request_type = request_media_type(request_content_type)
    # Responses are CSV, JSON or JSON Lines; a LIBSVM request answers in the configured default, else CSV.
    default = _DEFAULT_ACCEPT_TYPE or (request_type if request_type in _RESPONSE_TYPES else CSV)
    if not accept or not accept.strip():
        return default, False
    offers = []
    for position, item in enumerate(accept.split(",")):
        media, params = _parse_media_range(item)
        options = dict(params)
        try:
            q = float(options.get("q", "1"))
        except ValueError:
            q = 1.0
        if media and q > 0:
            offers.append((-q, position, media, options.get("labels") in {"true", "1", "yes"}))
    for _, _, media, labels in sorted(offers):
        if media in _RESPONSE_TYPES:
            return _RESPONSE_TYPES[media], labels
        if media == "*/*" or (media == "text/*" and default == CSV):
            return default, labels
        if media == "application/*":
            return (default if default != CSV else JSON), labels
    raise BadRequest(
        f"unsupported Accept {accept!r}; accept text/csv, application/json or application/jsonlines "
        "(add '; labels=true' for predicted labels)",
        406,
    )


_DEFAULT_ACCEPT_TYPE = _RESPONSE_TYPES.get(_parse_media_range(_DEFAULT_ACCEPT)[0]) if _DEFAULT_ACCEPT else None


def _float_texts(values: np.ndarray) -> list[str]:
    """Each value (row-major) as the shortest text that reads back as the same float32: `0.8234567`, not the
    `0.8234567046165466` of its float64 repr; `1` for 1.0, and nan/inf/-inf.

    A large response is formatted by pyarrow in one call, about 4x faster than repr for 10,000 rows; a small one by
    numpy's shortest repr of each value, since pyarrow's fixed cost is larger there. Both find the same digits; only
    the notation of very small or large numbers may differ (`1e-05` here, `0.00001` from pyarrow).
    """
    flat = np.ascontiguousarray(values, dtype=np.float32).ravel()
    if len(flat) >= _VECTORISE_MIN_ROWS:
        try:
            import pyarrow as pa
        except ImportError:  # pragma: no cover - the framework container has pyarrow
            pass
        else:
            texts: list[str] = pa.array(flat).cast(pa.string()).to_pylist()
            return texts
    return [text[:-2] if text.endswith(".0") else text for text in map(str, flat)]


def _labels(prediction: Prediction) -> list[int]:
    model = prediction.model
    if model.task == "regression":
        raise BadRequest("labels=true: a regression model predicts values, not labels", 406)
    if model.task == "binary":
        return (prediction.scores >= model.threshold).astype(np.int64).tolist()
    return prediction.scores.argmax(axis=1).tolist()


def _csv_field(value: str) -> str:
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value
