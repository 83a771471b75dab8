"""moto's SageMaker with the rehearsal's extensions, through boto3 against moto's server (no serving processes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sagecycle.rehearsal.moto_sagemaker import (
    EndpointRequest,
    register_endpoint_manager,
    register_training_manager,
    unregister_endpoint_manager,
    unregister_training_manager,
)

pytest.register_assert_rewrite("tests.rehearsal.conftest_hosting")  # before the import below: it is a plugin too

from tests.rehearsal.conftest_hosting import REGION, ROLE  # noqa: E402

pytest_plugins = ["tests.rehearsal.conftest_hosting"]
ACCOUNT = "123456789012"
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
CANARY: dict[str, Any] = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "WaitIntervalInSeconds": 600,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        },
        "TerminationWaitInSeconds": 300,
        "MaximumExecutionTimeoutInSeconds": 1800,
    },
    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "ep-5xx"}]},
}


class Recorder:
    """Stands where LocalHosting / LocalTraining stand: keeps what it is told and gives a fixed time."""

    def __init__(self) -> None:
        self.requests: list[EndpointRequest] = []
        self.jobs: list[str] = []

    def now(self) -> datetime:
        return NOW

    def endpoint_requested(self, request: EndpointRequest) -> None:
        self.requests.append(request)

    def training_job_created(self, account: str, region: str, job_name: str) -> None:
        self.jobs.append(job_name)


@pytest.fixture
def sagemaker(local_aws: Any) -> Any:
    client = local_aws.client("sagemaker")
    for name, variant in (("cfg-a", "AllTraffic"), ("cfg-b", "AllTraffic"), ("cfg-other", "Other")):
        client.create_model(
            ModelName=name, PrimaryContainer={"Image": "x", "ModelDataUrl": f"s3://b/{name}"}, ExecutionRoleArn=ROLE
        )
        client.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": variant,
                    "ModelName": name,
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                    "InitialVariantWeight": 1.0,
                }
            ],
        )
    return client


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    manager = Recorder()
    register_endpoint_manager(ACCOUNT, REGION, manager)
    register_training_manager(ACCOUNT, REGION, manager)
    try:
        yield manager
    finally:
        unregister_endpoint_manager(ACCOUNT, REGION, manager)
        unregister_training_manager(ACCOUNT, REGION, manager)


def _code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as error:
        call(**kwargs)
    return str(error.value.response["Error"]["Code"])


def test_update_endpoint_without_a_manager_takes_effect_at_once(sagemaker: Any) -> None:
    # GIVEN an endpoint on cfg-a, and no hosting registered (plain moto behaviour)
    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-a")
    # WHEN it is updated to cfg-b
    arn = sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="cfg-b")["EndpointArn"]
    # THEN it is InService on cfg-b when the call returns
    described = sagemaker.describe_endpoint(EndpointName="ep")
    assert arn == described["EndpointArn"]
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "cfg-b")


def test_with_a_manager_endpoints_are_creating_then_updating_and_the_manager_is_told(
    sagemaker: Any, recorder: Recorder
) -> None:
    # WHEN an endpoint is created
    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-a")
    # THEN it is Creating, and the manager has the request
    assert sagemaker.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Creating"
    assert [(r.kind, r.endpoint_config_name) for r in recorder.requests] == [("create", "cfg-a")]
    # WHEN the manager brings it InService and it is updated with a canary
    from sagecycle.rehearsal.moto_sagemaker import LOCK, backend

    with LOCK:
        backend(ACCOUNT, REGION).endpoints["ep"].endpoint_status = "InService"
    sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="cfg-b", DeploymentConfig=CANARY)
    # THEN DescribeEndpoint shows Updating on the old config, the pending one and the deployment config
    described = sagemaker.describe_endpoint(EndpointName="ep")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("Updating", "cfg-a")
    assert described["PendingDeploymentSummary"]["EndpointConfigName"] == "cfg-b"
    assert described["PendingDeploymentSummary"]["StartTime"] == NOW
    assert described["LastDeploymentConfig"] == CANARY
    update = recorder.requests[-1]
    assert (update.kind, update.previous_config_name, update.deployment_config) == ("update", "cfg-a", CANARY)
    # AND an in-progress endpoint can be neither updated again nor deleted
    assert _code(sagemaker.update_endpoint, EndpointName="ep", EndpointConfigName="cfg-a") == "ValidationException"
    assert _code(sagemaker.delete_endpoint, EndpointName="ep") == "ValidationException"


def _broken(**changes: Any) -> dict[str, Any]:
    import copy

    config = copy.deepcopy(CANARY)
    policy = config["BlueGreenUpdatePolicy"]
    routing = policy["TrafficRoutingConfiguration"]
    for key, value in changes.items():
        target = routing if key in routing or key in {"LinearStepSize"} else policy
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return config


@pytest.mark.parametrize(
    ("name", "config", "deployment"),
    [
        ("unknown endpoint", "cfg-b", None),
        ("ep", "no-such-config", None),
        ("ep", "cfg-other", CANARY),  # guardrails keep the variant names
        ("ep", "cfg-b", _broken(CanarySize=None)),
        ("ep", "cfg-b", _broken(CanarySize={"Type": "CAPACITY_PERCENT", "Value": 60})),
        ("ep", "cfg-b", _broken(Type="SOMETIMES")),
        ("ep", "cfg-b", _broken(MaximumExecutionTimeoutInSeconds=800)),  # not above the waits (900 s)
        ("ep", "cfg-b", _broken(WaitIntervalInSeconds=4000)),
    ],
)
def test_update_endpoint_refuses_what_sagemaker_refuses(
    sagemaker: Any, name: str, config: str, deployment: dict[str, Any] | None
) -> None:
    # GIVEN an endpoint InService on cfg-a
    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-a")
    params: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": config}
    if deployment is not None:
        params["DeploymentConfig"] = deployment
    # WHEN an invalid update is asked THEN it is a ValidationException and nothing changes
    assert _code(sagemaker.update_endpoint, **params) == "ValidationException"
    described = sagemaker.describe_endpoint(EndpointName="ep")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "cfg-a")


def test_create_endpoint_refuses_an_existing_name(sagemaker: Any) -> None:
    # GIVEN an endpoint
    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-a")
    # WHEN another is created under the same name THEN SageMaker's error, and the first is untouched
    assert _code(sagemaker.create_endpoint, EndpointName="ep", EndpointConfigName="cfg-b") == "ValidationException"
    assert sagemaker.describe_endpoint(EndpointName="ep")["EndpointConfigName"] == "cfg-a"


def test_training_jobs_stay_in_progress_for_the_manager_with_their_metric_definitions(
    sagemaker: Any, recorder: Recorder
) -> None:
    # GIVEN a training manager and a job with its own metric definitions
    definitions = [{"Name": "validation:auc", "Regex": "validation auc ([0-9.]+)"}]
    sagemaker.create_training_job(
        TrainingJobName="job-1",
        AlgorithmSpecification={"TrainingImage": "x", "TrainingInputMode": "File", "MetricDefinitions": definitions},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": "s3://b/out/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    # THEN the job is InProgress (Starting), keeps its definitions, and the manager has it
    job = sagemaker.describe_training_job(TrainingJobName="job-1")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("InProgress", "Starting")
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == definitions
    assert recorder.jobs == ["job-1"]


def test_promote_s_own_calls_are_accepted_and_the_manager_gets_its_deployment_config(
    sagemaker: Any, recorder: Recorder
) -> None:
    from lambdas.shared.jobspec import build_endpoint_config, build_model, build_update_endpoint
    from sagecycle.rehearsal.moto_sagemaker import LOCK, backend
    from tests.lambdas.fixtures import SETTINGS

    # GIVEN an endpoint InService on a model and config made exactly as promote makes them
    for job in ("job-1", "job-2"):
        sagemaker.create_model(**build_model(SETTINGS, model_name=job, model_data_url=f"s3://b/{job}", run_id=job))
        sagemaker.create_endpoint_config(
            **build_endpoint_config(SETTINGS, endpoint_config_name=job, model_name=job, run_id=job)
        )
    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="job-1")
    with LOCK:
        backend(ACCOUNT, REGION).endpoints["ep"].endpoint_status = "InService"
    # WHEN promote's UpdateEndpoint is sent
    params = build_update_endpoint(SETTINGS, endpoint_name="ep", endpoint_config_name="job-2", alarm_names=["a-5xx"])
    sagemaker.update_endpoint(**params)
    # THEN the endpoint is Updating and the manager has the guardrails and the retained-property choices
    request = recorder.requests[-1]
    assert sagemaker.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"
    assert request.deployment_config == params["DeploymentConfig"]
    assert request.retain_all_variant_properties is True
    assert request.exclude_retained_variant_properties == ("DataCaptureConfig",)
