"""What the stacks hand the functions (TRAINING_SETTINGS, RETRAIN_POLICY), built from the stage, and the check
that runs it through the functions' own parsers at synth, so nothing a function would refuse deploys."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypedDict

from config.field_checks import allowed_text, value_at
from config.fields import ConfigError, check, show
from config.sections import StageConfig
from lambdas.shared import contract as c
from lambdas.shared.function_settings import check_lock_outlives_run, longest_run_seconds
from lambdas.shared.job_settings import (
    DEFAULT_HYPERPARAMETERS,
    EndpointSettings,
    ParameterRange,
    SettingsError,
    TrainingSpecSettings,
    TuningSettings,
    VpcSettings,
)
from lambdas.shared.policy import PolicyError, RetrainPolicy
from lambdas.shared.runtime import ConfigError as FunctionConfigError

# Settings are validated at synth, but the account and the data key's ARN are only known at deploy: the JSON
# carries these sentinels, which the stack replaces with tokens (stacks/retraining_stack.py _deployed_settings).
SENTINEL_ACCOUNT = "000000000000"
SENTINEL_KEY_ID = "00000000-0000-4000-8000-000000000000"


class TrainingSpecFields(TypedDict):
    """The TrainingSpecSettings keyword arguments the stage decides (the stack passes them with `**`)."""

    job_name_prefix: str
    region: str
    objective: str
    instance_type: str
    instance_count: int
    volume_size_gb: int
    max_runtime_seconds: int
    use_spot: bool
    max_wait_seconds: int | None
    hyperparameters: Mapping[str, str]
    enable_network_isolation: bool
    encrypt_inter_container_traffic: bool
    tags: Mapping[str, str]
    tuning: TuningSettings
    endpoint: EndpointSettings


def training_spec_fields(cfg: StageConfig) -> TrainingSpecFields:
    """The TrainingSpecSettings fields the stage configuration decides; the Retraining stack adds the names,
    ARNs and URIs only it knows. Building the nested settings runs their own checks (SettingsError)."""
    app, stage, t, e = cfg.app_name, cfg.stage, cfg.training, cfg.endpoint
    return {
        "job_name_prefix": c.job_name_prefix(app, stage),
        "region": cfg.region,
        "objective": t.objective,
        "instance_type": t.instance_type,
        "instance_count": t.instance_count,
        "volume_size_gb": t.volume_size_gb,
        "max_runtime_seconds": t.max_runtime_s,
        "use_spot": t.use_spot,
        "max_wait_seconds": t.max_wait_s if t.use_spot else None,
        "hyperparameters": {**DEFAULT_HYPERPARAMETERS, **t.hyperparameters},
        "enable_network_isolation": True,
        "encrypt_inter_container_traffic": True,
        "tags": {"project": app, "stage": stage},
        "tuning": TuningSettings(
            enabled=t.tuning.enabled,
            max_jobs=t.tuning.max_jobs,
            max_parallel_jobs=t.tuning.max_parallel_jobs,
            ranges=tuple(ParameterRange.from_bounds(n, lo, hi) for n, (lo, hi) in t.tuning.ranges.items()),
        ),
        "endpoint": EndpointSettings(
            variant_name=c.VARIANT_NAME,
            instance_type=e.instance_type,
            initial_instance_count=e.initial_instance_count,
            serverless_memory_mb=e.serverless_memory_mb if e.serverless else None,
            serverless_max_concurrency=e.serverless_max_concurrency,
            capture_enabled=not e.serverless,
            capture_sampling_percent=e.data_capture_sampling_percent,
            capture_prefix=c.PREFIX_CAPTURE,
            canary_percent=e.canary_percent,
            wait_interval_seconds=e.canary_wait_s,
            termination_wait_seconds=e.termination_wait_s,
            max_execution_timeout_seconds=e.deployment_timeout_s,
            rollback_alarm_names=tuple(c.alarm_name(app, stage, c.ENDPOINT_ALARMS[k]) for k in c.ROLLBACK_ALARM_KEYS),
        ),
    }


def training_spec(
    cfg: StageConfig,
    *,
    image_uri: str,
    execution_role_name: str,
    sourcedir_name: str,
    partition: str = "aws",
    vpc: VpcSettings | None = None,
) -> TrainingSpecSettings:
    """TRAINING_SETTINGS with the sentinel account and key: the stage's own values (`training_spec_fields`, the
    ones synth runs through the functions' parsers) around the names, ARNs and URIs only the stacks know."""
    app, stage, region, account = cfg.app_name, cfg.stage, cfg.region, SENTINEL_ACCOUNT
    models = f"{app}-{stage}-models-{account}-{region}"
    return TrainingSpecSettings(
        image_uri=image_uri,
        role_arn=f"arn:{partition}:iam::{account}:role/{execution_role_name}",
        data_bucket=f"{app}-{stage}-data-{account}-{region}",
        model_bucket=models,
        source_dir_s3_uri=f"s3://{models}/{c.PREFIX_CODE}{sourcedir_name}",
        kms_key_arn=f"arn:{partition}:kms:{region}:{account}:key/{SENTINEL_KEY_ID}",
        train_prefix=c.PREFIX_TRAIN,
        validation_prefix=c.PREFIX_VALIDATION,
        test_prefix=c.PREFIX_TEST,
        model_output_prefix=c.PREFIX_TRAINING_OUTPUT,
        checkpoint_s3_uri=f"s3://{models}/{c.PREFIX_CHECKPOINTS}" if cfg.training.use_spot else None,
        vpc=vpc,
        **training_spec_fields(cfg),
    )


def _placeholder_spec(cfg: StageConfig) -> TrainingSpecSettings:
    """TRAINING_SETTINGS as the stack writes it, with placeholders for what only the stacks know (the image, the
    scripts' hash, the network's ids), so the stage's own values meet the functions' parser."""
    region, account = cfg.region, SENTINEL_ACCOUNT
    return training_spec(
        cfg,
        image_uri=f"{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:{cfg.training.xgboost_framework_version}",
        execution_role_name=c.execution_role_name(cfg.app_name, cfg.stage),
        sourcedir_name="sourcedir-0000000000000000.tar.gz",
        vpc=VpcSettings(subnet_ids=("subnet-0", "subnet-1"), security_group_ids=("sg-0",))
        if cfg.network.enabled
        else None,
    )


def retrain_policy_document(cfg: StageConfig) -> dict[str, Any]:
    """RETRAIN_POLICY as the functions read it (lambdas/shared/policy.py).

    The lock outlives the longest run the start function may begin (the functions' own longest_run_seconds),
    plus an hour, so a lost "finished" event cannot wedge retraining forever.
    """
    r = cfg.retraining
    return {
        "min_interval_minutes": r.min_interval_minutes,
        "daily_cap": r.daily_cap,
        "metric_floor": r.metric_floor,
        "tolerance": r.tolerance,
        "max_file_bytes": r.max_file_mb * 1024 * 1024,
        "drift_psi_threshold": r.drift_psi_threshold,
        "rollback_on_alarm": r.rollback_on_alarm,
        "lock_ttl_seconds": longest_run_seconds(_placeholder_spec(cfg)) + 3600,
    }


# RETRAIN_POLICY key -> the stage setting it comes from.
_POLICY_KEYS = {
    "min_interval_minutes": "retraining.min_interval_minutes",
    "daily_cap": "retraining.daily_cap",
    "metric_floor": "retraining.metric_floor",
    "tolerance": "retraining.tolerance",
    "max_file_bytes": "retraining.max_file_mb",
    "drift_psi_threshold": "retraining.drift_psi_threshold",
    "rollback_on_alarm": "retraining.rollback_on_alarm",
    "lock_ttl_seconds": "training.max_runtime_s",
}
# TRAINING_SETTINGS field (as its parser's messages name it) -> the stage setting it comes from.
_SPEC_KEYS = {
    "job_name_prefix": "app_name",
    "data_bucket": "app_name",
    "model_bucket": "app_name",
    "tag": "app_name",
    "region": "region",
    "objective": "training.objective",
    "instance_count": "training.instance_count",
    "volume_size_gb": "training.volume_size_gb",
    "max_runtime": "training.max_runtime_s",
    "max_wait_seconds": "training.max_wait_s",
    "hyperparameter": "training.hyperparameters",
    "max_jobs": "training.tuning.max_jobs",
    "max_parallel_jobs": "training.tuning.max_parallel_jobs",
    "ranges": "training.tuning.ranges",
    "initial_instance_count": "endpoint.initial_instance_count",
    "serverless_memory_mb": "endpoint.serverless_memory_mb",
    "serverless_max_concurrency": "endpoint.serverless_max_concurrency",
    "capture_sampling_percent": "endpoint.data_capture_sampling_percent",
    "canary_percent": "endpoint.canary_percent",
    "wait_interval_seconds": "endpoint.canary_wait_s",
    "termination_wait_seconds": "endpoint.termination_wait_s",
    "max_execution_timeout_seconds": "endpoint.deployment_timeout_s",
}


def _spec_key(message: str) -> str:
    """The stage setting a TRAINING_SETTINGS parser message is about (its first named field), else `training`."""
    where, _, problems = message.partition(": ")
    first = problems.split("; ")[0]
    if where == "invalid tuning range":
        return f"training.tuning.ranges.{first.partition(':')[0]}"
    if first.startswith("instance_type"):
        return "endpoint.instance_type" if where == "invalid endpoint settings" else "training.instance_type"
    hits = [(m.start(), key) for name, key in _SPEC_KEYS.items() for m in [re.search(rf"\b{name}", first)] if m]
    return min(hits)[1] if hits else "training"


def _parser_error(cfg: StageConfig, key: str, parser: str, detail: str) -> ConfigError:
    requirement = re.search(r"must (not be empty|be .+)$", detail)
    said = requirement.group(1) if requirement else None
    allowed = (
        allowed_text(key) or ("at least one" if said == "not be empty" else said and said[3:]) or "what it accepts"
    )
    return ConfigError(
        key,
        f"{show(value_at(cfg, key))} is refused by the functions' {parser} parser: {detail}",
        allowed,
        "refused-by-function",
    )


def check_with_function_parsers(cfg: StageConfig) -> None:
    """What the stacks hand the functions goes through the functions' own parsers and cross-checks: every rule
    they enforce at run time also fails synth, named by the stage setting it comes from."""
    settings = c.ENV_TRAINING_SETTINGS
    try:
        spec = _placeholder_spec(cfg)
        parsed = TrainingSpecSettings.from_json(spec.to_json())
    except SettingsError as error:
        raise _parser_error(cfg, _spec_key(str(error)), settings, str(error).partition(": ")[2]) from None
    check(
        parsed == spec,
        "training",
        f"does not survive the functions' {settings} JSON codec",
        "JSON-safe values",
        "refused-by-function",
    )
    try:
        policy = RetrainPolicy.from_json(json.dumps(retrain_policy_document(cfg)))
    except PolicyError as error:
        name, allowed = error.problems[0] if error.problems else ("", "")
        detail = f"{name} must be {allowed}" if name else str(error)
        raise _parser_error(cfg, _POLICY_KEYS.get(name, "retraining"), c.ENV_RETRAIN_POLICY, detail) from None
    try:
        check_lock_outlives_run(parsed, policy)
    except FunctionConfigError as error:
        raise ConfigError(
            "training.max_runtime_s",
            f"the training lock would not outlive a run: {error}",
            "a lock >= the longest run",
            "refused-by-function",
        ) from None
