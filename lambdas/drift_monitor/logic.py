"""Drift monitor: captured requests since the last run vs the champion's baseline.json, per feature.

Capture files: SageMaker data capture writes JSON Lines under capture/<endpoint>/<variant>/yyyy/mm/dd/hh/,
one record per request: `captureData.endpointInput.{observedContentType, mode, data, encoding}` with
encoding CSV, JSON or BASE64 (then the bytes are read per observedContentType).

Request rows (docs/artifacts.md): features in schema order, no label.
- text/csv: one row per line; a categorical cell is its integer code or its category string;
- application/json: `{"instances": [...]}`, a bare list, or one instance; an instance is a list in schema
  order, an object keyed by feature name, or `{"features": [...]}`; application/jsonlines: one per line.
- missing: an empty cell, a schema missing token, JSON null, a key left out.
A record is unparseable (counted, logged, skipped; the run goes on) when its JSON, encoding, content type
or any of its rows is wrong: a wrong column count, a non-number in a numeric column. A category code out of
range or an unknown category string is not an error: it counts as `__other__` (that is drift).

Watermark: the runs table keeps (last_modified_ms, key) of the last file consumed; a run reads files after
it, oldest first, at most `drift_max_files`, and only files older than SETTLE_SECONDS (so a file still
being written is never half-read). Minimum sample: PSI is published only from at least
`drift_min_samples` parsed rows; with fewer, the files stay unconsumed (the watermark does not move) and
the next run reads them again together with the new ones. Counts (CaptureRecordsRead,
UnparseableCaptureRecords) are published for the files a run consumes.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from aws_lambda_powertools import Logger

from lambdas.shared import artifacts, runs
from lambdas.shared.contract import (
    ENV_CHAMPION_PARAMETER,
    ENV_DATA_BUCKET,
    ENV_RUNS_TABLE,
    ENV_STAGE,
    FUNCTIONS,
    PREFIX_CAPTURE,
)
from lambdas.shared.drift import OTHER, FeatureDrift, feature_drifts
from lambdas.shared.function_settings import retrain_policy
from lambdas.shared.policy import RetrainPolicy
from lambdas.shared.runtime import client, env_str
from lambdas.shared.validation import SchemaSpec, parse_schema

logger = Logger(service=FUNCTIONS["drift_monitor"], child=True)

SETTLE_SECONDS: Final = 120
MAX_LOGGED_PROBLEMS: Final = 20


@dataclass(frozen=True)
class Settings:
    stage: str
    data_bucket: str
    champion_parameter: str
    runs_table: str
    policy: RetrainPolicy

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        return cls(
            stage=env_str(ENV_STAGE, environ),
            data_bucket=env_str(ENV_DATA_BUCKET, environ),
            champion_parameter=env_str(ENV_CHAMPION_PARAMETER, environ),
            runs_table=env_str(ENV_RUNS_TABLE, environ),
            policy=retrain_policy(environ),
        )


class CaptureParseError(ValueError):
    """One capture record cannot be read as request rows; the message says why."""


class DriftMonitorError(RuntimeError):
    """The champion gives nothing to compare with (no champion, no baseline.json or schema.json)."""


# ----------------------------------------------------------------------------------------------- parsing

Cell = float | str | None


@dataclass(frozen=True)
class RowParser:
    """Turns request cells into typed values: numeric -> float | None, categorical -> category | None."""

    spec: SchemaSpec

    def _missing(self, cell: Any) -> bool:
        return cell is None or (isinstance(cell, str) and (cell.strip() == "" or cell in self.spec.missing_tokens))

    def cell(self, index: int, cell: Any) -> Cell:
        feature = self.spec.features[index]
        if self._missing(cell):
            return None
        if feature.type == "numeric":
            if isinstance(cell, bool):
                raise CaptureParseError(f"{feature.name}: {cell!r} is not a number")
            try:
                value = float(cell)
            except (TypeError, ValueError):
                raise CaptureParseError(f"{feature.name}: {cell!r} is not a number") from None
            if not math.isfinite(value):
                raise CaptureParseError(f"{feature.name}: {cell!r} is not finite")
            return value
        text = str(cell).strip()
        if text in feature.categories:
            return text
        try:
            code = float(text)
        except ValueError:
            return OTHER
        if code.is_integer() and 0 <= code < len(feature.categories):
            return feature.categories[int(code)]
        return OTHER

    def row(self, cells: Sequence[Any]) -> list[Cell]:
        if len(cells) != len(self.spec.features):
            raise CaptureParseError(f"{len(cells)} values; expected {len(self.spec.features)} features")
        return [self.cell(i, c) for i, c in enumerate(cells)]

    def instance(self, instance: Any) -> list[Cell]:
        if isinstance(instance, Mapping):
            if "features" in instance and isinstance(instance["features"], list):
                return self.row(instance["features"])
            unknown = set(instance) - {f.name for f in self.spec.features}
            if unknown:
                raise CaptureParseError(f"unknown feature names {sorted(unknown)}")
            return [self.cell(i, instance.get(f.name)) for i, f in enumerate(self.spec.features)]
        if isinstance(instance, list):
            return self.row(instance)
        raise CaptureParseError(f"an instance must be a list or an object, got {type(instance).__name__}")


def _csv_rows(text: str, parser: RowParser) -> list[list[Cell]]:
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line != ""]
    if not lines:
        raise CaptureParseError("empty CSV payload")
    try:
        return [parser.row(cells) for cells in csv.reader(io.StringIO("\n".join(lines)), strict=True)]
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


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CaptureParseError(f"payload is not JSON: {error}") from None


def parse_capture_record(line: str, parser: RowParser) -> list[list[Cell]]:
    """The request rows of one capture line; CaptureParseError says what is wrong with it."""
    record = _load_json(line)
    try:
        captured = record["captureData"]["endpointInput"]
        data, encoding = captured["data"], str(captured["encoding"]).upper()
        content_type = str(captured.get("observedContentType", "")).split(";")[0].strip().lower()
    except (KeyError, TypeError):
        raise CaptureParseError("no captureData.endpointInput with data and encoding") from None
    if not isinstance(data, str):
        raise CaptureParseError("endpointInput.data must be a string")
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise CaptureParseError(f"BASE64 data does not decode to UTF-8 text: {error}") from None
        kind = "JSON" if "json" in content_type else "CSV" if "csv" in content_type else ""
        if not kind:
            raise CaptureParseError(f"unsupported content type {content_type!r}")
    elif encoding in ("CSV", "JSON"):
        kind = encoding
    else:
        raise CaptureParseError(f"unsupported encoding {encoding!r}")
    if kind == "CSV":
        return _csv_rows(data, parser)
    if content_type == "application/jsonlines":
        return [row for line_ in data.splitlines() if line_.strip() for row in _json_rows(_load_json(line_), parser)]
    return _json_rows(_load_json(data), parser)


# --------------------------------------------------------------------------------------------- the run


@dataclass
class Sample:
    records: int = 0
    unparseable: int = 0
    problems: list[str] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)

    def add_file(self, key: str, text: str, parser: RowParser) -> None:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            self.records += 1
            try:
                self.rows.extend(parse_capture_record(line, parser))
            except CaptureParseError as error:
                self.unparseable += 1
                if len(self.problems) < MAX_LOGGED_PROBLEMS:
                    self.problems.append(f"{key}:{number}: {error}")

    def columns(self, spec: SchemaSpec) -> dict[str, list[Cell]]:
        return {f.name: [row[i] for row in self.rows] for i, f in enumerate(spec.features)}


@dataclass(frozen=True)
class CaptureFile:
    key: str
    last_modified_ms: int

    @property
    def position(self) -> tuple[int, str]:
        return (self.last_modified_ms, self.key)


def pending_files(
    listing: Iterator[Mapping[str, Any]], watermark: tuple[int, str], *, now: datetime, limit: int
) -> tuple[list[CaptureFile], bool]:
    """Capture files after the watermark and settled, oldest first; (first `limit`, whether more wait)."""
    settled = int((now - timedelta(seconds=SETTLE_SECONDS)).timestamp() * 1000)
    found = []
    for item in listing:
        key = str(item["Key"])
        if not key.endswith(".jsonl"):
            continue
        modified = item["LastModified"]
        ms = int(modified.timestamp() * 1000) if isinstance(modified, datetime) else int(modified)
        file = CaptureFile(key, ms)
        if file.position > watermark and ms <= settled:
            found.append(file)
    found.sort(key=lambda f: f.position)
    return found[:limit], len(found) > limit


def _list_capture(bucket: str) -> Iterator[Mapping[str, Any]]:
    paginator = client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=PREFIX_CAPTURE):
        yield from page.get("Contents", [])


@dataclass(frozen=True)
class DriftRun:
    """What one run found; `published` says whether PSI metrics go out."""

    champion: str
    files: int
    records: int
    unparseable: int
    rows: int
    published: bool
    consumed: bool
    drifts: tuple[FeatureDrift, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def max_psi(self) -> float | None:
        return max((d.psi for d in self.drifts), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion": self.champion,
            "files": self.files,
            "records": self.records,
            "unparseable": self.unparseable,
            "rows": self.rows,
            "published": self.published,
            "consumed": self.consumed,
            "max_psi": None if self.max_psi is None else round(self.max_psi, 6),
            "features": [d.to_dict() for d in self.drifts],
        }


def champion_reference(settings: Settings) -> tuple[str, SchemaSpec, dict[str, Any]]:
    url = artifacts.champion_url(settings.champion_parameter)
    if not url:
        raise DriftMonitorError(f"no champion in {settings.champion_parameter}: nothing to compare with")
    files = artifacts.model_files(url)
    if files.baseline is None or files.schema is None:
        raise DriftMonitorError(f"champion {url} has no baseline.json or schema.json")
    return url, parse_schema(files.schema), files.baseline


def run_drift_check(settings: Settings, now: datetime) -> DriftRun:
    champion, spec, baseline = champion_reference(settings)
    parser = RowParser(spec)
    mark = runs.get_item(settings.runs_table, runs.DRIFT) or {}
    watermark = (int(mark.get("last_modified_ms", 0)), str(mark.get("last_key", "")))
    files, more = pending_files(
        _list_capture(settings.data_bucket), watermark, now=now, limit=settings.policy.drift_max_files
    )
    sample = Sample()
    s3 = client("s3")
    for file in files:
        body = s3.get_object(Bucket=settings.data_bucket, Key=file.key)["Body"].read()
        sample.add_file(file.key, body.decode("utf-8", errors="replace"), parser)
    enough = len(sample.rows) >= settings.policy.drift_min_samples
    # Consume when there is enough to publish, or when the file cap is hit (mostly unparseable data must
    # not wedge the watermark); otherwise leave the files for the next run to read again with new ones.
    consumed = bool(files) and (enough or more)
    if consumed:
        last = files[-1]
        runs.put_item(
            settings.runs_table,
            runs.DRIFT,
            {"last_modified_ms": last.last_modified_ms, "last_key": last.key, "champion": champion},
        )
    drifts = tuple(feature_drifts(baseline, sample.columns(spec))) if enough else ()
    for problem in sample.problems:
        logger.warning("unparseable capture record", extra={"problem": problem})
    return DriftRun(
        champion=champion,
        files=len(files),
        records=sample.records,
        unparseable=sample.unparseable,
        rows=len(sample.rows),
        published=enough,
        consumed=consumed,
        drifts=drifts,
        problems=tuple(sample.problems),
    )
