"""Schedule expressions as EventBridge reads them (eb-scheduled-rule-pattern): six cron fields or a rate."""

from __future__ import annotations

import pytest

from config.settings import ConfigError, load_config, schedule_problem

# The user guide's examples and the project's defaults.
VALID = [
    "cron(0 3 * * ? *)",
    "cron(0 10 * * ? *)",
    "cron(15 12 * * ? *)",
    "cron(0 18 ? * MON-FRI *)",
    "cron(0 8 1 * ? *)",
    "cron(0/15 * * * ? *)",
    "cron(0/10 * ? * MON-FRI *)",
    "cron(0/5 8-17 ? * MON-FRI *)",
    "cron(0 9 ? * 2#1 *)",
    "cron(0 0 L * ? *)",
    "cron(0 0 ? * 6L *)",
    "cron(0 0 3W * ? *)",
    "cron(0-15/1 8-8 ? * 2,3,4,5,6,7 *)",
    "cron(30 13 ? JAN,JUL SUN 2030-2035)",
    "rate(1 minute)",
    "rate(5 minutes)",
    "rate(1 hour)",
    "rate(12 hours)",
    "rate(1 day)",
    "rate(7 days)",
]
INVALID = [
    "cron(0 3 * * ? * *)",  # seven fields
    "cron(0 3 * * ?)",  # five
    "cron(0  3 * * ? *)",  # an empty field
    "cron(0 24 * * ? *)",  # hour 24
    "cron(0 3 32 * ? *)",  # day 32
    "cron(0 3 ? 13 * *)",  # month 13
    "cron(0 3 ? * 8 *)",  # weekday 8
    "cron(0 3 ? * 2#6 *)",  # sixth Monday
    "cron(0 3 ? * 2#1,3#2 *)",  # two # expressions
    "cron(0 3 * * ? 1969)",  # before 1970
    "cron(*/60 * * * ? *)",  # step past the field
    "cron(0 3 ? * ? *)",  # ? in both day fields
    "cron(0 3 * * * *)",  # ? in neither
    "cron(? 3 * * ? *)",  # ? outside the day fields
    "cron(0 3 5X * ? *)",  # no such wildcard
    "rate(0 minutes)",
    "rate(1 minutes)",
    "rate(5 minute)",
    "rate(1.5 hours)",
    "rate(-1 hours)",
    "rate(5 seconds)",
    "rate(5minutes)",
    "Rate(5 minutes)",
    "at(2030-01-01T00:00:00)",
    "",
]


@pytest.mark.parametrize("expression", VALID)
def test_valid_expressions_pass(expression: str) -> None:
    # GIVEN a schedule EventBridge accepts WHEN it is checked, alone and in a stage config
    # THEN no problem is found and the config loads with it
    assert schedule_problem(expression) is None
    assert load_config("dev", overrides={"retraining": {"drift_schedule": expression}}).retraining.drift_schedule


@pytest.mark.parametrize("expression", INVALID)
def test_invalid_expressions_fail_synth(expression: str) -> None:
    # GIVEN a schedule EventBridge would refuse WHEN the config loads THEN it names the key
    assert schedule_problem(expression) is not None
    with pytest.raises(ConfigError) as caught:
        load_config("dev", overrides={"retraining": {"schedule": expression}})
    assert (caught.value.key, caught.value.code) == ("retraining.schedule", "invalid")
