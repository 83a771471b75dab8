"""One capture record -> its request rows: the reference rules, record by record.

Capture records are SageMaker data-capture JSON lines (docs/artifacts.md):
`captureData.endpointInput.{observedContentType, mode, data, encoding}` with encoding CSV, JSON or BASE64
(then the bytes are read per observedContentType).

Request rows are read like the endpoint reads them, cell by cell with the data contract's request rules
(`contract.data.request_csv_cell` / `request_json_cell`): features in schema order, no label.
- text/csv: one row per line; a categorical cell is its integer code or its category string;
- application/json: `{"instances": [...]}`, a bare list, or one instance; an instance is a list in schema
  order, an object keyed by feature name, or `{"features": [...]}`; application/jsonlines: one per line.
- missing: an empty cell, a schema missing token, `nan`, JSON null, a key left out.
A record is unparseable when its JSON, encoding, content type or any of its rows is wrong: a wrong column
count, a cell the contract refuses. Whatever it holds (nesting 100,000 deep, a number with thousands of
digits, binary bytes) the answer is a CaptureParseError, never another exception. One difference from the
endpoint, on purpose: a category code out of range or an unknown category string counts as `__other__`
(that is drift), where the endpoint would answer 400.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from contract.data import CellError, Schema, request_csv_cell, request_json_cell
from lambdas.shared.drift import OTHER

Cell = float | str | None
PayloadKind = Literal["CSV", "JSON", "JSONLINES"]

# A cell the contract refuses only because its category is unknown: drift, counted as OTHER.
UNKNOWN_CATEGORY: Final = "unknown_category_code"


class CaptureParseError(ValueError):
    """One capture record cannot be read as request rows; the message says why."""


@dataclass(frozen=True)
class RowParser:
    """Request cells -> typed values: numeric -> float | None, categorical -> category name | OTHER | None."""

    spec: Schema

    @property
    def width(self) -> int:
        return len(self.spec.features)

    def _typed(self, index: int, value: float) -> Cell:
        if value != value:  # NaN: the contract's missing value
            return None
        feature = self.spec.features[index]
        return feature.categories[int(value)] if feature.categorical else value

    def _refused(self, index: int, error: CellError) -> Cell:
        if error.code == UNKNOWN_CATEGORY and self.spec.features[index].categorical:
            return OTHER
        raise CaptureParseError(f"{self.spec.features[index].name}: {error.message}") from None

    def csv_cell(self, index: int, text: str) -> Cell:
        """A CSV cell (always text), read as the endpoint reads it."""
        try:
            return self._typed(index, request_csv_cell(text, self.spec, index))
        except CellError as error:
            return self._refused(index, error)

    def json_cell(self, index: int, value: Any) -> Cell:
        """A JSON value, read as the endpoint reads it (a string is a category name first)."""
        try:
            return self._typed(index, request_json_cell(value, self.spec, index))
        except CellError as error:
            return self._refused(index, error)

    def csv_row(self, cells: Sequence[str]) -> list[Cell]:
        if len(cells) != self.width:
            raise CaptureParseError(f"{len(cells)} values; expected {self.width} features")
        return [self.csv_cell(i, c) for i, c in enumerate(cells)]

    def instance(self, instance: Any) -> list[Cell]:
        features = self.spec.features
        if isinstance(instance, Mapping):
            if "features" in instance and isinstance(instance["features"], list):
                instance = instance["features"]
            else:
                unknown = set(instance) - {f.name for f in features}
                if unknown:
                    raise CaptureParseError(f"unknown feature names {sorted(unknown)[:5]}")
                return [self.json_cell(i, instance.get(f.name)) for i, f in enumerate(features)]
        if isinstance(instance, list):
            if len(instance) != self.width:
                raise CaptureParseError(f"{len(instance)} values; expected {self.width} features")
            return [self.json_cell(i, v) for i, v in enumerate(instance)]
        raise CaptureParseError(f"an instance must be a list or an object, got {type(instance).__name__}")


def load_json(text: str | bytes) -> Any:
    """json.loads, with every way it can refuse (syntax, nesting depth, integer digits) as CaptureParseError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise CaptureParseError("JSON nested too deep") from None
    except ValueError as error:  # JSONDecodeError, the int digit limit, undecodable bytes
        raise CaptureParseError(f"not JSON: {str(error)[:120]}") from None


def envelope(line: str | bytes) -> tuple[str, str, str]:
    """(observedContentType, data, encoding) of one capture line's endpointInput."""
    record = load_json(line)
    captured = record.get("captureData") if isinstance(record, dict) else None
    captured = captured.get("endpointInput") if isinstance(captured, dict) else None
    if not isinstance(captured, dict) or "data" not in captured or "encoding" not in captured:
        raise CaptureParseError("no captureData.endpointInput with data and encoding")
    data, encoding, content_type = captured["data"], captured["encoding"], captured.get("observedContentType", "")
    if not isinstance(data, str) or not isinstance(encoding, str) or not isinstance(content_type, str):
        raise CaptureParseError("endpointInput data, encoding and observedContentType must be strings")
    return content_type, data, encoding


def payload(content_type: str, data: str, encoding: str) -> tuple[PayloadKind, str]:
    """The request body as text, and how to read it (SageMaker's encoding, then the content type)."""
    encoding = encoding.upper()
    media_type = content_type.split(";")[0].strip().lower()
    kind: PayloadKind
    if encoding == "BASE64":
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except ValueError as error:  # binascii.Error, non-ASCII input, UnicodeDecodeError
            raise CaptureParseError(f"BASE64 data does not decode to UTF-8 text: {str(error)[:120]}") from None
        if "json" in media_type:
            kind = "JSON"
        elif "csv" in media_type:
            kind = "CSV"
        else:
            raise CaptureParseError(f"unsupported content type {media_type[:60]!r}")
    elif encoding in ("CSV", "JSON"):
        kind, text = ("CSV" if encoding == "CSV" else "JSON"), data
    else:
        raise CaptureParseError(f"unsupported encoding {encoding[:20]!r}")
    if kind == "JSON" and media_type == "application/jsonlines":
        kind = "JSONLINES"
    return kind, text


def csv_rows(text: str, parser: RowParser) -> list[list[Cell]]:
    """Every row of a CSV payload, read with the csv module (quotes, carriage returns)."""
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line != ""]
    if not lines:
        raise CaptureParseError("empty CSV payload")
    try:
        return [parser.csv_row(cells) for cells in csv.reader(io.StringIO("\n".join(lines)), strict=True)]
    except csv.Error as error:
        raise CaptureParseError(f"malformed CSV: {error}") from None


def _json_rows(value: Any, parser: RowParser) -> list[list[Cell]]:
    if isinstance(value, Mapping) and "instances" in value:
        instances = value["instances"]
        if not isinstance(instances, list) or not instances:
            raise CaptureParseError("instances must be a non-empty list")
        return [parser.instance(i) for i in instances]
    if isinstance(value, list) and value and all(isinstance(i, list | Mapping) for i in value):
        return [parser.instance(i) for i in value]
    return [parser.instance(value)]


def json_rows(kind: PayloadKind, text: str, parser: RowParser) -> list[list[Cell]]:
    """Every row of a JSON or JSON Lines payload."""
    if kind == "JSONLINES":
        return [row for line in text.splitlines() if line.strip() for row in _json_rows(load_json(line), parser)]
    return _json_rows(load_json(text), parser)


def parse_capture_record(line: str | bytes, parser: RowParser) -> list[list[Cell]]:
    """The request rows of one capture line; CaptureParseError says what is wrong with it."""
    kind, text = payload(*envelope(line))
    try:
        return csv_rows(text, parser) if kind == "CSV" else json_rows(kind, text, parser)
    except RecursionError:
        raise CaptureParseError("payload nested too deep") from None
