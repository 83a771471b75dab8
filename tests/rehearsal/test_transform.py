"""Local SageMaker batch transform: CreateTransformJob through boto3 against the rehearsal's local AWS, the job built by
the stack's own spec builder (`build_model`, `build_transform_job`) and run by `LocalTransform` through the same
serving code as an endpoint. Each run starts one model container (about two seconds)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from contract.names import PREFIX_TRANSFORM_OUTPUT
from sagecycle.rehearsal import ACCOUNT, LocalAws
from sagecycle.rehearsal.moto_sagemaker import register_transform_manager, unregister_transform_manager
from sagecycle.rehearsal.transform import (
    MB,
    RECORD_TOO_LARGE,
    mini_batches,
    output_key,
    records,
)
from tests.serving.model_factory import reference_scores, synthetic_features

# Before the imports below: they are plugins too.
pytest.register_assert_rewrite("tests.rehearsal.conftest_hosting", "tests.rehearsal.conftest_transform")

from tests.rehearsal.conftest_hosting import REGION, ROLE  # noqa: E402
from tests.rehearsal.conftest_transform import DATA, START, TransformStage  # noqa: E402

pytest_plugins = ["tests.rehearsal.conftest_hosting", "tests.rehearsal.conftest_transform"]


def _csv(x: np.ndarray) -> bytes:
    return b"".join((",".join(str(int(v)) for v in row) + "\n").encode() for row in x)


def _wait(stage: TransformStage, name: str, timeout: float = 120.0) -> dict[str, Any]:
    """Polls DescribeTransformJob as a caller of the SageMaker API does, until the job is no longer InProgress."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = stage.sagemaker.describe_transform_job(TransformJobName=name)
        if described["TransformJobStatus"] != "InProgress":
            return dict(described)
        time.sleep(0.2)
    raise AssertionError(f"transform job {name} still InProgress after {timeout} s")


def test_a_prefix_of_three_files_gives_one_out_file_each_with_one_prediction_per_line_in_order(
    transform_stage: TransformStage,
) -> None:
    stage = transform_stage
    # GIVEN three CSV files of feature rows under the input prefix, one in a sub-folder
    files = {"a.csv": synthetic_features(7, seed=1), "b.csv": synthetic_features(3, seed=2)}
    files["sub/c.csv"] = synthetic_features(5, seed=3)
    for name, x in files.items():
        stage.put(f"batch/in/{name}", _csv(x))
    # WHEN a transform job of the spec builder is created through boto3 and waited on through DescribeTransformJob
    job = stage.create("run-1")
    name = job["TransformJobName"]
    assert stage.sagemaker.describe_transform_job(TransformJobName=name)["TransformJobStatus"] == "InProgress"
    described = _wait(stage, name)
    # THEN it is Completed, with its start and end times and no FailureReason
    assert described["TransformJobStatus"] == "Completed"
    assert "FailureReason" not in described
    assert described["TransformStartTime"] <= described["TransformEndTime"]
    # AND each input file has its .out under the output prefix, at its path relative to the input prefix
    prefix = f"{PREFIX_TRANSFORM_OUTPUT}run-1/"
    assert stage.out_keys() == [f"{prefix}a.csv.out", f"{prefix}b.csv.out", f"{prefix}sub/c.csv.out"]
    for relative, x in files.items():
        out = stage.out(job, relative + ".out")
        lines = out["Body"].read().decode().splitlines()
        # AND one prediction per input line, in the input's order: the model's own scores for those rows
        assert [float(v) for v in lines] == pytest.approx(reference_scores(stage.model_dir, x).tolist(), rel=1e-6)
        # AND the object is encrypted with the job's KMS key
        assert (out["ServerSideEncryption"], out["SSEKMSKeyId"]) == ("aws:kms", job["TransformOutput"]["KmsKeyId"])
    # AND ListTransformJobs shows it
    summaries = stage.sagemaker.list_transform_jobs()["TransformJobSummaries"]
    assert [(s["TransformJobName"], s["TransformJobStatus"]) for s in summaries] == [(name, "Completed")]
    assert [e["kind"] for e in stage.timeline.events] == ["transform.started", "transform.completed"]
    # AND each change was a "SageMaker Transform Job State Change" event
    changes = [(e["detail-type"], e["detail"]["TransformJobStatus"]) for e in stage.transform.events]
    assert changes == [("SageMaker Transform Job State Change", s) for s in ("InProgress", "Completed")]


def test_a_row_the_model_refuses_fails_the_job_naming_the_object_and_keeps_the_good_files(
    transform_stage: TransformStage,
) -> None:
    stage = transform_stage
    # GIVEN a good file and a file with one row of the wrong width among good ones
    stage.put("batch/in/good.csv", _csv(synthetic_features(4, seed=1)))
    stage.put("batch/in/bad.csv", _csv(synthetic_features(2, seed=2)) + b"1,2\n" + _csv(synthetic_features(2, seed=3)))
    # WHEN the transform job runs
    job = stage.create("run-2")
    described = _wait(stage, job["TransformJobName"])
    # THEN the job Failed, its reason a client error that names the bad object
    assert described["TransformJobStatus"] == "Failed"
    assert described["FailureReason"].startswith(f"ClientError: {DATA}/batch/in/bad.csv: ")
    # AND only the good file's output was uploaded (SageMaker uploads no partial object)
    assert stage.out_keys() == [f"{PREFIX_TRANSFORM_OUTPUT}run-2/good.csv.out"]
    assert [e["kind"] for e in stage.timeline.events] == ["transform.started", "transform.failed"]


def test_a_single_record_larger_than_max_payload_fails_the_job(transform_stage: TransformStage) -> None:
    stage = transform_stage
    # GIVEN a file with one record over the job's MaxPayloadInMB (1 MB)
    big = b"39,Private,40," + b"9" * (1 * MB) + b"\n"
    stage.put("batch/in/big.csv", b"39,Private,40,1\n" + big)
    # WHEN the transform job runs
    job = stage.create("run-3")
    assert job["MaxPayloadInMB"] == 1
    described = _wait(stage, job["TransformJobName"])
    # THEN the job Failed: that record cannot be sent in one request, and nothing was uploaded
    assert described["TransformJobStatus"] == "Failed"
    expected = RECORD_TOO_LARGE.format(object=f"{DATA}/batch/in/big.csv", size=len(big), limit=1)
    assert described["FailureReason"] == expected
    assert stage.out_keys() == []


def test_an_empty_input_prefix_fails_the_job(transform_stage: TransformStage) -> None:
    stage = transform_stage
    # GIVEN no object under the input prefix
    # WHEN the transform job runs
    job = stage.create("run-4", input_prefix="batch/nothing/")
    described = _wait(stage, job["TransformJobName"])
    # THEN it Failed with a client error
    assert described["TransformJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError: ")


def test_an_output_bucket_that_does_not_exist_fails_the_job(transform_stage: TransformStage) -> None:
    stage = transform_stage
    # GIVEN a file to score and an S3OutputPath in a bucket that does not exist
    stage.put("batch/in/a.csv", _csv(synthetic_features(2, seed=1)))
    # WHEN the transform job runs
    job = stage.create("run-5", TransformOutput={"S3OutputPath": "s3://no-such-bucket/out/", "AssembleWith": "Line"})
    described = _wait(stage, job["TransformJobName"])
    # THEN it Failed with a client error rather than staying InProgress
    assert described["TransformJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError: ")


# ----------------------------------------------------------------------------------- the API, no container


class Recorder:
    """Stands where LocalTransform stands: keeps the jobs it is told of, at a fixed time."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def now(self) -> datetime:
        return START

    def transform_job_created(self, account: str, region: str, job_name: str) -> None:
        self.jobs.append(job_name)


@pytest.fixture
def api_stage(local_aws: LocalAws, model_tars: dict[str, Path]) -> Iterator[tuple[Any, Recorder]]:
    sagemaker = local_aws.client("sagemaker")
    sagemaker.create_model(
        ModelName="m", PrimaryContainer={"Image": "xgboost", "ModelDataUrl": "s3://b/m.tar.gz"}, ExecutionRoleArn=ROLE
    )
    recorder = Recorder()
    register_transform_manager(ACCOUNT, REGION, recorder)
    try:
        yield sagemaker, recorder
    finally:
        unregister_transform_manager(ACCOUNT, REGION, recorder)


def _job(name: str, **overrides: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": "m",
        "MaxPayloadInMB": 6,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": "s3://b/out/", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    }
    job.update(overrides)
    return job


def test_create_transform_job_is_in_progress_until_the_manager_runs_it(api_stage: tuple[Any, Recorder]) -> None:
    sagemaker, recorder = api_stage
    # GIVEN a transform manager registered for the account and Region
    # WHEN a transform job is created
    sagemaker.create_transform_job(**_job("bt-1"))
    # THEN it is InProgress, not started, with no FailureReason, and the manager was told
    described = sagemaker.describe_transform_job(TransformJobName="bt-1")
    assert described["TransformJobStatus"] == "InProgress"
    assert "TransformStartTime" not in described and "FailureReason" not in described
    assert described["CreationTime"] == START
    assert recorder.jobs == ["bt-1"]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"ModelName": "missing"}, id="unknown model"),
        pytest.param({"MaxPayloadInMB": 101}, id="payload over 100 MB"),
        pytest.param({"MaxPayloadInMB": 30, "MaxConcurrentTransforms": 4}, id="concurrency times payload over 100"),
        pytest.param({"MaxPayloadInMB": 0}, id="chunked payloads not rehearsed"),
        pytest.param(
            {"TransformInput": {**_job("x")["TransformInput"], "SplitType": "RecordIO"}}, id="RecordIO not rehearsed"
        ),
    ],
)
def test_create_transform_job_refuses_what_sagemaker_refuses(
    api_stage: tuple[Any, Recorder], overrides: dict[str, Any]
) -> None:
    sagemaker, recorder = api_stage
    # GIVEN a transform job request with one thing SageMaker (or the rehearsal) does not accept
    # WHEN it is created
    with pytest.raises(ClientError) as error:
        sagemaker.create_transform_job(**_job("bt-bad", **overrides))
    # THEN it is refused with a ValidationException and nothing runs
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert recorder.jobs == []


def test_create_transform_job_refuses_a_name_in_use(api_stage: tuple[Any, Recorder]) -> None:
    sagemaker, _ = api_stage
    # GIVEN a transform job
    sagemaker.create_transform_job(**_job("bt-1"))
    # WHEN another is created with the same name
    with pytest.raises(ClientError) as error:
        sagemaker.create_transform_job(**_job("bt-1"))
    # THEN it is refused
    assert error.value.response["Error"]["Code"] == "ValidationException"


def test_list_transform_jobs_is_newest_first_and_pages(
    api_stage: tuple[Any, Recorder], local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    sagemaker, recorder = api_stage
    # GIVEN three transform jobs created a minute apart
    for i in range(3):
        monkeypatch.setattr(recorder, "now", lambda i=i: START + timedelta(minutes=i))
        sagemaker.create_transform_job(**_job(f"bt-{i}"))
    # WHEN they are listed two at a time with SageMaker's default order
    first = sagemaker.list_transform_jobs(MaxResults=2)
    second = sagemaker.list_transform_jobs(MaxResults=2, NextToken=first["NextToken"])
    # THEN the newest comes first, and the second page holds the rest
    assert [s["TransformJobName"] for s in first["TransformJobSummaries"]] == ["bt-2", "bt-1"]
    assert [s["TransformJobName"] for s in second["TransformJobSummaries"]] == ["bt-0"]
    assert "NextToken" not in second
    # AND a sort by name ascending is honoured
    by_name = sagemaker.list_transform_jobs(SortBy="Name", SortOrder="Ascending")["TransformJobSummaries"]
    assert [s["TransformJobName"] for s in by_name] == ["bt-0", "bt-1", "bt-2"]


# ---------------------------------------------------------------------------------------- splitting rules


@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=60),
    limit=st.integers(min_value=41, max_value=400),
    multi=st.booleans(),
)
def test_mini_batches_keep_every_record_in_order_within_the_limit(lines: list[bytes], limit: int, multi: bool) -> None:
    # GIVEN records no larger than the limit
    # WHEN they are packed into mini-batches
    batches = list(mini_batches(lines, limit=limit, multi_record=multi, split=True))
    # THEN every batch is a body within the limit, and together they are the records, each on its line, in order
    assert all(isinstance(b, bytes) and len(b) <= limit for b in batches)
    assert b"".join(b for b in batches if isinstance(b, bytes)) == b"".join(line + b"\n" for line in lines)
    # AND SingleRecord sends one record per request
    if not multi:
        assert len(batches) == len(lines)


def test_a_record_over_the_limit_is_reported_by_its_size() -> None:
    # GIVEN a record larger than the limit after two that fit
    # WHEN the records are packed
    batches = list(mini_batches([b"a", b"b", b"x" * 10], limit=8, multi_record=True, split=True))
    # THEN the batch before it is sent, then the record's size (with its newline) stops the object
    assert batches == [b"a\nb\n", 11]


def test_lines_are_records_and_a_final_newline_adds_none() -> None:
    # GIVEN an object of two lines ending with a newline
    # WHEN it is split by Line, or not split
    # THEN Line gives the two lines, None the whole object
    assert records(b"1,2\n3,4\n", "Line") == [b"1,2", b"3,4"]
    assert records(b"1,2\n3,4\n", "None") == [b"1,2\n3,4\n"]


@pytest.mark.parametrize(
    ("input_prefix", "key", "expected"),
    [
        ("in/", "in/data.csv", "out/data.csv.out"),
        ("in/", "in/dataset01/data.csv", "out/dataset01/data.csv.out"),
        ("in/data", "in/data-1.csv", "out/data-1.csv.out"),
        ("in/data.csv", "in/data.csv", "out/data.csv.out"),
    ],
)
def test_out_keys_follow_the_input_key_relative_to_the_prefix(input_prefix: str, key: str, expected: str) -> None:
    # GIVEN an input prefix and an object under it
    # WHEN the output key is made for the output prefix out/
    # THEN it is the key relative to the prefix's folder, with .out
    assert output_key(input_prefix, key, "out/") == expected
