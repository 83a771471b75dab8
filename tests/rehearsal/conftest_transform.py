"""Fixtures of the local batch transform tests: the rehearsal's local AWS with the champion model in S3, a KMS key,
the stage's spec settings and a `LocalTransform` in the background, so CreateTransformJob through boto3 runs on its
own. Import it as a plugin beside conftest_hosting (whose `local_aws` and `model_tars` it uses):
`pytest_plugins = ["tests.rehearsal.conftest_hosting", "tests.rehearsal.conftest_transform"]`."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contract.names import BASELINE_MODEL_KEY, PREFIX_TRANSFORM_OUTPUT
from lambdas.shared.jobspec import TrainingSpecSettings, build_model, build_transform_job
from sagecycle.rehearsal import ACCOUNT, LocalAws
from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.timeline import Timeline
from sagecycle.rehearsal.transform import LocalTransform
from tests.rehearsal.conftest_hosting import REGION, ROLE

DATA = f"sagecycle-dev-data-{ACCOUNT}-{REGION}"
MODELS = f"sagecycle-dev-models-{ACCOUNT}-{REGION}"
START = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


@dataclass
class TransformStage:
    """The local AWS with the champion uploaded and a KMS key, the spec settings, and a LocalTransform."""

    aws: LocalAws
    transform: LocalTransform
    settings: TrainingSpecSettings
    model_dir: Path
    timeline: Timeline

    @property
    def sagemaker(self) -> Any:
        return self.aws.client("sagemaker")

    @property
    def s3(self) -> Any:
        return self.aws.client("s3")

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=DATA, Key=key, Body=body)

    def create(self, run_id: str, input_prefix: str = "batch/in/", **overrides: Any) -> dict[str, Any]:
        """CreateModel for the champion, then CreateTransformJob as the spec builder writes it."""
        model = build_model(
            self.settings,
            model_name=f"champion-{run_id}",
            model_data_url=f"s3://{MODELS}/{BASELINE_MODEL_KEY}",
            run_id=run_id,
        )
        self.sagemaker.create_model(**model)
        job = build_transform_job(
            self.settings,
            model_name=model["ModelName"],
            input_s3_prefix=f"s3://{DATA}/{input_prefix}",
            output_s3_uri=f"s3://{MODELS}/{PREFIX_TRANSFORM_OUTPUT}{run_id}/",
            run_id=run_id,
        )
        job.update(overrides)
        self.sagemaker.create_transform_job(**job)
        return job

    def out(self, job: dict[str, Any], relative: str) -> dict[str, Any]:
        key = job["TransformOutput"]["S3OutputPath"].removeprefix(f"s3://{MODELS}/") + relative
        return dict(self.s3.get_object(Bucket=MODELS, Key=key))

    def out_keys(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=MODELS, Prefix=PREFIX_TRANSFORM_OUTPUT)
        return sorted(o["Key"] for o in listed.get("Contents", []))


@pytest.fixture
def transform_stage(local_aws: LocalAws, tmp_path: Path, model_tars: dict[str, Path]) -> Iterator[TransformStage]:
    s3 = local_aws.client("s3")
    for bucket in (DATA, MODELS):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=MODELS, Key=BASELINE_MODEL_KEY, Body=model_tars["blue"].read_bytes())
    key = local_aws.client("kms").create_key()["KeyMetadata"]["Arn"]
    settings = TrainingSpecSettings(
        job_name_prefix="sagecycle-dev",
        image_uri=f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:3.0-5",
        role_arn=ROLE,
        region=REGION,
        data_bucket=DATA,
        model_bucket=MODELS,
        source_dir_s3_uri=f"s3://{MODELS}/code/sourcedir.tar.gz",
        kms_key_arn=key,
    )
    model_dir = tmp_path / "champion"
    with tarfile.open(model_tars["blue"]) as tar:
        tar.extractall(model_dir, filter="data")
    clock = Clock(speedup=600.0, start=START)
    timeline = Timeline(clock)
    transform = LocalTransform(local_aws, tmp_path / "transform", clock, timeline, background=True)
    try:
        yield TransformStage(local_aws, transform, settings, model_dir, timeline)
    finally:
        transform.close()
