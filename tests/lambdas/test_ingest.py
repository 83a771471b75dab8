"""Ingest: every file under incoming/ ends in train/ or quarantine/ (with its report), byte for byte."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from lambdas.ingest import handler as ingest
from lambdas.ingest import logic, objects
from lambdas.shared import runs
from lambdas.shared.runtime import client, reset_caches
from tests.lambdas.fixtures import (
    DATA_BUCKET,
    ENV,
    GOOD_CSV,
    RUNS_TABLE,
    SCHEMA,
    START_FUNCTION,
    Aws,
    CallCounter,
    CallRecorder,
    FakeContext,
    aws_client,
    create_resources,
    emf_metrics,
    error_response,
    load_event,
    sha256,
    sqs_event,
    upload,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


def invoke_recorder() -> CallRecorder:
    return CallRecorder("lambda", "Invoke", lambda params: {"StatusCode": 202}).install()


def keys(prefix: str) -> list[str]:
    contents = aws_client("s3").list_objects_v2(Bucket=DATA_BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in contents)


def body_of(key: str) -> bytes:
    return bytes(aws_client("s3").get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read())


# ------------------------------------------------------------------------------------------- accepted


def test_valid_file_is_copied_to_train_unchanged_and_removed_from_incoming(resources: Aws) -> None:
    # GIVEN a valid file uploaded under incoming/ (a space in its name: the event URL-encodes it)
    invoke_recorder()
    message = upload("incoming/2026/adult batch.csv", GOOD_CSV)
    # WHEN ingest handles its notification
    response = ingest.handler(sqs_event([message]), FakeContext())
    # THEN it sits under train/ with the same bytes, and incoming/ is empty
    assert response == {"batchItemFailures": []}
    assert keys("train/") == ["train/2026/adult batch.csv"]
    assert sha256(body_of("train/2026/adult batch.csv")) == sha256(GOOD_CSV)
    assert keys("incoming/") == []


def test_accepted_file_starts_training_with_a_stable_batch_id(resources: Aws) -> None:
    # GIVEN a valid file
    invoke = invoke_recorder()
    event = sqs_event([upload("incoming/a.csv", GOOD_CSV)])
    # WHEN ingest handles the batch
    ingest.handler(event, FakeContext())
    # THEN the start function is invoked once, asynchronously, with the new-data payload
    (call,) = invoke.calls
    payload = json.loads(call["Payload"])
    assert call["FunctionName"] == START_FUNCTION and call["InvocationType"] == "Event"
    assert payload["source"] == "sagecycle.ingest" and payload["trigger"] == "new-data"
    assert payload["keys"] == ["train/a.csv"]
    assert payload["batch_id"] == logic.batch_id([r["messageId"] for r in reversed(event["Records"])])
    assert payload["time"] == "2026-11-23T04:00:00Z"  # the message's SentTimestamp: equal on redelivery


def test_accepted_file_is_counted_and_recorded_as_new_data(resources: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a valid file
    invoke_recorder()
    # WHEN ingest accepts it
    ingest.handler(sqs_event([upload("incoming/a.csv", GOOD_CSV)]), FakeContext())
    # THEN FilesAccepted is 1 and the runs table knows new data arrived
    assert ("FilesAccepted", 1.0, {"Stage": "dev"}) in emf_metrics(capsys.readouterr().out)
    assert runs.read_training_state(RUNS_TABLE).has_new_data


def test_copy_keeps_the_source_kms_key(resources: Aws) -> None:
    # GIVEN a file the bucket encrypted with its KMS key
    invoke_recorder()
    message = upload("incoming/a.csv", GOOD_CSV)
    source = aws_client("s3").head_object(Bucket=DATA_BUCKET, Key="incoming/a.csv")
    # WHEN it is promoted
    ingest.handler(sqs_event([message]), FakeContext())
    # THEN the copy is encrypted the same way, with the same key
    copy = aws_client("s3").head_object(Bucket=DATA_BUCKET, Key="train/a.csv")
    assert copy["ServerSideEncryption"] == source["ServerSideEncryption"] == "aws:kms"
    assert copy["SSEKMSKeyId"] == source["SSEKMSKeyId"]


def test_eventbridge_object_created_body_is_ingested_too(resources: Aws) -> None:
    # GIVEN the S3 -> EventBridge -> SQS shape of the notification (key not URL-encoded)
    invoke_recorder()
    put = aws_client("s3").put_object(Bucket=DATA_BUCKET, Key="incoming/adult 2026:11:23.csv", Body=GOOD_CSV)
    body = load_event("eventbridge_object_created.json")
    body["detail"]["bucket"]["name"] = DATA_BUCKET
    body["detail"]["object"].update(size=len(GOOD_CSV), etag=put["ETag"].strip('"'), **{"version-id": put["VersionId"]})
    # WHEN ingest handles it
    response = ingest.handler(sqs_event([body]), FakeContext())
    # THEN the file is promoted under its real name
    assert response == {"batchItemFailures": []}
    assert keys("train/") == ["train/adult 2026:11:23.csv"]


def test_s3_test_event_is_acknowledged_and_ignored(resources: Aws) -> None:
    # GIVEN the batch S3 sends when notifications are configured (only its test event)
    invoke = invoke_recorder()
    event = load_event("sqs_batch.json")
    event["Records"] = event["Records"][1:]
    # WHEN ingest handles it
    response = ingest.handler(event, FakeContext())
    # THEN nothing fails and nothing is started
    assert response == {"batchItemFailures": []}
    assert invoke.calls == []


def test_sample_sqs_batch_parses_into_one_object_and_one_test_event() -> None:
    # GIVEN AWS's SQS batch with an S3 notification and an s3:TestEvent
    event = load_event("sqs_batch.json")
    # WHEN the bodies are read
    from lambdas.shared.events import s3_objects_from_message

    found = [s3_objects_from_message(r["body"]) for r in event["Records"]]
    # THEN the first announces the (decoded) key with its version, the second nothing
    (ref,) = found[0]
    assert ref.key == "incoming/adult 2026-11-23.csv" and ref.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mpq"
    assert found[1] == []


# ------------------------------------------------------------------------------------------ duplicates


def test_duplicate_delivery_copies_and_counts_nothing(resources: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a file already ingested once
    invoke_recorder()
    message = upload("incoming/a.csv", GOOD_CSV)
    ingest.handler(sqs_event([message]), FakeContext())
    capsys.readouterr()
    copies = CallCounter("s3", "CopyObject").install()
    # WHEN the same notification arrives again (a new SQS message)
    response = ingest.handler(sqs_event([message], first_id=7), FakeContext())
    # THEN nothing is copied or counted, and it is no error
    assert response == {"batchItemFailures": []}
    assert copies.calls == []
    assert not [m for m in emf_metrics(capsys.readouterr().out) if m[0] == "FilesAccepted"]


def test_missing_object_is_not_an_error(resources: Aws) -> None:
    # GIVEN a notification for an object version that no longer exists (an earlier delivery moved it)
    invoke = invoke_recorder()
    message = upload("incoming/gone.csv", GOOD_CSV)
    version = message["Records"][0]["s3"]["object"]["versionId"]
    aws_client("s3").delete_object(Bucket=DATA_BUCKET, Key="incoming/gone.csv", VersionId=version)
    # WHEN ingest handles it
    response = ingest.handler(sqs_event([message]), FakeContext())
    # THEN the message succeeds, nothing is promoted and no training is started
    assert response == {"batchItemFailures": []}
    assert keys("train/") == [] and invoke.calls == []


def test_object_claimed_by_another_delivery_fails_only_its_message(resources: Aws) -> None:
    # GIVEN one object another delivery is processing right now, and one free object
    invoke_recorder()
    busy = upload("incoming/busy.csv", GOOD_CSV)
    ref = logic.s3_objects_from_message(json.dumps(busy))[0]
    runs.put_item(
        RUNS_TABLE,
        runs.object_key(ref.bucket, ref.key, ref.ident),
        {"status": "processing", "claimed_until": 2**40},
    )
    event = sqs_event([busy, upload("incoming/free.csv", GOOD_CSV)])
    # WHEN ingest handles the batch
    response = ingest.handler(event, FakeContext())
    # THEN only the busy object's message comes back later; the free one is promoted
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert keys("train/") == ["train/free.csv"] and keys("incoming/") == ["incoming/busy.csv"]


def test_failed_copy_keeps_the_original_and_frees_the_claim(resources: Aws) -> None:
    # GIVEN S3 refuses the copy
    invoke_recorder()
    message = upload("incoming/a.csv", GOOD_CSV)
    CallRecorder("s3", "CopyObject", lambda p: error_response("InternalError", "try again", 500)).install()
    event = sqs_event([message])
    # WHEN ingest handles the file
    response = ingest.handler(event, FakeContext())
    # THEN the message is retried later, the original is untouched and nobody holds the object
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert keys("incoming/") == ["incoming/a.csv"]
    ref = logic.s3_objects_from_message(json.dumps(message))[0]
    assert runs.get_item(RUNS_TABLE, runs.object_key(ref.bucket, ref.key, ref.ident)) is None


# ---------------------------------------------------------------------------------------------- schema


def test_without_a_champion_the_baseline_schema_is_used(aws: None) -> None:
    # GIVEN no champion parameter, but baseline/schema.json in the data bucket
    create_resources(champion=False)
    aws_client("s3").put_object(Bucket=DATA_BUCKET, Key="baseline/schema.json", Body=json.dumps(SCHEMA).encode())
    invoke_recorder()
    # WHEN a valid file arrives
    response = ingest.handler(sqs_event([upload("incoming/a.csv", GOOD_CSV)]), FakeContext())
    # THEN it is validated against that schema and promoted
    assert response == {"batchItemFailures": []}
    assert keys("train/") == ["train/a.csv"]


def test_without_any_schema_files_stay_in_incoming(aws: None) -> None:
    # GIVEN neither a champion nor a baseline schema
    create_resources(champion=False)
    invoke_recorder()
    event = sqs_event([upload("incoming/a.csv", GOOD_CSV)])
    # WHEN a file arrives
    response = ingest.handler(event, FakeContext())
    # THEN its message fails (it will be retried, then dead-lettered) and the file is neither moved nor judged
    assert response["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    assert keys("incoming/") == ["incoming/a.csv"] and keys("quarantine/") == []


def test_oversized_file_is_quarantined_without_being_downloaded(resources: Aws) -> None:
    # GIVEN a file larger than RETRAIN_POLICY.max_file_bytes (64 KiB here)
    invoke_recorder()
    big = GOOD_CSV * 2000
    message = upload("incoming/big.csv", big)
    reads = CallCounter("s3", "GetObject").install()
    # WHEN ingest handles it
    ingest.handler(sqs_event([message]), FakeContext())
    # THEN it is quarantined as too_large from the event's size, and its bytes were never read
    assert [c["Key"] for c in reads.calls if c["Bucket"] == DATA_BUCKET] == []
    report = json.loads(body_of("quarantine/2026-11-23/big.csv.report.json"))
    assert report["problems"][0]["problem"] == "too_large"
    assert body_of("quarantine/2026-11-23/big.csv") == big


# ------------------------------------------------------------------------------ the malformed-file table

MALFORMED: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "empty"),
    "only-line-ends": (b"\n\r\n\n", "empty"),
    "gzip": (gzip.compress(GOOD_CSV), "binary_content"),
    "zip": (b"PK\x03\x04\x14\x00\x00\x00" + GOOD_CSV, "binary_content"),
    "parquet": (b"PAR1\x15\x04\x15\x10" + GOOD_CSV, "binary_content"),
    "nul-byte": (b"0,39,2,40,3\n1,5\x000,0,13,11\n", "binary_content"),
    "utf16": ("0,39,2,40,3\n".encode("utf-16"), "not_utf8"),
    "latin1": (b"0,39,2,40,3\n0,39,2,40,3\xe9\n", "not_utf8"),
    "bom": (b"\xef\xbb\xbf" + GOOD_CSV, "bom"),
    "blank-line": (b"0,39,2,40,3\n\n1,50,0,13,11\n", "blank_line"),
    "bare-cr": (b"0,39,2,40,3\r1,50,0,13,11\n", "bare_cr"),
    "bad-quoting": (b'0,"39,2,40,3\n', "malformed_csv"),
    "header-row": (b"income,age,workclass,hours,color\n0,39,2,40,3\n", "header_row"),
    "wrong-column-count": (b"0,39,2,40,3\n1,50,0,13\n", "wrong_column_count"),
    "missing-label": (b",39,2,40,3\n", "missing_label"),
    "label-out-of-domain": (b"2,39,2,40,3\n", "label_out_of_domain"),
    "class-name-label": (b">50K,39,2,40,3\n", "label_out_of_domain"),
    "non-numeric": (b"0,thirty-nine,2,40,3\n", "non_numeric"),
    "category-name-not-code": (b"0,39,Private,40,3\n", "non_numeric"),
    "nan": (b"0,nan,2,40,3\n", "nan_or_inf"),
    "infinity": (b"0,39,2,1e999,3\n", "nan_or_inf"),
    "unknown-category-code": (b"0,39,9,40,3\n", "unknown_category_code"),
}


@pytest.fixture(scope="module")
def quarantine_run() -> Iterator[dict[str, Any]]:
    """All malformed files in one SQS batch through the handler; what S3, SNS and the deletes saw."""
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in ENV.items():
            patch.setenv(name, value)
        reset_caches()
        resources = create_resources()
        invoke_recorder()
        messages = [upload(f"incoming/bad/{name}.csv", data) for name, (data, _) in MALFORMED.items()]
        deletes: list[dict[str, Any]] = []

        def check_copy_first(params: dict[str, Any], **_: Any) -> None:
            # Called before every DeleteObject reaches S3: the copy and its report must exist already.
            if params["Key"].startswith("incoming/"):
                target = "quarantine/2026-11-23/" + params["Key"].removeprefix("incoming/")
                present = set(keys(target))
                deletes.append(
                    {"key": params["Key"], "copy": target in present, "sidecar": f"{target}.report.json" in present}
                )

        client("s3").meta.events.register("provide-client-params.s3.DeleteObject", check_copy_first)
        response = ingest.handler(sqs_event(messages), FakeContext())
        notices = resources.notices()
        result = {
            "response": response,
            "objects": {k: body_of(k) for k in keys("quarantine/")},
            "incoming": keys("incoming/"),
            "train": keys("train/"),
            "deletes": {d["key"]: d for d in deletes},
            "notices": {n["Message"]["source"].rsplit("/", 1)[-1]: n for n in notices},
        }
    reset_caches()
    yield result


def test_every_malformed_file_left_incoming_and_none_reached_train(quarantine_run: dict[str, Any]) -> None:
    # GIVEN the malformed table
    # WHEN it is ingested in one batch (the fixture's run)
    # THEN no message failed, nothing trains on them
    assert quarantine_run["response"] == {"batchItemFailures": []}
    assert quarantine_run["incoming"] == [] and quarantine_run["train"] == []
    assert len(MALFORMED) >= 15


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_file_is_quarantined_intact_with_its_reason(quarantine_run: dict[str, Any], name: str) -> None:
    # GIVEN a malformed file that went through ingest
    original, code = MALFORMED[name]
    target = f"quarantine/2026-11-23/bad/{name}.csv"
    # WHEN its quarantine copy and sidecar are read
    copy = quarantine_run["objects"][target]
    report = json.loads(quarantine_run["objects"][f"{target}.report.json"])
    # THEN the bytes are the original ones (sha256 in the sidecar too) and the sidecar names the problem
    assert sha256(copy) == sha256(original) == report["sha256"]
    assert report["valid"] is False and report["source"].endswith(f"incoming/bad/{name}.csv")
    assert code in [p["problem"] for p in report["problems"]]
    assert all({"row", "column", "problem", "message"} <= set(p) for p in report["problems"])


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_original_is_deleted_only_after_copy_and_report_exist(
    quarantine_run: dict[str, Any], name: str
) -> None:
    # GIVEN a malformed file ingested
    # WHEN ingest deleted its original (the deletes it issued, recorded by the fixture)
    # THEN that happened with the copy and the sidecar already there
    delete = quarantine_run["deletes"][f"incoming/bad/{name}.csv"]
    assert delete["copy"] and delete["sidecar"]


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_file_notifies_the_operator_with_the_problem(quarantine_run: dict[str, Any], name: str) -> None:
    # GIVEN a malformed file ingested
    # WHEN the notices on the operator topic are read
    # THEN one names this file, its quarantine place and problem
    notice = quarantine_run["notices"][f"{name}.csv"]
    assert notice["Message"]["quarantined_to"].endswith(f"quarantine/2026-11-23/bad/{name}.csv")
    assert notice["Message"]["problems"]


def test_quarantined_file_is_counted(resources: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a file with a header row
    invoke = invoke_recorder()
    # WHEN ingest quarantines it
    ingest.handler(sqs_event([upload("incoming/h.csv", b"income,age\n0,39,2,40,3\n")]), FakeContext())
    # THEN FilesQuarantined is 1 and no training is started for it
    assert ("FilesQuarantined", 1.0, {"Stage": "dev"}) in emf_metrics(capsys.readouterr().out)
    assert invoke.calls == []


def test_file_over_the_single_copy_limit_is_copied_multipart_and_checked(
    resources: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a file above the single-CopyObject limit (lowered here to 10 bytes)
    invoke_recorder()
    monkeypatch.setattr(objects, "SINGLE_COPY_MAX_BYTES", 10)
    message = upload("incoming/large.csv", GOOD_CSV)
    # WHEN it is promoted / THEN the managed copy lands the same bytes, with the same KMS key
    assert ingest.handler(sqs_event([message]), FakeContext()) == {"batchItemFailures": []}
    assert body_of("train/large.csv") == GOOD_CSV
    head = aws_client("s3").head_object(Bucket=DATA_BUCKET, Key="train/large.csv")
    assert head["SSEKMSKeyId"].endswith(resources.kms_key_id)
