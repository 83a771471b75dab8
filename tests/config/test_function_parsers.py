"""Every rule the functions' own settings parsers enforce also fails synth, named by the stage setting.

The stage config hands the functions TRAINING_SETTINGS (lambdas/shared/job_settings.py TrainingSpecSettings and its
JSON codec) and RETRAIN_POLICY (lambdas/shared/policy.py RetrainPolicy), and the start function checks that
the training lock outlives the longest run (lambdas/shared/function_settings.py). load_config runs those same
parsers on the values it produces, so a stage config the functions would refuse never reaches deploy.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import ConfigError, load_config, retrain_policy_document, training_spec_fields
from lambdas.shared.function_settings import check_lock_outlives_run, longest_run_seconds
from lambdas.shared.job_settings import TrainingSpecSettings
from lambdas.shared.policy import RULES, RetrainPolicy

VIA_PARSER = "refused-by-function"  # ConfigError's code for what the functions' own parsers refuse

# (the parser's rule, a stage override that breaks it, the setting named, whether only the parser catches it)
RULE_CASES: list[tuple[str, dict[str, Any], str, bool]] = [
    # RETRAIN_POLICY (RetrainPolicy.RULES and its type checks)
    (
        "RETRAIN_POLICY min_interval_minutes >= 0",
        {"retraining": {"min_interval_minutes": -1}},
        "retraining.min_interval_minutes",
        True,
    ),
    ("RETRAIN_POLICY daily_cap >= 1", {"retraining": {"daily_cap": 0}}, "retraining.daily_cap", True),
    (
        "RETRAIN_POLICY metric_floor finite",
        {"retraining": {"metric_floor": float("inf")}},
        "retraining.metric_floor",
        False,
    ),
    ("RETRAIN_POLICY tolerance >= 0", {"retraining": {"tolerance": -0.001}}, "retraining.tolerance", True),
    ("RETRAIN_POLICY tolerance finite", {"retraining": {"tolerance": float("inf")}}, "retraining.tolerance", False),
    ("RETRAIN_POLICY max_file_bytes >= 1", {"retraining": {"max_file_mb": 0}}, "retraining.max_file_mb", False),
    (
        "RETRAIN_POLICY drift_psi_threshold > 0",
        {"retraining": {"drift_psi_threshold": 0}},
        "retraining.drift_psi_threshold",
        True,
    ),
    (
        "RETRAIN_POLICY drift_psi_threshold finite",
        {"retraining": {"drift_psi_threshold": float("nan")}},
        "retraining.drift_psi_threshold",
        False,
    ),
    (
        "RETRAIN_POLICY rollback_on_alarm is bool",
        {"retraining": {"rollback_on_alarm": "yes"}},
        "retraining.rollback_on_alarm",
        False,
    ),
    ("RETRAIN_POLICY daily_cap is int", {"retraining": {"daily_cap": 1.5}}, "retraining.daily_cap", False),
    # TRAINING_SETTINGS: EndpointSettings
    (
        "EndpointSettings serverless_max_concurrency >= 1",
        {"endpoint": {"serverless_max_concurrency": 0}},
        "endpoint.serverless_max_concurrency",
        True,
    ),
    (
        "EndpointSettings serverless_max_concurrency <= 200",
        {"endpoint": {"serverless_max_concurrency": 201}},
        "endpoint.serverless_max_concurrency",
        True,
    ),
    (
        "EndpointSettings instance_type ml.*",
        {"endpoint": {"instance_type": "m5.large"}},
        "endpoint.instance_type",
        False,
    ),
    (
        "EndpointSettings initial_instance_count >= 1",
        {"endpoint": {"initial_instance_count": 0}},
        "endpoint.initial_instance_count",
        False,
    ),
    (
        "EndpointSettings serverless_memory_mb choices",
        {"endpoint": {"serverless": True, "serverless_memory_mb": 1000}},
        "endpoint.serverless_memory_mb",
        False,
    ),
    (
        "EndpointSettings capture_sampling_percent <= 100",
        {"endpoint": {"data_capture_sampling_percent": 101}},
        "endpoint.data_capture_sampling_percent",
        False,
    ),
    ("EndpointSettings canary_percent >= 1", {"endpoint": {"canary_percent": 0}}, "endpoint.canary_percent", False),
    (
        "EndpointSettings wait_interval_seconds <= 3600",
        {"endpoint": {"canary_wait_s": 3601}},
        "endpoint.canary_wait_s",
        False,
    ),
    (
        "EndpointSettings termination_wait_seconds >= 0",
        {"endpoint": {"termination_wait_s": -1}},
        "endpoint.termination_wait_s",
        False,
    ),
    (
        "EndpointSettings max_execution_timeout_seconds <= 28800",
        {"endpoint": {"deployment_timeout_s": 28801}},
        "endpoint.deployment_timeout_s",
        False,
    ),
    # TRAINING_SETTINGS: TuningSettings and ParameterRange
    ("TuningSettings ranges not empty", {"training": {"tuning": {"ranges": {}}}}, "training.tuning.ranges", True),
    ("TuningSettings max_jobs >= 1", {"training": {"tuning": {"max_jobs": 0}}}, "training.tuning.max_jobs", False),
    (
        "TuningSettings max_parallel_jobs >= 1",
        {"training": {"tuning": {"max_parallel_jobs": 0}}},
        "training.tuning.max_parallel_jobs",
        False,
    ),
    (
        "TuningSettings max_parallel_jobs <= max_jobs",
        {"training": {"tuning": {"max_jobs": 2, "max_parallel_jobs": 3}}},
        "training.tuning.max_parallel_jobs",
        False,
    ),
    (
        "ParameterRange min < max",
        {"training": {"tuning": {"ranges": {"gamma": [5, 5]}}}},
        "training.tuning.ranges.gamma",
        False,
    ),
    (
        "ParameterRange integer bounds",
        {"training": {"tuning": {"ranges": {"max_depth": [3, 9.5]}}}},
        "training.tuning.ranges.max_depth",
        False,
    ),
    (
        "ParameterRange name not sagemaker_*",
        {"training": {"tuning": {"ranges": {"sagemaker_x": [1, 2]}}}},
        "training.tuning.ranges.sagemaker_x",
        False,
    ),
    # TRAINING_SETTINGS: TrainingSpecSettings
    (
        "TrainingSpecSettings objective supported",
        {"training": {"objective": "rank:pairwise"}},
        "training.objective",
        False,
    ),
    (
        "TrainingSpecSettings instance_type ml.*",
        {"training": {"instance_type": "m5.xlarge"}},
        "training.instance_type",
        False,
    ),
    ("TrainingSpecSettings instance_count >= 1", {"training": {"instance_count": 0}}, "training.instance_count", False),
    ("TrainingSpecSettings volume_size_gb >= 1", {"training": {"volume_size_gb": 0}}, "training.volume_size_gb", False),
    (
        "TrainingSpecSettings max_runtime_seconds >= 1",
        {"training": {"max_runtime_s": 0}},
        "training.max_runtime_s",
        False,
    ),
    (
        "TrainingSpecSettings max_wait_seconds >= max_runtime",
        {"training": {"use_spot": True, "max_wait_s": 60}},
        "training.max_wait_s",
        False,
    ),
    (
        "TrainingSpecSettings hyperparameter not sagemaker_*",
        {"training": {"hyperparameters": {"sagemaker_program": "x.py"}}},
        "training.hyperparameters.sagemaker_program",
        False,
    ),
    (
        "TrainingSpecSettings hyperparameter values are strings",
        {"training": {"hyperparameters": {"eta": None}}},
        "training.hyperparameters.eta",
        False,
    ),
    ("TrainingSpecSettings job_name_prefix / bucket names", {"app_name": "-x"}, "app_name", False),
]

# RETRAIN_POLICY rules no stage setting can break, and why.
NOT_REACHABLE_FROM_CONFIG = {
    "lock_ttl_seconds": "derived: the longest run (>= 60 s) plus 3600 s; see the property test below",
    "drift_min_samples": "not written by the stacks: the functions' default applies",
    "drift_max_files": "not written by the stacks: the functions' default applies",
}


@pytest.mark.parametrize(("rule", "overrides", "key", "only_the_parser"), RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_each_function_parser_rule_fails_synth(
    rule: str, overrides: dict[str, Any], key: str, only_the_parser: bool
) -> None:
    # GIVEN a stage override the functions' parser would refuse at run time
    # WHEN the config loads (synth)
    with pytest.raises(ConfigError) as caught:
        load_config("dev", overrides=overrides)
    # THEN it fails, naming the stage setting the bad value comes from
    assert caught.value.key == key, str(caught.value)
    # AND the rules only the functions own are reported from the functions' parser itself
    assert (caught.value.code == VIA_PARSER) is only_the_parser, str(caught.value)


def test_every_retrain_policy_rule_has_a_case() -> None:
    # GIVEN RetrainPolicy's rule table WHEN compared with the cases above THEN none is left out
    covered = {rule.split()[1] for rule, *_ in RULE_CASES if rule.startswith("RETRAIN_POLICY")}
    assert set(RULES) - set(NOT_REACHABLE_FROM_CONFIG) <= covered


def test_a_daily_cap_of_zero_fails_synth_in_prod_too() -> None:
    # GIVEN prod with a daily cap of zero
    # WHEN the config loads (synth)
    with pytest.raises(ConfigError) as caught:
        load_config("prod", operator_email="ops@example.com", overrides={"retraining": {"daily_cap": 0}})
    # THEN the functions' RETRAIN_POLICY parser refuses it, named by the stage setting
    assert (caught.value.key, caught.value.code) == ("retraining.daily_cap", VIA_PARSER)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    runtime=st.integers(60, 432000),
    extra_wait=st.integers(0, 432000),
    use_spot=st.booleans(),
    tuning=st.booleans(),
    max_jobs=st.integers(1, 500),
    parallel=st.integers(1, 500),
)
def test_the_policy_written_for_any_valid_stage_is_one_the_functions_accept(
    runtime: int, extra_wait: int, use_spot: bool, tuning: bool, max_jobs: int, parallel: int
) -> None:
    # GIVEN any in-range training limits
    overrides = {
        "training": {
            "max_runtime_s": runtime,
            "max_wait_s": min(runtime + extra_wait, 432000),
            "use_spot": use_spot,
            "tuning": {"enabled": tuning, "max_jobs": max_jobs, "max_parallel_jobs": min(parallel, max_jobs)},
        }
    }
    # WHEN the config loads and its RETRAIN_POLICY is parsed as the functions parse it
    cfg = load_config("dev", overrides=overrides)
    policy = RetrainPolicy.from_dict(retrain_policy_document(cfg))
    spec = TrainingSpecSettings(
        job_name_prefix="x",
        image_uri="img:1",
        role_arn="arn:aws:iam::000000000000:role/r",
        region=cfg.region,
        data_bucket="data-bucket",
        model_bucket="model-bucket",
        source_dir_s3_uri="s3://model-bucket/code/sourcedir-0.tar.gz",
        kms_key_arn="alias/k",
        **{k: v for k, v in training_spec_fields(cfg).items() if k not in ("job_name_prefix", "region")},
    )
    # THEN the lock outlives the longest run the start function may begin (its own check passes)
    check_lock_outlives_run(spec, policy)
    assert policy.lock_ttl_seconds == longest_run_seconds(spec) + 3600


@pytest.mark.parametrize(
    ("stage", "overrides"),
    [
        ("dev", {}),
        ("prod", {}),
        ("prod", {"training": {"tuning": {"enabled": True}}}),
        ("dev", {"endpoint": {"serverless": True}, "network": {"enabled": False}, "notebook": {"enabled": False}}),
    ],
)
def test_the_retraining_stack_writes_what_synth_checked(
    stage: str, overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stage config, and config.settings' builders marked so that what comes from them can be told apart
    import config.function_inputs as inputs
    import stacks.retraining_stack as stack
    from stacks.retraining_stack import ModelFacts, retrain_policy, training_settings

    cfg = load_config(stage, operator_email="ops@example.com", overrides=overrides)
    facts = ModelFacts("img:1", f"sagecycle-{stage}-sagemaker-execution", "sourcedir-0.tar.gz", "/p", "group")
    fields = {**training_spec_fields(cfg), "tags": {**training_spec_fields(cfg)["tags"], "built-by": "config"}}
    policy = {**retrain_policy_document(cfg), "lock_ttl_seconds": retrain_policy_document(cfg)["lock_ttl_seconds"] + 1}
    monkeypatch.setattr(inputs, "training_spec_fields", lambda c: fields if c is cfg else pytest.fail("other config"))
    monkeypatch.setattr(stack, "retrain_policy_document", lambda c: policy if c is cfg else pytest.fail("other config"))
    # WHEN the Retraining stack builds what the functions receive
    written = training_settings(cfg, facts, "aws")
    # THEN every stage-decided value is config.settings' own (synth ran it through the functions' parsers)
    for name, value in fields.items():
        assert getattr(written, name) == value, name
    # AND RETRAIN_POLICY is config.settings' document itself, not a copy computed beside it
    assert retrain_policy(cfg) is policy
