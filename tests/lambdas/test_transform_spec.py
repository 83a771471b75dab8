"""Batch transform: the existing job-spec builder scores a whole S3 prefix with the champion model.

The champion is an S3 URL (the SSM parameter); a transform job needs a model, so the caller creates one with
`build_model` from that URL first and names it in `build_transform_job`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from lambdas.shared import contract
from lambdas.shared.job_settings import SettingsError
from lambdas.shared.jobspec import (
    TrainingSpecSettings,
    TransformSettings,
    VpcSettings,
    build_model,
    build_transform_job,
    s3_prefix_uri,
)
from tests.lambdas.test_jobspec import shape_errors

ACCOUNT, REGION = "123456789012", "eu-west-1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DATA = f"sagecycle-dev-data-{ACCOUNT}-{REGION}"
MODELS = f"sagecycle-dev-models-{ACCOUNT}-{REGION}"
CHAMPION = f"s3://{MODELS}/{contract.BASELINE_MODEL_KEY}"  # the champion parameter's first value
SETTINGS = TrainingSpecSettings(
    job_name_prefix=contract.job_name_prefix("sagecycle", "dev"),
    image_uri=f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:3.2-0",
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/sagecycle-dev-sagemaker-execution",
    region=REGION,
    data_bucket=DATA,
    model_bucket=MODELS,
    source_dir_s3_uri=f"s3://{MODELS}/{contract.PREFIX_CODE}sourcedir-3f2a9c0d1e.tar.gz",
    kms_key_arn=KEY,
    vpc=VpcSettings(("subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60718"), ("sg-0c1d2e3f4a5b60718",)),
    tags={"project": "sagecycle", "stage": "dev"},
)
RUN = "batch-scoring:2025-01-02"
INPUT = s3_prefix_uri(DATA, contract.PREFIX_TEST)  # every CSV under the prefix, feature rows without label
OUTPUT = f"{s3_prefix_uri(MODELS, contract.PREFIX_TRANSFORM_OUTPUT)}{RUN.replace(':', '-')}/"


def _champion_transform(settings: TrainingSpecSettings = SETTINGS) -> tuple[dict[str, Any], dict[str, Any]]:
    model = build_model(settings, model_name="sagecycle-dev-champion-7b409f932d", model_data_url=CHAMPION, run_id=RUN)
    job = build_transform_job(
        settings, model_name=model["ModelName"], input_s3_prefix=INPUT, output_s3_uri=OUTPUT, run_id=RUN
    )
    return model, job


def test_champion_model_and_transform_are_valid_sagemaker_requests() -> None:
    # GIVEN the champion's model.tar.gz
    # WHEN a model is made from it and a transform job names that model
    model, job = _champion_transform()
    # THEN botocore's SageMaker model accepts both requests as they are
    assert shape_errors("CreateModel", model) == []
    assert shape_errors("CreateTransformJob", job) == []


def test_transform_scores_every_file_under_the_prefix_with_the_champion() -> None:
    # GIVEN the champion's model data URL
    # WHEN its model and transform job are built
    model, job = _champion_transform()
    # THEN the job reads the whole prefix (not one object) through the model serving the champion's artifact
    assert job["ModelName"] == model["ModelName"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == CHAMPION
    assert job["TransformInput"]["DataSource"] == {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": INPUT}}
    # AND it runs the champion's own inference.py, isolated and in the private subnets (a transform job has no
    # VpcConfig of its own: it inherits the model's)
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert model["EnableNetworkIsolation"] is True and model["VpcConfig"]["Subnets"]
    assert "VpcConfig" not in job


def test_transform_batches_csv_lines_and_keeps_rows_in_order() -> None:
    # GIVEN the stage's transform settings
    # WHEN the transform job is built
    _, job = _champion_transform()
    # THEN CSV is split at line ends, sent many records per request, and joined back line by line
    assert job["TransformInput"]["ContentType"] == "text/csv"
    assert job["TransformInput"]["SplitType"] == "Line"
    assert job["BatchStrategy"] == "MultiRecord"
    assert (job["TransformOutput"]["Accept"], job["TransformOutput"]["AssembleWith"]) == ("text/csv", "Line")
    assert job["TransformOutput"]["S3OutputPath"] == OUTPUT


def test_transform_encrypts_its_volume_and_its_output_with_the_data_key() -> None:
    # GIVEN a CPU instance type (its volume takes a KMS key)
    # WHEN the transform job is built
    _, job = _champion_transform()
    # THEN the volume and the output are encrypted with the data key
    assert job["TransformResources"]["VolumeKmsKeyId"] == KEY
    assert job["TransformOutput"]["KmsKeyId"] == KEY


def test_local_storage_instances_keep_output_encryption_without_a_volume_key() -> None:
    # GIVEN a GPU instance with NVMe instance storage (SageMaker refuses a volume key there)
    gpu = dataclasses.replace(SETTINGS, transform=TransformSettings(instance_type="ml.g5.xlarge"))
    # WHEN the job is built
    _, job = _champion_transform(gpu)
    # THEN the output is still encrypted with our key, and the request still validates
    assert "VolumeKmsKeyId" not in job["TransformResources"]
    assert job["TransformOutput"]["KmsKeyId"] == KEY
    assert shape_errors("CreateTransformJob", job) == []


@pytest.mark.parametrize(("concurrent", "payload_mb"), [(20, 6), (4, 26)])
def test_transform_refuses_more_in_flight_than_sagemaker_accepts(concurrent: int, payload_mb: int) -> None:
    # GIVEN concurrency x payload above SageMaker's 100 MB
    # WHEN the settings are made
    with pytest.raises(SettingsError) as refused:
        TransformSettings(max_concurrent_transforms=concurrent, max_payload_mb=payload_mb)
    # THEN they are refused as invalid transform settings, with one broken rule, on max_concurrent_transforms
    assert (refused.value.code, refused.value.where) == ("invalid", "transform settings")
    assert [problem.split()[0] for problem in refused.value.problems] == ["max_concurrent_transforms"]


def test_execution_role_may_read_the_input_and_write_the_output() -> None:
    # GIVEN the prefixes the SageMaker execution role may read and write (imported here: it loads the CDK)
    from stacks.constructs.sagemaker_role import DATA_READ_PREFIXES, MODEL_WRITE_PREFIXES

    # WHEN the transform's input and output prefixes are compared with them
    # THEN the transform reads a prefix the role can read and writes where the role can write
    assert contract.PREFIX_TEST in DATA_READ_PREFIXES
    assert contract.PREFIX_TRANSFORM_OUTPUT in MODEL_WRITE_PREFIXES
