"""Promote: every finished job is decided, registered and unlocked; only a better candidate is deployed."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lambdas.promote import decision
from lambdas.promote import handler as promote
from lambdas.shared import deployments, runs
from lambdas.shared.artifacts import PrimaryMetric
from lambdas.shared.jobspec import build_endpoint_config, build_model, build_update_endpoint
from lambdas.shared.runtime import client
from tests.lambdas.fixtures import (
    CHAMPION_PARAMETER,
    CHAMPION_URL,
    ENDPOINT,
    GROUP,
    MODEL_BUCKET,
    REGION,
    ROLLBACK_ALARMS,
    RUNS_TABLE,
    SETTINGS,
    Aws,
    CallCounter,
    CallRecorder,
    FakeContext,
    aws_client,
    emf_metrics,
    error_response,
    evaluation,
    forbid,
    load_event,
    model_tar,
    put_model,
    record_started_run,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

JOB = "sagecycle-dev-261123-0500-3f2a9c1b7e"
JOB_ARN = f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{JOB}"
CANDIDATE_URL = f"s3://{MODEL_BUCKET}/training-output/{JOB}/output/model.tar.gz"
NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)


def auc(value: float) -> PrimaryMetric:
    return PrimaryMetric("auc", "test", value, True)


def rmse(value: float) -> PrimaryMetric:
    return PrimaryMetric("rmse", "test", value, False)


def training_event(name: str = "training_job_completed.json") -> dict[str, Any]:
    return load_event(name)


def started_job(candidate_auc: float | None = 0.93, *, lock: bool = True) -> None:
    """What start_training leaves behind (lock, run record) and what the job wrote (model.tar.gz).

    `lock=False`: the job took the lock when it started, but holds it no more (it expired, or a newer job has it).
    """
    if candidate_auc is not None:
        put_model(CANDIDATE_URL, model_tar(evaluation_json=evaluation(candidate_auc)))
    record_started_run(JOB, lock=lock)


def packages() -> list[dict[str, Any]]:
    sagemaker = aws_client("sagemaker")
    summaries = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    return [sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]


# ---------------------------------------------------------------------------------------------- decide


def test_better_candidate_is_approved() -> None:
    # GIVEN a candidate AUC above the champion's
    # WHEN promotion is decided
    verdict = decision.decide_promotion(auc(0.93), auc(0.90), metric_floor=0.8, tolerance=0.002)
    # THEN it is approved
    assert verdict.approved


def test_slightly_worse_candidate_within_tolerance_is_approved() -> None:
    # GIVEN a candidate AUC below the champion's by less than the tolerance
    # WHEN promotion is decided
    verdict = decision.decide_promotion(auc(0.899), auc(0.900), metric_floor=0.8, tolerance=0.002)
    # THEN it is approved
    assert verdict.approved


def test_worse_candidate_beyond_tolerance_is_rejected() -> None:
    # GIVEN a candidate AUC below the champion's by more than the tolerance
    # WHEN promotion is decided
    verdict = decision.decide_promotion(auc(0.89), auc(0.90), metric_floor=0.8, tolerance=0.002)
    # THEN it is rejected, the reason saying it is worse than the champion
    assert not verdict.approved and "worse than the champion" in verdict.reason


def test_candidate_below_the_floor_is_rejected_even_without_champion() -> None:
    # GIVEN no champion and a candidate AUC below the floor
    # WHEN promotion is decided
    verdict = decision.decide_promotion(auc(0.79), None, metric_floor=0.8, tolerance=0.002)
    # THEN it is rejected, the reason naming the floor
    assert not verdict.approved and "below the floor" in verdict.reason


def test_floor_is_a_ceiling_when_lower_is_better() -> None:
    # GIVEN rmse (lower is better) and a floor of 5.0
    # WHEN candidates of 5.5 and 4.0 are judged without a champion / THEN 5.5 fails it and 4.0 passes
    assert not decision.decide_promotion(rmse(5.5), None, metric_floor=5.0, tolerance=0.1).approved
    assert decision.decide_promotion(rmse(4.0), None, metric_floor=5.0, tolerance=0.1).approved


def test_lower_is_better_tolerance_allows_slightly_higher_error() -> None:
    # GIVEN a champion rmse of 4.0 and a tolerance of 0.1
    # WHEN candidates of 4.05 and 4.2 are judged
    # THEN 4.05 (within the tolerance) is approved and 4.2 is not
    assert decision.decide_promotion(rmse(4.05), rmse(4.0), metric_floor=5.0, tolerance=0.1).approved
    assert not decision.decide_promotion(rmse(4.2), rmse(4.0), metric_floor=5.0, tolerance=0.1).approved


def test_candidate_on_another_metric_than_the_champion_is_rejected() -> None:
    # GIVEN a candidate measured by AUC and a champion by rmse
    # WHEN promotion is decided
    verdict = decision.decide_promotion(auc(0.95), rmse(4.0), metric_floor=0.8, tolerance=0.002)
    # THEN it is rejected as not comparable
    assert not verdict.approved and "not comparable" in verdict.reason


@pytest.mark.parametrize(
    ("endpoint", "outcome"),
    [
        ({"EndpointStatus": "InService", "EndpointConfigName": "new"}, "succeeded"),
        ({"EndpointStatus": "InService", "EndpointConfigName": "old"}, "rolled_back"),
        ({"EndpointStatus": "Updating", "EndpointConfigName": "old"}, "in_progress"),
        ({"EndpointStatus": "RollingBack", "EndpointConfigName": "old"}, "in_progress"),
        ({"EndpointStatus": "UpdateRollbackFailed", "EndpointConfigName": "old"}, "failed"),
        (
            {
                "EndpointStatus": "InService",
                "EndpointConfigName": "old",
                "PendingDeploymentSummary": {"EndpointConfigName": "new"},
            },
            "in_progress",
        ),
        (
            {
                "EndpointStatus": "InService",
                "EndpointConfigName": "old",
                "LastModifiedTime": datetime(2026, 1, 1, tzinfo=UTC),
            },
            "in_progress",
        ),
    ],
)
def test_deployment_outcome_follows_describe_endpoint(endpoint: dict[str, Any], outcome: str) -> None:
    # GIVEN a deployment to the endpoint config "new"
    deployment = {"endpoint_config_name": "new", "started_at": int(NOW.timestamp())}
    # WHEN DescribeEndpoint answers as given
    # THEN its outcome is read from the endpoint's status, config and pending deployment
    assert deployments.deployment_outcome(deployment, endpoint) == outcome


# ------------------------------------------------------------------------------------- training events


def expected_package(decision: str, reason: str) -> dict[str, Any]:
    """The exact CreateModelPackage request for the approved candidate of these tests."""
    return {
        "ModelPackageGroupName": GROUP,
        "ModelPackageDescription": f"{JOB}: {reason}",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": SETTINGS.image_uri,
                    "ModelDataUrl": CANDIDATE_URL,
                    # the serving environment is the one CreateModel gets (jobspec.build_model owns it)
                    "Environment": build_model(SETTINGS, model_name=JOB, model_data_url=CANDIDATE_URL, run_id=JOB)[
                        "PrimaryContainer"
                    ]["Environment"],
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["text/csv", "application/json"],
            "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large"],
            "SupportedTransformInstanceTypes": ["ml.m5.xlarge"],
        },
        "ModelApprovalStatus": decision,
        "CustomerMetadataProperties": {
            "sagecycle:training-job": JOB,
            "sagecycle:decision": decision.lower(),
            "sagecycle:reason": reason,
            "sagecycle:primary-metric": "auc",
            "sagecycle:candidate-value": "0.93",
            "sagecycle:champion-value": "0.9",
            "sagecycle:champion-model": CHAMPION_URL,
            "sagecycle:metric-floor": "0.8",
            "sagecycle:tolerance": "0.002",
            "sagecycle:run-reason": "schedule",
            "sagecycle:trigger": "schedule at 2026-11-23T05:00:00Z",
            "sagecycle:test-auc": "0.93",
            "sagecycle:test-accuracy": "0.85",
            "sagecycle:test-logloss": "0.31",
        },
        "ClientToken": hashlib.sha256(f"package|{JOB}".encode()).hexdigest()[:32],
        "MetadataProperties": {"GeneratedBy": JOB_ARN},
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{MODEL_BUCKET}/training-output/{JOB}/output/evaluation.json",
                }
            }
        },
    }


def test_better_candidate_is_registered_approved_and_deployed_blue_green(
    resources: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a finished job whose candidate beats the champion (0.93 vs 0.90), and SageMaker expecting exactly
    # the package, the model, the endpoint config and a canary update that rolls back on the endpoint alarms
    started_job(0.93)
    reason = "auc 0.93 vs champion 0.9: within tolerance or better"
    package_arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/2"
    endpoint = {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{ENDPOINT}",
        "EndpointConfigName": "sagecycle-dev-baseline",
        "EndpointStatus": "InService",
        "CreationTime": datetime(2026, 11, 1, tzinfo=UTC),
        "LastModifiedTime": datetime(2026, 11, 1, tzinfo=UTC),
    }
    update = build_update_endpoint(
        SETTINGS, endpoint_name=ENDPOINT, endpoint_config_name=JOB, alarm_names=ROLLBACK_ALARMS
    )
    with Stubber(client("sagemaker")) as stub:
        stub.add_response(
            "create_model_package", {"ModelPackageArn": package_arn}, expected_package("Approved", reason)
        )
        stub.add_response(
            "create_model",
            {"ModelArn": "arn:aws:sagemaker:x:1:model/m"},
            build_model(SETTINGS, model_name=JOB, model_data_url=CANDIDATE_URL, run_id=JOB),
        )
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:x:1:endpoint-config/c"},
            build_endpoint_config(SETTINGS, endpoint_config_name=JOB, model_name=JOB, run_id=JOB),
        )
        stub.add_response("describe_endpoint", endpoint, {"EndpointName": ENDPOINT})
        stub.add_response("update_endpoint", {"EndpointArn": endpoint["EndpointArn"]}, update)
        # WHEN the Completed event arrives
        result = promote.handler(training_event(), FakeContext())
        stub.assert_no_pending_responses()
    # THEN the update is blue/green with auto-rollback, recorded as pending, the lock freed, the approval counted
    assert update["DeploymentConfig"]["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": a} for a in ROLLBACK_ALARMS]
    }
    assert update["RetainAllVariantProperties"] is True
    assert result["decision"] == "approved" and result["deployment"] == "pending"
    assert (runs.get_item(RUNS_TABLE, runs.deployment_key(JOB)) or {})["status"] == "pending"
    assert (runs.get_item(RUNS_TABLE, runs.DEPLOYMENT) or {})["endpoint_config_name"] == JOB
    assert runs.lock_holder(RUNS_TABLE) is None
    assert ("CandidatesApproved", 1.0, {"Stage": "dev"}) in emf_metrics(capsys.readouterr().out)


def test_worse_candidate_is_rejected_with_reason_and_the_endpoint_left_untouched(resources: Aws) -> None:
    # GIVEN a candidate worse than the champion (0.85 vs 0.90), and any endpoint change failing the test
    started_job(0.85)
    forbid("sagemaker", "UpdateEndpoint", "CreateModel", "CreateEndpointConfig", "DescribeEndpoint")
    # WHEN the Completed event arrives
    result = promote.handler(training_event(), FakeContext())
    # THEN the package is registered Rejected, the reason on it, the operator told, the lock freed
    (package,) = packages()
    assert result["decision"] == "rejected"
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "worse than the champion" in package["CustomerMetadataProperties"]["sagecycle:reason"]
    assert (runs.get_item(RUNS_TABLE, runs.run_key(JOB)) or {})["decision"] == "rejected"
    assert [n["Message"]["event"] for n in resources.notices()] == ["candidate-rejected"]
    assert runs.lock_holder(RUNS_TABLE) is None


def test_candidate_without_evaluation_is_a_recorded_failure(resources: Aws) -> None:
    # GIVEN a model.tar.gz without evaluation.json
    started_job(None)
    put_model(CANDIDATE_URL, model_tar(evaluation_json=None))
    forbid("sagemaker", "UpdateEndpoint", "CreateModelPackage")
    # WHEN the Completed event arrives
    result = promote.handler(training_event(), FakeContext())
    # THEN nothing is registered; the run is recorded Failed (not left InProgress), the operator told, the lock freed
    assert result["status"] == "Failed" and result["counted"]
    assert (runs.get_item(RUNS_TABLE, runs.run_key(JOB)) or {})["status"] == "Failed"
    assert [n["Message"]["event"] for n in resources.notices()] == ["candidate-failed"]
    assert runs.lock_holder(RUNS_TABLE) is None


def test_duplicate_completed_event_registers_nothing_twice(resources: Aws) -> None:
    # GIVEN a rejected candidate already decided
    started_job(0.85)
    promote.handler(training_event(), FakeContext())
    creates = CallCounter("sagemaker", "CreateModelPackage").install()
    # WHEN SageMaker sends the Completed event again / THEN nothing new is registered
    result = promote.handler(training_event(), FakeContext())
    assert result["duplicate"] and creates.calls == [] and len(packages()) == 1


@pytest.mark.parametrize("sample", ["training_job_failed.json", "training_job_stopped.json"])
def test_failed_or_stopped_job_notifies_with_the_reason_and_releases_the_lock(
    resources: Aws, capsys: pytest.CaptureFixture[str], sample: str
) -> None:
    # GIVEN a running job holding the lock
    started_job(None)
    event = training_event(sample)
    # WHEN it ends Failed or Stopped
    promote.handler(event, FakeContext())
    # THEN the operator gets the FailureReason, the lock is free and the failure counted
    (notice,) = resources.notices()
    assert notice["Message"]["failure_reason"] == event["detail"]["FailureReason"]
    assert runs.lock_holder(RUNS_TABLE) is None
    assert ("TrainingJobsFailed", 1.0, {"Stage": "dev"}) in emf_metrics(capsys.readouterr().out)


def test_exception_inside_promote_still_releases_the_lock(resources: Aws) -> None:
    # GIVEN a Completed job, and the registry refusing the package
    started_job(0.93)
    CallRecorder("sagemaker", "CreateModelPackage", lambda p: error_response("ValidationException", "no")).install()
    # WHEN promote handles the event
    with pytest.raises(ClientError) as raised:
        promote.handler(training_event(), FakeContext())
    # THEN the error surfaces (the event is retried), the lock was released on the way out, the run says why
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert runs.lock_holder(RUNS_TABLE) is None
    assert (runs.get_item(RUNS_TABLE, runs.run_key(JOB)) or {})["last_error"].startswith("ClientError")


def test_a_lock_held_by_another_job_is_not_released(resources: Aws) -> None:
    # GIVEN the lock belongs to a newer job
    started_job(None, lock=False)
    runs.acquire_lock(RUNS_TABLE, owner="sagecycle-dev-newer", trigger_id="x", now=datetime.now(UTC), ttl_seconds=60)
    # WHEN an old job's Failed event arrives / THEN the newer job keeps its lock
    promote.handler(training_event("training_job_failed.json"), FakeContext())
    assert (runs.lock_holder(RUNS_TABLE) or {})["owner"] == "sagecycle-dev-newer"


def test_busy_endpoint_queues_the_deployment(resources: Aws) -> None:
    # GIVEN a better candidate while the endpoint is still updating
    started_job(0.93)
    CallRecorder(
        "sagemaker", "DescribeEndpoint", lambda p: {"EndpointName": ENDPOINT, "EndpointStatus": "Updating"}
    ).install()
    forbid("sagemaker", "UpdateEndpoint")
    # WHEN the Completed event arrives / THEN the deployment waits, queued
    result = promote.handler(training_event(), FakeContext())
    assert result["deployment"] == "queued"
    assert (runs.get_item(RUNS_TABLE, runs.deployment_key(JOB)) or {})["status"] == "queued"


# ------------------------------------------------------------------------------------- endpoint events


def serving(config: str, model_url: str) -> None:
    """An InService endpoint on `config` (moto)."""
    sagemaker = aws_client("sagemaker")
    sagemaker.create_model(**build_model(SETTINGS, model_name=config, model_data_url=model_url, run_id=config))
    sagemaker.create_endpoint_config(
        **build_endpoint_config(SETTINGS, endpoint_config_name=config, model_name=config, run_id=config)
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)


def pending_deployment(status: str = "pending", started_at: int = 0) -> str:
    arn = aws_client("sagemaker").create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": SETTINGS.image_uri, "ModelDataUrl": CANDIDATE_URL}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    record = {
        "kind": "promotion",
        "endpoint_config_name": JOB,
        "model_data_url": CANDIDATE_URL,
        "model_package_arn": arn,
        "previous_model_data_url": CHAMPION_URL,
        "training_job": JOB,
        "status": status,
        "started_at": started_at,
    }
    runs.put_item(RUNS_TABLE, runs.deployment_key(JOB), record)
    runs.put_item(RUNS_TABLE, runs.DEPLOYMENT, {"endpoint_config_name": JOB, "kind": "promotion"})
    return str(arn)


def parameter(name: str) -> str:
    return str(aws_client("ssm").get_parameter(Name=name)["Parameter"]["Value"])


def test_in_service_on_the_new_config_makes_the_candidate_champion(resources: Aws) -> None:
    # GIVEN a pending deployment of the candidate, and the endpoint now InService on its config
    arn = pending_deployment()
    serving(JOB, CANDIDATE_URL)
    # WHEN SageMaker reports the endpoint state change
    result = promote.handler(load_event("endpoint_in_service.json"), FakeContext())
    # THEN the champion parameter points at the candidate, the old champion is kept as previous
    assert result["deployment"] == "succeeded"
    assert parameter(CHAMPION_PARAMETER) == CANDIDATE_URL
    assert parameter(f"{CHAMPION_PARAMETER}/previous") == CHAMPION_URL
    champion = runs.get_item(RUNS_TABLE, runs.CHAMPION) or {}
    assert champion["previous_model_data_url"] == CHAMPION_URL and champion["package_arn"] == arn
    # AND the package is marked champion, and no deployment is in flight any more
    metadata = aws_client("sagemaker").describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    assert metadata["sagecycle:champion"] == "true"
    assert runs.get_item(RUNS_TABLE, runs.DEPLOYMENT) is None


def test_rolled_back_deployment_rejects_the_package_and_notifies(
    resources: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a pending deployment, but the endpoint is InService on the old config again (guardrails rolled back)
    arn = pending_deployment()
    serving("sagecycle-dev-baseline", CHAMPION_URL)
    event = load_event("endpoint_in_service.json")
    event["detail"]["EndpointConfigName"] = "sagecycle-dev-baseline"
    # WHEN the state change arrives
    result = promote.handler(event, FakeContext())
    # THEN the package is Rejected with the reason, the operator told, the champion unchanged
    package = aws_client("sagemaker").describe_model_package(ModelPackageName=arn)
    assert result["deployment"] == "rolled_back"
    assert package["ModelApprovalStatus"] == "Rejected" and "rolled back" in package["ApprovalDescription"]
    assert [n["Message"]["event"] for n in resources.notices()] == ["deployment-rolled-back"]
    assert parameter(CHAMPION_PARAMETER) == CHAMPION_URL
    assert ("DeploymentsRolledBack", 1.0, {"Stage": "dev"}) in emf_metrics(capsys.readouterr().out)


def test_deployment_state_change_while_updating_changes_nothing(resources: Aws) -> None:
    # GIVEN a pending deployment and the endpoint still updating
    pending_deployment()
    CallRecorder(
        "sagemaker", "DescribeEndpoint", lambda p: {"EndpointName": ENDPOINT, "EndpointStatus": "Updating"}
    ).install()
    # WHEN the deployment state change (baking) arrives / THEN it is only noted
    result = promote.handler(load_event("endpoint_deployment_updating.json"), FakeContext())
    assert result["deployment"] == "in_progress"
    assert parameter(CHAMPION_PARAMETER) == CHAMPION_URL


def test_queued_deployment_starts_when_the_endpoint_is_back_in_service(resources: Aws) -> None:
    # GIVEN a queued deployment and an endpoint InService (on the old config)
    pending_deployment(status="queued")
    serving("sagecycle-dev-baseline", CHAMPION_URL)
    update = CallRecorder("sagemaker", "UpdateEndpoint", lambda p: {"EndpointArn": "arn"}).install()
    event = load_event("endpoint_in_service.json")
    event["detail"]["EndpointConfigName"] = "sagecycle-dev-baseline"
    # WHEN the endpoint state change arrives
    result = promote.handler(event, FakeContext())
    # THEN the queued blue/green update starts, exactly as built
    assert result["deployment"] == "started"
    expected = build_update_endpoint(
        SETTINGS, endpoint_name=ENDPOINT, endpoint_config_name=JOB, alarm_names=ROLLBACK_ALARMS
    )
    assert update.calls == [json.loads(json.dumps(expected))]


def test_event_for_another_endpoint_is_ignored(resources: Aws) -> None:
    # GIVEN an endpoint event for an endpoint that is not ours
    event = load_event("endpoint_in_service.json")
    event["detail"]["EndpointName"] = "someone-else"
    # WHEN promote receives it
    # THEN it is ignored
    assert "ignored" in promote.handler(event, FakeContext())


def test_finished_rollback_restores_the_previous_champion_and_rejects_the_bad_package(resources: Aws) -> None:
    # GIVEN the candidate became champion, misbehaved, and the alarm responder rolled back to the one before
    bad = pending_deployment(status="succeeded")
    aws_client("ssm").put_parameter(Name=CHAMPION_PARAMETER, Value=CANDIDATE_URL, Type="String", Overwrite=True)
    aws_client("ssm").put_parameter(Name=f"{CHAMPION_PARAMETER}/previous", Value=CHAMPION_URL, Type="String")
    runs.put_item(
        RUNS_TABLE,
        runs.CHAMPION,
        {"model_data_url": CANDIDATE_URL, "package_arn": bad, "previous_model_data_url": CHAMPION_URL},
    )
    rollback = "sagecycle-dev-rb-0a1b2c3d4e"
    runs.put_item(
        RUNS_TABLE,
        runs.deployment_key(rollback),
        {
            "kind": "rollback",
            "endpoint_config_name": rollback,
            "model_data_url": CHAMPION_URL,
            "rolled_back_package_arn": bad,
            "reason": "rolled back after alarm sagecycle-dev-endpoint-5xx-errors",
            "status": "pending",
            "started_at": 0,
        },
    )
    runs.put_item(RUNS_TABLE, runs.DEPLOYMENT, {"endpoint_config_name": rollback, "kind": "rollback"})
    serving(rollback, CHAMPION_URL)
    event = load_event("endpoint_in_service.json")
    event["detail"]["EndpointConfigName"] = rollback
    # WHEN the endpoint is InService on the rollback config
    result = promote.handler(event, FakeContext())
    # THEN the old champion is champion again, `previous` is unchanged, and the bad package is Rejected
    assert result["deployment"] == "succeeded"
    assert parameter(CHAMPION_PARAMETER) == CHAMPION_URL
    assert parameter(f"{CHAMPION_PARAMETER}/previous") == CHAMPION_URL
    package = aws_client("sagemaker").describe_model_package(ModelPackageName=bad)
    assert package["ModelApprovalStatus"] == "Rejected" and "5xx" in package["ApprovalDescription"]
