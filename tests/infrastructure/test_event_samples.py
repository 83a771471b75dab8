"""AWS's published sample events, routed through the synthesized rules and then run through their handlers.

Every file under tests/events/aws/ (sources in tests/events/SOURCES.md) goes the way it would go in an
account: EventBridge applies the rules exactly as `cdk synth` wrote them (moto's rule engine), and whatever a
rule routes is handed to that rule's function against moto, with the function's own environment. A sample
names someone else's bucket, job or alarm; to make it ours a test sets only those identifiers, and says which.
Everything else, placeholders, explicit nulls, missing optional fields, odd status casing, stays as published.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from lambdas.shared import contract as c
from lambdas.shared import runs
from lambdas.shared.jobspec import build_endpoint_config, build_model
from tests.infrastructure.conftest import Synthesized
from tests.infrastructure.eventbridge import RuleEngine, synthesized_patterns
from tests.lambdas.conftest import lambda_environment  # noqa: F401 - autouse: the functions' environment
from tests.lambdas.fixtures import (
    ACCOUNT,
    CHAMPION_PARAMETER,
    CHAMPION_URL,
    DATA_BUCKET,
    ENDPOINT,
    GOOD_CSV,
    GROUP,
    MODEL_BUCKET,
    PREFIX,
    REGION,
    RUNS_TABLE,
    SETTINGS,
    TUNING_SETTINGS,
    Aws,
    CallRecorder,
    FakeContext,
    aws_client,
    create_resources,
    evaluation,
    forbid,
    model_tar,
    put_model,
    record_started_run,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

SAMPLES = Path(__file__).resolve().parents[1] / "events" / "aws"

# Our names, as the dev stage's functions and rules know them.
JOB = f"{PREFIX}-261123-0500-3f2a9c1b7e"
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{JOB}"
JOB_URL = f"s3://{MODEL_BUCKET}/training-output/{JOB}/output/model.tar.gz"
TUNING = f"{PREFIX}-3f2a9c1b"
TUNING_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/{TUNING}"
CHILD = f"{TUNING}-014-7c1d2e9a"  # SageMaker names a tuning job's children <tuning job>-<NNN>-<8 hex>
CHILD_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{CHILD}"
CHILD_URL = f"s3://{MODEL_BUCKET}/training-output/{CHILD}/output/model.tar.gz"
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
DRIFT_ALARM = c.alarm_name("sagecycle", "dev", c.DRIFT_ALARM_SUFFIX)
QUALITY_ALARM = c.alarm_name("sagecycle", "dev", c.QUALITY_ALARM_SUFFIX)
UNHEALTHY_ALARM = c.alarm_name("sagecycle", "dev", c.ENDPOINT_ALARMS["unhealthy"])
ALARM_SAMPLES = (
    "cloudwatch/alarm_state_change_single_metric.json",
    "cloudwatch/alarm_state_change_metric_math.json",
    "cloudwatch/alarm_state_change_anomaly_detection.json",
)


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((SAMPLES / name).read_text()))


# The samples EventBridge delivers (S3 notifications and the SQS envelope never meet a rule).
EVENTBRIDGE_SAMPLES = sorted(
    str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("*.json") if "detail-type" in json.loads(p.read_text())
)


def made_ours(name: str, **identifiers: Any) -> dict[str, Any]:
    """The published sample with only the named fields set (`detail__TrainingJobName` is detail.TrainingJobName)."""
    event = copy.deepcopy(sample(name))
    for path, value in identifiers.items():
        node = event
        *parents, leaf = path.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return event


def training_job(name: str = "sagemaker/training_job_state_change.json", **changes: Any) -> dict[str, Any]:
    """A training job sample naming our job (name, ARN, resources)."""
    ours = {"detail__TrainingJobName": JOB, "detail__TrainingJobArn": JOB_ARN, "resources": [JOB_ARN]}
    return made_ours(name, **{**ours, **changes})


def tuning_job(name: str = "sagemaker/hyperparameter_tuning_job_state_change.json", **changes: Any) -> dict[str, Any]:
    ours = {
        "detail__HyperParameterTuningJobName": TUNING,
        "detail__HyperParameterTuningJobArn": TUNING_ARN,
        "resources": [TUNING_ARN],
    }
    return made_ours(name, **{**ours, **changes})


def endpoint(name: str) -> dict[str, Any]:
    return made_ours(name, detail__EndpointName=ENDPOINT, detail__EndpointArn=ENDPOINT_ARN, resources=[ENDPOINT_ARN])


def alarm(name: str, alarm_name: str) -> dict[str, Any]:
    arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm_name}"
    return made_ours(name, detail__alarmName=alarm_name, resources=[arn])


# ------------------------------------------------------------------------------------------------- routing

ROUTES: list[tuple[str, Any, set[str]]] = [
    # (case, the event, the rules that must fire: exactly these)
    # As published, every sample names someone else's bucket, job, endpoint or alarm: no rule of ours fires.
    *[(f"published {n}", n, set()) for n in EVENTBRIDGE_SAMPLES],
    ("training job Completed (documented: no ModelArtifacts)", lambda: training_job(), {"TrainingFinished"}),
    (
        "training job Failed",
        lambda: training_job(detail__TrainingJobStatus="Failed", detail__FailureReason="AlgorithmError"),
        {"TrainingFinished"},
    ),
    (
        "training job, explicit null TuningJobArn",
        lambda: training_job(
            "mlspace/training_job_state_change_tuning_child.json",
            detail__TuningJobArn=None,
            detail__TrainingJobStatus="Completed",
        ),
        {"TrainingFinished"},
    ),
    (
        "tuning child InProgress",
        lambda: training_job(
            "mlspace/training_job_state_change_tuning_child.json",
            detail__TrainingJobName=CHILD,
            detail__TrainingJobArn=CHILD_ARN,
            detail__TuningJobArn=TUNING_ARN,
        ),
        set(),
    ),
    (
        "tuning child Completed: routed, promote re-checks it",
        lambda: training_job(
            "mlspace/training_job_state_change_tuning_child.json",
            detail__TrainingJobName=CHILD,
            detail__TrainingJobArn=CHILD_ARN,
            detail__TuningJobArn=TUNING_ARN,
            detail__TrainingJobStatus="Completed",
        ),
        {"TrainingFinished"},
    ),
    ("tuning job, documented placeholder status", lambda: tuning_job(), set()),
    (
        "tuning job Completed",
        lambda: tuning_job(detail__HyperParameterTuningJobStatus="Completed"),
        {"TuningFinished"},
    ),
    (
        "tuning job FAILED (upper case)",
        lambda: tuning_job(detail__HyperParameterTuningJobStatus="FAILED"),
        {"TuningFinished"},
    ),
    (
        "tuning job Running, explicit nulls",
        lambda: tuning_job("mlspace/hyperparameter_tuning_job_state_change.json"),
        set(),
    ),
    (
        "tuning job Completed, explicit nulls, BestTrainingJob {}",
        lambda: tuning_job(
            "mlspace/hyperparameter_tuning_job_state_change.json", detail__HyperParameterTuningJobStatus="Completed"
        ),
        {"TuningFinished"},
    ),
    ("endpoint IN_SERVICE", lambda: endpoint("sagemaker/endpoint_state_change.json"), {"EndpointChanged"}),
    (
        "endpoint, explicit null FailureReason",
        lambda: endpoint("mlspace/endpoint_state_change.json"),
        {"EndpointChanged"},
    ),
    (
        "deployment canary baking",
        lambda: endpoint("sagemaker/endpoint_deployment_state_change_canary.json"),
        {"EndpointChanged"},
    ),
    (
        "deployment new capacity",
        lambda: endpoint("sagemaker/endpoint_deployment_state_change_capacity.json"),
        {"EndpointChanged"},
    ),
    *[(f"{n} as the drift alarm", lambda n=n: alarm(n, DRIFT_ALARM), {"RetrainAlarms"}) for n in ALARM_SAMPLES],
    *[(f"{n} as the quality alarm", lambda n=n: alarm(n, QUALITY_ALARM), {"RetrainAlarms"}) for n in ALARM_SAMPLES],
    *[(f"{n} as unhealthy", lambda n=n: alarm(n, UNHEALTHY_ALARM), {"EndpointUnhealthy"}) for n in ALARM_SAMPLES],
    (
        "drift alarm back to OK",
        lambda: made_ours(ALARM_SAMPLES[0], detail__alarmName=DRIFT_ALARM, detail__state__value="OK"),
        set(),
    ),
    (
        "object created under incoming/ (versioned)",
        lambda: made_ours(
            "s3/eventbridge_object_created.json",
            detail__bucket__name=DATA_BUCKET,
            detail__object__key="incoming/example-key",
        ),
        {"NewData"},
    ),
    (
        "object created under incoming/ (unversioned)",
        lambda: made_ours(
            "s3/eventbridge_object_created_unversioned.json",
            detail__bucket__name=DATA_BUCKET,
            detail__object__key="incoming/IMG_m7fzo3.jpg",
        ),
        {"NewData"},
    ),
    (
        "object created elsewhere in the data bucket",
        lambda: made_ours(
            "s3/eventbridge_object_created.json",
            detail__bucket__name=DATA_BUCKET,
            detail__object__key="train/example-key",
        ),
        set(),
    ),
]


@dataclass
class World:
    """moto with the functions' resources, and a bus that applies the synthesized rules."""

    aws: Aws
    bus: RuleEngine
    patterns: dict[str, dict[str, Any]]

    def deliver(self, event: dict[str, Any], rule: str) -> dict[str, Any]:
        """Route the event; it must fire exactly `rule`. What the rule's target receives is the event itself."""
        assert self.bus.firing(self.patterns, event) == {rule}
        return copy.deepcopy(event)


@pytest.fixture
def world(dev: Synthesized) -> Iterator[World]:
    with mock_aws():
        yield World(aws=create_resources(), bus=RuleEngine(), patterns=synthesized_patterns(dev))


@pytest.fixture
def bus(dev: Synthesized) -> Iterator[tuple[RuleEngine, dict[str, dict[str, Any]]]]:
    with mock_aws():
        yield RuleEngine(), synthesized_patterns(dev)


@pytest.mark.parametrize(("case", "make", "expected"), ROUTES, ids=[r[0] for r in ROUTES])
def test_published_samples_fire_exactly_the_rules_they_should(
    bus: tuple[RuleEngine, dict[str, dict[str, Any]]], case: str, make: Any, expected: set[str]
) -> None:
    # GIVEN a published sample, as published or with only our identifiers set
    event = sample(make) if isinstance(make, str) else make()
    engine, patterns = bus
    # WHEN it is put on a bus with every event-pattern rule of the Retraining stack, as synthesized
    # THEN exactly the expected rules fire (none for someone else's names)
    assert engine.firing(patterns, event) == expected


def test_every_published_sample_is_described_in_sources() -> None:
    # GIVEN the samples and their sources table
    # WHEN the table is read beside the files
    # THEN every file has its row, and every row its file
    listed = (SAMPLES.parent / "SOURCES.md").read_text()
    files = {f"aws/{p.relative_to(SAMPLES)}" for p in SAMPLES.rglob("*.json")}
    assert files and all(f"`{f}`" in listed for f in files)


# ------------------------------------------------------------------------------------------ promote


def _describe_training_job(name: str, arn: str, url: str, **extra: Any) -> CallRecorder:
    """DescribeTrainingJob as SageMaker answers it (moto keeps no jobs it did not start)."""
    response = {
        "TrainingJobName": name,
        "TrainingJobArn": arn,
        "ModelArtifacts": {"S3ModelArtifacts": url},
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": datetime(2026, 11, 23, 5, 0, tzinfo=UTC),
        **extra,
    }
    return CallRecorder("sagemaker", "DescribeTrainingJob", lambda params: response).install()


def _describe_tuning_job(status: str, **extra: Any) -> CallRecorder:
    response = {
        "HyperParameterTuningJobName": TUNING,
        "HyperParameterTuningJobArn": TUNING_ARN,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
        },
        "HyperParameterTuningJobStatus": status,
        "CreationTime": datetime(2026, 11, 23, 5, 0, tzinfo=UTC),
        "TrainingJobStatusCounters": {"Completed": 3},
        "ObjectiveStatusCounters": {"Succeeded": 3, "Pending": 0, "Failed": 0},
        **extra,
    }
    return CallRecorder("sagemaker", "DescribeHyperParameterTuningJob", lambda params: response).install()


@pytest.mark.parametrize(
    "make",
    [
        lambda: training_job(),
        lambda: training_job(
            "mlspace/training_job_state_change_tuning_child.json",
            detail__TuningJobArn=None,
            detail__TrainingJobStatus="Completed",
        ),
    ],
    ids=["documented, no ModelArtifacts", "explicit null TuningJobArn"],
)
def test_completed_training_job_samples_are_decided_and_unlock(world: World, make: Any) -> None:
    from lambdas.promote import handler as promote

    # GIVEN a job this stage started, whose candidate is worse than the champion (0.85 vs 0.90)
    record_started_run(JOB)
    put_model(JOB_URL, model_tar(evaluation_json=evaluation(0.85)))
    describe = _describe_training_job(JOB, JOB_ARN, JOB_URL)
    forbid("sagemaker", "UpdateEndpoint", "CreateEndpointConfig")
    # WHEN SageMaker's Completed event is routed and handled
    result = promote.handler(world.deliver(make(), "TrainingFinished"), FakeContext())
    # THEN the candidate is decided (its model found through DescribeTrainingJob) and the lock released
    assert result["decision"] == "rejected"
    assert describe.calls == [{"TrainingJobName": JOB}]
    assert runs.lock_holder(RUNS_TABLE) is None


def test_failed_training_job_sample_notifies_with_its_reason(world: World) -> None:
    from lambdas.promote import handler as promote

    # GIVEN a running job; the documented event as it reads when the job fails (with FailureReason)
    record_started_run(JOB)
    reason = "AlgorithmError: framework error"
    event = training_job(
        detail__TrainingJobStatus="Failed", detail__SecondaryStatus="Failed", detail__FailureReason=reason
    )
    # WHEN it is routed and handled
    promote.handler(world.deliver(event, "TrainingFinished"), FakeContext())
    # THEN the operator gets the reason and the lock is free
    (notice,) = world.aws.notices()
    assert notice["Message"]["failure_reason"] == reason
    assert runs.lock_holder(RUNS_TABLE) is None


def test_tuning_child_sample_is_routed_but_never_a_candidate(world: World) -> None:
    from lambdas.promote import handler as promote

    # GIVEN a tuning job holding the lock, and its child's Completed event (TuningJobArn set, explicit nulls)
    record_started_run(TUNING, kind="tuning")
    forbid("sagemaker", "CreateModelPackage", "DescribeTrainingJob")
    event = training_job(
        "mlspace/training_job_state_change_tuning_child.json",
        detail__TrainingJobName=CHILD,
        detail__TrainingJobArn=CHILD_ARN,
        detail__TuningJobArn=TUNING_ARN,
        detail__TrainingJobStatus="Completed",
        resources=[CHILD_ARN],
    )
    # WHEN it is routed and handled
    result = promote.handler(world.deliver(event, "TrainingFinished"), FakeContext())
    # THEN promote ignores it, and the tuning job keeps its lock
    assert TUNING in result["ignored"]
    assert (runs.lock_holder(RUNS_TABLE) or {})["owner"] == TUNING


def test_failed_tuning_job_sample_asks_the_api_for_the_reason(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from lambdas.promote import handler as promote

    # GIVEN a tuning run holding the lock; the documented event (no FailureReason) as it reads when it fails
    monkeypatch.setenv(c.ENV_TRAINING_SETTINGS, TUNING_SETTINGS.to_json())
    record_started_run(TUNING, kind="tuning")
    reason = "No training job succeeded after 5 attempts."
    describe = _describe_tuning_job("Failed", FailureReason=reason)
    event = tuning_job(detail__HyperParameterTuningJobStatus="Failed")
    # WHEN it is routed and handled
    promote.handler(world.deliver(event, "TuningFinished"), FakeContext())
    # THEN the reason comes from DescribeHyperParameterTuningJob, the operator is told, the lock is free
    assert describe.calls == [{"HyperParameterTuningJobName": TUNING}]
    (notice,) = world.aws.notices()
    assert notice["Message"]["failure_reason"] == reason
    assert runs.lock_holder(RUNS_TABLE) is None


def test_completed_tuning_job_sample_with_explicit_nulls_decides_the_best_job(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.promote import handler as promote

    # GIVEN a tuning run holding the lock, whose best child's model is worse than the champion
    monkeypatch.setenv(c.ENV_TRAINING_SETTINGS, TUNING_SETTINGS.to_json())
    record_started_run(TUNING, kind="tuning")
    put_model(CHILD_URL, model_tar(evaluation_json=evaluation(0.85)))
    best = {
        "TrainingJobName": CHILD,
        "TrainingJobArn": CHILD_ARN,
        "CreationTime": datetime(2026, 11, 23, 6, 0, tzinfo=UTC),
        "TrainingJobStatus": "Completed",
        "TunedHyperParameters": {"eta": "0.07"},
    }
    _describe_tuning_job(
        "Completed", BestTrainingJob=best, HyperParameterTuningEndTime=datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    )
    _describe_training_job(CHILD, CHILD_ARN, CHILD_URL, TuningJobArn=TUNING_ARN)
    forbid("sagemaker", "UpdateEndpoint")
    # AND the event with `"BestTrainingJob": {}` and null end time, counters and reason
    event = tuning_job(
        "mlspace/hyperparameter_tuning_job_state_change.json", detail__HyperParameterTuningJobStatus="Completed"
    )
    # WHEN it is routed and handled
    result = promote.handler(world.deliver(event, "TuningFinished"), FakeContext())
    # THEN the best job the API names is the candidate, decided; the lock is free
    assert result["decision"] == "rejected" and result.get("best_training_job", CHILD) == CHILD
    assert runs.lock_holder(RUNS_TABLE) is None


def _pending_deployment() -> None:
    """The promote function's own record of a blue/green update of JOB's model, in flight."""
    package = aws_client("sagemaker").create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": SETTINGS.image_uri, "ModelDataUrl": JOB_URL}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    runs.put_item(
        RUNS_TABLE,
        runs.deployment_key(JOB),
        {
            "kind": "promotion",
            "endpoint_config_name": JOB,
            "model_data_url": JOB_URL,
            "model_package_arn": package,
            "previous_model_data_url": CHAMPION_URL,
            "training_job": JOB,
            "status": "pending",
            "started_at": 0,
        },
    )
    runs.put_item(RUNS_TABLE, runs.DEPLOYMENT, {"endpoint_config_name": JOB, "kind": "promotion"})


def _serving(config: str, model_url: str) -> None:
    sagemaker = aws_client("sagemaker")
    sagemaker.create_model(**build_model(SETTINGS, model_name=config, model_data_url=model_url, run_id=config))
    sagemaker.create_endpoint_config(
        **build_endpoint_config(SETTINGS, endpoint_config_name=config, model_name=config, run_id=config)
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)


@pytest.mark.parametrize("name", ["sagemaker/endpoint_state_change.json", "mlspace/endpoint_state_change.json"])
def test_in_service_samples_finish_the_deployment(world: World, name: str) -> None:
    from lambdas.promote import handler as promote

    # GIVEN a deployment of the candidate in flight, and the endpoint now InService on its config
    put_model(JOB_URL, model_tar(evaluation_json=evaluation(0.93)))
    _pending_deployment()
    _serving(JOB, JOB_URL)
    # WHEN the published IN_SERVICE event (status in the events' casing) is routed and handled
    result = promote.handler(world.deliver(endpoint(name), "EndpointChanged"), FakeContext())
    # THEN the candidate is the champion
    assert result["deployment"] == "succeeded"
    assert aws_client("ssm").get_parameter(Name=CHAMPION_PARAMETER)["Parameter"]["Value"] == JOB_URL


@pytest.mark.parametrize(
    "name",
    [
        "sagemaker/endpoint_deployment_state_change_canary.json",
        "sagemaker/endpoint_deployment_state_change_capacity.json",
    ],
)
def test_deployment_samples_while_updating_change_nothing(world: World, name: str) -> None:
    from lambdas.promote import handler as promote

    # GIVEN a deployment in flight and the endpoint still updating
    _pending_deployment()
    CallRecorder(
        "sagemaker", "DescribeEndpoint", lambda p: {"EndpointName": ENDPOINT, "EndpointStatus": "Updating"}
    ).install()
    # WHEN a published deployment state change is routed and handled / THEN it is only noted
    result = promote.handler(world.deliver(endpoint(name), "EndpointChanged"), FakeContext())
    assert result["deployment"] == "in_progress"
    assert aws_client("ssm").get_parameter(Name=CHAMPION_PARAMETER)["Parameter"]["Value"] == CHAMPION_URL


# ------------------------------------------------------------------------------------ start-training


@pytest.mark.parametrize("name", ALARM_SAMPLES)
@pytest.mark.parametrize("alarm_name", [DRIFT_ALARM, QUALITY_ALARM])
def test_alarm_samples_start_one_training_job(world: World, name: str, alarm_name: str) -> None:
    from lambdas.start_training import handler as start

    # GIVEN SageMaker accepting the job
    create = CallRecorder("sagemaker", "CreateTrainingJob", lambda p: {"TrainingJobArn": JOB_ARN}).install()
    # WHEN a published alarm state change, as our drift or quality alarm, is routed and handled
    result = start.handler(world.deliver(alarm(name, alarm_name), "RetrainAlarms"), FakeContext())
    # THEN one job starts for that alarm, holding the lock
    assert result["started"] and len(create.calls) == 1
    assert (runs.lock_holder(RUNS_TABLE) or {})["owner"] == result["job_name"]
    record = runs.get_item(RUNS_TABLE, runs.run_key(result["job_name"])) or {}
    assert record["reason"] == f"alarm:{alarm_name}"


def test_scheduled_event_sample_is_a_schedule_trigger(world: World) -> None:
    from lambdas.start_training import handler as start

    # GIVEN no accepted data; the published scheduled event (schedules are rules of their own: no routing)
    forbid("sagemaker", "CreateTrainingJob")
    # WHEN the start function handles it / THEN it is read as a schedule, and skipped for want of new data
    result = start.handler(sample("eventbridge/scheduled_event.json"), FakeContext())
    assert result["skip_reason"] == "no-new-data"


def test_scheduled_event_sample_runs_the_drift_check(world: World) -> None:
    from lambdas.drift_monitor import handler as drift

    # GIVEN no captured requests / WHEN the drift monitor's schedule fires with the published event
    result = drift.handler(sample("eventbridge/scheduled_event.json"), FakeContext())
    # THEN it checks, finds nothing to measure and publishes nothing
    assert result["records"] == 0 and result["published"] is False


# ---------------------------------------------------------------------------------------- responder


@pytest.mark.parametrize("name", ALARM_SAMPLES)
def test_alarm_samples_as_the_unhealthy_alarm_notify_the_operators(world: World, name: str) -> None:
    from lambdas.alarm_responder import handler as responder

    # GIVEN the endpoint serving the champion, rollback off
    _serving("sagecycle-dev-baseline", CHAMPION_URL)
    forbid("sagemaker", "UpdateEndpoint")
    # WHEN a published alarm state change, as the composite health alarm, is routed and handled
    result = responder.handler(world.deliver(alarm(name, UNHEALTHY_ALARM), "EndpointUnhealthy"), FakeContext())
    # THEN the operators get one notice naming the alarm and the endpoint
    assert result["action"] == "notified"
    (notice,) = world.aws.notices()
    assert UNHEALTHY_ALARM in notice["Subject"] and notice["Message"]["endpoint"] == ENDPOINT


# ------------------------------------------------------------------------------------------- ingest


def _sqs_event(*bodies: str) -> dict[str, Any]:
    """The published SQS envelope, one record per body (what the new-data queue hands the ingest function)."""
    template = sample("lambda/sqs_event.json")["Records"][0]
    records = []
    for i, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"] = f"059f36b4-87a3-44ab-83d2-{i:012d}"
        record["body"] = body
        record["md5OfBody"] = hashlib.md5(body.encode()).hexdigest()  # SQS's own checksum
        records.append(record)
    return {"Records": records}


def _keys(prefix: str) -> list[str]:
    contents = aws_client("s3").list_objects_v2(Bucket=DATA_BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in contents)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("s3/eventbridge_object_created.json", "incoming/example-key"),
        ("s3/eventbridge_object_created_unversioned.json", "incoming/IMG_m7fzo3.jpg"),
    ],
)
def test_object_created_samples_are_routed_to_the_queue_and_ingested(world: World, name: str, key: str) -> None:
    from lambdas.ingest import handler as ingest

    # GIVEN a valid file uploaded under incoming/, and the published event naming it (bucket, key, size, ETag,
    # and the version the upload made, where the sample has a version)
    CallRecorder("lambda", "Invoke", lambda params: {"StatusCode": 202}).install()
    put = aws_client("s3").put_object(Bucket=DATA_BUCKET, Key=key, Body=GOOD_CSV)
    ours: dict[str, Any] = {
        "detail__bucket__name": DATA_BUCKET,
        "detail__object__key": key,
        "detail__object__size": len(GOOD_CSV),
        "detail__object__etag": put["ETag"].strip('"'),
        "resources": [f"arn:aws:s3:::{DATA_BUCKET}"],
    }
    if "version-id" in sample(name)["detail"]["object"]:
        ours["detail__object__version-id"] = put["VersionId"]
    event = made_ours(name, **ours)
    # WHEN it is routed (to the new-data queue) and the queue's message is handled
    response = ingest.handler(_sqs_event(json.dumps(world.deliver(event, "NewData"))), FakeContext())
    # THEN the file is accepted: moved to train/, nothing left under incoming/
    assert response == {"batchItemFailures": []}
    assert _keys("train/") == [f"train/{key.removeprefix('incoming/')}"] and _keys("incoming/") == []


def test_s3_notification_samples_are_ingested(world: World) -> None:
    from lambdas.ingest import handler as ingest

    # GIVEN a file uploaded under incoming/ with a space in its name, and S3's published notification naming it
    # (URL-encoded key, as S3 writes it), beside S3's published test message
    CallRecorder("lambda", "Invoke", lambda params: {"StatusCode": 202}).install()
    put = aws_client("s3").put_object(Bucket=DATA_BUCKET, Key="incoming/Happy Face.jpg", Body=GOOD_CSV)
    notification = sample("s3/notification_object_created_put.json")
    record = notification["Records"][0]
    record["s3"]["bucket"].update(name=DATA_BUCKET, arn=f"arn:aws:s3:::{DATA_BUCKET}")
    record["s3"]["object"].update(
        key="incoming/Happy+Face.jpg", size=len(GOOD_CSV), eTag=put["ETag"].strip('"'), versionId=put["VersionId"]
    )
    test_message = sample("s3/notification_test_message.json")
    # WHEN the ingest function receives both (S3 notifications reach no EventBridge rule)
    response = ingest.handler(_sqs_event(json.dumps(notification), json.dumps(test_message)), FakeContext())
    # THEN the file is accepted and the test message is no failure
    assert response == {"batchItemFailures": []}
    assert _keys("train/") == ["train/Happy Face.jpg"]
