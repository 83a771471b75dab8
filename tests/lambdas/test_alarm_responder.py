"""Alarm responder: a notice with context; a rollback only when allowed, once, and never mid-deployment."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from lambdas.alarm_responder import handler as responder
from lambdas.alarm_responder import logic
from lambdas.shared import runs
from lambdas.shared.jobspec import build_endpoint_config, build_model, build_update_endpoint
from lambdas.shared.runtime import client
from tests.lambdas.fixtures import (
    CHAMPION_PARAMETER,
    CHAMPION_URL,
    ENDPOINT,
    MODEL_BUCKET,
    POLICY,
    RUNS_TABLE,
    SETTINGS,
    Aws,
    CallRecorder,
    FakeContext,
    aws_client,
    emf_metrics,
    forbid,
    load_event,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

PREVIOUS_URL = f"s3://{MODEL_BUCKET}/training-output/sagecycle-dev-261101-0300-0a1b2c3d4e/output/model.tar.gz"
SERVING_CONFIG = "sagecycle-dev-261123-0500-3f2a9c1b7e"


def serving(config: str = SERVING_CONFIG, model_url: str = CHAMPION_URL) -> None:
    sagemaker = aws_client("sagemaker")
    sagemaker.create_model(**build_model(SETTINGS, model_name=config, model_data_url=model_url, run_id=config))
    sagemaker.create_endpoint_config(
        **build_endpoint_config(SETTINGS, endpoint_config_name=config, model_name=config, run_id=config)
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)


def previous_champion(url: str = PREVIOUS_URL) -> None:
    aws_client("ssm").put_parameter(Name=f"{CHAMPION_PARAMETER}/previous", Value=url, Type="String")


def allow_rollback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAIN_POLICY", json.dumps({**POLICY, "rollback_on_alarm": True}))


def alarm_5xx() -> dict[str, Any]:
    return load_event("alarm_endpoint_5xx.json")


def record_updates() -> CallRecorder:
    return CallRecorder("sagemaker", "UpdateEndpoint", lambda p: {"EndpointArn": "arn"}).install()


def test_alarm_outside_a_deployment_sends_a_notice_with_context(resources: Aws) -> None:
    # GIVEN the endpoint InService on the champion, a deployment record for it, no rollback allowed
    serving()
    runs.put_item(
        RUNS_TABLE,
        runs.deployment_key(SERVING_CONFIG),
        {"kind": "promotion", "status": "succeeded", "model_data_url": CHAMPION_URL, "training_job": SERVING_CONFIG},
    )
    forbid("sagemaker", "UpdateEndpoint")
    # WHEN the 5xx alarm fires
    result = responder.handler(alarm_5xx(), FakeContext())
    # THEN one notice names the endpoint, variant, metric, reason and the deployment serving
    (notice,) = resources.notices()
    message = notice["Message"]
    assert result["action"] == "notified" and "sagecycle-dev-endpoint-5xx-errors" in notice["Subject"]
    assert message["endpoint"] == ENDPOINT and message["variant"] == "AllTraffic"
    assert message["metrics"] == ["AWS/SageMaker/Invocation5XXErrors"]
    assert message["alarm_reason"].startswith("Threshold Crossed")
    assert message["endpoint_config"] == SERVING_CONFIG
    assert message["deployment_serving"]["training_job"] == SERVING_CONFIG
    assert message["rollback"] == {"action": "none", "reason": "rollback_on_alarm is off"}


def test_composite_alarm_notice_names_the_child_alarms_that_fired(resources: Aws) -> None:
    # GIVEN the composite "unhealthy" alarm the stack routes here
    serving()
    # WHEN it fires / THEN the notice lists the child alarm behind it
    responder.handler(load_event("alarm_endpoint_unhealthy.json"), FakeContext())
    (notice,) = resources.notices()
    assert notice["Message"]["triggering_alarms"] == ["sagecycle-dev-endpoint-5xx-errors"]


def test_allowed_rollback_redeploys_the_previous_champion_all_at_once(
    resources: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN rollback allowed, a previous champion, the endpoint serving the current one
    allow_rollback(monkeypatch)
    previous_champion()
    serving()
    updates = record_updates()
    # WHEN the 5xx alarm fires
    result = responder.handler(alarm_5xx(), FakeContext())
    # THEN the endpoint is updated to a config of the previous champion, no alarm-driven auto-rollback
    name = logic.rollback_config_name(SETTINGS, PREVIOUS_URL)
    expected = build_update_endpoint(
        logic.emergency_settings(SETTINGS), endpoint_name=ENDPOINT, endpoint_config_name=name, alarm_names=[]
    )
    assert updates.calls == [json.loads(json.dumps(expected))]
    assert expected["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert "AutoRollbackConfiguration" not in expected["DeploymentConfig"]
    model = aws_client("sagemaker").describe_model(ModelName=name)
    assert model["PrimaryContainer"]["ModelDataUrl"] == PREVIOUS_URL
    # AND the rollback is on record for the promote function to finish, and counted
    assert result["rollback"]["action"] == "rollback"
    assert (runs.get_item(RUNS_TABLE, runs.DEPLOYMENT) or {})["endpoint_config_name"] == name
    assert ("DeploymentsRolledBack", 1.0, {"Stage": "dev"}) in emf_metrics(capsys.readouterr().out)


def test_duplicate_alarm_delivery_rolls_back_and_notifies_once(resources: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN rollback allowed and the same alarm state change delivered twice
    allow_rollback(monkeypatch)
    previous_champion()
    serving()
    updates = record_updates()
    # WHEN both deliveries arrive
    responder.handler(alarm_5xx(), FakeContext())
    second = responder.handler(alarm_5xx(), FakeContext())
    # THEN one UpdateEndpoint, one notice
    assert second["action"] == "duplicate"
    assert len(updates.calls) == 1 and len(resources.notices()) == 1


def test_rollback_not_allowed_changes_nothing(resources: Aws) -> None:
    # GIVEN rollback_on_alarm false (the default) and a previous champion
    previous_champion()
    serving()
    forbid("sagemaker", "UpdateEndpoint", "CreateModel", "CreateEndpointConfig")
    # WHEN the alarm fires / THEN only the notice goes out
    result = responder.handler(alarm_5xx(), FakeContext())
    assert result["rollback"]["action"] == "none" and len(resources.notices()) == 1


def test_no_rollback_onto_the_model_already_serving(resources: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the endpoint already serves the previous champion (an earlier rollback)
    allow_rollback(monkeypatch)
    previous_champion(CHAMPION_URL)
    serving()
    forbid("sagemaker", "UpdateEndpoint")
    # WHEN the alarm fires again / THEN nothing is redeployed, and the notice says why
    result = responder.handler(alarm_5xx(), FakeContext())
    assert result["rollback"] == {"action": "none", "reason": "the endpoint already serves the previous champion"}


def test_alarm_during_a_deployment_only_logs(resources: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN rollback allowed, but a blue/green deployment in flight (DescribeEndpoint: Updating)
    allow_rollback(monkeypatch)
    previous_champion()
    updating = {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
        "EndpointConfigName": "sagecycle-dev-baseline",
        "EndpointStatus": "Updating",
        "CreationTime": datetime(2026, 11, 1, tzinfo=UTC),
        "LastModifiedTime": datetime(2026, 11, 23, tzinfo=UTC),
        "PendingDeploymentSummary": {"EndpointConfigName": SERVING_CONFIG},
    }
    with Stubber(client("sagemaker")) as stub:  # any other SageMaker call fails the test
        stub.add_response("describe_endpoint", updating, {"EndpointName": ENDPOINT})
        # WHEN the alarm fires
        result = responder.handler(alarm_5xx(), FakeContext())
        stub.assert_no_pending_responses()
    # THEN nothing is sent or changed: the guardrails decide
    assert result == {"action": "none", "reason": "deployment in flight"}
    assert resources.notices() == []


def test_alarm_back_to_ok_does_nothing(resources: Aws) -> None:
    # GIVEN the 5xx alarm going back to OK
    event = alarm_5xx()
    event["detail"]["state"]["value"] = "OK"
    # WHEN it reaches the responder
    # THEN it is ignored and nobody is told
    assert responder.handler(event, FakeContext())["action"] == "ignored"
    assert resources.notices() == []


def test_rollback_target_rules() -> None:
    # GIVEN no previous champion, one the endpoint already serves, or another one
    # WHEN the rollback target is chosen
    # THEN there is none for the first two, and the previous champion for the last
    assert logic.rollback_target(None, "s3://a")[0] is None
    assert logic.rollback_target("s3://a", "s3://a")[0] is None
    assert logic.rollback_target("s3://a", "s3://b")[0] == "s3://a"


def test_composite_alarm_from_silence_alone_never_rolls_back(resources: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN rollback allowed and the composite alarm fired only because traffic stopped
    allow_rollback(monkeypatch)
    previous_champion()
    serving()
    forbid("sagemaker", "UpdateEndpoint", "CreateModel", "CreateEndpointConfig")
    event = load_event("alarm_endpoint_unhealthy.json")
    silence = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:sagecycle-dev-endpoint-no-invocations"
    event["detail"]["state"]["reasonData"] = json.dumps({"triggeringAlarms": [{"arn": silence}]})
    # WHEN it reaches the responder
    result = responder.handler(event, FakeContext())
    # THEN operators hear about it, and the model stays: a rollback cannot bring traffic back
    assert result["rollback"]["action"] == "none"
    assert "rollback can fix" in result["rollback"]["reason"]
    assert len(resources.notices()) == 1


def test_composite_alarm_from_server_errors_rolls_back(resources: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN rollback allowed and the composite fired because of the 5xx alarm (the sample event's child)
    allow_rollback(monkeypatch)
    previous_champion()
    serving()
    updates = record_updates()
    # WHEN it reaches the responder / THEN the previous champion goes back in
    result = responder.handler(load_event("alarm_endpoint_unhealthy.json"), FakeContext())
    assert result["rollback"]["action"] == "rollback" and len(updates.calls) == 1
