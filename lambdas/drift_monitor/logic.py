"""Drift monitor: captured requests since the last run vs the champion's baseline.json, per feature.

Capture files: SageMaker data capture writes JSON Lines under capture/<endpoint>/<variant>/yyyy/mm/dd/hh/,
one record per request (records.py says how a record becomes request rows, with the endpoint's cell rules).

Memory: each file is streamed in chunks and its rows are counted per feature as they are read (tally.py),
so a run holds features x bins counts, never the rows; a line longer than stream.MAX_RECORD_BYTES is
skipped as it streams by. A record that cannot be parsed, whatever it holds, is counted
(UnparseableCaptureRecords), logged (the first few) and skipped; the run goes on.

Watermark: the runs table keeps (last_modified_ms, key) of the last file consumed; a run reads files after
it, oldest first, at most `drift_max_files`, and only files older than SETTLE_SECONDS (so a file still
being written is never half-read). A run also stops taking new files once its time budget is spent (the
rest wait for the next run), so a backlog never makes every run time out. Minimum sample: PSI is published
only from at least `drift_min_samples` parsed rows; with fewer, the files stay unconsumed (the watermark does
not move) and the next run reads them again together with the new ones, unless files were left unread (the
file cap or the time budget), which consumes what was read: unparseable data never wedges the watermark.
Counts (CaptureRecordsRead, UnparseableCaptureRecords) are published for the files a run consumes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from aws_lambda_powertools import Logger

from contract.data import Schema, parse_schema
from lambdas.drift_monitor.records import CaptureParseError as CaptureParseError  # re-exported: the record rules
from lambdas.drift_monitor.records import RowParser as RowParser
from lambdas.drift_monitor.records import parse_capture_record as parse_capture_record
from lambdas.drift_monitor.stream import CHUNK_BYTES, CaptureReader, prefetched
from lambdas.drift_monitor.tally import Tally
from lambdas.shared import artifacts, runs
from lambdas.shared.contract import (
    ENV_CHAMPION_PARAMETER,
    ENV_DATA_BUCKET,
    ENV_RUNS_TABLE,
    ENV_STAGE,
    FUNCTIONS,
    PREFIX_CAPTURE,
)
from lambdas.shared.drift import BaselineError, FeatureDrift
from lambdas.shared.function_settings import retrain_policy
from lambdas.shared.policy import RetrainPolicy
from lambdas.shared.runtime import client, env_str

logger = Logger(service=FUNCTIONS["drift_monitor"], child=True)

SETTLE_SECONDS: Final = 120


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


# Why a run has nothing to compare with, for code and tests that branch on it (the text is for people).
DriftMonitorErrorCode = Literal[
    "no-champion",  # the champion parameter names no model
    "no-reference",  # the champion's artifact has no baseline.json or schema.json
    "bad-baseline",  # the champion's baseline.json cannot be compared with its schema (a BaselineError)
]


class DriftMonitorError(RuntimeError):
    """The champion gives nothing to compare with (no champion, no baseline.json or schema.json).

    `code` (a DriftMonitorErrorCode: no-champion, no-reference, bad-baseline) says which; every raise site sets it.
    """

    def __init__(self, message: str, *, code: DriftMonitorErrorCode) -> None:
        super().__init__(message)
        self.code: DriftMonitorErrorCode = code


# --------------------------------------------------------------------------------------------- the run


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


def champion_reference(settings: Settings) -> tuple[str, Schema, dict[str, Any]]:
    url = artifacts.champion_url(settings.champion_parameter)
    if not url:
        raise DriftMonitorError(
            f"no champion in {settings.champion_parameter}: nothing to compare with", code="no-champion"
        )
    files = artifacts.model_files(url)
    if files.baseline is None or files.schema is None:
        raise DriftMonitorError(f"champion {url} has no baseline.json or schema.json", code="no-reference")
    return url, parse_schema(files.schema), files.baseline


def read_capture(s3: Any, bucket: str, key: str, reader: CaptureReader) -> None:
    """Streams one capture file into `reader`: chunk by chunk, never the whole body at once."""
    read_files(s3, bucket, [key], reader)


def _chunks(s3: Any, bucket: str, keys: Sequence[str]) -> Iterator[tuple[str, bytes | None]]:
    """(key, chunk) of every file in turn, and (key, None) at each file's end."""
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            for chunk in body.iter_chunks(CHUNK_BYTES):
                yield key, chunk
        finally:
            body.close()
        yield key, None


def _until_end(stream: Iterator[tuple[str, bytes | None]], key: str) -> Iterator[bytes]:
    for got, chunk in stream:
        if chunk is None:
            return
        if got != key:  # never: files arrive in order
            raise RuntimeError(f"capture stream out of order: {got} while reading {key}")
        yield chunk


def read_files(
    s3: Any, bucket: str, keys: Sequence[str], reader: CaptureReader, *, deadline: float | None = None
) -> int:
    """Streams the files, in order, into `reader`; the next chunks are fetched while the current one is parsed.

    Starts no new file after `deadline` (time.monotonic()) once one is read; returns how many were read.
    """
    stream = prefetched(_chunks(s3, bucket, keys))
    read = 0
    try:
        for key in keys:
            if read and deadline is not None and time.monotonic() > deadline:
                break
            reader.read(key, _until_end(stream, key))
            read += 1
    finally:
        stream.close()
    return read


def run_drift_check(settings: Settings, now: datetime, *, deadline: float | None = None) -> DriftRun:
    """One run. `deadline` (time.monotonic()): no new file is started after it; what was read is kept."""
    champion, spec, baseline = champion_reference(settings)
    try:
        reader = CaptureReader(Tally(spec, baseline))
    except BaselineError as error:
        raise DriftMonitorError(f"champion {champion}: {error}", code="bad-baseline") from None
    mark = runs.get_item(settings.runs_table, runs.DRIFT) or {}
    watermark = (int(mark.get("last_modified_ms", 0)), str(mark.get("last_key", "")))
    files, more = pending_files(
        _list_capture(settings.data_bucket), watermark, now=now, limit=settings.policy.drift_max_files
    )
    done = read_files(client("s3"), settings.data_bucket, [f.key for f in files], reader, deadline=deadline)
    read = files[:done]
    if done < len(files):
        logger.info("time budget spent; the remaining files wait for the next run", extra={"read": done})
        more = True
    tally = reader.tally
    enough = tally.rows >= settings.policy.drift_min_samples
    # Consume when there is enough to publish, or when files were left unread (the file cap, the time
    # budget): mostly unparseable data must not wedge the watermark. Otherwise leave the files for the next
    # run to read again with new ones.
    consumed = bool(read) and (enough or more)
    if consumed:
        last = read[-1]
        runs.put_item(
            settings.runs_table,
            runs.DRIFT,
            {"last_modified_ms": last.last_modified_ms, "last_key": last.key, "champion": champion},
        )
    drifts = tuple(tally.drifts()) if enough else ()
    for problem in reader.problems:
        logger.warning("unparseable capture record", extra={"problem": problem})
    return DriftRun(
        champion=champion,
        files=len(read),
        records=reader.records,
        unparseable=reader.unparseable,
        rows=tally.rows,
        published=enough,
        consumed=consumed,
        drifts=drifts,
        problems=tuple(reader.problems),
    )
