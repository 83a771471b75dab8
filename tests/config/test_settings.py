"""Stage configuration: the defaults are valid, and every wrong value fails before any construct is built,
with one line that names the key, the problem and what is allowed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from config.fields import ConfigErrorCode
from config.settings import INTERFACE_ENDPOINTS, ConfigError, load_config, load_from_context

ALL_ENDPOINTS = dict.fromkeys(INTERFACE_ENDPOINTS, True)
SCHEDULES = (
    "cron(minutes hours day-of-month month day-of-week year) with ? in exactly one of the day fields, "
    "or rate(1 minute|hour|day) / rate(N minutes|hours|days)"
)


def assert_one_line(error: ConfigError) -> None:
    """The text is built from the error's own parts, on one line (what app.py prints before it exits)."""
    assert str(error) == f"configuration error: {error.key}: {error.problem} (allowed: {error.allowed})"
    assert "\n" not in str(error)


# context (as cdk.json or `-c key=value` gives it) -> the key it fails on, and the kind of mistake
BAD_CONTEXT: list[tuple[dict[str, Any], str, ConfigErrorCode]] = [
    ({"config_overrides": "{not json"}, "config_overrides", "invalid-json"),
    ({"config_overrides": "[1, 2]"}, "config_overrides", "wrong-type"),
    ({"config_overrides": "42"}, "config_overrides", "wrong-type"),
    ({"config_overrides": json.dumps(json.dumps({"endpoint": {"max_capacity": 4}}))}, "config_overrides", "wrong-type"),
    ({"config_overrides": "null"}, "config_overrides", "wrong-type"),
    ({"config_overrides": ""}, "config_overrides", "invalid-json"),
    ({"config_overrides": '{"endpoint": {}, "endpoint": {"max_capacity": 4}}'}, "config_overrides", "invalid-json"),
    ({"config_overrides": '{"retraining": {"tolerance": NaN}}'}, "config_overrides", "invalid-json"),
    ({"config_overrides": "[" * 100_000}, "config_overrides", "invalid-json"),
    ({"config_overrides": '{"retraining": {"daily_cap": ' + "9" * 5000 + "}}"}, "config_overrides", "invalid-json"),
    ({"config_overrides": '{"stage": "prod"}'}, "config_overrides.stage", "not-overridable"),
    ({"availability_zones": "us-east-1a,us-east-1b"}, "availability_zones", "invalid-json"),
    ({"availability_zones": '["us-east-1a"]'}, "availability_zones", "invalid"),
    ({"availability_zones": '["us-east-1a", "us-east-1a"]'}, "availability_zones", "invalid"),
    ({"availability_zones": ["eu-west-1a", "eu-west-1b"]}, "availability_zones", "invalid"),
    ({"availability_zones": {"a": 1}}, "availability_zones", "wrong-type"),
    ({"stage": "qa"}, "stage", "not-a-choice"),
    ({"stage": ["dev"]}, "stage", "not-a-choice"),
    ({"region": "mars-north-1"}, "region", "invalid"),
    ({"region": "mx-central-1", "availability_zones": ["mx-central-1a", "mx-central-1b"]}, "region", "invalid"),
    ({"operator_email": ["a@example.com", "b@example.com"]}, "operator_email", "wrong-type"),
    ({"operator_email": "a@example.com,b@example.com"}, "operator_email", "invalid"),
    ({"stage": "prod"}, "operator_email", "missing"),
    ({"account": "12345"}, "account", "invalid"),
    ({"account": 123456789012}, "account", "wrong-type"),
]

# config_overrides (parsed) -> the key it fails on, and the kind of mistake
BAD_OVERRIDES: list[tuple[dict[str, Any], str, ConfigErrorCode]] = [
    ({"endpoint": {"serverless": "false"}}, "endpoint.serverless", "wrong-type"),
    ({"network": {"enabled": "true"}}, "network.enabled", "wrong-type"),
    ({"training": {"use_spot": 0}}, "training.use_spot", "wrong-type"),
    (
        {"network": {"interface_endpoints": {**ALL_ENDPOINTS, "ssm": "false"}}},
        "network.interface_endpoints.ssm",
        "wrong-type",
    ),
    ({"endpoint": {"max_capacity": "4"}}, "endpoint.max_capacity", "wrong-type"),
    ({"endpoint": {"max_capacity": 2.5}}, "endpoint.max_capacity", "wrong-type"),
    ({"training": {"instance_count": True}}, "training.instance_count", "wrong-type"),
    ({"data": {"capture_expiry_days": 0}}, "data.capture_expiry_days", "out-of-range"),
    ({"data": {"quarantine_expiry_days": -1}}, "data.quarantine_expiry_days", "out-of-range"),
    ({"data": {"access_log_expiry_days": 100_000}}, "data.access_log_expiry_days", "out-of-range"),
    ({"retraining": {"metric_floor": float("inf")}}, "retraining.metric_floor", "wrong-type"),
    ({"retraining": {"metric_floor": 1.5}}, "retraining.metric_floor", "invalid"),
    ({"retraining": {"drift_psi_threshold": float("nan")}}, "retraining.drift_psi_threshold", "wrong-type"),
    ({"retraining": {"max_file_mb": 0}}, "retraining.max_file_mb", "out-of-range"),
    ({"retraining": {"max_file_mb": 5120}}, "retraining.max_file_mb", "invalid"),
    ({"endpoint": {"max_4xx_rate_percent": -1}}, "endpoint.max_4xx_rate_percent", "out-of-range"),
    ({"endpoint": {"max_5xx_per_minute": -1}}, "endpoint.max_5xx_per_minute", "out-of-range"),
    ({"endpoint": {"target_utilisation": 0.95}}, "endpoint.target_utilisation", "out-of-range"),
    ({"endpoint": {"measured_invocations_per_second": 0}}, "endpoint.measured_invocations_per_second", "out-of-range"),
    ({"endpoint": {"min_capacity": 3, "max_capacity": 2}}, "endpoint.min_capacity", "invalid"),
    ({"endpoint": {"no_invocations_alarm_minutes": 7}}, "endpoint.no_invocations_alarm_minutes", "invalid"),
    ({"endpoint": {"canary_wait_s": 3601}}, "endpoint.canary_wait_s", "out-of-range"),
    ({"training": {"max_wait_s": 600}}, "training.max_wait_s", "invalid"),
    ({"training": {"tuning": {"max_parallel_jobs": 30}}}, "training.tuning.max_parallel_jobs", "invalid"),
    ({"training": {"tuning": {"ranges": {"eta": [0.3, 0.01]}}}}, "training.tuning.ranges.eta", "invalid"),
    ({"training": {"tuning": {"ranges": {"eta": [0, 0.3]}}}}, "training.tuning.ranges.eta", "refused-by-train"),
    ({"training": {"tuning": {"ranges": {"max_depth": [3.5, 10]}}}}, "training.tuning.ranges.max_depth", "invalid"),
    ({"training": {"tuning": {"ranges": {"nonsense": [1, 2]}}}}, "training.tuning.ranges.nonsense", "unknown-key"),
    ({"training": {"tuning": {"ranges": {"eta": [0.1]}}}}, "training.tuning.ranges.eta", "wrong-type"),
    ({"training": {"tuning": {"ranges": {"eta": [0.01, True]}}}}, "training.tuning.ranges.eta[1]", "wrong-type"),
    ({"training": {"tuning": {"ranges": {"seed": [1, 9]}}}}, "training.tuning.ranges.seed", "invalid"),
    ({"training": {"hyperparameters": {"max_detph": "6"}}}, "training.hyperparameters.max_detph", "unknown-key"),
    (
        {"training": {"hyperparameters": {"learning_rate": "0.1"}}},
        "training.hyperparameters.learning_rate",
        "unknown-key",
    ),
    (
        {"training": {"hyperparameters": {"sagemaker_program": "x.py"}}},
        "training.hyperparameters.sagemaker_program",
        "unknown-key",
    ),
    ({"training": {"hyperparameters": {"subsample": "1.5"}}}, "training.hyperparameters.subsample", "refused-by-train"),
    ({"training": {"hyperparameters": {"num_round": "inf"}}}, "training.hyperparameters.num_round", "refused-by-train"),
    (
        {"training": {"hyperparameters": {"eval_train": "maybe"}}},
        "training.hyperparameters.eval_train",
        "refused-by-train",
    ),
    (
        {"training": {"hyperparameters": {"objective": "reg:squarederror"}}},
        "training.hyperparameters.objective",
        "invalid",
    ),
    ({"training": {"hyperparameters": {"max_depth": {"a": 1}}}}, "training.hyperparameters.max_depth", "wrong-type"),
    ({"training": {"hyperparameters": ["eta", "0.1"]}}, "training.hyperparameters", "not-an-object"),
    ({"retraining": {"schedule": "every day"}}, "retraining.schedule", "invalid"),
    ({"retraining": {"schedule": "cron(0 3 * * *)"}}, "retraining.schedule", "invalid"),
    ({"retraining": {"schedule": "cron(60 3 * * ? *)"}}, "retraining.schedule", "invalid"),
    ({"retraining": {"schedule": "cron(0 3 * * * *)"}}, "retraining.schedule", "invalid"),
    ({"retraining": {"drift_schedule": "rate(0 hours)"}}, "retraining.drift_schedule", "invalid"),
    ({"retraining": {"drift_schedule": "rate(5 hour)"}}, "retraining.drift_schedule", "invalid"),
    ({"retraining": {"drift_schedule": "rate(1 hours)"}}, "retraining.drift_schedule", "invalid"),
    ({"training": {"xgboost_framework_version": "1.7-1"}}, "training.xgboost_framework_version", "not-a-choice"),
    ({"training": {"objective": "rank:pairwise"}}, "training.objective", "not-a-choice"),
    ({"endpoint": {"instance_type": "ml.q9.large"}}, "endpoint.instance_type", "invalid"),
    ({"network": {"vpc_cidr": "8.8.0.0/16"}}, "network.vpc_cidr", "invalid"),
    ({"network": {"interface_endpoints": {"ssm": False}}}, "network.interface_endpoints", "invalid"),
    ({"data": {"log_retention_days": 42}}, "data.log_retention_days", "not-a-choice"),
    ({"endpoint": {"nonsense": 1}}, "endpoint.nonsense", "unknown-key"),
    ({"endpoint": "big"}, "endpoint", "not-an-object"),
    ({"notebook": {"platform_identifier": "notebook-al2-v1"}}, "notebook.platform_identifier", "invalid"),
    ({"network": {"enabled": False}}, "notebook.enabled", "invalid"),
    ({"app_name": "Sage_Cycle"}, "app_name", "invalid"),
    ({"operator_email": ""}, "operator_email", "invalid"),
]


def test_dev_defaults_are_valid() -> None:
    # GIVEN no overrides WHEN the dev config loads
    cfg = load_config("dev")
    # THEN it validates, in two zones of the default region
    assert cfg.stage == "dev"
    assert cfg.availability_zones == ("us-east-1a", "us-east-1b")
    assert cfg.stack_name("Data") == "sagecycle-dev-Data"


def test_prod_defaults_are_valid_with_an_operator() -> None:
    # GIVEN prod in another region, with the operator prod requires
    # WHEN it loads
    cfg = load_config("prod", region="eu-west-1", operator_email="ops@example.com")
    # THEN it validates, with two instances (two zones) and that region's zones
    assert cfg.endpoint.min_capacity >= 2
    assert cfg.availability_zones == ("eu-west-1a", "eu-west-1b")


def test_the_tables_hold_at_least_forty_bad_values() -> None:
    # GIVEN the tables of bad context and bad overrides WHEN counted
    # THEN they cover at least forty wrong values
    assert len(BAD_CONTEXT) + len(BAD_OVERRIDES) >= 40


@pytest.mark.parametrize(("context", "key", "code"), BAD_CONTEXT)
def test_bad_context_fails_with_one_line(context: dict[str, Any], key: str, code: ConfigErrorCode) -> None:
    # GIVEN context values as cdk.json or `-c key=value` gives them
    # WHEN the config loads
    with pytest.raises(ConfigError) as caught:
        load_from_context(context.get, {})
    # THEN one ConfigError names the key and the kind of mistake, on one line
    assert (caught.value.key, caught.value.code) == (key, code), str(caught.value)
    assert_one_line(caught.value)


@pytest.mark.parametrize(("overrides", "key", "code"), BAD_OVERRIDES)
def test_bad_override_fails_with_one_line(overrides: dict[str, Any], key: str, code: ConfigErrorCode) -> None:
    # GIVEN one wrong value in the overrides
    # WHEN the dev config loads
    with pytest.raises(ConfigError) as caught:
        load_config("dev", overrides=overrides)
    # THEN one ConfigError names the key and the kind of mistake, on one line
    assert (caught.value.key, caught.value.code) == (key, code), str(caught.value)
    assert_one_line(caught.value)


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
    # GIVEN prod with one endpoint instance
    # WHEN it loads
    with pytest.raises(ConfigError) as caught:
        load_config(
            "prod",
            operator_email="ops@example.com",
            overrides={"endpoint": {"min_capacity": 1, "initial_instance_count": 1}},
        )
    # THEN the capacity rule refuses it
    assert (caught.value.key, caught.value.code) == ("endpoint.min_capacity", "invalid")


def test_autoscaling_target_is_derived_from_measured_throughput() -> None:
    # GIVEN 200 invocations/s measured per instance and half of it targeted
    # WHEN the config loads
    cfg = load_config(
        "dev", overrides={"endpoint": {"measured_invocations_per_second": 200, "target_utilisation": 0.5}}
    )
    # THEN the target is that, as invocations per instance per minute
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
    # WHEN the config loads
    with pytest.raises(ConfigError) as caught:
        load_config("dev", overrides={"endpoint": endpoint})
    # THEN it fails with the key
    assert caught.value.key == key


def test_ingest_memory_is_sized_from_the_largest_file() -> None:
    # GIVEN the default size limit, one that needs more CPU, and the largest that fits
    # WHEN each configuration is loaded
    sizes = {mb: load_config("dev", overrides={"retraining": {"max_file_mb": mb}}) for mb in (100, 1500, 1920)}
    # THEN the default keeps 1,024 MB, more buys CPU in proportion, and the largest uses one vCPU
    assert [cfg.retraining.ingest_memory_mb for cfg in sizes.values()] == [1024, 1383, 1769]
