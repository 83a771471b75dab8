"""The operator commands from another process, against the rehearsal's local AWS (`--endpoint-url`): Lambda's
Invoke reaches moto's server and runs the stage's real handler in the rehearsal's process (`serving_invokes`).

No runner is attached here (`attach_rehearsal` is not used): the command line runs in a subprocess with nothing but
the URL, as it would from another shell next to `sagecycle demo --keep-running`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

# The functions' Powertools loggers keep the stdout they see when first imported (see test_operate_rehearsal).
import lambdas.start_training.handler  # noqa: F401
from lambdas.shared import runs
from sagecycle.rehearsal.moto_sagemaker import install_moto_extensions
from tests.rehearsal.conftest_stage import *  # noqa: F403 - the fixtures
from tests.rehearsal.conftest_stage import REGION, Rig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(rig: Rig) -> Iterator[Rig]:
    """The rig's functions answering Invoke on its local AWS's server, and moto taught the rehearsal's SageMaker."""
    install_moto_extensions()
    with rig.functions.serving_invokes():
        yield rig


def sagecycle(rig: Rig, argv: list[str]) -> tuple[int, Any]:
    """`sagecycle argv --json` in another process that knows only the URL: (exit code, its JSON answer)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="operator", AWS_SECRET_ACCESS_KEY="operator", AWS_EC2_METADATA_DISABLED="true")
    command = [sys.executable, "-c", "import sys; from sagecycle.cli import main; sys.exit(main())"]
    command += [*argv, "--stage", "dev", "--region", REGION, "--endpoint-url", rig.aws.url, "--json"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else done.stderr


def test_status_from_another_process_finds_the_champion(served: Rig):
    # GIVEN the rehearsal's stage, its champion parameter set by the stacks
    names = served.stage.names
    champion = served.client("ssm").get_parameter(Name=names.champion_parameter)["Parameter"]["Value"]
    # WHEN another process runs status against the local AWS's URL
    code, status = sagecycle(served, ["status"])
    # THEN it is healthy (exit 0) and shows the champion
    assert code == 0 and status["healthy"] is True
    assert status["champion"]["model_data_url"] == champion


def test_retrain_from_another_process_runs_start_training_in_the_rehearsal(served: Rig):
    # GIVEN the stage with no run yet
    names = served.stage.names
    # WHEN another process asks for a retrain, twice
    first_code, first = sagecycle(served, ["retrain", "--reason", "new labels arrived"])
    second_code, second = sagecycle(served, ["retrain", "--reason", "again"])
    # THEN the real start-training ran in the rehearsal's runner: a job started under the lock (exit 0) ...
    assert first_code == 0 and first["started"] is True
    job = first["answer"]["job_name"]
    record = runs.get_item(names.runs_table, runs.run_key(job))
    assert record is not None and record["trigger_kind"] == "manual"
    assert [i["source"] for i in served.functions.invocations] == ["lambda:Invoke on the local AWS"] * 2
    # ... and the second was skipped by the lock's guard (exit 1)
    assert second_code == 1 and second["started"] is False and second["answer"]["skip_reason"] == "locked"


def test_invoke_on_the_server_is_answered_as_lambda_answers(served: Rig):
    # GIVEN Lambda's client pointed at the local AWS, and start-training's name
    client = served.client("lambda")
    name = served.stage.functions["start_training"].name
    # WHEN the function is asked for its configuration, then invoked with an event its handler cannot read
    config = client.get_function_configuration(FunctionName=name)
    failed = client.invoke(FunctionName=name, Payload=b"[1, 2]")
    # THEN the configuration is the synthesized one, and the failure is Lambda's FunctionError (StatusCode 200,
    # "Unhandled", a payload with the handler's error type and the request id)
    assert config["Environment"]["Variables"] == served.stage.functions["start_training"].environment
    assert failed["StatusCode"] == 200 and failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert error["errorType"] == served.functions.invocations[-1]["error"].split(":")[0]
    assert error["requestId"] == served.functions.invocations[-1]["request_id"]
    assert set(error) == {"errorMessage", "errorType", "requestId", "stackTrace"}


def test_event_and_dry_run_invocations_are_answered_without_running_the_handler(served: Rig):
    # GIVEN Lambda's client pointed at the local AWS
    client = served.client("lambda")
    name = served.stage.functions["start_training"].name
    # WHEN the function is invoked asynchronously, then as a dry run
    queued = client.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    dry = client.invoke(FunctionName=name, InvocationType="DryRun", Payload=b"{}")
    # THEN Lambda's 202 and 204, the event queued with Lambda's asynchronous semantics and nothing run yet
    assert queued["StatusCode"] == 202 and dry["StatusCode"] == 204
    assert [p.key for p in served.functions.pending] == ["start_training"]
    assert served.functions.invocations == []


def test_a_payload_that_is_not_json_is_refused(served: Rig):
    # GIVEN Lambda's client pointed at the local AWS
    client = served.client("lambda")
    name = served.stage.functions["start_training"].name
    # WHEN the function is invoked with a payload that is not JSON
    with pytest.raises(ClientError) as refused:
        client.invoke(FunctionName=name, Payload=b"not json")
    # THEN Lambda's InvalidRequestContentException, and the handler did not run
    assert refused.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert served.functions.invocations == []


def test_an_unknown_function_is_not_found(served: Rig):
    # GIVEN Lambda's client pointed at the local AWS
    client = served.client("lambda")
    # WHEN a function the stage does not have is invoked
    with pytest.raises(ClientError) as missing:
        client.invoke(FunctionName="sagecycle-dev-no-such-function", Payload=b"{}")
    # THEN Lambda's ResourceNotFoundException
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
