"""A short copy never passes as good (issue 14, section 9).

The functions' S3 client is wrapped (`CorruptingS3`) so that every copy S3 stores differs from the original,
while the call answers as if all went well: the copy's response is the real one (its ETag and SHA-256 are the
original's), only its VersionId names the stored, corrupted version. That is the bug this table exists for:
trusting the copy's answer instead of what S3 holds.

COPY_FAULTS: each row GIVEN an upload (its encryption, its size: a single CopyObject or the multipart path, a
checked or an oversized file) and a corruption; WHEN ingest copies it; THEN CopyVerificationError, the original
version kept, the bad copy's version discarded, nothing recorded, counted or started; and with the fault gone
the redelivered message moves the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from lambdas.ingest import handler as ingest
from lambdas.ingest import logic, objects
from lambdas.shared import runs
from lambdas.shared.runtime import client
from tests.lambdas.fixtures import (
    DATA_BUCKET,
    ENV,
    GOOD_CSV,
    RUNS_TABLE,
    Aws,
    CallCounter,
    CallRecorder,
    FakeContext,
    aws_client,
    emf_metrics,
    s3_notification,
    sqs_event,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

KEY = "incoming/c.csv"
BIG = GOOD_CSV * 2000  # over the policy's 64 KiB: quarantined from its size, never downloaded
NOW = datetime(2026, 11, 23, 4, 0, 5, tzinfo=UTC)
MD5 = "0cc175b9c0f1b6a831c399e269772661"  # md5(b"a")


class CorruptingS3:
    """The functions' S3 client, except that each copy lands as `corrupt(original bytes)`.

    The stored copy gets the original's encryption and a SHA-256 of what is stored (as S3 computes it); the
    good copy's version is removed, so the corrupted one is what the destination holds. CopyObject answers with
    the real copy's response (its ETag and checksum are the original's), naming the corrupted version.
    """

    def __init__(self, real: Any, corrupt: Callable[[bytes], bytes]) -> None:
        self.real, self.corrupt = real, corrupt
        self.corrupted: list[str] = []  # the version ids of the corrupted copies

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def copy_object(self, **params: Any) -> dict[str, Any]:
        response = dict(self.real.copy_object(**params))
        response["VersionId"] = self._corrupt(params["Bucket"], params["Key"])
        return response

    def copy(self, CopySource: Any, Bucket: str, Key: str, **kwargs: Any) -> None:
        self.real.copy(CopySource, Bucket, Key, **kwargs)
        self._corrupt(Bucket, Key)

    def _corrupt(self, bucket: str, key: str) -> str:
        s3 = aws_client("s3")  # the test's own client: the functions' calls stay what they are
        stored = s3.get_object(Bucket=bucket, Key=key)
        encryption: dict[str, Any] = {"ServerSideEncryption": stored["ServerSideEncryption"]}
        if stored.get("SSEKMSKeyId"):
            encryption["SSEKMSKeyId"] = stored["SSEKMSKeyId"]
        put = s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=self.corrupt(stored["Body"].read()),
            ChecksumAlgorithm="SHA256",
            **encryption,
        )
        s3.delete_object(Bucket=bucket, Key=key, VersionId=stored["VersionId"])
        self.corrupted.append(put["VersionId"])
        return str(put["VersionId"])


def truncated(data: bytes) -> bytes:
    return data[:-1]


def emptied(data: bytes) -> bytes:
    return b""


def one_byte_changed(data: bytes) -> bytes:
    """Same size, one digit changed: still valid CSV, a different file."""
    index = data.index(b"9")
    return data[:index] + b"8" + data[index + 1 :]


def unchanged(data: bytes) -> bytes:
    return data


@dataclass(frozen=True)
class CopyFault:
    data: bytes  # GIVEN the upload
    encryption: str  # GIVEN its encryption: "aws:kms" (the bucket's default) or "AES256" (SSE-S3: ETag is MD5)
    corrupt: Callable[[bytes], bytes]  # GIVEN what the copy stores instead
    multipart: bool = False  # GIVEN the copy goes through s3.copy (objects over CopyObject's 5 GiB)

    @property
    def destination(self) -> str:
        return "train/c.csv" if len(self.data) <= 64 * 1024 else "quarantine/2026-11-23/c.csv"


COPY_FAULTS: dict[str, CopyFault] = {
    "short copy (SSE-KMS)": CopyFault(GOOD_CSV, "aws:kms", truncated),
    "empty copy (SSE-KMS)": CopyFault(GOOD_CSV, "aws:kms", emptied),
    "one byte changed (SSE-KMS: caught by the SHA-256)": CopyFault(GOOD_CSV, "aws:kms", one_byte_changed),
    "short copy (SSE-S3)": CopyFault(GOOD_CSV, "AES256", truncated),
    "one byte changed (SSE-S3: caught by the ETag)": CopyFault(GOOD_CSV, "AES256", one_byte_changed),
    "short copy, multipart path (SSE-KMS)": CopyFault(GOOD_CSV, "aws:kms", truncated, multipart=True),
    "one byte changed, multipart path (SSE-S3)": CopyFault(GOOD_CSV, "AES256", one_byte_changed, multipart=True),
    "short copy of an oversized file (SSE-KMS)": CopyFault(BIG, "aws:kms", truncated),
    "one byte changed in an oversized file (SSE-S3)": CopyFault(BIG, "AES256", one_byte_changed),
}


def put_upload(data: bytes, encryption: str) -> dict[str, Any]:
    """Upload with the given encryption and return its S3 notification."""
    extra = {"ServerSideEncryption": encryption} if encryption == "AES256" else {}
    put = aws_client("s3").put_object(Bucket=DATA_BUCKET, Key=KEY, Body=data, **extra)
    return s3_notification(
        KEY, size=len(data), etag=put["ETag"].strip('"'), version_id=put["VersionId"], sequencer="0A1B2C3D4E5F607182"
    )


def wrap_s3(monkeypatch: pytest.MonkeyPatch, corrupt: Callable[[bytes], bytes]) -> CorruptingS3:
    wrapper = CorruptingS3(client("s3"), corrupt)
    monkeypatch.setattr(objects, "client", lambda service: wrapper if service == "s3" else client(service))
    return wrapper


def batch() -> logic.BatchRun:
    return logic.BatchRun(logic.Settings.from_env(ENV))


@pytest.mark.parametrize("name", list(COPY_FAULTS))
def test_a_copy_that_differs_from_the_original_raises_and_the_original_is_kept(
    resources: Aws, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    fault = COPY_FAULTS[name]
    # GIVEN an upload, and S3 storing every copy corrupted while answering as if it were good
    if fault.multipart:
        monkeypatch.setattr(objects, "SINGLE_COPY_MAX_BYTES", 10)
    message = put_upload(fault.data, fault.encryption)
    (ref,) = logic.s3_objects_from_message(json.dumps(message))
    wrapper = wrap_s3(monkeypatch, fault.corrupt)
    deletes = CallCounter("s3", "DeleteObject").install()
    # WHEN ingest processes the object
    with pytest.raises(objects.CopyVerificationError):
        batch().process_object(ref, now=NOW)
    # THEN the original version is kept, byte for byte, and never deleted
    s3 = aws_client("s3")
    kept = s3.get_object(Bucket=DATA_BUCKET, Key=KEY, VersionId=ref.version_id)["Body"].read()
    assert kept == fault.data
    assert [d for d in deletes.calls if d["Key"] == KEY] == []
    # AND the bad copy's own version is discarded (that version only), and no sidecar was written
    assert [(d["Key"], d.get("VersionId")) for d in deletes.calls] == [(fault.destination, wrapper.corrupted[-1])]
    assert s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix="quarantine/").get("KeyCount", 0) == 0
    # AND nothing is recorded: the claim is free for the retry, and no new data was announced
    assert runs.get_item(RUNS_TABLE, runs.object_key(ref.bucket, ref.key, ref.ident)) is None
    assert not runs.read_training_state(RUNS_TABLE).has_new_data


def test_an_unchanged_copy_passes_every_check(resources: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an SSE-S3 upload and a copy rewritten with the very same bytes (a new version, nothing else)
    message = put_upload(GOOD_CSV, "AES256")
    (ref,) = logic.s3_objects_from_message(json.dumps(message))
    wrap_s3(monkeypatch, unchanged)
    # WHEN ingest processes it / THEN it is accepted, verified by size, ETag and SHA-256
    outcome = batch().process_object(ref, now=NOW)
    assert outcome.result == "accepted"


@pytest.mark.parametrize(
    ("head", "etag"),
    [
        # GIVEN what HeadObject says -> THEN the ETag is the MD5 of the bytes, or proves nothing (None)
        ({"ETag": f'"{MD5}"'}, MD5),
        (
            {"ETag": f'"{MD5}"', "ServerSideEncryption": "AES256"},
            MD5,
        ),
        ({"ETag": f'"{MD5}"', "ServerSideEncryption": "aws:kms"}, None),
        ({"ETag": f'"{MD5}"', "ServerSideEncryption": "aws:kms:dsse"}, None),
        ({"ETag": f'"{MD5}"', "SSECustomerAlgorithm": "AES256"}, None),
        ({"ETag": f'"{MD5}-3"'}, None),
        ({}, None),
    ],
)
def test_an_etag_is_compared_only_where_s3_makes_it_the_md5(head: dict[str, Any], etag: str | None) -> None:
    # GIVEN a head of one of S3's documented ETag forms (single part or multipart, each kind of encryption)
    # WHEN the rule reads it
    # THEN the ETag is taken as the MD5 exactly where S3 defines it so
    assert objects.md5_etag(head) == etag


def test_the_redelivered_message_moves_the_file_once_the_copy_is_good(
    resources: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a short copy on the first delivery
    invoke = CallRecorder("lambda", "Invoke", lambda params: {"StatusCode": 202}).install()
    message = put_upload(GOOD_CSV, "aws:kms")
    event = sqs_event([message])
    with pytest.MonkeyPatch.context() as patch:
        wrap_s3(patch, truncated)
        # WHEN the first delivery fails
        first = ingest.handler(event, FakeContext())
    # AND SQS delivers the message again, the copy now good
    second = ingest.handler(sqs_event([message], first_id=9), FakeContext())
    # THEN the first message came back, nothing was counted or started for it; the second moved the original bytes
    assert first == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert second == {"batchItemFailures": []}
    s3 = aws_client("s3")
    assert s3.get_object(Bucket=DATA_BUCKET, Key="train/c.csv")["Body"].read() == GOOD_CSV
    assert s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix="incoming/").get("KeyCount", 0) == 0
    assert [m for m in emf_metrics(capsys.readouterr().out) if m[0] == "FilesAccepted"] == [
        ("FilesAccepted", 1.0, {"Stage": "dev"})
    ]
    assert len(invoke.calls) == 1
