"""Ingest validates an object by streaming it: GetObject's body is read in chunks, never whole, and memory
stays flat whatever the object's size (issue 12, section 2)."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.response import StreamingBody

from lambdas.ingest import handler as ingest
from lambdas.ingest import logic, objects
from lambdas.shared import runs
from lambdas.shared.contract import ENV_RETRAIN_POLICY
from lambdas.shared.events import S3ObjectRef
from lambdas.shared.runtime import client
from lambdas.shared.validation import Limits, parse_schema
from tests.lambdas.fixtures import (
    DATA_BUCKET,
    POLICY,
    RUNS_TABLE,
    SCHEMA,
    Aws,
    CallRecorder,
    FakeContext,
    aws_client,
    sqs_event,
    upload,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

KEY = "incoming/2026/large.csv"
# Valid rows of SCHEMA (label, age, workclass, hours, color), varied, with long decimals: wide rows make fewer
# lines per MB, so the test runs in seconds under tracemalloc.
ROWS = b"".join(
    f"{i % 2},{17 + i % 70}.{i:012d},{i % 4},{1 + i % 99}.{i * 7919 % 10**12:012d},{i % 12}\n".encode()
    for i in range(4096)
)


class StrictBody(StreamingBody):
    """botocore's StreamingBody, refusing `read()` without a size: that would hold the whole object."""

    def __init__(self, raw: Any, content_length: int) -> None:
        super().__init__(raw, content_length)
        self.largest_read = 0

    def read(self, amt: int | None = None) -> bytes:
        if amt is None:
            raise AssertionError("read() without a size: the whole object would be in memory")
        self.largest_read = max(self.largest_read, amt)
        return bytes(super().read(amt))


class GeneratedRaw:
    """A raw HTTP body of `size` bytes of valid rows (the last one replaced by `tail`), made as it is read."""

    def __init__(self, size: int, tail: bytes = b"") -> None:
        self.size, self.tail, self.pos = size, tail, 0
        self.body_size = size - len(tail)

    def read(self, amt: int) -> bytes:
        out = bytearray()
        while len(out) < amt and self.pos < self.size:
            if self.pos < self.body_size:
                at = self.pos % len(ROWS)
                piece = ROWS[at : at + min(amt - len(out), self.body_size - self.pos)]
            else:
                at = self.pos - self.body_size
                piece = self.tail[at : at + amt - len(out)]
            out += piece
            self.pos += len(piece)
        return bytes(out)

    def close(self) -> None:
        pass


def generated_sha256(size: int, tail: bytes = b"") -> str:
    """The SHA-256 of what GeneratedRaw serves (its bytes built once, outside the measurement)."""
    return hashlib.sha256(GeneratedRaw(size, tail).read(size)).hexdigest()


# -------------------------------------------------------------------------------------------- memory


@pytest.mark.parametrize(
    ("mb", "tail", "measure"), [(24, b"", True), (4, b"1,40,2,40,99\n", False)], ids=["24MB-valid", "4MB-bad-last-row"]
)
def test_a_large_object_is_validated_in_flat_memory(
    monkeypatch: pytest.MonkeyPatch, mb: int, tail: bytes, measure: bool
) -> None:
    # GIVEN an object of whole lines (optionally an unknown category on its last row), served by a body that
    # refuses read() without a size, every GetObject of it answering the same bytes
    size = mb * 1024 * 1024
    size -= size % len(ROWS)
    size += len(tail)
    expected_sha = generated_sha256(size, tail)
    opened: list[StrictBody] = []

    def get(ref: S3ObjectRef, *, download: bool, etag: str | None = None) -> tuple[dict[str, Any], Any]:
        assert download and etag == '"e"'
        opened.append(StrictBody(GeneratedRaw(size, tail), size))
        return {"ETag": '"e"', "ContentLength": size}, opened[-1]

    monkeypatch.setattr(objects, "head_or_get", get)
    ref = S3ObjectRef(DATA_BUCKET, KEY, datetime(2026, 11, 23, tzinfo=UTC), size=size)
    spec = parse_schema(SCHEMA)
    head, body = get(ref, download=True, etag='"e"')
    # WHEN ingest's check reads it
    if measure:
        tracemalloc.start()
    try:
        report = objects.validate_object(ref, head, body, spec, Limits(max_bytes=size))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not isinstance(report, objects.Gone)
    # THEN the report is the exact one, with the SHA-256 of every byte, from two reads in chunks
    rows = size // len(ROWS) * 4096
    if tail:
        assert not report.valid
        assert [(p.problem, p.row, p.column) for p in report.problems] == [("unknown_category_code", rows + 1, 4)]
    else:
        assert report.valid and report.rows_checked == rows
    assert (report.sha256, report.size_bytes) == (expected_sha, size)
    assert len(opened) == 2 and all(b.largest_read == objects.READ_CHUNK_BYTES for b in opened)
    # ... and memory stayed flat: a few 1 MiB chunks (read, joined, decoded), not the object (reading it whole
    # would hold its bytes and, decoded, as much again)
    if measure:
        assert peak < min(8 * objects.READ_CHUNK_BYTES, size // 4), f"peak {peak / 2**20:.1f} MiB for {mb} MiB"


# --------------------------------------------------------------------------------------- end to end


def strict_bodies() -> list[dict[str, Any]]:
    """Wrap every GetObject body of the functions' S3 client in StrictBody; returns the calls' parameters."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    def wrap(parsed: dict[str, Any], **_: Any) -> None:
        if "Body" in parsed:
            body = parsed["Body"]
            parsed["Body"] = StrictBody(body._raw_stream, int(parsed["ContentLength"]))

    events = client("s3").meta.events
    events.register("provide-client-params.s3.GetObject", record)
    events.register("after-call.s3.GetObject", wrap)
    return calls


def test_a_large_upload_is_streamed_and_promoted_with_its_sha256(
    resources: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a 12 MB valid upload (the size limit raised to 16 MB), and GetObject bodies that refuse read()
    # without a size
    monkeypatch.setenv(ENV_RETRAIN_POLICY, json.dumps({**POLICY, "max_file_bytes": 16 * 1024 * 1024}))
    CallRecorder("lambda", "Invoke", lambda params: {"StatusCode": 202}).install()
    data = ROWS * (12 * 1024 * 1024 // len(ROWS))
    message = upload(KEY, data)
    calls = strict_bodies()
    # WHEN ingest handles its notification
    response = ingest.handler(sqs_event([message]), FakeContext())
    # THEN it is promoted byte for byte, recorded with the SHA-256 of its bytes, read twice at the event's version
    assert response == {"batchItemFailures": []}
    promoted = aws_client("s3").get_object(Bucket=DATA_BUCKET, Key="train/2026/large.csv")["Body"].read()
    assert hashlib.sha256(promoted).digest() == hashlib.sha256(data).digest()
    ref = logic.s3_objects_from_message(json.dumps(message))[0]
    record = runs.get_item(RUNS_TABLE, runs.object_key(ref.bucket, ref.key, ref.ident)) or {}
    assert (record["status"], record["sha256"]) == ("accepted", hashlib.sha256(data).hexdigest())
    reads = [c for c in calls if c["Key"] == KEY]
    assert len(reads) == 2 and all(c["VersionId"] == ref.version_id for c in reads)


def test_a_version_deleted_between_the_two_reads_is_not_promoted(resources: Aws) -> None:
    # GIVEN a valid upload whose version is deleted while ingest's first read is under way
    CallRecorder("lambda", "Invoke", lambda params: {"StatusCode": 202}).install()
    message = upload(KEY, ROWS)
    ref = logic.s3_objects_from_message(json.dumps(message))[0]
    calls = strict_bodies()

    def delete_after_first_read(**_: Any) -> None:
        if len(calls) == 1:
            aws_client("s3").delete_object(Bucket=DATA_BUCKET, Key=KEY, VersionId=ref.version_id)

    client("s3").meta.events.register("after-call.s3.GetObject", delete_after_first_read)
    # WHEN ingest handles its notification
    response = ingest.handler(sqs_event([message]), FakeContext())
    # THEN nothing is promoted; the outcome is "missing" (version-deleted), not an error
    assert response == {"batchItemFailures": []}
    listed = aws_client("s3").list_objects_v2(Bucket=DATA_BUCKET).get("Contents", [])
    assert not [o["Key"] for o in listed if o["Key"].startswith(("train/", "quarantine/"))]
    record = runs.get_item(RUNS_TABLE, runs.object_key(ref.bucket, ref.key, ref.ident)) or {}
    assert (record["status"], record["why"]) == ("missing", "version-deleted")
