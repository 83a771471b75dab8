"""Stage configuration: the defaults are valid, and every wrong value fails before any construct is built,
with one line that names the key, the problem and what is allowed."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from config.settings import INTERFACE_ENDPOINTS, ConfigError, load_config, load_from_context

ALL_ENDPOINTS = dict.fromkeys(INTERFACE_ENDPOINTS, True)
SCHEDULES = (
    "cron(minutes hours day-of-month month day-of-week year) with ? in exactly one of the day fields, "
    "or rate(1 minute|hour|day) / rate(N minutes|hours|days)"
)


def matches(expected: str, message: str) -> bool:
    """`…` in an expected message stands for any text (long lists of allowed values)."""
    return re.fullmatch(".*".join(re.escape(part) for part in expected.split("…")), message) is not None


# context (as cdk.json or `-c key=value` gives it) -> the one line it fails with
BAD_CONTEXT: list[tuple[dict[str, Any], str]] = [
    (
        {"config_overrides": "{not json"},
        "configuration error: config_overrides: is not valid JSON: Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1) (allowed: valid JSON)",
    ),
    (
        {"config_overrides": "[1, 2]"},
        "configuration error: config_overrides: is an array, not a JSON object (allowed: a JSON object)",
    ),
    (
        {"config_overrides": "42"},
        "configuration error: config_overrides: is a number, not a JSON object (allowed: a JSON object)",
    ),
    (
        {"config_overrides": json.dumps(json.dumps({"endpoint": {"max_capacity": 4}}))},
        "configuration error: config_overrides: is a JSON string, not a JSON object (encoded twice?) "
        "(allowed: a JSON object)",
    ),
    (
        {"config_overrides": "null"},
        "configuration error: config_overrides: is null, not a JSON object (allowed: a JSON object)",
    ),
    (
        {"config_overrides": ""},
        "configuration error: config_overrides: is not valid JSON: Expecting value: line 1 column 1 (char 0) "
        "(allowed: valid JSON)",
    ),
    (
        {"config_overrides": '{"endpoint": {}, "endpoint": {"max_capacity": 4}}'},
        "configuration error: config_overrides: is not valid JSON: key 'endpoint' appears twice (allowed: valid JSON)",
    ),
    (
        {"config_overrides": '{"retraining": {"tolerance": NaN}}'},
        "configuration error: config_overrides: is not valid JSON: NaN is not JSON (allowed: valid JSON)",
    ),
    (
        {"config_overrides": "[" * 100_000},
        "configuration error: config_overrides: nests too deeply to be a configuration (allowed: valid JSON)",
    ),
    (
        {"config_overrides": '{"retraining": {"daily_cap": ' + "9" * 5000 + "}}"},
        "configuration error: config_overrides: is not valid JSON: Exceeds the limit (4300 digits) for integer "
        "string conversion… (allowed: valid JSON)",
    ),
    (
        {"config_overrides": '{"stage": "prod"}'},
        "configuration error: config_overrides.stage: the stage cannot be changed from inside config_overrides "
        "(allowed: -c stage=dev|prod)",
    ),
    (
        {"availability_zones": "us-east-1a,us-east-1b"},
        "configuration error: availability_zones: is not valid JSON: Expecting value: line 1 column 1 (char 0) "
        "(allowed: valid JSON)",
    ),
    (
        {"availability_zones": '["us-east-1a"]'},
        "configuration error: availability_zones: ['us-east-1a'] are not two distinct zones of us-east-1 "
        '(allowed: two of us-east-1a, us-east-1b, ...; -c availability_zones=\'["us-east-1a", "us-east-1b"]\')',
    ),
    (
        {"availability_zones": '["us-east-1a", "us-east-1a"]'},
        "configuration error: availability_zones: ['us-east-1a', 'us-east-1a'] are not two distinct zones of "
        "us-east-1 (allowed: …)",
    ),
    (
        {"availability_zones": ["eu-west-1a", "eu-west-1b"]},
        "configuration error: availability_zones: ['eu-west-1a', 'eu-west-1b'] are not two distinct zones of "
        "us-east-1 (allowed: …)",
    ),
    (
        {"availability_zones": {"a": 1}},
        "configuration error: availability_zones: is an object, not a JSON list (allowed: a JSON list)",
    ),
    ({"stage": "qa"}, "configuration error: stage: 'qa' is not a stage (allowed: dev, prod)"),
    ({"stage": ["dev"]}, "configuration error: stage: ['dev'] is not a stage (allowed: dev, prod)"),
    (
        {"region": "mars-north-1"},
        "configuration error: region: 'mars-north-1' is not a SageMaker region (allowed: af-south-1, …, us-east-1, …)",
    ),
    (
        {"region": "mx-central-1", "availability_zones": ["mx-central-1a", "mx-central-1b"]},
        "configuration error: region: SageMaker runs in mx-central-1, but the XGBoost framework container is not "
        "published there (allowed: …)",
    ),
    (
        {"operator_email": ["a@example.com", "b@example.com"]},
        "configuration error: operator_email: ['a@example.com', 'b@example.com'] is not one string "
        "(allowed: one e-mail address, as a string)",
    ),
    (
        {"operator_email": "a@example.com,b@example.com"},
        "configuration error: operator_email: 'a@example.com,b@example.com' is not one e-mail address "
        "(allowed: one address such as ops@example.com)",
    ),
    (
        {"stage": "prod"},
        "configuration error: operator_email: missing: operator_email is required in prod (alarms must reach a "
        "person) (allowed: one e-mail address; pass -c operator_email=you@example.com)",
    ),
    ({"account": "12345"}, "configuration error: account: '12345' is not an AWS account id (allowed: 12 digits)"),
    (
        {"account": 123456789012},
        "configuration error: account: 123456789012 is not one string (allowed: 12 digits, as a string)",
    ),
]

# config_overrides (parsed) -> the one line it fails with
BAD_OVERRIDES: list[tuple[dict[str, Any], str]] = [
    (
        {"endpoint": {"serverless": "false"}},
        "configuration error: endpoint.serverless: 'false' is not a boolean (a JSON true or false, not a string) "
        "(allowed: true, false)",
    ),
    (
        {"network": {"enabled": "true"}},
        "configuration error: network.enabled: 'true' is not a boolean (a JSON true or false, not a string) "
        "(allowed: true, false)",
    ),
    (
        {"training": {"use_spot": 0}},
        "configuration error: training.use_spot: 0 is not a boolean (a JSON true or false, not a string) "
        "(allowed: true, false)",
    ),
    (
        {"network": {"interface_endpoints": {**ALL_ENDPOINTS, "ssm": "false"}}},
        "configuration error: network.interface_endpoints.ssm: 'false' is not a boolean (a JSON true or false, not "
        "a string) (allowed: true, false)",
    ),
    (
        {"endpoint": {"max_capacity": "4"}},
        "configuration error: endpoint.max_capacity: '4' is not an integer (allowed: 1..100)",
    ),
    (
        {"endpoint": {"max_capacity": 2.5}},
        "configuration error: endpoint.max_capacity: 2.5 is not an integer (allowed: 1..100)",
    ),
    (
        {"training": {"instance_count": True}},
        "configuration error: training.instance_count: True is not an integer (allowed: 1..20)",
    ),
    (
        {"data": {"capture_expiry_days": 0}},
        "configuration error: data.capture_expiry_days: 0 is out of range (allowed: 1..3650)",
    ),
    (
        {"data": {"quarantine_expiry_days": -1}},
        "configuration error: data.quarantine_expiry_days: -1 is out of range (allowed: 1..3650)",
    ),
    (
        {"data": {"access_log_expiry_days": 100_000}},
        "configuration error: data.access_log_expiry_days: 100000 is out of range (allowed: 1..3650)",
    ),
    (
        {"retraining": {"metric_floor": float("inf")}},
        "configuration error: retraining.metric_floor: inf is not a finite number (allowed: finite and >= 0)",
    ),
    (
        {"retraining": {"metric_floor": 1.5}},
        "configuration error: retraining.metric_floor: 1.5 is outside the scale of validation:auc, the metric "
        "binary:logistic promotes on (allowed: 0..1)",
    ),
    (
        {"retraining": {"drift_psi_threshold": float("nan")}},
        "configuration error: retraining.drift_psi_threshold: nan is not a finite number (allowed: > 0 and <= 10)",
    ),
    (
        {"retraining": {"max_file_mb": 0}},
        "configuration error: retraining.max_file_mb: 0 is out of range (allowed: 1..5120)",
    ),
    (
        {"retraining": {"max_file_mb": 5120}},
        "configuration error: retraining.max_file_mb: 5120 MB cannot be checked within the ingest function's "
        "300 s timeout (one vCPU checks 8 MiB/s) (allowed: 1..1920)",
    ),
    (
        {"endpoint": {"max_4xx_rate_percent": -1}},
        "configuration error: endpoint.max_4xx_rate_percent: -1 is out of range (allowed: >= 0 and < 100)",
    ),
    (
        {"endpoint": {"max_5xx_per_minute": -1}},
        "configuration error: endpoint.max_5xx_per_minute: -1 is out of range (allowed: 0..100000)",
    ),
    (
        {"endpoint": {"target_utilisation": 0.95}},
        "configuration error: endpoint.target_utilisation: 0.95 is out of range (allowed: > 0 and <= 0.9)",
    ),
    (
        {"endpoint": {"measured_invocations_per_second": 0}},
        "configuration error: endpoint.measured_invocations_per_second: 0 is out of range (allowed: > 0 and <= 1e+06)",
    ),
    (
        {"endpoint": {"min_capacity": 3, "max_capacity": 2}},
        "configuration error: endpoint.min_capacity: 3 is more than endpoint.max_capacity (2) "
        "(allowed: 1..max_capacity (2))",
    ),
    (
        {"endpoint": {"no_invocations_alarm_minutes": 7}},
        "configuration error: endpoint.no_invocations_alarm_minutes: 7 is not a whole number of the alarm's "
        "5-minute periods (allowed: a multiple of 5 in 5..1440)",
    ),
    (
        {"endpoint": {"canary_wait_s": 3601}},
        "configuration error: endpoint.canary_wait_s: 3601 is out of range (allowed: 1..3600)",
    ),
    (
        {"training": {"max_wait_s": 600}},
        "configuration error: training.max_wait_s: 600 is shorter than training.max_runtime_s (3600) with spot "
        "(allowed: >= training.max_runtime_s, 60..432000)",
    ),
    (
        {"training": {"tuning": {"max_parallel_jobs": 30}}},
        "configuration error: training.tuning.max_parallel_jobs: 30 is more than training.tuning.max_jobs (20) "
        "(allowed: 1..max_jobs (20))",
    ),
    (
        {"training": {"tuning": {"ranges": {"eta": [0.3, 0.01]}}}},
        "configuration error: training.tuning.ranges.eta: [0.3, 0.01] is not [min, max] with min < max "
        "(allowed: a finite number > 0 and <= 1)",
    ),
    (
        {"training": {"tuning": {"ranges": {"eta": [0, 0.3]}}}},
        "configuration error: training.tuning.ranges.eta: bound 0 is refused by train.py: hyperparameter eta=0.0 "
        "must be > 0 (allowed: a finite number > 0 and <= 1)",
    ),
    (
        {"training": {"tuning": {"ranges": {"max_depth": [3.5, 10]}}}},
        "configuration error: training.tuning.ranges.max_depth: [3.5, 10] has a fractional bound "
        "(allowed: whole numbers, an integer >= 0)",
    ),
    (
        {"training": {"tuning": {"ranges": {"nonsense": [1, 2]}}}},
        "configuration error: training.tuning.ranges.nonsense: is not a hyperparameter train.py accepts "
        "(allowed: alpha, …, subsample)",
    ),
    (
        {"training": {"tuning": {"ranges": {"eta": [0.1]}}}},
        "configuration error: training.tuning.ranges.eta: [0.1] has 1 items, needs 2 "
        "(allowed: [min, max]: two finite numbers)",
    ),
    (
        {"training": {"tuning": {"ranges": {"eta": [0.01, True]}}}},
        "configuration error: training.tuning.ranges.eta[1]: True is not a number "
        "(allowed: [min, max]: two finite numbers)",
    ),
    (
        {"training": {"tuning": {"ranges": {"seed": [1, 9]}}}},
        "configuration error: training.tuning.ranges.seed: train.py reads seed as an integer, but a tuning job "
        "would send it fractions (allowed: alpha, …)",
    ),
    (
        {"training": {"hyperparameters": {"max_detph": "6"}}},
        "configuration error: training.hyperparameters.max_detph: is not a hyperparameter train.py accepts "
        "(allowed: alpha, …, max_depth, …)",
    ),
    (
        {"training": {"hyperparameters": {"learning_rate": "0.1"}}},
        "configuration error: training.hyperparameters.learning_rate: is train.py's alias of 'eta'; use that name "
        "(allowed: …)",
    ),
    (
        {"training": {"hyperparameters": {"sagemaker_program": "x.py"}}},
        "configuration error: training.hyperparameters.sagemaker_program: is not a hyperparameter train.py accepts "
        "(allowed: …)",
    ),
    (
        {"training": {"hyperparameters": {"subsample": "1.5"}}},
        "configuration error: training.hyperparameters.subsample: '1.5' is refused by train.py: hyperparameter "
        "subsample=1.5 must be <= 1 (allowed: a finite number > 0 and <= 1)",
    ),
    (
        {"training": {"hyperparameters": {"num_round": "inf"}}},
        "configuration error: training.hyperparameters.num_round: 'inf' is refused by train.py: hyperparameter "
        "num_round='inf' is not a valid int (allowed: an integer >= 1)",
    ),
    (
        {"training": {"hyperparameters": {"eval_train": "maybe"}}},
        "configuration error: training.hyperparameters.eval_train: 'maybe' is refused by train.py: hyperparameter "
        "eval_train='maybe' is not a valid bool (allowed: true or false)",
    ),
    (
        {"training": {"hyperparameters": {"objective": "reg:squarederror"}}},
        "configuration error: training.hyperparameters.objective: 'reg:squarederror' contradicts training.objective "
        "'binary:logistic' (allowed: training.objective's value, binary:logistic)",
    ),
    (
        {"training": {"hyperparameters": {"max_depth": {"a": 1}}}},
        "configuration error: training.hyperparameters.max_depth: {'a': 1} is not one string (allowed: a string)",
    ),
    (
        {"training": {"hyperparameters": ["eta", "0.1"]}},
        "configuration error: training.hyperparameters: ['eta', '0.1'] is not a JSON object "
        "(allowed: an object of train.py's names and string values)",
    ),
    (
        {"retraining": {"schedule": "every day"}},
        f"configuration error: retraining.schedule: 'every day' is neither cron(...) nor rate(...) "
        f"(allowed: {SCHEDULES})",
    ),
    (
        {"retraining": {"schedule": "cron(0 3 * * *)"}},
        "configuration error: retraining.schedule: 'cron(0 3 * * *)' has 5 cron fields, needs 6 "
        f"(allowed: {SCHEDULES})",
    ),
    (
        {"retraining": {"schedule": "cron(60 3 * * ? *)"}},
        "configuration error: retraining.schedule: 'cron(60 3 * * ? *)' minutes field '60': '60' is not a value "
        f"0..59, a range, a step or * (allowed: {SCHEDULES})",
    ),
    (
        {"retraining": {"schedule": "cron(0 3 * * * *)"}},
        "configuration error: retraining.schedule: 'cron(0 3 * * * *)' needs ? in exactly one of day-of-month and "
        f"day-of-week (allowed: {SCHEDULES})",
    ),
    (
        {"retraining": {"drift_schedule": "rate(0 hours)"}},
        "configuration error: retraining.drift_schedule: 'rate(0 hours)' is not rate(value unit) with a positive "
        f"whole value (allowed: {SCHEDULES})",
    ),
    (
        {"retraining": {"drift_schedule": "rate(5 hour)"}},
        "configuration error: retraining.drift_schedule: 'rate(5 hour)' needs a plural unit for 5 "
        f"(allowed: {SCHEDULES})",
    ),
    (
        {"retraining": {"drift_schedule": "rate(1 hours)"}},
        "configuration error: retraining.drift_schedule: 'rate(1 hours)' needs a singular unit for 1 "
        f"(allowed: {SCHEDULES})",
    ),
    (
        {"training": {"xgboost_framework_version": "1.7-1"}},
        "configuration error: training.xgboost_framework_version: '1.7-1' is not one of the choices (allowed: 3.2-0)",
    ),
    (
        {"training": {"objective": "rank:pairwise"}},
        "configuration error: training.objective: 'rank:pairwise' is not one of the choices "
        "(allowed: binary:logistic, multi:softprob, reg:squarederror)",
    ),
    (
        {"endpoint": {"instance_type": "ml.q9.large"}},
        "configuration error: endpoint.instance_type: 'ml.q9.large' is not a known instance type "
        "(allowed: families ml.t3, …)",
    ),
    (
        {"network": {"vpc_cidr": "8.8.0.0/16"}},
        "configuration error: network.vpc_cidr: '8.8.0.0/16' is not a private IPv4 network from /16 to /24 "
        "(allowed: e.g. 10.40.0.0/16)",
    ),
    (
        {"network": {"interface_endpoints": {"ssm": False}}},
        "configuration error: network.interface_endpoints: is missing ['sagemaker_api', …] "
        "(allowed: every one of sagemaker_api, … as true or false)",
    ),
    (
        {"data": {"log_retention_days": 42}},
        "configuration error: data.log_retention_days: 42 is not one of the choices (allowed: 1, 3, 5, …, 3288)",
    ),
    (
        {"endpoint": {"nonsense": 1}},
        "configuration error: endpoint.nonsense: is not a configuration key (allowed: instance_type, …)",
    ),
    (
        {"endpoint": "big"},
        "configuration error: endpoint: 'big' is not a JSON object (allowed: an object of instance_type, …)",
    ),
    (
        {"notebook": {"platform_identifier": "notebook-al2-v1"}},
        "configuration error: notebook.platform_identifier: 'notebook-al2-v1' is not an Amazon Linux 2023 platform "
        "(allowed: notebook-al2023-v1…)",
    ),
    (
        {"network": {"enabled": False}},
        "configuration error: notebook.enabled: needs network.enabled (the notebook runs in a private subnet "
        "without internet access) (allowed: false while network.enabled is false)",
    ),
    (
        {"app_name": "Sage_Cycle"},
        "configuration error: app_name: 'Sage_Cycle' is not a short lower-case name "
        "(allowed: 2..16 of a-z, 0-9, -, starting with a letter)",
    ),
    (
        {"operator_email": ""},
        "configuration error: operator_email: '' is not one e-mail address (allowed: one address such as "
        "ops@example.com)",
    ),
]


def test_dev_defaults_are_valid() -> None:
    cfg = load_config("dev")
    assert cfg.stage == "dev"
    assert cfg.availability_zones == ("us-east-1a", "us-east-1b")
    assert cfg.stack_name("Data") == "sagecycle-dev-Data"


def test_prod_defaults_are_valid_with_an_operator() -> None:
    cfg = load_config("prod", region="eu-west-1", operator_email="ops@example.com")
    assert cfg.endpoint.min_capacity >= 2
    assert cfg.availability_zones == ("eu-west-1a", "eu-west-1b")


def test_the_tables_hold_at_least_forty_bad_values() -> None:
    assert len(BAD_CONTEXT) + len(BAD_OVERRIDES) >= 40


@pytest.mark.parametrize(("context", "expected"), BAD_CONTEXT)
def test_bad_context_fails_with_one_line(context: dict[str, Any], expected: str) -> None:
    # GIVEN context values as cdk.json or `-c key=value` gives them
    # WHEN the config loads THEN one ConfigError names the key, the problem and what is allowed, on one line
    with pytest.raises(ConfigError) as caught:
        load_from_context(context.get, {})
    message = str(caught.value)
    assert "\n" not in message
    assert matches(expected, message), message


@pytest.mark.parametrize(("overrides", "expected"), BAD_OVERRIDES)
def test_bad_override_fails_with_one_line(overrides: dict[str, Any], expected: str) -> None:
    # GIVEN one wrong value in the overrides
    # WHEN the dev config loads THEN one ConfigError names the key, the problem and what is allowed, on one line
    with pytest.raises(ConfigError) as caught:
        load_config("dev", overrides=overrides)
    message = str(caught.value)
    assert "\n" not in message
    assert matches(expected, message), message
    assert message.startswith(f"configuration error: {caught.value.key}: ")


def test_the_same_override_as_cdk_passes_it() -> None:
    # GIVEN config_overrides as the string `-c config_overrides=...` passes
    context = {"config_overrides": '{"endpoint": {"max_capacity": 4}, "retraining": {"rollback_on_alarm": true}}'}
    # WHEN the config loads THEN the JSON values arrive with their JSON types
    cfg = load_from_context(context.get, {})
    assert cfg.endpoint.max_capacity == 4
    assert cfg.retraining.rollback_on_alarm is True


def test_region_and_account_fall_back_to_cdk_environment() -> None:
    # GIVEN no region or account in context but CDK's environment variables
    environ = {"CDK_DEFAULT_REGION": "eu-west-1", "CDK_DEFAULT_ACCOUNT": "123456789012"}
    # WHEN the config loads THEN they are used
    cfg = load_from_context({}.get, environ)
    assert (cfg.region, cfg.account, cfg.availability_zones) == (
        "eu-west-1",
        "123456789012",
        ("eu-west-1a", "eu-west-1b"),
    )


def test_hyperparameters_as_json_numbers_become_the_strings_sagemaker_sends() -> None:
    # GIVEN hyperparameters written as JSON numbers, a boolean and a list
    overrides = {
        "training": {"hyperparameters": {"max_depth": 8, "eta": 0.05, "eval_train": True, "eval_metric": ["auc"]}}
    }
    # WHEN the config loads THEN each is the string train.py parses
    hps = load_config("dev", overrides=overrides).training.hyperparameters
    assert dict(hps) == {"max_depth": "8", "eta": "0.05", "eval_train": "true", "eval_metric": "auc"}


def test_prod_refuses_a_single_instance_endpoint() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            "prod",
            operator_email="ops@example.com",
            overrides={"endpoint": {"min_capacity": 1, "initial_instance_count": 1}},
        )
    assert caught.value.key == "endpoint.min_capacity"


def test_autoscaling_target_is_derived_from_measured_throughput() -> None:
    cfg = load_config(
        "dev", overrides={"endpoint": {"measured_invocations_per_second": 200, "target_utilisation": 0.5}}
    )
    # 200/s measured, half of it targeted, as invocations per instance per minute
    assert cfg.endpoint.invocations_per_instance_target == 6000


def test_notebook_platform_is_an_amazon_linux_2023_identifier() -> None:
    # GIVEN the dev defaults WHEN they load THEN the notebook runs AL2023 (AL1/AL2 platforms are deprecated)
    cfg = load_config("dev")
    assert cfg.notebook.platform_identifier == "notebook-al2023-v1"
    assert cfg.notebook.ignore_connections is False


def test_network_defaults_switch_every_endpoint_explicitly() -> None:
    # GIVEN both stages WHEN they load THEN every interface endpoint is named, dev leaving the notebook one off
    dev, prod = load_config("dev"), load_config("prod", operator_email="ops@example.com")
    assert [k for k, on in dev.network.interface_endpoints.items() if not on] == ["sagemaker_notebook"]
    assert all(prod.network.interface_endpoints.values())
    assert dev.network.vpc_cidr == "10.40.0.0/16"


@pytest.mark.parametrize(
    ("endpoint", "key"),
    [
        ({"termination_wait_s": -1}, "endpoint.termination_wait_s"),
        ({"deployment_timeout_s": 599}, "endpoint.deployment_timeout_s"),
        ({"canary_wait_s": 3600, "termination_wait_s": 3600}, "endpoint.deployment_timeout_s"),
        ({"scale_in_cooldown_s": 0}, "endpoint.scale_in_cooldown_s"),
        ({"latency_slo_ms": float("inf")}, "endpoint.latency_slo_ms"),
    ],
)
def test_endpoint_deployment_and_idle_limits_name_the_key(endpoint: dict[str, Any], key: str) -> None:
    # GIVEN an endpoint override outside SageMaker's blue/green or CloudWatch's limits
    # WHEN the config loads THEN it fails with the key
    with pytest.raises(ConfigError) as caught:
        load_config("dev", overrides={"endpoint": endpoint})
    assert caught.value.key == key


def test_ingest_memory_is_sized_from_the_largest_file() -> None:
    # GIVEN the default size limit, one that needs more CPU, and the largest that fits
    # WHEN each configuration is loaded
    sizes = {mb: load_config("dev", overrides={"retraining": {"max_file_mb": mb}}) for mb in (100, 1500, 1920)}
    # THEN the default keeps 1,024 MB, more buys CPU in proportion, and the largest uses one vCPU
    assert [cfg.retraining.ingest_memory_mb for cfg in sizes.values()] == [1024, 1383, 1769]
