"""What every function promises the infrastructure: imports, environment, event shapes, handler paths."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from lambdas.shared import contract
from lambdas.shared.events import (
    normalise_status,
    parse_alarm_event,
    parse_endpoint_event,
    parse_scheduled_event,
    parse_training_job_event,
)
from lambdas.shared.policy import PolicyError, RetrainPolicy
from lambdas.shared.runtime import ConfigError, parse_time
from tests.lambdas.fixtures import ENV, POLICY, load_event

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"
KEYS = sorted(contract.FUNCTIONS)
CONTRACT_ENV = {value for name, value in vars(contract).items() if name.startswith("ENV_")}


def test_every_function_has_handler_and_logic_modules() -> None:
    # GIVEN the contract's function keys
    # WHEN each function's directory is listed and its handler imported
    # THEN each has lambdas/<key>/{__init__,handler,logic}.py and a callable handler
    for key in KEYS:
        assert {"__init__.py", "handler.py", "logic.py"} <= {p.name for p in (LAMBDAS / key).glob("*.py")}
        assert callable(importlib.import_module(f"lambdas.{key}.handler").handler)


def test_lambda_code_imports_only_stdlib_boto_and_powertools() -> None:
    # GIVEN every module under lambdas/ (shared and each function)
    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore", "aws_lambda_powertools", "lambdas", "contract"}
    # WHEN their imports are listed
    imported: dict[str, set[str]] = {}
    for path in LAMBDAS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = {node.module.split(".")[0]}
            else:
                continue
            imported.setdefault(str(path.relative_to(ROOT)), set()).update(names)
    # THEN nothing outside the Lambda runtime and the Powertools layer is needed
    assert {p: n - allowed for p, n in imported.items() if n - allowed} == {}


def test_importing_the_handlers_creates_no_aws_client() -> None:
    # GIVEN a fresh interpreter where creating a client for any service the functions use raises
    # (the X-Ray SDK, loaded by Tracer, makes its own sampling client: not ours, and moto never sees it)
    code = "\n".join(
        [
            "import botocore.session",
            "create = botocore.session.Session.create_client",
            "def refuse(self, service, *a, **k):",
            "    if service != 'xray': raise SystemExit(f'{service} client created at import time')",
            "    return create(self, service, *a, **k)",
            "botocore.session.Session.create_client = refuse",
            *(f"import lambdas.{key}.handler" for key in KEYS),
        ]
    )
    # WHEN every handler module is imported / THEN it succeeds
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=ENV, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


# ------------------------------------------------------------------------------------------- environment


class Recording(Mapping[str, str]):
    """os.environ stand-in that remembers which variables were read."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values, self.read = dict(values), set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def settings_class(key: str) -> Any:
    return importlib.import_module(f"lambdas.{key}.logic").Settings


def read_by(key: str) -> set[str]:
    environ = Recording(ENV)
    settings_class(key).from_env(environ)
    return environ.read


@pytest.mark.parametrize("key", KEYS)
def test_function_reads_only_contract_environment_variables(key: str) -> None:
    # GIVEN the full test environment / WHEN a function's settings load / THEN it read only contract names
    assert read_by(key) <= CONTRACT_ENV


# Variables a function reads but may go without: a stage with one account (issue 13) writes none of them.
OPTIONAL: dict[str, frozenset[str]] = {
    "promote": frozenset({contract.ENV_ACCOUNT_ROLE, contract.ENV_PEER_ACCOUNT, contract.ENV_PACKAGE_APPROVAL}),
}


@pytest.mark.parametrize(
    ("key", "variable"), [(k, v) for k in KEYS for v in sorted(read_by(k) - OPTIONAL.get(k, frozenset()))]
)
def test_missing_variable_is_named_in_the_error(key: str, variable: str) -> None:
    # GIVEN one variable the function reads left out
    environ = {k: v for k, v in ENV.items() if k != variable}
    # WHEN its settings load
    with pytest.raises(ConfigError) as refused:
        settings_class(key).from_env(environ)
    # THEN they fail as a missing variable, and the message names it for the operator (the variable's name is
    # the contract's stable identifier)
    assert refused.value.code == "missing"
    assert re.search(rf"\b{re.escape(variable)}\b", str(refused.value))


@pytest.mark.parametrize(("key", "variable"), [(k, v) for k, names in OPTIONAL.items() for v in sorted(names)])
def test_an_optional_variable_may_be_left_out(key: str, variable: str) -> None:
    # GIVEN one optional variable the function reads left out
    environ = {k: v for k, v in ENV.items() if k != variable}
    # WHEN its settings load
    loaded = settings_class(key).from_env(environ)
    # THEN they load (its default applies), and the variable is one the function does read
    assert loaded is not None and variable in read_by(key)


@pytest.mark.parametrize(
    ("change", "key", "code"),
    [
        ({"daily_cap": 0}, "daily_cap", "out-of-bounds"),
        ({"rollback_on_alarm": "yes"}, "rollback_on_alarm", "wrong-type"),
    ],
)
def test_retrain_policy_names_the_bad_key(change: dict[str, Any], key: str, code: str) -> None:
    # GIVEN a policy with one value out of its rule or of the wrong type
    # WHEN it is parsed
    with pytest.raises(PolicyError) as caught:
        RetrainPolicy.from_dict({**POLICY, **change})
    # THEN the error's code says which mistake, and its problems name that key alone
    assert caught.value.code == code
    assert [name for name, _ in caught.value.problems] == [key]


def test_retrain_policy_refuses_an_unknown_key() -> None:
    # GIVEN a policy with a misspelt key
    # WHEN it is parsed
    with pytest.raises(PolicyError) as refused:
        RetrainPolicy.from_dict({**POLICY, "min_interval": 5})
    # THEN it is refused as an unknown key, and its problems name that key alone
    assert refused.value.code == "unknown-keys"
    assert [name for name, _ in refused.value.problems] == ["min_interval"]


def test_retrain_policy_needs_every_contract_key() -> None:
    # GIVEN a policy without lock_ttl_seconds
    data = {k: v for k, v in POLICY.items() if k != "lock_ttl_seconds"}
    # WHEN it is parsed
    with pytest.raises(PolicyError) as refused:
        RetrainPolicy.from_dict(data)
    # THEN it is refused as a missing key, and its problems name that key alone
    assert refused.value.code == "missing-keys"
    assert [name for name, _ in refused.value.problems] == ["lock_ttl_seconds"]


def test_retrain_policy_takes_what_the_stack_writes() -> None:
    # GIVEN the eight contract keys only (as the Retraining stack serialises them)
    required = {k: v for k, v in POLICY.items() if not k.startswith("drift_min") and not k.startswith("drift_max")}
    # WHEN it is parsed THEN it loads, the functions' defaults filling the rest
    assert RetrainPolicy.from_dict(required).drift_min_samples == 200


# ---------------------------------------------------------------------------------------------- events


def test_training_job_sample_event_parses() -> None:
    # GIVEN the completed training job sample WHEN it is parsed
    change = parse_training_job_event(load_event("training_job_completed.json"))
    # THEN it is terminal and names the model artifact
    assert change.status == "Completed" and change.terminal
    assert change.model_data_url and change.model_data_url.endswith("/output/model.tar.gz")


def test_failed_training_job_sample_carries_the_failure_reason() -> None:
    # GIVEN the failed training job sample WHEN it is parsed
    change = parse_training_job_event(load_event("training_job_failed.json"))
    # THEN it carries SageMaker's failure reason
    assert change.failure_reason.startswith("AlgorithmError")


def test_endpoint_deployment_sample_event_parses_with_the_pending_config() -> None:
    # GIVEN the updating endpoint sample WHEN it is parsed
    change = parse_endpoint_event(load_event("endpoint_deployment_updating.json"))
    # THEN it is updating towards the pending config
    assert change.status == "Updating" and change.pending_config_name == "sagecycle-dev-261123-0500-3f2a9c1b7e"


def test_endpoint_statuses_from_events_and_the_api_compare_equal() -> None:
    # GIVEN endpoint statuses as events and as the API spell them WHEN normalised
    # THEN they compare equal, in the API's spelling
    assert normalise_status("IN_SERVICE") == normalise_status("InService") == "InService"
    assert normalise_status("UPDATE_ROLLBACK_FAILED") == "UpdateRollbackFailed"


def test_alarm_sample_timestamps_parse_as_utc() -> None:
    # GIVEN the endpoint 5xx alarm sample WHEN it is parsed
    alarm = parse_alarm_event(load_event("alarm_endpoint_5xx.json"))
    # THEN its time is UTC and its dimensions name the endpoint and variant
    assert alarm.timestamp == parse_time("2026-11-23T07:15:03.124Z")
    assert alarm.dimensions == {"EndpointName": "sagecycle-dev-endpoint", "VariantName": "AllTraffic"}


def test_scheduled_sample_event_parses() -> None:
    # GIVEN the scheduled event sample WHEN it is parsed THEN it names its rule
    assert parse_scheduled_event(load_event("scheduled_event.json")).rule.endswith("1ABCDEF23456")
