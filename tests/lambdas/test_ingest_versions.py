"""Ingest acts on the exact version in the event (issue 14, section 5).

One table, VERSIONS: each row GIVEN an upload whose event is still queued, WHEN the key is deleted, overwritten
or left alone before ingest runs, THEN the version the event names is the one checked and moved (a delete
marker or a newer upload changes nothing), or, when that version is gone, nothing is promoted and the outcome
is logged, recorded and counted. The data bucket is versioned (as the stack makes it); the last rows run on an
unversioned bucket, where the event's ETag pins the object.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from lambdas.ingest import handler as ingest
from lambdas.ingest import logic
from lambdas.shared import runs
from tests.lambdas.fixtures import (
    DATA_BUCKET,
    GOOD_CSV,
    RUNS_TABLE,
    Aws,
    CallRecorder,
    FakeContext,
    aws_client,
    emf_metrics,
    sqs_event,
    upload,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

KEY = "incoming/v.csv"
GOOD_2 = b"1,61,1,20,4\n0,25,2,38,5\n"
BAD = b"income,age\n0,39,2,40,3\n"  # a header row: quarantined


def s3() -> Any:
    return aws_client("s3")


def version_of(message: dict[str, Any]) -> str:
    return str(message["Records"][0]["s3"]["object"]["versionId"])


def body(key: str) -> bytes | None:
    try:
        return bytes(s3().get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read())
    except s3().exceptions.NoSuchKey:
        return None


def keys(prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3().list_objects_v2(Bucket=DATA_BUCKET, Prefix=prefix).get("Contents", []))


def unversioned_data_bucket() -> None:
    """The data bucket again, empty, never versioned (same SSE-KMS default)."""
    encryption = s3().get_bucket_encryption(Bucket=DATA_BUCKET)["ServerSideEncryptionConfiguration"]
    s3().delete_bucket(Bucket=DATA_BUCKET)
    s3().create_bucket(Bucket=DATA_BUCKET)
    s3().put_bucket_encryption(Bucket=DATA_BUCKET, ServerSideEncryptionConfiguration=encryption)


# ----------------------------------------------------------------------------------------- what happens


def nothing(message: dict[str, Any]) -> None:
    """The key is left alone."""


def delete_marker(message: dict[str, Any]) -> None:
    s3().delete_object(Bucket=DATA_BUCKET, Key=KEY)


def overwrite(data: bytes) -> Callable[[dict[str, Any]], None]:
    return lambda message: s3().put_object(Bucket=DATA_BUCKET, Key=KEY, Body=data) and None


def remove_version(message: dict[str, Any]) -> None:
    s3().delete_object(Bucket=DATA_BUCKET, Key=KEY, VersionId=version_of(message))


def then(*steps: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def run(message: dict[str, Any]) -> None:
        for step in steps:
            step(message)

    return run


def without_size(message: dict[str, Any]) -> None:
    """The notification carries no size: ingest asks S3 (HEAD) for the event's version first."""
    message["Records"][0]["s3"]["object"].pop("size")


@dataclass(frozen=True)
class VersionCase:
    uploaded: bytes  # GIVEN: the upload the event names
    before_ingest: Callable[[dict[str, Any]], None]  # WHEN: what happens to the key before ingest runs
    outcome: str  # THEN: accepted | quarantined | missing
    incoming_after: bytes | None  # THEN: the key's current bytes in incoming/ afterwards (None: none)
    why: str | None = None  # THEN (missing): how S3 said the version is gone
    versioned: bool = True


VERSIONS: dict[str, VersionCase] = {
    "left alone": VersionCase(GOOD_CSV, nothing, "accepted", None),
    "deleted (a delete marker)": VersionCase(GOOD_CSV, delete_marker, "accepted", None),
    "invalid upload deleted (a delete marker)": VersionCase(BAD, delete_marker, "quarantined", None),
    "overwritten by a valid upload": VersionCase(GOOD_CSV, overwrite(GOOD_2), "accepted", GOOD_2),
    "overwritten by an invalid upload": VersionCase(GOOD_CSV, overwrite(BAD), "accepted", BAD),
    "invalid upload overwritten by a valid one": VersionCase(BAD, overwrite(GOOD_CSV), "quarantined", GOOD_CSV),
    "overwritten, event without a size": VersionCase(GOOD_CSV, then(overwrite(BAD), without_size), "accepted", BAD),
    "the version deleted for good": VersionCase(GOOD_CSV, remove_version, "missing", None, "version-deleted"),
    "the version deleted, the key uploaded again": VersionCase(
        GOOD_CSV, then(remove_version, overwrite(GOOD_2)), "missing", GOOD_2, "version-deleted"
    ),
    "overwritten, then the old version deleted": VersionCase(
        GOOD_CSV, then(overwrite(BAD), remove_version), "missing", BAD, "version-deleted"
    ),
    "the version deleted, event without a size": VersionCase(
        GOOD_CSV, then(remove_version, without_size), "missing", None, "version-deleted"
    ),
    "unversioned: left alone": VersionCase(GOOD_CSV, nothing, "accepted", None, versioned=False),
    "unversioned: overwritten": VersionCase(
        GOOD_CSV, overwrite(GOOD_2), "missing", GOOD_2, "object-replaced", versioned=False
    ),
    "unversioned: overwritten, event without a size": VersionCase(
        GOOD_CSV, then(overwrite(GOOD_2), without_size), "missing", GOOD_2, "object-replaced", versioned=False
    ),
    "unversioned: deleted": VersionCase(GOOD_CSV, delete_marker, "missing", None, "object-deleted", versioned=False),
}


@pytest.mark.parametrize("name", list(VERSIONS))
def test_the_version_in_the_event_is_the_one_checked_and_moved(
    resources: Aws, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, name: str
) -> None:
    case = VERSIONS[name]
    # GIVEN an upload whose notification is still queued
    if not case.versioned:
        unversioned_data_bucket()
    invoke = CallRecorder("lambda", "Invoke", lambda params: {"StatusCode": 202}).install()
    message = upload(KEY, case.uploaded)
    # WHEN the key is changed before ingest runs, and then ingest handles the notification
    case.before_ingest(message)
    capsys.readouterr()
    response = ingest.handler(sqs_event([message]), FakeContext())
    output = capsys.readouterr().out
    # THEN no message fails, and the bytes moved (if any) are the event's
    assert response == {"batchItemFailures": []}
    destination = {"accepted": "train/v.csv", "quarantined": "quarantine/2026-11-23/v.csv"}.get(case.outcome)
    moved = [k for k in keys("train/") + keys("quarantine/") if not k.endswith(".report.json")]
    assert moved == ([destination] if destination else [])
    if destination:
        assert body(destination) == case.uploaded
    # AND the key's newer content (if any) is left where it is, its version untouched
    assert body(KEY) == case.incoming_after
    # AND the event's version itself is gone once moved, or was gone already
    if case.versioned:
        versions = s3().list_object_versions(Bucket=DATA_BUCKET, Prefix=KEY).get("Versions", [])
        assert version_of(message) not in [v["VersionId"] for v in versions]
    # AND the outcome is recorded, counted and (for a missing version) logged with why; training starts only on
    # accepted data
    ref = logic.s3_objects_from_message(json.dumps(message))[0]
    record = runs.get_item(RUNS_TABLE, runs.object_key(ref.bucket, ref.key, ref.ident)) or {}
    assert record["status"] == case.outcome and record.get("why") == case.why
    counted = {name for name, _, _ in emf_metrics(output)}
    expected_metric = {"accepted": "FilesAccepted", "quarantined": "FilesQuarantined", "missing": "FilesMissing"}
    assert expected_metric[case.outcome] in counted
    assert not (set(expected_metric.values()) - {expected_metric[case.outcome]}) & counted
    missing = [r for r in caplog.records if getattr(r, "outcome", None) == "missing"]
    assert [(r.levelname, getattr(r, "why", None)) for r in missing] == ([("WARNING", case.why)] if case.why else [])
    assert len(invoke.calls) == (1 if case.outcome == "accepted" else 0)


def test_unversioned_object_replaced_between_the_read_and_the_copy_is_not_promoted(resources: Aws) -> None:
    # GIVEN an unversioned data bucket and a valid upload, replaced by an invalid one while ingest reads it
    unversioned_data_bucket()
    CallRecorder("lambda", "Invoke", lambda params: {"StatusCode": 202}).install()
    message = upload(KEY, GOOD_CSV)

    def replace_before_the_copy(params: dict[str, Any], **_: Any) -> None:
        if params.get("CopySource", {}).get("Key") == KEY:
            s3().put_object(Bucket=DATA_BUCKET, Key=KEY, Body=BAD)

    from lambdas.shared.runtime import client

    client("s3").meta.events.register_first("provide-client-params.s3.CopyObject", replace_before_the_copy)
    # WHEN ingest handles the notification (S3 refuses the copy: CopySourceIfMatch no longer holds)
    response = ingest.handler(sqs_event([message]), FakeContext())
    # THEN nothing is promoted or deleted: the replacing upload is still there, for its own event
    assert response == {"batchItemFailures": []}
    assert keys("train/") == [] and keys("quarantine/") == []
    assert body(KEY) == BAD
    ref = logic.s3_objects_from_message(json.dumps(message))[0]
    record = runs.get_item(RUNS_TABLE, runs.object_key(ref.bucket, ref.key, ref.ident)) or {}
    assert (record["status"], record["why"]) == ("missing", "object-replaced")
