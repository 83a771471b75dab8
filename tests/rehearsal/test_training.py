"""Local SageMaker training jobs: CreateTrainingJob through boto3, run by LocalTraining under the container contract."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lambdas.shared.metrics import METRIC_DEFINITIONS
from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.timeline import Timeline
from sagecycle.rehearsal.training import LocalTraining
from stacks.packaging import build_sourcedir
from training_scripts.prepare import EMBEDDED_ADULT, Prepared, prepare

pytest.register_assert_rewrite("tests.rehearsal.conftest_hosting")  # before the import below: it is a plugin too

from tests.rehearsal.conftest_hosting import DATA_BUCKET, ROLE, START  # noqa: E402

pytest_plugins = ["tests.rehearsal.conftest_hosting"]
MODEL_BUCKET = "rehearsal-model-output"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="session")
def adult_tiny(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """1,500 Adult rows prepared: train, validation and test channels with their schema."""
    raw = tmp_path_factory.mktemp("adult-tiny-raw") / "adult.csv.gz"
    with gzip.open(EMBEDDED_ADULT, "rt") as source, gzip.open(raw, "wt") as target:
        for number, line in enumerate(source):
            if number > 1500:
                break
            target.write(line)
    return prepare(raw, target="income", output_dir=tmp_path_factory.mktemp("adult-tiny"))


@dataclass
class TrainingStage:
    aws: Any
    training: LocalTraining
    timeline: Timeline
    code_uri: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def create_job(self, name: str, hyperparameters: dict[str, str]) -> None:
        """CreateTrainingJob shaped as start-training builds it (jobspec): data channels, code channel, script mode."""
        channels = [
            {
                "ChannelName": split,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{DATA_BUCKET}/{split}/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
            }
            for split in ("train", "validation", "test")
        ]
        channels.append(
            {
                "ChannelName": "code",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": self.code_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        )
        self.aws.client("sagemaker").create_training_job(
            TrainingJobName=name,
            HyperParameters={
                **hyperparameters,
                "sagemaker_program": "train.py",
                "sagemaker_submit_directory": "/opt/ml/input/data/code/" + self.code_uri.rsplit("/", 1)[-1],
            },
            AlgorithmSpecification={
                "TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5",
                "TrainingInputMode": "File",
                "MetricDefinitions": [dict(d) for d in METRIC_DEFINITIONS],
            },
            RoleArn=ROLE,
            InputDataConfig=channels,
            OutputDataConfig={"S3OutputPath": f"s3://{MODEL_BUCKET}/training-output/", "KmsKeyId": KMS_KEY},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
        )

    def describe(self, name: str) -> dict[str, Any]:
        return dict(self.aws.client("sagemaker").describe_training_job(TrainingJobName=name))


@pytest.fixture
def training_stage(local_aws: Any, tmp_path: Path, adult_tiny: Prepared) -> Iterator[TrainingStage]:
    s3 = local_aws.client("s3")
    for bucket in (DATA_BUCKET, MODEL_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for split in ("train", "validation", "test"):
        for path in sorted(adult_tiny.channel(split).iterdir()):
            s3.put_object(Bucket=DATA_BUCKET, Key=f"{split}/{path.name}", Body=path.read_bytes())
    sourcedir = build_sourcedir(tmp_path / "sourcedir")
    s3.put_object(Bucket=MODEL_BUCKET, Key=f"code/{sourcedir.name}", Body=sourcedir.read_bytes())
    clock = Clock(speedup=600.0, start=START)
    timeline = Timeline(clock)
    events: list[dict[str, Any]] = []
    training = LocalTraining(local_aws, tmp_path / "training", clock, timeline, events.append)
    try:
        yield TrainingStage(local_aws, training, timeline, f"s3://{MODEL_BUCKET}/code/{sourcedir.name}", events)
    finally:
        training.close()


def test_a_job_whose_train_py_fails_shows_its_failure_reason(training_stage: TrainingStage) -> None:
    stage = training_stage
    # GIVEN a training job whose hyperparameters train.py refuses
    stage.create_job("job-bad", {"num_round": "-5", "nthread": "2"})
    assert stage.describe("job-bad")["TrainingJobStatus"] == "InProgress"
    # WHEN the local SageMaker runs it
    events = stage.training.reconcile()
    # THEN DescribeTrainingJob says Failed, with train.py's own failure as SageMaker words it
    job = stage.describe("job-bad")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Failed", "Failed")
    assert job["FailureReason"].startswith("AlgorithmError: ") and "num_round" in job["FailureReason"]
    assert "ModelArtifacts" not in events[-1]["detail"]
    # AND the state-change event is Failed and carries the same reason
    assert [e["detail"]["TrainingJobStatus"] for e in stage.events] == ["InProgress", "Failed"]
    assert events[-1]["detail"]["FailureReason"] == job["FailureReason"]
    assert events[-1]["detail-type"] == "SageMaker Training Job State Change"
    assert [e["kind"] for e in stage.timeline.events] == ["training.started", "training.failed"]
    # AND no model was written
    listed = stage.aws.client("s3").list_objects_v2(Bucket=MODEL_BUCKET, Prefix="training-output/")
    assert listed.get("KeyCount", 0) == 0


def test_a_job_runs_from_its_channels_and_leaves_its_model_dir_as_model_tar(training_stage: TrainingStage) -> None:
    stage = training_stage
    # GIVEN a training job on the uploaded channels and source tarball
    stage.create_job("job-good", {"num_round": "10", "nthread": "2"})
    # WHEN the local SageMaker runs it
    event, result = stage.training.run("job-good")
    # THEN it is Completed, its metrics read from the log by its own definitions
    job = stage.describe("job-good")
    assert job["TrainingJobStatus"] == "Completed" and "FailureReason" not in job
    reported = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert 0.5 < reported["validation:auc"] <= 1.0 and 0.5 < reported["test:auc"] <= 1.0
    assert event["detail"]["ModelArtifacts"]["S3ModelArtifacts"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    # AND model.tar.gz in S3 is exactly the job's model directory, encrypted with the job's key
    assert result is not None
    bucket, _, key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").partition("/")
    stored = stage.aws.client("s3").get_object(Bucket=bucket, Key=key)
    assert stored["ServerSideEncryption"] == "aws:kms"
    with tarfile.open(fileobj=io.BytesIO(stored["Body"].read())) as tar:
        members = sorted(m.name for m in tar.getmembers() if m.isfile())
    on_disk = sorted(p.relative_to(result.model_dir).as_posix() for p in result.model_dir.rglob("*") if p.is_file())
    assert members == on_disk and "code/inference.py" in members
