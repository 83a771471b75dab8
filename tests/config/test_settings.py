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
