"""The operator commands against moto: status, approve/reject, transform, each in people's and --json form.

The stage is the functions' test stage (tests/lambdas/fixtures: buckets, tables, champion, registry), and the
commands find it by contract.names alone. retrain and rollback invoke functions, which moto's Lambda runs only
in Docker: they are tested through the rehearsal's runner (test_operate_rehearsal.py).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from moto import mock_aws

from contract import names as cn
from lambdas.shared import runs
from lambdas.shared.deployments import Deployment, record_started
from tests.lambdas.fixtures import (
    ACCOUNT,
    APP,
    CHAMPION_URL,
    DATA_BUCKET,
    ENV,
    GROUP,
    MODEL_BUCKET,
    REGION,
    RUNS_TABLE,
    SETTINGS,
    STAGE,
    aws_client,
    create_resources,
    evaluation,
    model_tar,
    put_model,
    record_started_run,
)
from tests.sagecycle.cli_support import run_cli as run

ENDPOINT = cn.endpoint_name(APP, STAGE)
STAGE_ARGS = ["--stage", STAGE, "--region", REGION]


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from lambdas.shared.runtime import reset_caches

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    reset_caches()
    with mock_aws():
        yield
    reset_caches()


def status_json(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(["status", *STAGE_ARGS, "--json"], capsys)
    return code, json.loads(out)


def create_endpoint(model_data_url: str, config: str) -> None:
    sagemaker = aws_client("sagemaker")
    sagemaker.create_model(
        ModelName=config,
        PrimaryContainer={"Image": SETTINGS.image_uri, "ModelDataUrl": model_data_url},
        ExecutionRoleArn=SETTINGS.role_arn,
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": cn.VARIANT_NAME,
                "ModelName": config,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)


def record_pending_promotion(config: str, model_data_url: str) -> datetime:
    """A promotion onto `config` recorded as started now and still pending; returns when."""
    now = datetime.now(UTC)
    deployment: Deployment = {
        "kind": "promotion",
        "endpoint_config_name": config,
        "model_data_url": model_data_url,
        "started_at": int(now.timestamp()),
        "started_at_iso": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": "pending",
    }
    record_started(RUNS_TABLE, deployment)
    return now


def alarm_in_alarm(suffix: str) -> str:
    name = cn.alarm_name(APP, STAGE, suffix)
    cloudwatch = aws_client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}],
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="5xx errors above 1")
    return name


def register_package(group: str) -> str:
    sagemaker = aws_client("sagemaker")
    if group != GROUP:  # the stage's own group exists already
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    return str(
        sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [{"Image": SETTINGS.image_uri, "ModelDataUrl": CHAMPION_URL}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
    )


# ------------------------------------------------------------------------------------------------ status


def test_status_of_a_stage_that_is_not_deployed_is_a_usage_error(capsys):
    # GIVEN an account without the stage (no runs table)
    # WHEN status runs, for people and for scripts
    code, _, err = run(["status", *STAGE_ARGS], capsys)
    json_code, out, _ = run(["status", *STAGE_ARGS, "--json"], capsys)
    # THEN both exit 2, and the JSON names the error code
    assert code == json_code == 2
    assert "not-deployed" in err
    assert json.loads(out)["error"]["code"] == "not-deployed"


def test_status_of_an_empty_stage_shows_nothing_and_is_unhealthy_without_an_endpoint(capsys):
    # GIVEN a deployed stage with no champion and no endpoint yet
    create_resources(champion=False)
    # WHEN status runs
    code, status = status_json(capsys)
    # THEN nothing is reported but the missing endpoint, and the exit code is 1
    assert code == 1
    assert status["healthy"] is False and status["endpoint"] is None
    assert status["champion"] is None and status["deployment"] is None
    assert status["training"] == {"lock": None, "runs": [], "runs_total": 0}
    assert status["alarms"] == [] and status["quarantine"]["count"] == 0


def test_status_with_a_champion_in_service_and_no_alarm_is_healthy(capsys):
    # GIVEN the champion served by an InService endpoint
    create_resources()
    create_endpoint(CHAMPION_URL, "baseline-config")
    # WHEN status runs
    code, status = status_json(capsys)
    # THEN it exits 0 with the champion's metric and the variant serving it at full weight
    assert code == 0 and status["healthy"] is True
    assert status["champion"]["model_data_url"] == CHAMPION_URL
    assert status["champion"]["metric"] == {"name": "auc", "split": "test", "value": 0.9, "higher_is_better": True}
    endpoint = status["endpoint"]
    assert endpoint["status"] == "InService" and endpoint["config"] == "baseline-config"
    (variant,) = endpoint["variants"]
    assert variant["name"] == cn.VARIANT_NAME and variant["model_data_url"] == CHAMPION_URL
    assert variant["current_weight"] == 1.0


def test_status_shows_the_deployment_the_lock_the_runs_the_alarm_and_quarantine_and_exits_1(capsys):
    # GIVEN a champion, a promotion in flight, a training run holding the lock, a quarantined file (with its
    # sidecar report) and the 5xx alarm in ALARM
    create_resources()
    create_endpoint(CHAMPION_URL, "baseline-config")
    candidate = f"s3://{MODEL_BUCKET}/{cn.PREFIX_TRAINING_OUTPUT}job-1/output/model.tar.gz"
    put_model(candidate, model_tar(evaluation_json=evaluation(0.93)))
    now = record_pending_promotion("sagecycle-dev-job-1", candidate)
    record_started_run("sagecycle-dev-261130-0500-abc", at=now)
    s3 = aws_client("s3")
    s3.put_object(Bucket=DATA_BUCKET, Key=f"{cn.PREFIX_QUARANTINE}2026-11-30/bad.csv", Body=b"x,y\n")
    s3.put_object(Bucket=DATA_BUCKET, Key=f"{cn.PREFIX_QUARANTINE}2026-11-30/bad.csv.report.json", Body=b"{}")
    alarm = alarm_in_alarm(cn.ENDPOINT_ALARMS["errors_5xx"])
    # WHEN status runs, for scripts and for people
    code, status = status_json(capsys)
    table_code, table, _ = run(["status", *STAGE_ARGS], capsys)
    # THEN it is unhealthy (exit 1) and shows each of them
    assert code == table_code == 1
    assert status["problems"] == [f"alarm {alarm} is in ALARM"]
    assert [(a["name"], a["kind"], a["contract"]) for a in status["alarms"]] == [(alarm, "metric", True)]
    assert status["deployment"]["endpoint_config"] == "sagecycle-dev-job-1"
    assert status["deployment"]["in_flight"] is True and status["deployment"]["kind"] == "promotion"
    assert status["training"]["lock"]["holder"] == "sagecycle-dev-261130-0500-abc"
    assert [r["job"] for r in status["training"]["runs"]] == ["sagecycle-dev-261130-0500-abc"]
    assert [f["key"] for f in status["quarantine"]["files"]] == [f"{cn.PREFIX_QUARANTINE}2026-11-30/bad.csv"]
    for shown in (alarm, "sagecycle-dev-job-1", "sagecycle-dev-261130-0500-abc", "bad.csv", "auc 0.9000"):
        assert shown in table


def test_status_shows_the_newest_finished_deployment_when_none_is_in_flight(capsys):
    # GIVEN two finished deployments (the pointer cleared, as promote leaves it)
    create_resources()
    create_endpoint(CHAMPION_URL, "baseline-config")
    for n, started in ((1, 1_700_000_000), (2, 1_700_000_600)):
        runs.put_item(
            RUNS_TABLE,
            runs.deployment_key(f"config-{n}"),
            {"kind": "promotion", "endpoint_config_name": f"config-{n}", "model_data_url": CHAMPION_URL,
             "started_at": started, "status": "succeeded", "finished_at": started + 300},
        )  # fmt: skip
    # WHEN status runs
    code, status = status_json(capsys)
    # THEN the newer one is shown with its outcome, not in flight
    assert code == 0
    assert status["deployment"]["endpoint_config"] == "config-2"
    assert status["deployment"]["outcome"] == "succeeded" and status["deployment"]["in_flight"] is False


# ------------------------------------------------------------------------------------- approve / reject


@pytest.mark.parametrize(("verb", "status"), [("approve", "Approved"), ("reject", "Rejected")])
def test_approve_and_reject_set_the_packages_status(capsys, verb, status):
    # GIVEN a package pending approval in the stage's group
    create_resources()
    arn = register_package(GROUP)
    # WHEN the operator approves or rejects it, with a reason
    code, out, _ = run([verb, arn, *STAGE_ARGS, "--reason", "checked by ops", "--json"], capsys)
    # THEN the registry has the new status and the description, and the JSON says so
    assert code == 0
    described = aws_client("sagemaker").describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == status
    assert described["ApprovalDescription"] == "checked by ops"
    assert json.loads(out) == {
        "package": arn,
        "group": GROUP,
        "from": "PendingManualApproval",
        "to": status,
        "reason": "checked by ops",
    }


def test_a_package_of_another_group_is_refused_and_left_alone(capsys):
    # GIVEN a package of another group in the same account
    create_resources()
    arn = register_package("someone-else")
    # WHEN the operator tries to approve it
    code, out, _ = run(["approve", arn, *STAGE_ARGS, "--json"], capsys)
    # THEN it is refused (exit 1, code foreign-package) and its status is unchanged
    assert code == 1
    assert json.loads(out)["error"]["code"] == "foreign-package"
    described = aws_client("sagemaker").describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "PendingManualApproval"


def test_a_package_that_does_not_exist_is_a_usage_error(capsys):
    # GIVEN the stage's group without the named package
    create_resources()
    missing = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/99"
    # WHEN the operator rejects it
    code, out, _ = run(["reject", missing, *STAGE_ARGS, "--json"], capsys)
    # THEN it exits 2 with the no-such-package code
    assert code == 2 and json.loads(out)["error"]["code"] == "no-such-package"


# ----------------------------------------------------------------------------------------------- transform


def deploy_start_function() -> None:
    """The start-training function as Lambda knows it: its name and environment (moto runs no code here)."""
    role = aws_client("iam").create_role(RoleName="start-training", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return {}\n")
    aws_client("lambda").create_function(
        FunctionName=cn.function_name(APP, STAGE, "start_training"),
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {k: ENV[k] for k in (cn.ENV_TRAINING_SETTINGS, cn.ENV_RETRAIN_POLICY)}},
    )


def test_transform_creates_the_job_from_the_functions_settings_and_reports_missing_outputs(capsys):
    # GIVEN the stage, its start function's settings, two input files and an earlier job's .out for one of them;
    # moto completes the job at once but scores nothing
    create_resources()
    deploy_start_function()
    for n in (1, 2):
        aws_client("s3").put_object(Bucket=DATA_BUCKET, Key=f"{cn.PREFIX_BATCH_INPUT}day/{n}.csv", Body=b"39,2,40,3\n")
    stale = f"{cn.PREFIX_TRANSFORM_OUTPUT}day/1.csv.out"
    aws_client("s3").put_object(Bucket=MODEL_BUCKET, Key=stale, Body=b"0.5\n")
    source = f"s3://{DATA_BUCKET}/{cn.PREFIX_BATCH_INPUT}day/"
    target = f"s3://{MODEL_BUCKET}/{cn.PREFIX_TRANSFORM_OUTPUT}day/"
    # WHEN transform runs
    code, out, _ = run(["transform", *STAGE_ARGS, "--input", source, "--output", target, "--poll-seconds", "0.1",
                        "--json"], capsys)  # fmt: skip
    # THEN the job is the functions' spec on the champion (KMS, Line split, MultiRecord), and the two inputs
    # without a .out of this job (the earlier one does not count) make it exit 1
    result = json.loads(out)
    assert code == 1 and result["complete"] is False
    assert result["summary"] == {"input_files": 2, "out_files": 0, "rows": 0, "bytes": 0}
    job = aws_client("sagemaker").describe_transform_job(TransformJobName=result["job"])
    assert job["TransformInput"]["SplitType"] == "Line" and job["BatchStrategy"] == "MultiRecord"
    assert job["TransformOutput"]["KmsKeyId"] == SETTINGS.kms_key_arn
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == source
    model = aws_client("sagemaker").describe_model(ModelName=job["ModelName"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == CHAMPION_URL


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (f"s3://{DATA_BUCKET}/{cn.PREFIX_INCOMING}x/", f"s3://{MODEL_BUCKET}/{cn.PREFIX_TRANSFORM_OUTPUT}x/"),
        (f"s3://{DATA_BUCKET}/{cn.PREFIX_BATCH_INPUT}x/", f"s3://{MODEL_BUCKET}/{cn.PREFIX_MODELS}x/"),
        ("not-a-url", f"s3://{MODEL_BUCKET}/{cn.PREFIX_TRANSFORM_OUTPUT}x/"),
    ],
)
def test_transform_refuses_locations_the_execution_role_cannot_use(capsys, source, target):
    # GIVEN the stage
    create_resources()
    # WHEN transform is pointed outside the role's read or write prefixes
    code, out, _ = run(["transform", *STAGE_ARGS, "--input", source, "--output", target, "--json"], capsys)
    # THEN it is a usage error with the bad-location code, and no job exists
    assert code == 2 and json.loads(out)["error"]["code"] == "bad-location"
    assert aws_client("sagemaker").list_transform_jobs()["TransformJobSummaries"] == []


def test_transform_with_nothing_to_score_is_a_usage_error(capsys):
    # GIVEN an empty input prefix
    create_resources()
    source = f"s3://{DATA_BUCKET}/{cn.PREFIX_BATCH_INPUT}empty/"
    target = f"s3://{MODEL_BUCKET}/{cn.PREFIX_TRANSFORM_OUTPUT}empty/"
    # WHEN transform runs
    code, out, _ = run(["transform", *STAGE_ARGS, "--input", source, "--output", target, "--json"], capsys)
    # THEN it exits 2 (nothing-to-score)
    assert code == 2 and json.loads(out)["error"]["code"] == "nothing-to-score"


def test_status_exits_1_while_the_endpoint_is_updating(capsys):
    # GIVEN a promotion in flight and the endpoint Updating (moto's API cannot reach that state: set on its backend)
    from moto.sagemaker.models import sagemaker_backends

    create_resources()
    create_endpoint(CHAMPION_URL, "baseline-config")
    record_pending_promotion("baseline-config-2", CHAMPION_URL)
    sagemaker_backends[ACCOUNT][REGION].endpoints[ENDPOINT].endpoint_status = "Updating"
    # WHEN status runs
    code, status = status_json(capsys)
    # THEN it is unhealthy for that reason alone, and the deployment is in progress
    assert code == 1
    assert status["problems"] == [f"endpoint {ENDPOINT} is Updating"]
    assert status["deployment"]["outcome"] == "in_progress" and status["deployment"]["in_flight"] is True


def test_status_of_a_build_account_does_not_ask_for_an_endpoint(capsys):
    # GIVEN a build account's stage: its promote function configured ACCOUNT_ROLE=build; a champion, no endpoint
    create_resources()
    role = aws_client("iam").create_role(RoleName="promote", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws_client("lambda").create_function(
        FunctionName=cn.function_name(APP, STAGE, "promote"),
        Runtime="python3.12",
        Role=role,
        Handler="lambdas.promote.handler.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        Environment={"Variables": {cn.ENV_ACCOUNT_ROLE: "build", cn.ENV_PEER_ACCOUNT: "222222222222"}},
    )
    # WHEN status runs
    code, status = status_json(capsys)
    # THEN it is healthy without an endpoint: there is none in a build account
    assert code == 0 and status["healthy"] is True
    assert status["role"] == "build" and status["endpoint"] is None
