"""Fixtures for the local SageMaker tests: moto's server with the SageMaker extensions, small servable models in
S3, and a `LocalHosting` on a compressed clock. Tests import the fixtures they use from here."""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lambdas.shared.jobspec import hosting_environment
from sagecycle.rehearsal import LocalAws
from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.hosting import LocalHosting
from sagecycle.rehearsal.moto_sagemaker import install_moto_extensions
from sagecycle.rehearsal.timeline import Timeline
from tests.serving.model_factory import build_model_dir, make_model_tar

REGION = "us-east-1"
BUCKET = "rehearsal-models"
DATA_BUCKET = "rehearsal-data"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
ROW = b"39,Private,40,Male\n"  # one row in model_factory's schema order


@pytest.fixture
def local_aws() -> Iterator[LocalAws]:
    """moto's server (extended) for one test, reset first: backends are global to the process."""
    install_moto_extensions()
    with LocalAws(REGION) as aws:
        urllib.request.urlopen(urllib.request.Request(f"{aws.url}/moto-api/reset", method="POST")).read()
        yield aws


@pytest.fixture(scope="session")
def model_tars(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """model.tar.gz files as training jobs leave them: two servable models, one whose every prediction fails
    (a 500 from the container), and one without code/."""
    root = tmp_path_factory.mktemp("models")
    built = {
        "blue": build_model_dir(root / "blue", "binary", n_rounds=10),
        "green": build_model_dir(root / "green", "binary", n_rounds=12),
        "no-code": build_model_dir(root / "no-code", "binary", n_rounds=10, with_code=False),
        "faulty": build_model_dir(root / "faulty", "binary", n_rounds=12),
    }
    # The faulty candidate starts and answers /ping, but every prediction fails: the container answers 500.
    with (built["faulty"] / "code" / "inference.py").open("a", encoding="utf-8") as module:
        module.write("\n\ndef predict_fn(input_data, model):\n    raise RuntimeError('faulty candidate')\n")
    return {name: make_model_tar(path, root / f"{name}.tar.gz") for name, path in built.items()}


@dataclass
class HostingStage:
    """The local AWS with the models uploaded, a LocalHosting on a compressed clock, and what it emitted."""

    aws: LocalAws
    hosting: LocalHosting
    clock: Clock
    timeline: Timeline
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sagemaker(self) -> Any:
        return self.aws.client("sagemaker")

    @property
    def runtime(self) -> Any:
        import boto3

        return boto3.client("sagemaker-runtime", endpoint_url=self.hosting.runtime_url, region_name=REGION)

    def model(self, name: str, artifact: str) -> str:
        """CreateModel as promote calls it: the artifact's ModelDataUrl and the shared hosting Environment."""
        self.sagemaker.create_model(
            ModelName=name,
            PrimaryContainer={
                "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5",
                "Mode": "SingleModel",
                "ModelDataUrl": f"s3://{BUCKET}/{artifact}.tar.gz",
                "Environment": hosting_environment(region=REGION, container_log_level=20),
            },
            ExecutionRoleArn=ROLE,
        )
        return name

    def config(self, name: str, variants: dict[str, tuple[str, float]], *, capture: bool = True) -> str:
        """CreateEndpointConfig with `variants` (variant -> (model, weight)) and data capture to DATA_BUCKET."""
        params: dict[str, Any] = {
            "EndpointConfigName": name,
            "ProductionVariants": [
                {
                    "VariantName": variant,
                    "ModelName": model,
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                    "InitialVariantWeight": weight,
                }
                for variant, (model, weight) in variants.items()
            ],
        }
        if capture:
            params["DataCaptureConfig"] = {
                "EnableCapture": True,
                "InitialSamplingPercentage": 100,
                "DestinationS3Uri": f"s3://{DATA_BUCKET}/capture/",
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            }
        self.sagemaker.create_endpoint_config(**params)
        return name

    def endpoint_on(self, endpoint: str, artifact: str = "blue", config: str = "cfg-blue") -> None:
        """An InService endpoint with one variant, AllTraffic, serving `artifact`."""
        self.config(config, {"AllTraffic": (self.model(f"model-{config}", artifact), 1.0)})
        self.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        self.hosting.reconcile()
        assert self.status(endpoint) == "InService", self.sagemaker.describe_endpoint(EndpointName=endpoint)

    def status(self, endpoint: str) -> str:
        return str(self.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"])

    def invoke(self, endpoint: str, n: int, **kwargs: Any) -> list[dict[str, Any]]:
        return [
            self.runtime.invoke_endpoint(EndpointName=endpoint, Body=ROW, ContentType="text/csv", **kwargs)
            for _ in range(n)
        ]

    def invoke_counting_errors(self, endpoint: str, n: int) -> Counter[str]:
        """`n` requests; counts the answers by error code ("OK" for a success)."""
        from botocore.exceptions import ClientError

        codes: Counter[str] = Counter()
        for _ in range(n):
            try:
                self.runtime.invoke_endpoint(EndpointName=endpoint, Body=ROW, ContentType="text/csv")
                codes["OK"] += 1
            except ClientError as e:
                codes[str(e.response["Error"]["Code"])] += 1
        return codes

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.timeline.events]

    def detail_types(self) -> list[tuple[str, str]]:
        return [(e["detail-type"], e["detail"]["EndpointStatus"]) for e in self.events]


def put_alarm(stage: HostingStage, name: str = "ep-5xx") -> None:
    """A 5xx alarm on endpoint ep's AllTraffic variant, as the Endpoint stack defines its rollback alarm."""
    stage.aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def configs_served(stage: HostingStage, since: int = 0) -> Counter[str]:
    """How many of the invocations since `since` each endpoint config served."""
    return Counter(i["config"] for i in stage.hosting.invocations[since:])


def metric(stage: HostingStage, name: str, statistic: str) -> list[dict[str, Any]]:
    """Endpoint ep's AllTraffic datapoints of `name` in the local CloudWatch, one per hour around the clock."""
    answer = stage.aws.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName=name,
        Dimensions=[{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=stage.clock.now() - timedelta(hours=1),
        EndTime=stage.clock.now() + timedelta(hours=1),
        Period=3600,
        Statistics=[statistic],
    )
    return list(answer["Datapoints"])


@pytest.fixture
def hosting_stage(local_aws: LocalAws, tmp_path: Path, model_tars: dict[str, Path]) -> Iterator[HostingStage]:
    s3 = local_aws.client("s3")
    for bucket in (BUCKET, DATA_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for name, path in model_tars.items():
        s3.put_object(Bucket=BUCKET, Key=f"{name}.tar.gz", Body=path.read_bytes())
    clock = Clock(speedup=600.0, start=START)
    timeline = Timeline(clock)
    events: list[dict[str, Any]] = []
    hosting = LocalHosting(local_aws, tmp_path / "hosting", clock, timeline, events.append, seed=7)
    try:
        yield HostingStage(local_aws, hosting, clock, timeline, events)
    finally:
        hosting.close()
