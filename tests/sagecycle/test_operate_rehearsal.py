"""The operator commands against the rehearsal's local AWS (`--endpoint-url`), on the stage synthesized from cdk.out.

The stage's functions run through the rehearsal's in-process runner (attached to the local AWS's URL), so
retrain and rollback meet the real handlers with their synthesized environments, guards included; and every
name the commands derive from contract.names must be one the stacks created.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The functions' Powertools loggers keep the stdout they see when first imported: imported here, at collection,
# that is pytest's session stream, not one test's capsys buffer (closed when that test ends, then flushed when
# the next rehearsal points the logger at its log file).
import lambdas.alarm_responder.handler
import lambdas.start_training.handler  # noqa: F401
from contract import names as cn
from lambdas.shared import runs
from sagecycle.operate.functions import attach_rehearsal
from sagecycle.rehearsal.moto_sagemaker import install_moto_extensions
from sagecycle.rehearsal.transform import LocalTransform
from tests.rehearsal import conftest_hosting
from tests.rehearsal.conftest_stage import *  # noqa: F403 - the fixtures
from tests.rehearsal.conftest_stage import REGION, Rig
from tests.sagecycle.cli_support import run_cli

ROW = conftest_hosting.ROW  # one feature row in the served models' schema order
model_tars = conftest_hosting.model_tars  # the session's servable model.tar.gz files (a fixture)


@pytest.fixture
def attached(rig: Rig) -> Iterator[Rig]:
    """The rig's function runner attached to its URL, and moto taught UpdateEndpoint (the rehearsal's SageMaker)."""
    install_moto_extensions()
    with attach_rehearsal(rig.aws.url, rig.functions):
        yield rig


def run(rig: Rig, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_cli([*argv, "--endpoint-url", rig.aws.url, "--region", REGION], capsys)


def run_json(rig: Rig, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(rig, [*argv, "--json"], capsys)
    return code, json.loads(out)


def test_status_of_the_fresh_stage_finds_what_the_stacks_created(rig: Rig, capsys):
    # GIVEN the stage provisioned from the synthesized templates
    names = rig.stage.names
    # WHEN status runs against the local AWS
    code, status = run_json(rig, ["status"], capsys)
    # THEN it is healthy (exit 0) and finds the endpoint, the champion and the alarms by contract names
    assert code == 0 and status["healthy"] is True
    assert status["endpoint"]["name"] == names.endpoint_name and status["endpoint"]["status"] == "InService"
    assert [v["name"] for v in status["endpoint"]["variants"]] == [cn.VARIANT_NAME]
    champion_url = rig.client("ssm").get_parameter(Name=names.champion_parameter)["Parameter"]["Value"]
    assert status["champion"]["model_data_url"] == champion_url
    assert status["alarms"] == [] and status["training"]["runs"] == []


def test_status_exits_1_when_a_stage_alarm_is_in_alarm(rig: Rig, capsys):
    # GIVEN the endpoint's 5xx alarm in ALARM
    alarm = cn.alarm_name("sagecycle", "dev", cn.ENDPOINT_ALARMS["errors_5xx"])
    rig.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx above threshold")
    # WHEN status runs, for people
    code, out, _ = run(rig, ["status"], capsys)
    # THEN it is unhealthy and names only that alarm
    assert code == 1
    assert f"alarm {alarm} is in ALARM" in out
    code, status = run_json(rig, ["status"], capsys)
    assert code == 1 and [a["name"] for a in status["alarms"]] == [alarm]


def test_retrain_starts_a_run_and_a_second_one_is_skipped_by_the_lock(attached: Rig, capsys):
    # GIVEN the stage with no run yet
    rig = attached
    # WHEN the operator asks for a retrain, twice
    first_code, first = run_json(rig, ["retrain", "--reason", "new labels arrived"], capsys)
    second_code, second = run_json(rig, ["retrain", "--reason", "again"], capsys)
    # THEN the first started a job under the lock (exit 0) and the second was skipped by the lock (exit 1)
    assert first_code == 0 and first["started"] is True
    job = first["answer"]["job_name"]
    assert first["answer"]["reason"] == "manual: new labels arrived"
    record = runs.get_item(rig.stage.names.runs_table, runs.run_key(job))
    assert record is not None and record["trigger_kind"] == "manual"
    assert second_code == 1 and second["started"] is False
    assert second["answer"]["skip_reason"] == "locked"
    # AND status shows the lock's holder and the run
    _, status = run_json(rig, ["status"], capsys)
    assert status["training"]["lock"]["holder"] == job
    assert [r["job"] for r in status["training"]["runs"]] == [job]


def test_retrain_with_the_same_request_id_starts_one_job(attached: Rig, capsys):
    # GIVEN a retrain that started a job
    rig = attached
    _, first = run_json(rig, ["retrain", "--reason", "x", "--request-id", "req-1"], capsys)
    # WHEN a script retries with the same request id
    code, again = run_json(rig, ["retrain", "--reason", "x", "--request-id", "req-1"], capsys)
    # THEN it is the same job, not a second one, and the retry exits 0
    assert code == 0 and again["answer"]["job_name"] == first["answer"]["job_name"]
    assert len(rig.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]) == 1


def test_rollback_without_a_previous_champion_is_refused(attached: Rig, capsys):
    # GIVEN the stage's first champion (no previous one)
    # WHEN the operator asks for a rollback
    code, result = run_json(attached, ["rollback", "--reason", "latency"], capsys)
    # THEN it is refused (exit 1) and the endpoint keeps its config
    assert code == 1 and result["rolled_back"] is False
    assert result["answer"]["action"] == "refused"


def test_rollback_returns_to_the_previous_champion_once(attached: Rig, capsys):
    # GIVEN a previous champion other than the model the endpoint serves
    rig = attached
    names = rig.stage.names
    previous = f"s3://{names.model_bucket}/{cn.PREFIX_MODELS}previous/model.tar.gz"
    rig.client("ssm").put_parameter(Name=f"{names.champion_parameter}/previous", Value=previous, Type="String")
    # WHEN the operator rolls back, then asks again
    code, result = run_json(rig, ["rollback", "--reason", "bad answers since 09:00"], capsys)
    again_code, again = run_json(rig, ["rollback", "--reason", "still bad"], capsys)
    # THEN the first starts the guarded update onto the previous model (exit 0); the second is refused, the
    # endpoint already serving that model (exit 1)
    assert code == 0 and result["answer"]["action"] == "rollback" and result["answer"]["to"] == previous
    endpoint = rig.client("sagemaker").describe_endpoint(EndpointName=names.endpoint_name)
    assert endpoint["EndpointConfigName"] == result["answer"]["endpoint_config"]
    assert again_code == 1 and again["answer"]["action"] == "refused"
    # AND status shows the rollback as the last deployment
    _, status = run_json(rig, ["status"], capsys)
    assert status["deployment"]["kind"] == "rollback"
    assert status["deployment"]["endpoint_config"] == result["answer"]["endpoint_config"]


def test_transform_scores_a_prefix_with_the_champion_in_the_local_sagemaker(
    attached: Rig,
    model_tars: dict[str, Path],
    tmp_path: Path,
    capsys,
):
    # GIVEN a servable champion where the champion parameter points, two files to score (3 and 2 rows), and the
    # rehearsal's local SageMaker running transform jobs
    rig = attached
    names = rig.stage.names
    champion = rig.client("ssm").get_parameter(Name=names.champion_parameter)["Parameter"]["Value"]
    bucket, _, key = champion.removeprefix("s3://").partition("/")
    s3 = rig.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=model_tars["blue"].read_bytes())
    s3.put_object(Bucket=names.data_bucket, Key=f"{cn.PREFIX_BATCH_INPUT}day/a.csv", Body=ROW * 3)
    s3.put_object(Bucket=names.data_bucket, Key=f"{cn.PREFIX_BATCH_INPUT}day/b.csv", Body=ROW * 2)
    source = f"s3://{names.data_bucket}/{cn.PREFIX_BATCH_INPUT}day/"
    target = f"s3://{names.model_bucket}/{cn.PREFIX_TRANSFORM_OUTPUT}day/"
    # WHEN the operator runs the transform and waits for it
    with LocalTransform(rig.aws, tmp_path / "transform", rig.clock, rig.timeline, background=True):
        code, result = run_json(
            rig, ["transform", "--input", source, "--output", target, "--poll-seconds", "0.2"], capsys
        )
    # THEN the job completed with one .out per input file and one scored line per row (exit 0)
    assert code == 0 and result["status"] == "Completed" and result["complete"] is True
    assert result["summary"]["input_files"] == 2 and result["summary"]["out_files"] == 2
    assert result["summary"]["rows"] == 5 and result["summary"]["bytes"] > 0
    assert sorted(url.rsplit("/", 1)[-1] for url in result["out_files"]) == ["a.csv.out", "b.csv.out"]
    assert result["champion"] == champion
