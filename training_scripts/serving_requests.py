"""Request decoding: the body's text, its content type, and the envelope of each format (CSV, JSON, JSON Lines,
LIBSVM) with its row count. The cells are read against the schema later, in serving_features.py.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

if __package__:  # training_scripts.<module>, imported from the repository
    from training_scripts import serving_media
else:  # imported by name from the model's code/ directory, beside inference.py
    import serving_media  # type: ignore[no-redef]

CSV, JSON, LIBSVM, MAX_ROWS = serving_media.CSV, serving_media.JSON, serving_media.LIBSVM, serving_media.MAX_ROWS
BadRequest = serving_media.BadRequest
csv_field, label_columns, type_name = serving_media.csv_field, serving_media.label_columns, serving_media.type_name
request_media_type = serving_media.request_media_type


@dataclass(frozen=True, slots=True)
class ParsedInput:
    """`input_fn`'s result: the decoded request, not yet checked against the schema."""

    content_type: str  # canonical request media type, also the default response type
    text: str | None = None  # CSV body
    rows: list[Any] | None = None  # JSON / JSON Lines rows (lists or objects)
    libsvm: list[str] | None = None  # LIBSVM lines: "<label>[:<weight>] <index>:<value> ..."


def decode_request(request_body: bytes | str | Any, request_content_type: str | None) -> ParsedInput:
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
        if label_columns(request_content_type):
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
            out.append(",".join(csv_field(c) for c in tail) if '"' in text else ",".join(tail))
    except csv.Error as e:
        raise BadRequest(f"the CSV body cannot be read: {e}") from None
    return "\n".join(out)


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
            raise BadRequest(f'"instances" must be a list of rows, not {type_name(rows)}')
    elif isinstance(payload, list):
        # A bare list of rows, or one row of scalars (what a JSON serializer makes of a 1-D array).
        rows = payload if all(isinstance(r, (list, dict)) for r in payload) else [payload]
    else:
        raise BadRequest(f'a JSON request must be {{"instances": [row, ...]}}, not {type_name(payload)}')
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


def _libsvm_lines(body: Any) -> list[str]:
    text = _text(body)
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        raise BadRequest("the request body is empty; send one LIBSVM row per line")
    if len(lines) > MAX_ROWS:
        raise _too_many_rows(len(lines))
    return lines
