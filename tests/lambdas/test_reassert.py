"""Promote keeps the endpoint on the champion even when something else (a failed CFN update) moved it."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest

from lambdas.promote import handler as promote
from lambdas.promote import logic
from lambdas.shared import deployments, runs
from lambdas.shared.jobspec import build_endpoint_config, build_model, build_update_endpoint, resource_name
from tests.lambdas.fixtures import (
    CHAMPION_URL,
    ENDPOINT,
    MODEL_BUCKET,
    ROLLBACK_ALARMS,
    RUNS_TABLE,
    SETTINGS,
    Aws,
    CallRecorder,
    FakeContext,
    aws_client,
    forbid,
    load_event,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

OLDER_URL = f"s3://{MODEL_BUCKET}/training-output/sagecycle-dev-251001-0300-0a1b2c3d4e/output/model.tar.gz"
CFN_CONFIG = "EndpointConfig-AbCdEf123456"  # CloudFormation's own name, without our prefix


def serving(model_url: str) -> None:
    """The endpoint InService on a config CloudFormation made, pointing at `model_url`."""
    sagemaker = aws_client("sagemaker")
    sagemaker.create_model(**build_model(SETTINGS, model_name="cfn-model", model_data_url=model_url, run_id="c"))
    sagemaker.create_endpoint_config(
        **build_endpoint_config(SETTINGS, endpoint_config_name=CFN_CONFIG, model_name="cfn-model", run_id="c")
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=CFN_CONFIG)


def endpoint_event() -> dict[str, Any]:
    return load_event("endpoint_in_service.json")


def record_updates() -> CallRecorder:
    return CallRecorder("sagemaker", "UpdateEndpoint", lambda p: {"EndpointArn": "arn"}).install()


def test_endpoint_on_an_older_model_gets_the_champion_back(resources: Aws) -> None:
    # GIVEN no deployment of ours in flight, and the endpoint serving an older model than the champion
    serving(OLDER_URL)
    updates = record_updates()
    # WHEN the endpoint's state-change event reaches promote
    result = promote.handler(endpoint_event(), FakeContext())
    # THEN the champion goes back in through the guarded blue/green update, and operators are told
    name = resource_name(f"{SETTINGS.job_name_prefix}-ch", CHAMPION_URL, max_length=63)
    assert result["deployment"] == "reassert" and result["serving"] == OLDER_URL
    expected = build_update_endpoint(
        SETTINGS, endpoint_name=ENDPOINT, endpoint_config_name=name, alarm_names=list(ROLLBACK_ALARMS)
    )
    assert updates.calls == [expected]
    model = aws_client("sagemaker").describe_model(ModelName=name)
    assert model["PrimaryContainer"]["ModelDataUrl"] == CHAMPION_URL
    assert (runs.get_item(RUNS_TABLE, runs.DEPLOYMENT) or {})["kind"] == "reassert"
    (notice,) = resources.notices()
    assert notice["Message"]["event"] == "champion-reasserted"


def test_endpoint_on_the_champion_is_left_alone(resources: Aws) -> None:
    # GIVEN the endpoint serving the champion (CloudFormation resolved the parameter at deploy time)
    serving(CHAMPION_URL)
    forbid("sagemaker", "UpdateEndpoint", "CreateModel", "CreateEndpointConfig")
    # WHEN its event arrives / THEN nothing happens
    result = promote.handler(endpoint_event(), FakeContext())
    assert result == {"ignored": "the endpoint serves the champion"}
    assert resources.notices() == []


def test_a_champion_is_reasserted_at_most_once_per_window(resources: Aws) -> None:
    # GIVEN the endpoint off the champion, and a re-deployment that failed and was rolled back already
    serving(OLDER_URL)
    updates = record_updates()
    promote.handler(endpoint_event(), FakeContext())
    runs.delete_item(RUNS_TABLE, runs.DEPLOYMENT)  # what finish_deployment leaves after a rollback
    # WHEN the endpoint reports InService on the older model again
    second = promote.handler(endpoint_event(), FakeContext())
    # THEN promote does not try again in this window: no loop, one update in all
    assert second["ignored"] == "champion already re-deployed in this window"
    assert len(updates.calls) == 1


def test_a_finished_reassert_leaves_the_champion_record_as_it_was(resources: Aws) -> None:
    # GIVEN a champion record, and the re-deployment now InService
    runs.put_item(RUNS_TABLE, runs.CHAMPION, {"model_data_url": CHAMPION_URL, "package_arn": "arn:pkg/1"})
    before = runs.get_item(RUNS_TABLE, runs.CHAMPION)
    deployment = {"kind": "reassert", "endpoint_config_name": "x", "model_data_url": CHAMPION_URL}
    # WHEN it completes
    deployments.set_champion(deployment, logic.Settings.from_env(os.environ), datetime.now(UTC))
    # THEN neither the parameter nor the record changed
    assert runs.get_item(RUNS_TABLE, runs.CHAMPION) == before
