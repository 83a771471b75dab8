"""Local SageMaker blue/green deployments: UpdateEndpoint through boto3, canary traffic, baking, alarm rollback.

Each serving process takes about two seconds to start, so every test starts as few as it can.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from lambdas.shared.events import parse_endpoint_event
from sagecycle.rehearsal.blue_green import Fleet, retain_properties
from sagecycle.rehearsal.hosting import HEALTH_CHECK_FAILURE
from sagecycle.rehearsal.moto_sagemaker import EndpointRequest
from sagecycle.rehearsal.runtime import CaptureSettings

pytest.register_assert_rewrite("tests.rehearsal.conftest_hosting")  # before the import below: it is a plugin too

from tests.rehearsal.conftest_hosting import HostingStage, configs_served, metric, put_alarm  # noqa: E402

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
    assert configs_served(stage) == Counter({"cfg-blue": 2})


def canary_to(stage: HostingStage, behaviour: str) -> None:
    """Endpoint "ep" InService on blue (its alarm "ep-5xx" OK), updated with CANARY to cfg-green serving `behaviour`."""
    put_alarm(stage)
    stage.endpoint_on("ep")
    stage.config("cfg-green", {"AllTraffic": (stage.model("m-green", behaviour), 1.0)})
    stage.sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="cfg-green", DeploymentConfig=CANARY)
    stage.hosting.reconcile()


def test_canary_gets_its_share_and_an_alarm_rolls_it_back(hosting_stage: HostingStage) -> None:
    stage = hosting_stage
    # GIVEN an endpoint InService on the blue model
    # WHEN it is updated to a faulty candidate with a 20% canary guarded by an alarm
    canary_to(stage, "faulty")
    # THEN DescribeEndpoint says Updating, with the pending config baking on the canary
    described = stage.sagemaker.describe_endpoint(EndpointName="ep")
    assert described["EndpointStatus"] == "Updating"
    pending = described["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == "cfg-green"
    assert pending["ProductionVariants"][0]["VariantStatus"][0]["Status"] == "Baking"
    assert stage.events[-1]["detail-type"] == "SageMaker Endpoint Deployment State Change"
    # AND the canary fleet gets about its share of the traffic, every request of it a ModelError
    answers = stage.invoke_counting_errors("ep", 200)
    served = configs_served(stage)
    assert 20 <= served["cfg-green"] <= 60 and served["cfg-blue"] == 200 - served["cfg-green"]
    assert answers == {"OK": served["cfg-blue"], "ModelError": served["cfg-green"]}
    # AND the variant's 5xx count in CloudWatch is the canary's errors (what the rollback alarm watches)
    stage.hosting.flush()
    assert metric(stage, "Invocation5XXErrors", "Sum")[0]["Sum"] == served["cfg-green"]
    assert metric(stage, "Invocations", "Sum")[0]["Sum"] == 200
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
    assert configs_served(stage, before) == Counter({"cfg-blue": 10})


def test_canary_without_alarm_shifts_the_rest_and_stops_the_old_fleet_after_the_wait(
    hosting_stage: HostingStage,
) -> None:
    stage = hosting_stage
    # GIVEN an endpoint InService on blue, updated with a canary to green
    canary_to(stage, "green")
    # WHEN the canary's wait passes with the alarm OK
    stage.clock.advance(600)
    stage.hosting.reconcile()
    # THEN all traffic goes to green while blue still runs, through the termination wait
    assert stage.status("ep") == "Updating"
    assert sorted(p.config for p in stage.hosting.processes()) == ["cfg-blue", "cfg-green"]
    before = len(stage.hosting.invocations)
    stage.invoke("ep", 10)
    assert configs_served(stage, before) == Counter({"cfg-green": 10})
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


def _fleet(config: str, weights: dict[str, float], counts: dict[str, int], capture: CaptureSettings | None) -> Fleet:
    return Fleet(config=config, processes={}, weights=weights, instance_counts=counts, capture=capture)


@pytest.mark.parametrize("excluded", [(), ("DataCaptureConfig",)])
def test_retained_variant_properties_are_the_blue_fleets(excluded: tuple[str, ...]) -> None:
    # GIVEN a blue fleet with weight, count and capture of its own, and a green fleet with one variant of the same name
    blue_capture = CaptureSettings("s3://b/blue", 50.0, frozenset({"Input"}), None)
    green_capture = CaptureSettings("s3://b/green", 100.0, frozenset({"Input"}), None)
    blue = _fleet("blue", {"AllTraffic": 0.3}, {"AllTraffic": 3}, blue_capture)
    green = _fleet("green", {"AllTraffic": 1.0, "New": 1.0}, {"AllTraffic": 1, "New": 1}, green_capture)
    request = EndpointRequest(
        kind="update",
        account="123456789012",
        region="us-east-1",
        endpoint_name="ep",
        endpoint_config_name="green",
        retain_all_variant_properties=True,
        exclude_retained_variant_properties=excluded,
    )

    # WHEN the update retains all variant properties
    kept = retain_properties(green, blue, request)

    # THEN the variant named as a blue one keeps the blue weight and count, the new one its own, and the capture is
    # the blue one unless DataCaptureConfig is excluded
    assert kept.weights == {"AllTraffic": 0.3, "New": 1.0}
    assert kept.instance_counts == {"AllTraffic": 3, "New": 1}
    assert kept.capture == (green_capture if excluded else blue_capture)


def test_without_retain_all_the_green_fleet_keeps_its_own_properties() -> None:
    # GIVEN a blue fleet and a green fleet with different properties, and an update that does not retain them
    blue = _fleet("blue", {"AllTraffic": 0.3}, {"AllTraffic": 3}, None)
    green = _fleet("green", {"AllTraffic": 1.0}, {"AllTraffic": 1}, None)
    request = EndpointRequest(
        kind="update", account="123456789012", region="us-east-1", endpoint_name="ep", endpoint_config_name="green"
    )

    # WHEN the retention is applied
    kept = retain_properties(green, blue, request)

    # THEN the green fleet is as its config made it
    assert (kept.weights, kept.instance_counts) == ({"AllTraffic": 1.0}, {"AllTraffic": 1})
