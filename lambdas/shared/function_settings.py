"""Environment readers several functions share: TRAINING_SETTINGS, RETRAIN_POLICY and what follows from them.

Each raises ConfigError naming the variable, so a misconfigured function says what to fix on its first event.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import ceil

from lambdas.shared.contract import ENV_RETRAIN_POLICY, ENV_TRAINING_SETTINGS
from lambdas.shared.jobspec import SettingsError, TrainingSpecSettings
from lambdas.shared.policy import PolicyError, RetrainPolicy
from lambdas.shared.runtime import ConfigError, env_str


def training_settings(environ: Mapping[str, str]) -> TrainingSpecSettings:
    try:
        return TrainingSpecSettings.from_json(env_str(ENV_TRAINING_SETTINGS, environ))
    except SettingsError as error:
        raise ConfigError(f"environment variable {ENV_TRAINING_SETTINGS}: {error}", code="invalid-settings") from None


def retrain_policy(environ: Mapping[str, str]) -> RetrainPolicy:
    try:
        return RetrainPolicy.from_json(env_str(ENV_RETRAIN_POLICY, environ))
    except PolicyError as error:
        raise ConfigError(str(error), code="invalid-policy") from None


def app_from_prefix(job_name_prefix: str, stage: str) -> str:
    """contract.job_name_prefix(app, stage) is `<app>-<stage>`: the app name is what precedes the stage."""
    suffix = f"-{stage}"
    if not job_name_prefix.endswith(suffix) or len(job_name_prefix) == len(suffix):
        raise ConfigError(
            f"{ENV_TRAINING_SETTINGS}.job_name_prefix {job_name_prefix!r} must be contract.job_name_prefix(app, "
            f"{stage!r}) = '<app>-{stage}'",
            code="invalid-job-name-prefix",
        )
    return job_name_prefix[: -len(suffix)]


def longest_job_seconds(training: TrainingSpecSettings) -> int:
    """The most wall time SageMaker lets one job take (spot: MaxWaitTimeInSeconds covers the run)."""
    if training.use_spot:
        return training.max_wait_seconds or 2 * training.max_runtime_seconds
    return training.max_runtime_seconds


def longest_run_seconds(training: TrainingSpecSettings) -> int:
    """The most wall time one run may take: a training job, or a tuning job (its own limit, else its children
    in waves of `max_parallel_jobs`, each as long as a training job may be)."""
    if not training.tuning.enabled:
        return longest_job_seconds(training)
    tuning = training.tuning
    if tuning.max_runtime_seconds is not None:
        return tuning.max_runtime_seconds
    return ceil(tuning.max_jobs / tuning.max_parallel_jobs) * longest_job_seconds(training)


def check_lock_outlives_run(training: TrainingSpecSettings, policy: RetrainPolicy) -> None:
    """The training lock must outlive the longest run, or a second job could start while the first still runs.

    The start function checks it when its settings load; the CDK app checks the pair it writes at synth.
    """
    longest = longest_run_seconds(training)
    if policy.lock_ttl_seconds < longest:
        what = "tuning" if training.tuning.enabled else "training"
        raise ConfigError(
            f"{ENV_RETRAIN_POLICY}.lock_ttl_seconds ({policy.lock_ttl_seconds}) is shorter than the longest "
            f"{what} job {ENV_TRAINING_SETTINGS} allows ({longest} s): a second job could start while the "
            "first still runs",
            code="lock-shorter-than-run",
        )
