"""Approval in one account: a build stage's registry and a single-account stage with manual approval."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lambdas.promote import handler as promote
from lambdas.shared import runs
from tests.lambdas.fixtures import (
    CHAMPION_PARAMETER,
    CHAMPION_URL,
    GROUP,
    RUNS_TABLE,
    SETTINGS,
    Aws,
    CallRecorder,
    FakeContext,
    aws_client,
    forbid,
    load_event,
)
from tests.lambdas.test_promote import CANDIDATE_URL, JOB, serving, started_job
from tests.lambdas.test_two_accounts import SAMPLE

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


def approval_event(arn: str, status: str) -> dict[str, Any]:
    """The published state-change sample, naming this account's package (as EventBridge delivers it)."""
    described = aws_client("sagemaker").describe_model_package(ModelPackageName=arn)
    event = copy.deepcopy(json.loads(SAMPLE.read_text()))
    event.update(account=arn.split(":")[4], region=arn.split(":")[3], resources=[arn])
    event["detail"].update(ModelPackageGroupName=GROUP, ModelPackageArn=arn, ModelApprovalStatus=status)
    event["detail"]["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] = described["InferenceSpecification"][
        "Containers"
    ][0]["ModelDataUrl"]
    return event


def approve(arn: str) -> dict[str, Any]:
    aws_client("sagemaker").update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    return approval_event(arn, "Approved")


def champion() -> str:
    return str(aws_client("ssm").get_parameter(Name=CHAMPION_PARAMETER)["Parameter"]["Value"])


@pytest.fixture
def build_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCOUNT_ROLE", "build")
    monkeypatch.setenv("PEER_ACCOUNT", "222222222222")
    monkeypatch.setenv("PACKAGE_APPROVAL", "manual")


def test_a_build_stage_registers_a_passing_candidate_for_approval_and_deploys_nothing(
    resources: Aws, build_stage: None
) -> None:
    # GIVEN a build stage and a finished job whose candidate beats the registry's champion
    started_job(0.93)
    forbid("sagemaker", "CreateModel", "CreateEndpointConfig", "UpdateEndpoint")
    # WHEN its training job completes
    result = promote.handler(load_event("training_job_completed.json"), FakeContext())
    # THEN the package waits for a person, and the operators are told
    assert result["decision"] == "approved" and result["deployment"] == "awaiting-approval"
    package = aws_client("sagemaker").describe_model_package(ModelPackageName=result["model_package_arn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert "candidate-awaits-approval" in [n["Message"]["event"] for n in resources.notices()]
    assert champion() == CHAMPION_URL


def test_an_approval_in_the_build_registry_makes_the_package_the_model_to_beat(
    resources: Aws, build_stage: None
) -> None:
    # GIVEN a candidate awaiting approval in the build registry
    started_job(0.93)
    registered = promote.handler(load_event("training_job_completed.json"), FakeContext())
    forbid("sagemaker", "CreateModel", "UpdateEndpoint")
    # WHEN an operator approves it
    result = promote.handler(approve(registered["model_package_arn"]), FakeContext())
    # THEN the build stage's champion (what candidates are compared with) is the package's model
    assert result == {"model_package_arn": registered["model_package_arn"], "champion": CANDIDATE_URL}
    assert champion() == CANDIDATE_URL
    assert (runs.get_item(RUNS_TABLE, runs.CHAMPION) or {})["package_arn"] == registered["model_package_arn"]


def test_single_account_with_manual_approval_deploys_on_approval(
    resources: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a single-account stage with manual approval, an endpoint on the champion, a candidate that passed
    monkeypatch.setenv("PACKAGE_APPROVAL", "manual")
    serving("sagecycle-dev-261101-0300-0a1b2c3d4e", CHAMPION_URL)
    started_job(0.93)
    registered = promote.handler(load_event("training_job_completed.json"), FakeContext())
    assert registered["deployment"] == "awaiting-approval"
    updates = CallRecorder("sagemaker", "UpdateEndpoint", lambda p: {"EndpointArn": "arn"}).install()
    # WHEN an operator approves the package
    result = promote.handler(approve(registered["model_package_arn"]), FakeContext())
    # THEN the guarded update starts on the model where it lies (no copy: the same account)
    assert result["deployment"] == "pending" and len(updates.calls) == 1
    model = aws_client("sagemaker").describe_model(ModelName=result["endpoint_config"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == CANDIDATE_URL
    assert model["PrimaryContainer"]["Image"] == SETTINGS.image_uri
    # AND the champion waits for InService
    assert champion() == CHAMPION_URL
    assert JOB in registered["job_name"]


def test_pending_approval_events_are_ignored(resources: Aws) -> None:
    # GIVEN a package state change that is still PendingManualApproval (registration itself)
    started_job(0.93)
    arn = aws_client("sagemaker").create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": SETTINGS.image_uri, "ModelDataUrl": CANDIDATE_URL}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    forbid("sagemaker", "CreateModel", "UpdateEndpoint")
    # WHEN it arrives / THEN nothing happens
    assert "ignored" in promote.handler(approval_event(arn, "PendingManualApproval"), FakeContext())
