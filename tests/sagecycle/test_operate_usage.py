"""Usage errors of the operator commands: exit code 2 before any AWS call, and a JSON error for scripts."""

from __future__ import annotations

import json

import pytest

from sagecycle.operate.options import EXIT_USAGE
from tests.sagecycle.cli_support import run_cli as run

COMMANDS = ("status", "retrain", "approve", "reject", "rollback", "transform")


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nowhere to send a request: a usage error must be found before any."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the discard port: nothing answers
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "usage")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "usage")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_the_common_options(capsys, command):
    # GIVEN an operator command
    # WHEN its --help is asked for
    code, out, _ = run([command, "--help"], capsys)
    # THEN it exits 0 and lists the options every command takes
    assert code == 0
    for option in ("--stage", "--region", "--endpoint-url", "--json"):
        assert option in out


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--stage", "staging"],  # unknown stage
        ["status", "--runs", "many"],
        ["status", "--no-such-option"],
        ["retrain"],  # --reason is required
        ["rollback"],
        ["approve"],  # the package is required
        ["reject", "--stage", "qa", "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"],
        ["transform", "--input", "s3://b/batch-input/"],  # --output is required
    ],
)
def test_bad_arguments_exit_2(capsys, argv):
    # GIVEN arguments argparse refuses
    # WHEN the command runs
    code, out, err = run(argv, capsys)
    # THEN it exits 2 with the usage on stderr and nothing on stdout
    assert code == EXIT_USAGE
    assert out == "" and "usage:" in err


@pytest.mark.parametrize(
    ("argv", "error_code"),
    [
        (["retrain", "--reason", "  "], "bad-argument"),
        (["rollback", "--reason", ""], "bad-argument"),
        (["status", "--runs", "-1"], "bad-argument"),
        (["transform", "--input", "s3://b/x/", "--output", "s3://b/y/", "--poll-seconds", "0"], "bad-argument"),
    ],
)
def test_bad_values_exit_2_with_a_json_error(capsys, argv, error_code):
    # GIVEN values the command itself refuses
    # WHEN it runs with --json
    code, out, _ = run([*argv, "--json", "--region", "us-east-1"], capsys)
    # THEN it exits 2 and stdout holds one JSON error with a stable code
    assert code == EXIT_USAGE
    assert json.loads(out)["error"]["code"] == error_code


def test_no_region_anywhere_is_a_usage_error(capsys, monkeypatch, tmp_path):
    # GIVEN no --region, no region variable and an empty AWS config
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    # WHEN status runs
    code, out, _ = run(["status", "--json"], capsys)
    # THEN it exits 2 with the no-region code
    assert code == EXIT_USAGE and json.loads(out)["error"]["code"] == "no-region"


def test_an_unreachable_endpoint_is_an_error_line_not_a_traceback(capsys):
    # GIVEN an --endpoint-url where nothing listens
    # WHEN status runs
    code, out, err = run(["status", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1", "--json"], capsys)
    # THEN it exits 1 with botocore's error type as the code
    assert code == 1
    assert json.loads(out)["error"]["code"] == "EndpointConnectionError"
    assert "Traceback" not in err
