"""Promotion by approval across two accounts (moto's accounts, STS AssumeRole between them).

The serving account is moto's default account (the `resources` fixture builds its bucket, tables, topic and
champion); the build account is another, reached by assuming a role in it. The promote function runs as the
serving account's promote role. The build registry's group policy is the document the build stack sets
(stacks/cross_account_policies.py), enforced by the stand-in in tests/lambdas/cross_account.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from contract.names import function_role_name
from lambdas.promote import handler as promote
from lambdas.shared import runs
from lambdas.shared.runtime import reset_caches
from stacks.cross_account_policies import AccountPair, model_package_group_policy, serving_promote_statements
from tests.lambdas.cross_account import GroupPolicies
from tests.lambdas.fixtures import (
    ACCOUNT,
    APP,
    CHAMPION_PARAMETER,
    CHAMPION_URL,
    ENDPOINT,
    GROUP,
    MODEL_BUCKET,
    REGION,
    SETTINGS,
    STAGE,
    Aws,
    CallRecorder,
    FakeContext,
    aws_client,
    evaluation,
    forbid,
    load_event,
    model_tar,
)
from tests.lambdas.test_promote import serving

BUILD = "111111111111"
SAMPLE = Path(__file__).resolve().parents[1] / "events" / "aws" / "sagemaker" / "model_package_state_change.json"
PAIR = AccountPair(app=APP, stage=STAGE, region=REGION, build_account=BUILD, serving_account=ACCOUNT)
JOB = f"{APP}-{STAGE}-261124-0300-0a1b2c3d4e"
SOURCE_KEY = f"training-output/{JOB}/output/model.tar.gz"
SOURCE_URL = f"s3://{PAIR.build_models_bucket}/{SOURCE_KEY}"
SERVING_CONFIG = f"{APP}-{STAGE}-261123-0500-3f2a9c1b7e"


def assumed(role_arn: str) -> boto3.Session:
    credentials = aws_client("sts").assume_role(RoleArn=role_arn, RoleSessionName="two-accounts")["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


class BuildAccount:
    """The build account's registry and model bucket, driven as its operators would."""

    def __init__(self, session: boto3.Session) -> None:
        self.sagemaker = session.client("sagemaker")
        self.s3 = session.client("s3")

    def register(self, model_data_url: str = SOURCE_URL) -> str:
        return str(
            self.sagemaker.create_model_package(
                ModelPackageGroupName=GROUP,
                ModelApprovalStatus="PendingManualApproval",
                InferenceSpecification={
                    "Containers": [{"Image": SETTINGS.image_uri, "ModelDataUrl": model_data_url}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
            )["ModelPackageArn"]
        )

    def decide(self, arn: str, status: str) -> dict[str, Any]:
        """UpdateModelPackage, and the state-change event EventBridge delivers to the serving bus for it."""
        self.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)
        described = self.sagemaker.describe_model_package(ModelPackageName=arn)
        event = copy.deepcopy(json.loads(SAMPLE.read_text()))
        event.update(account=BUILD, region=REGION, resources=[arn])
        detail = event["detail"]
        detail.update(
            ModelPackageGroupName=GROUP,
            ModelPackageVersion=described["ModelPackageVersion"],
            ModelPackageArn=arn,
            ModelApprovalStatus=status,
        )
        detail["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] = described["InferenceSpecification"][
            "Containers"
        ][0]["ModelDataUrl"]
        return event


@pytest.fixture
def two_accounts(resources: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[BuildAccount]:
    # The build account: its model bucket with a job's output, its registry group with the stack's policy.
    build = BuildAccount(assumed(f"arn:aws:iam::{BUILD}:role/build-operator"))
    build.s3.create_bucket(Bucket=PAIR.build_models_bucket)
    build.s3.put_object(
        Bucket=PAIR.build_models_bucket, Key=SOURCE_KEY, Body=model_tar(evaluation_json=evaluation(0.93))
    )
    build.s3.put_object(Bucket=PAIR.build_models_bucket, Key="checkpoints/x/model.tar.gz", Body=b"not granted")
    build.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    policies = GroupPolicies()
    policies.put(BUILD, GROUP, model_package_group_policy(PAIR))
    policies.install(monkeypatch)
    # The serving side: an endpoint on the champion; promote runs as the serving account's promote role.
    serving(SERVING_CONFIG, CHAMPION_URL)
    role = f"arn:aws:iam::{ACCOUNT}:role/{function_role_name(APP, STAGE, 'promote')}"
    policies.caller_role_arn[ACCOUNT] = role
    credentials = assumed(role).get_credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials.token)
    monkeypatch.setenv("ACCOUNT_ROLE", "serving")
    monkeypatch.setenv("PEER_ACCOUNT", BUILD)
    reset_caches()
    yield build
    reset_caches()


def champion() -> str:
    return str(aws_client("ssm").get_parameter(Name=CHAMPION_PARAMETER)["Parameter"]["Value"])


def test_a_package_approved_in_the_build_account_is_copied_deployed_and_becomes_the_serving_champion(
    two_accounts: BuildAccount, resources: Aws
) -> None:
    # GIVEN a candidate registered in the build account, awaiting approval
    arn = two_accounts.register()
    updates = CallRecorder("sagemaker", "UpdateEndpoint", lambda p: {"EndpointArn": "arn"}).install()
    # WHEN an operator approves it there, and the approval reaches the serving account's promote function
    result = promote.handler(two_accounts.decide(arn, "Approved"), FakeContext())
    # THEN the artifact is copied into the serving model bucket, under the serving key, and deployed blue/green
    copied_key = f"models/approved/{GROUP}/1/model.tar.gz"
    head = aws_client("s3").head_object(Bucket=MODEL_BUCKET, Key=copied_key)
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(
        SETTINGS.kms_key_arn.split("/")[-1]
    )
    assert result["deployment"] == "pending"
    (update,) = updates.calls
    assert (
        update["EndpointConfigName"] == result["endpoint_config"]
        and "AutoRollbackConfiguration" in update["DeploymentConfig"]
    )
    model = aws_client("sagemaker").describe_model(ModelName=result["endpoint_config"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{MODEL_BUCKET}/{copied_key}"
    # AND the champion has not moved yet: only InService moves it
    assert champion() == CHAMPION_URL
    # WHEN the endpoint reports InService on the new config
    aws_client("sagemaker").delete_endpoint(EndpointName=ENDPOINT)
    aws_client("sagemaker").create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=result["endpoint_config"])
    finished = promote.handler(load_event("endpoint_in_service.json"), FakeContext())
    # THEN the serving champion is the copied model, the previous one kept, the build package untouched
    assert finished["deployment"] == "succeeded"
    assert champion() == f"s3://{MODEL_BUCKET}/{copied_key}"
    record = runs.get_item(resources_table(), runs.CHAMPION) or {}
    assert record["package_arn"] == arn and record["source_model_data_url"] == SOURCE_URL
    build_view = two_accounts.sagemaker.describe_model_package(ModelPackageName=arn)
    assert "CustomerMetadataProperties" not in build_view


def resources_table() -> str:
    from tests.lambdas.fixtures import RUNS_TABLE

    return RUNS_TABLE


def test_a_rejected_package_moves_nothing_and_tells_the_operators(two_accounts: BuildAccount, resources: Aws) -> None:
    # GIVEN a registered candidate
    arn = two_accounts.register()
    forbid("sagemaker", "CreateModel", "CreateEndpointConfig", "UpdateEndpoint")
    # WHEN it is rejected in the build account
    result = promote.handler(two_accounts.decide(arn, "Rejected"), FakeContext())
    # THEN nothing is deployed, the champion stays, and the operators hear of it
    assert result["deployment"] == "none" and champion() == CHAMPION_URL
    assert [n["Message"]["event"] for n in resources.notices()] == ["package-rejected"]


def test_an_approval_from_an_unknown_account_is_refused(two_accounts: BuildAccount, resources: Aws) -> None:
    # GIVEN an approval event that another account sent (its own registry, our group's name)
    arn = two_accounts.register()
    event = two_accounts.decide(arn, "Approved")
    foreign = "999999999999"
    event["account"] = foreign
    event["detail"]["ModelPackageArn"] = arn.replace(BUILD, foreign)
    forbid("sagemaker", "CreateModel", "UpdateEndpoint")
    # WHEN it reaches promote / THEN refused by code, nothing deployed, the operators told
    result = promote.handler(event, FakeContext())
    assert result["refused"] == "foreign-account" and champion() == CHAMPION_URL
    assert [n["Message"]["code"] for n in resources.notices()] == ["foreign-account"]


def test_a_package_pointing_outside_the_granted_prefix_is_refused_before_any_read(
    two_accounts: BuildAccount, resources: Aws
) -> None:
    # GIVEN an approved package whose model lies outside training-output/ (the one prefix granted)
    arn = two_accounts.register(f"s3://{PAIR.build_models_bucket}/checkpoints/x/model.tar.gz")
    forbid("s3", "CopyObject", "GetObject")
    # WHEN it is approved / THEN refused, nothing copied or deployed
    result = promote.handler(two_accounts.decide(arn, "Approved"), FakeContext())
    assert result["refused"] == "outside-grant" and champion() == CHAMPION_URL


def test_without_the_group_policy_the_serving_account_cannot_read_the_package(
    two_accounts: BuildAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the build group's policy names no serving principal
    arn = two_accounts.register()
    event = two_accounts.decide(arn, "Approved")
    empty = GroupPolicies()
    empty.install(monkeypatch)
    # WHEN the approval arrives / THEN DescribeModelPackage is denied: the function fails (and is retried)
    with pytest.raises(ClientError) as denied:
        promote.handler(event, FakeContext())
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"


def test_a_second_delivery_of_the_approval_deploys_once(two_accounts: BuildAccount) -> None:
    # GIVEN an approval delivered twice
    arn = two_accounts.register()
    updates = CallRecorder("sagemaker", "UpdateEndpoint", lambda p: {"EndpointArn": "arn"}).install()
    event = two_accounts.decide(arn, "Approved")
    first = promote.handler(event, FakeContext())
    # WHEN the second copy arrives / THEN it finds the deployment and stops
    second = promote.handler(event, FakeContext())
    assert second == {"model_package_arn": arn, "endpoint_config": first["endpoint_config"], "duplicate": True}
    assert len(updates.calls) == 1


@set_initial_no_auth_action_count(6)
@mock_aws
def test_the_serving_promote_role_reads_the_granted_prefix_and_nothing_else() -> None:
    # GIVEN the serving promote role with exactly the cross-account statements the serving stack attaches
    # (moto enforces identity policies once its first six set-up calls are done)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam = boto3.client("iam", region_name=REGION)
    role = function_role_name(APP, STAGE, "promote")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    statements = {"Version": "2012-10-17", "Statement": serving_promote_statements(PAIR)}
    iam.put_role_policy(RoleName=role, PolicyName="cross-account", PolicyDocument=json.dumps(statements))
    admin_s3 = boto3.client("s3", region_name=REGION)
    admin_s3.create_bucket(Bucket=PAIR.build_models_bucket)
    admin_s3.put_object(Bucket=PAIR.build_models_bucket, Key=SOURCE_KEY, Body=b"model")
    admin_s3.put_object(Bucket=PAIR.build_models_bucket, Key="checkpoints/j/state", Body=b"checkpoint")
    promote_s3 = assumed_fresh(f"arn:aws:iam::{ACCOUNT}:role/{role}").client("s3")
    # WHEN it reads a job output, and then a checkpoint beside it
    inside = promote_s3.get_object(Bucket=PAIR.build_models_bucket, Key=SOURCE_KEY)["Body"].read()
    with pytest.raises(ClientError) as outside:
        promote_s3.get_object(Bucket=PAIR.build_models_bucket, Key="checkpoints/j/state")
    # THEN the first is allowed and the second denied
    assert inside == b"model"
    assert outside.value.response["Error"]["Code"] == "AccessDenied"


def assumed_fresh(role_arn: str) -> boto3.Session:
    """AssumeRole with a client of its own (the shared test clients belong to the fixtures' moto)."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(RoleArn=role_arn, RoleSessionName="grant-check")
    c = credentials["Credentials"]
    return boto3.Session(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
        region_name=REGION,
    )
