"""Local SageMaker hosting: endpoints served by real processes, InvokeEndpoint through boto3, blue/green.

Each serving process takes about two seconds to start, so every test starts as few as it can.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.shared.events import parse_endpoint_event
from sagecycle.rehearsal.hosting import ACCOUNT, HEALTH_CHECK_FAILURE
from sagecycle.rehearsal.moto_sagemaker import register_endpoint_manager, unregister_endpoint_manager

pytest.register_assert_rewrite("tests.rehearsal.conftest_hosting")  # before the import below: it is a plugin too

from tests.rehearsal.conftest_hosting import DATA_BUCKET, REGION, ROW, HostingStage  # noqa: E402

pytest_plugins = ["tests.rehearsal.conftest_hosting"]
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "events" / "aws" / "sagemaker"
SAMPLES = {
    "SageMaker Endpoint State Change": json.loads((SAMPLE_DIR / "endpoint_state_change.json").read_text()),
    "SageMaker Endpoint Deployment State Change": json.loads(
        (SAMPLE_DIR / "endpoint_deployment_state_change_canary.json").read_text()
    ),
}

CANARY = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "WaitIntervalInSeconds": 600,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20},
        },
        "TerminationWaitInSeconds": 300,
        "MaximumExecutionTimeoutInSeconds": 1800,
    },
    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "ep-5xx"}]},
}


def _alarm(stage: HostingStage, name: str = "ep-5xx") -> None:
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


def _configs_served(stage: HostingStage, since: int = 0) -> Counter[str]:
    return Counter(i["config"] for i in stage.hosting.invocations[since:])


def _metric(stage: HostingStage, name: str, statistic: str) -> list[dict[str, Any]]:
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


def test_create_endpoint_serves_captures_and_meters_then_stops(hosting_stage: HostingStage) -> None:
    stage = hosting_stage
    # GIVEN a model and an endpoint config with data capture, as promote creates them
    stage.config("cfg-blue", {"AllTraffic": (stage.model("m-blue", "blue"), 1.0)})
    # WHEN the endpoint is created through boto3
    stage.sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-blue")
    # THEN it is Creating until the hosting has started its variant, then InService
    assert stage.status("ep") == "Creating"
    stage.hosting.reconcile()
    assert stage.status("ep") == "InService"
    assert [p.variant for p in stage.hosting.processes()] == ["AllTraffic"]
    assert stage.detail_types() == [
        ("SageMaker Endpoint State Change", "CREATING"),
        ("SageMaker Endpoint State Change", "IN_SERVICE"),
    ]
    # WHEN sagemaker-runtime invokes it
    answers = stage.invoke("ep", 4)
    # THEN the variant's process answers, as the runtime API does
    assert answers[0]["InvokedProductionVariant"] == "AllTraffic"
    assert answers[0]["ContentType"] == "text/csv"
    assert 0.0 <= float(answers[0]["Body"].read()) <= 1.0
    stage.hosting.flush()
    # AND capture lands in S3 in SageMaker's layout, at the simulated hour, one JSON Lines record per request
    objects = stage.aws.client("s3").list_objects_v2(Bucket=DATA_BUCKET)["Contents"]
    assert len(objects) == 1
    key = objects[0]["Key"]
    assert key.startswith("capture/ep/AllTraffic/2026/11/23/06/") and key.endswith(".jsonl")
    lines = stage.aws.client("s3").get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 4
    assert records[0]["captureData"]["endpointInput"]["data"] == ROW.decode()
    assert records[0]["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert records[0]["eventMetadata"]["inferenceTime"] == "2026-11-23T06:00:00Z"
    # AND the variant's metrics are in the local CloudWatch at the simulated time, latency in microseconds
    assert _metric(stage, "Invocations", "Sum")[0]["Sum"] == 4
    assert _metric(stage, "Invocation5XXErrors", "Sum")[0]["Sum"] == 0
    latency = _metric(stage, "ModelLatency", "Average")[0]
    recorded_ms = [i["model_latency_ms"] for i in stage.hosting.invocations]
    assert latency["Average"] == pytest.approx(1000 * sum(recorded_ms) / 4, rel=1e-3)
    assert latency["Unit"] == "Microseconds"
    # WHEN the hosting closes
    processes = stage.hosting.processes()
    stage.hosting.close()
    # THEN no serving process is left
    assert all(p.process.poll() is not None for p in processes)
    assert stage.hosting.processes() == []


def test_a_model_without_code_fails_to_come_up(hosting_stage: HostingStage) -> None:
    stage = hosting_stage
    # GIVEN an artifact without code/ (no inference.py for the container to import)
    stage.config("cfg-bad", {"AllTraffic": (stage.model("m-bad", "no-code"), 1.0)})
    # WHEN an endpoint is created on it
    stage.sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-bad")
    stage.hosting.reconcile()
    # THEN the endpoint is Failed with SageMaker's reason, and says so in its event
    described = stage.sagemaker.describe_endpoint(EndpointName="ep")
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"] == HEALTH_CHECK_FAILURE.format(variant="AllTraffic")
    assert stage.detail_types()[-1] == ("SageMaker Endpoint State Change", "FAILED")
    assert stage.events[-1]["detail"]["FailureReason"] == described["FailureReason"]
    assert "endpoint.failed" in stage.kinds()
    assert stage.hosting.processes() == []
    # AND the runtime does not know it
    with pytest.raises(ClientError) as error:
        stage.invoke("ep", 1)
    assert error.value.response["Error"]["Code"] == "ValidationError"


def test_an_update_to_a_model_that_cannot_serve_rolls_back(hosting_stage: HostingStage) -> None:
    stage = hosting_stage
    # GIVEN an endpoint InService on a good model
    stage.endpoint_on("ep")
    # WHEN it is updated to a config whose model has no code/
    stage.config("cfg-bad", {"AllTraffic": (stage.model("m-bad", "no-code"), 1.0)})
    stage.sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="cfg-bad")
    assert stage.status("ep") == "Updating"
    stage.hosting.reconcile()
    # THEN the endpoint stays InService on the old config, with the reason
    described = stage.sagemaker.describe_endpoint(EndpointName="ep")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "cfg-blue")
    assert described["FailureReason"] == HEALTH_CHECK_FAILURE.format(variant="AllTraffic")
    assert "PendingDeploymentSummary" not in described
    assert stage.hosting.deployments[-1]["outcome"] == "rolled_back"
    # AND the old fleet still answers
    stage.invoke("ep", 2)
    assert _configs_served(stage) == Counter({"cfg-blue": 2})


def test_canary_gets_its_share_and_an_alarm_rolls_it_back(hosting_stage: HostingStage) -> None:
    stage = hosting_stage
    _alarm(stage)
    # GIVEN an endpoint InService on the blue model
    stage.endpoint_on("ep")
    # WHEN it is updated to a faulty candidate with a 20% canary guarded by an alarm
    stage.config("cfg-green", {"AllTraffic": (stage.model("m-green", "faulty"), 1.0)})
    stage.sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="cfg-green", DeploymentConfig=CANARY)
    stage.hosting.reconcile()
    # THEN DescribeEndpoint says Updating, with the pending config baking on the canary
    described = stage.sagemaker.describe_endpoint(EndpointName="ep")
    assert described["EndpointStatus"] == "Updating"
    pending = described["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == "cfg-green"
    assert pending["ProductionVariants"][0]["VariantStatus"][0]["Status"] == "Baking"
    assert stage.events[-1]["detail-type"] == "SageMaker Endpoint Deployment State Change"
    # AND the canary fleet gets about its share of the traffic, every request of it a ModelError
    answers = stage.invoke_counting_errors("ep", 200)
    served = _configs_served(stage)
    assert 20 <= served["cfg-green"] <= 60 and served["cfg-blue"] == 200 - served["cfg-green"]
    assert answers == {"OK": served["cfg-blue"], "ModelError": served["cfg-green"]}
    # AND the variant's 5xx count in CloudWatch is the canary's errors (what the rollback alarm watches)
    stage.hosting.flush()
    assert _metric(stage, "Invocation5XXErrors", "Sum")[0]["Sum"] == served["cfg-green"]
    assert _metric(stage, "Invocations", "Sum")[0]["Sum"] == 200
    # WHEN the alarm goes to ALARM during the wait
    stage.aws.client("cloudwatch").set_alarm_state(AlarmName="ep-5xx", StateValue="ALARM", StateReason="test")
    stage.clock.advance(120)
    stage.hosting.reconcile()
    # THEN the deployment rolls back: the old config stays, DescribeEndpoint says why, the green fleet stops
    described = stage.sagemaker.describe_endpoint(EndpointName="ep")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "cfg-blue")
    assert "ep-5xx" in described["FailureReason"]
    assert [p.config for p in stage.hosting.processes()] == ["cfg-blue"]
    assert stage.detail_types()[-1] == ("SageMaker Endpoint State Change", "IN_SERVICE")
    assert "endpoint.rolled_back" in stage.kinds()
    # AND all traffic is the blue fleet's again
    before = len(stage.hosting.invocations)
    stage.invoke("ep", 10)
    assert _configs_served(stage, before) == Counter({"cfg-blue": 10})


def test_canary_without_alarm_shifts_the_rest_and_stops_the_old_fleet_after_the_wait(
    hosting_stage: HostingStage,
) -> None:
    stage = hosting_stage
    _alarm(stage)
    # GIVEN an endpoint InService on blue, updated with a canary to green
    stage.endpoint_on("ep")
    stage.config("cfg-green", {"AllTraffic": (stage.model("m-green", "green"), 1.0)})
    stage.sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="cfg-green", DeploymentConfig=CANARY)
    stage.hosting.reconcile()
    # WHEN the canary's wait passes with the alarm OK
    stage.clock.advance(600)
    stage.hosting.reconcile()
    # THEN all traffic goes to green while blue still runs, through the termination wait
    assert stage.status("ep") == "Updating"
    assert sorted(p.config for p in stage.hosting.processes()) == ["cfg-blue", "cfg-green"]
    before = len(stage.hosting.invocations)
    stage.invoke("ep", 10)
    assert _configs_served(stage, before) == Counter({"cfg-green": 10})
    # WHEN the termination wait passes
    stage.clock.advance(300)
    stage.hosting.reconcile()
    # THEN the endpoint is InService on the new config and the old fleet is stopped
    described = stage.sagemaker.describe_endpoint(EndpointName="ep")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "cfg-green")
    assert "FailureReason" not in described
    assert [p.config for p in stage.hosting.processes()] == ["cfg-green"]
    assert stage.hosting.deployments[-1]["outcome"] == "succeeded"
    statuses = [
        e["detail"]["PendingDeploymentSummary"]["ProductionVariants"][0]["VariantStatus"][0]["Status"]
        for e in stage.events
        if e["detail-type"] == "SageMaker Endpoint Deployment State Change"
    ]
    assert statuses == ["Creating", "ActivatingTraffic", "Baking", "ActivatingTraffic", "Baking", "Deleting"]
    # AND every event has the published sample's fields and reads as the functions read it
    for event in stage.events:
        sample = SAMPLES[event["detail-type"]]
        assert set(sample) <= set(event)
        assert set(sample["detail"]) - {"PendingDeploymentSummary"} <= set(event["detail"])
        change = parse_endpoint_event(event)
        assert change.endpoint_name == "ep" and change.status in {"Creating", "Updating", "InService"}


def test_variants_share_the_traffic_by_weight_and_target_variant_picks_one(hosting_stage: HostingStage) -> None:
    stage = hosting_stage
    # GIVEN one endpoint config with two variants weighted 3:1
    blue, green = stage.model("m-blue", "blue"), stage.model("m-green", "green")
    stage.config("cfg-ab", {"A": (blue, 3.0), "B": (green, 1.0)}, capture=False)
    stage.sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-ab")
    stage.hosting.reconcile()
    # WHEN 200 requests arrive
    answers = stage.invoke("ep", 200)
    # THEN each variant gets about its weight's share, and says it answered
    served = Counter(a["InvokedProductionVariant"] for a in answers)
    assert 120 <= served["A"] <= 180 and served["A"] + served["B"] == 200
    # AND a request naming its variant reaches that variant only
    assert {a["InvokedProductionVariant"] for a in stage.invoke("ep", 5, TargetVariant="B")} == {"B"}


def test_an_endpoint_made_before_the_hosting_is_adopted_and_served(hosting_stage: HostingStage) -> None:
    stage = hosting_stage
    # GIVEN an endpoint created while no hosting was registered (plain moto: InService at once, nothing serving)
    stage.config("cfg-blue", {"AllTraffic": (stage.model("m-blue", "blue"), 1.0)})
    unregister_endpoint_manager(ACCOUNT, REGION, stage.hosting)
    try:
        stage.sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-blue")
    finally:
        register_endpoint_manager(ACCOUNT, REGION, stage.hosting)
    assert stage.status("ep") == "InService" and stage.hosting.processes() == []
    # WHEN the hosting reconciles
    stage.hosting.reconcile()
    # THEN its variant runs and answers
    assert [p.config for p in stage.hosting.processes()] == ["cfg-blue"]
    assert stage.invoke("ep", 1)[0]["InvokedProductionVariant"] == "AllTraffic"
