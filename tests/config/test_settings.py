"""Stage configuration: defaults are valid, and each wrong value fails with the key and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from config.settings import ConfigError, load_config


def test_dev_defaults_are_valid() -> None:
    cfg = load_config("dev")
    assert cfg.stage == "dev"
    assert cfg.availability_zones == ("us-east-1a", "us-east-1b")
    assert cfg.stack_name("Data") == "sagecycle-dev-Data"


def test_prod_defaults_are_valid_with_an_operator() -> None:
    cfg = load_config("prod", region="eu-west-1", operator_email="ops@example.com")
    assert cfg.endpoint.min_capacity >= 2
    assert cfg.availability_zones == ("eu-west-1a", "eu-west-1b")


@pytest.mark.parametrize(
    ("kwargs", "overrides", "expected"),
    [
        ({}, {"endpoint": {"min_capacity": 3, "max_capacity": 2}}, r"endpoint.min_capacity \(3\) must be <= endpoint"),
        ({}, {"endpoint": {"instance_type": "ml.q9.large"}}, r"endpoint.instance_type='ml.q9.large'.*allowed families"),
        ({}, {"training": {"instance_type": "m5.large"}}, r"training.instance_type='m5.large'.*allowed families"),
        ({}, {"retraining": {"tolerance": -0.1}}, r"retraining.tolerance must be >= 0"),
        ({}, {"retraining": {"drift_psi_threshold": -1}}, r"retraining.drift_psi_threshold must be > 0"),
        ({"region": "mars-north-1"}, {}, r"region='mars-north-1' is not a SageMaker region; allowed: .*us-east-1"),
        ({}, {"endpoint": {"nonsense": 1}}, r"unknown configuration key 'endpoint.nonsense'; allowed: instance_type"),
        ({}, {"training": {"objective": "rank:pairwise"}}, r"training.objective='rank:pairwise'; allowed: binary"),
        ({}, {"data": {"log_retention_days": 42}}, r"data.log_retention_days=42 .*allowed: \(1, 3"),
        ({}, {"endpoint": {"data_capture_sampling_percent": 101}}, r"data_capture_sampling_percent must be 0..100"),
        ({}, {"network": {"interface_endpoints": {"ftp": True}}}, r"unknown \['ftp'\]; allowed: sagemaker_api"),
        ({}, {"retraining": {"schedule": "every day"}}, r"retraining.schedule='every day' must be cron"),
        ({"availability_zones": ["eu-west-1a", "eu-west-1b"]}, {}, r"availability_zones=.*must name at least 2 zones"),
        ({}, {"endpoint": {"max_capacity": "two"}}, r"endpoint.max_capacity must be an integer, got 'two'"),
        ({"operator_email": "not-an-address"}, {}, r"operator_email='not-an-address' is not an e-mail address"),
        ({}, {"network": {"interface_endpoints": {"ssm": False}}}, r"interface_endpoints is missing \['sagemaker_api'"),
        ({}, {"network": {"vpc_cidr": "8.8.0.0/16"}}, r"network.vpc_cidr='8.8.0.0/16' must be a private IPv4"),
        ({}, {"network": {"vpc_cidr": "10.0.0.0/28"}}, r"network.vpc_cidr='10.0.0.0/28' must be .* /16 to /24"),
        (
            {},
            {"network": {"enabled": False, "restrict_buckets_to_vpce": True}, "notebook": {"enabled": False}},
            r"network.restrict_buckets_to_vpce needs network.enabled",
        ),
        ({}, {"network": {"enabled": False}}, r"notebook.enabled needs network.enabled"),
        (
            {},
            {"notebook": {"platform_identifier": "notebook-al2-v1"}},
            r"platform_identifier='notebook-al2-v1'; allowed: no",
        ),
    ],
)
def test_wrong_values_fail_with_the_key_and_allowed_values(
    kwargs: dict[str, Any], overrides: dict[str, Any], expected: str
) -> None:
    # GIVEN a wrong value WHEN the dev config loads THEN one error names the key and the allowed values
    with pytest.raises(ConfigError, match=expected):
        load_config("dev", overrides=overrides, **kwargs)


def test_prod_refuses_a_single_instance_endpoint() -> None:
    with pytest.raises(ConfigError, match=r"endpoint.min_capacity must be >= 2 in prod"):
        load_config(
            "prod",
            operator_email="ops@example.com",
            overrides={"endpoint": {"min_capacity": 1, "initial_instance_count": 1}},
        )


def test_unknown_stage_names_the_stages() -> None:
    with pytest.raises(ConfigError, match=r"stage='qa' is not a stage; allowed: dev, prod"):
        load_config("qa")


def test_overrides_are_applied_and_typed() -> None:
    cfg = load_config("dev", overrides={"endpoint": {"max_capacity": "4", "serverless": "true"}})
    assert cfg.endpoint.max_capacity == 4
    assert cfg.endpoint.serverless is True


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
    ("endpoint", "message"),
    [
        ({"canary_wait_s": 3601}, r"endpoint.canary_wait_s must be <= 3600, got 3601"),
        ({"termination_wait_s": -1}, r"endpoint.termination_wait_s must be 0..3600, got -1"),
        ({"deployment_timeout_s": 599}, r"deployment_timeout_s \(599\) must be 600..28800"),
        ({"canary_wait_s": 3600, "termination_wait_s": 3600}, r"> canary_wait_s \+ termination_wait_s \(7200\)"),
        ({"no_invocations_alarm_minutes": 7}, r"no_invocations_alarm_minutes must be a multiple of 5 in 5..1440"),
    ],
)
def test_endpoint_deployment_and_idle_limits_name_the_key(endpoint: dict[str, Any], message: str) -> None:
    # GIVEN an endpoint override outside SageMaker's blue/green or CloudWatch's limits
    # WHEN the config loads THEN it fails with the key and the allowed range
    with pytest.raises(ConfigError, match=message):
        load_config("dev", overrides={"endpoint": endpoint})
