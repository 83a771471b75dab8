"""TrainingSpecSettings and its parts: their rules, their JSON codec (TRAINING_SETTINGS), immutability."""

from __future__ import annotations

import json

import pytest

from lambdas.shared.job_settings import (
    EndpointSettings,
    ParameterRange,
    SettingsError,
    TrainingSpecSettings,
    VpcSettings,
)
from tests.lambdas.jobspec_support import BASE, settings

# ----------------------------------------------------------------------------------------- settings


def test_settings_round_trip_through_json() -> None:
    # GIVEN settings with nested, optional and mapping fields set
    full = settings(
        use_spot=True, vpc=VpcSettings(("subnet-1",), ("sg-1",)), endpoint=EndpointSettings(canary_percent=25)
    )
    # WHEN serialised and parsed back
    # THEN nothing is lost, compact or not
    assert TrainingSpecSettings.from_json(full.to_json()) == full
    assert TrainingSpecSettings.from_json(full.to_json(include_defaults=True)) == full


def test_settings_json_fits_comfortably_in_a_lambda_environment() -> None:
    # GIVEN realistic prod settings (Lambda allows 4 KB for all environment variables together)
    prod = settings(
        use_spot=False, instance_count=2, vpc=VpcSettings(("subnet-0a1b2c3d", "subnet-4e5f6a7b"), ("sg-1",))
    )
    # WHEN serialised
    # THEN the compact form stays under 1.5 KB
    assert len(prod.to_json().encode()) < 1500


def test_settings_json_rejects_unknown_keys() -> None:
    # GIVEN JSON with a misspelt key
    data = json.loads(BASE.to_json())
    data["tuning"] = {"max_job": 5}
    # WHEN parsed
    with pytest.raises(SettingsError) as caught:
        TrainingSpecSettings.from_json(json.dumps(data))
    # THEN the path of the key is named
    assert (caught.value.code, caught.value.where) == ("unknown-keys", "settings.tuning")


def test_settings_json_rejects_wrong_types() -> None:
    # GIVEN an instance count given as a string
    data = json.loads(BASE.to_json())
    data["instance_count"] = "2"
    # WHEN parsed
    with pytest.raises(SettingsError) as caught:
        TrainingSpecSettings.from_json(json.dumps(data))
    # THEN the field is named
    assert (caught.value.code, caught.value.where) == ("wrong-type", "settings.instance_count")


def test_settings_refuse_spot_wait_shorter_than_runtime() -> None:
    # GIVEN a max wait below the max runtime
    # WHEN settings are made
    with pytest.raises(SettingsError) as caught:
        settings(use_spot=True, max_runtime_seconds=3600, max_wait_seconds=600)
    # THEN they are refused for that one rule
    assert (caught.value.code, len(caught.value.problems)) == ("invalid", 1)


def test_settings_refuse_reserved_hyperparameters() -> None:
    # GIVEN a hyperparameter in the container's namespace
    # WHEN settings are made
    with pytest.raises(SettingsError) as caught:
        settings(hyperparameters={"sagemaker_program": "evil.py"})
    # THEN they are refused for that one rule
    assert (caught.value.code, len(caught.value.problems)) == ("invalid", 1)


def test_settings_are_immutable() -> None:
    # GIVEN settings
    # WHEN a mapping field is changed in place
    # THEN it refuses
    with pytest.raises(TypeError):
        BASE.hyperparameters["eta"] = "1"  # type: ignore[index]


def test_tuning_range_from_config_bounds_uses_integer_kind_for_integer_hyperparameters() -> None:
    # GIVEN [min, max] bounds as the stage config holds them
    # WHEN ranges are made
    # THEN max_depth becomes an integer range, eta a continuous one
    assert ParameterRange.from_bounds("max_depth", 3.0, 10.0) == ParameterRange("max_depth", "integer", "3", "10")
    assert ParameterRange.from_bounds("eta", 0.01, 0.3) == ParameterRange("eta", "continuous", "0.01", "0.3")
