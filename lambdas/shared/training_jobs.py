"""CreateTrainingJob and CreateHyperParameterTuningJob parameters: pure functions from `TrainingSpecSettings`
plus per-run facts (run id, reason, S3 URIs) to the exact keyword arguments of boto3's calls.

Stdlib only (it runs inside Lambda, where the SageMaker SDK is not available and not wanted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from lambdas.shared.job_names import training_job_name, tuning_job_name
from lambdas.shared.job_parts import has_local_storage, job_tags, s3_prefix_uri, vpc_config
from lambdas.shared.job_settings import ParameterRange, TrainingSpecSettings, WarmStartType
from lambdas.shared.metrics import METRIC_DEFINITIONS, tuning_objective

# Where the framework containers look for things (sagemaker-python-sdk's script-mode conventions).
CODE_CHANNEL: Final = "code"
CODE_CHANNEL_DIR: Final = "/opt/ml/input/data/code"
CHECKPOINT_LOCAL_PATH: Final = "/opt/ml/checkpoints"


def _channel(name: str, uri: str, *, sharded: bool = False, content_type: str | None = "text/csv") -> dict[str, Any]:
    """One S3 input channel. `sharded` is ShardedByS3Key: SageMaker gives each instance whole objects, never part of
    one, so a train prefix needs at least one data file per instance or the extra instances train on nothing."""
    channel: dict[str, Any] = {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "ShardedByS3Key" if sharded else "FullyReplicated",
            }
        },
        "InputMode": "File",
    }
    if content_type:
        channel["ContentType"] = content_type
    return channel


def _input_channels(
    settings: TrainingSpecSettings, train: str | None, validation: str | None, test: str | None
) -> list[dict[str, Any]]:
    # Distributed XGBoost trains each host on its own shard; validation is evaluated whole everywhere.
    channels = [
        _channel(
            "train",
            train or s3_prefix_uri(settings.data_bucket, settings.train_prefix),
            sharded=settings.instance_count > 1,
        ),
        _channel("validation", validation or s3_prefix_uri(settings.data_bucket, settings.validation_prefix)),
    ]
    test_uri = test or (s3_prefix_uri(settings.data_bucket, settings.test_prefix) if settings.test_prefix else None)
    if test_uri:
        channels.append(_channel("test", test_uri))
    # The scripts arrive as a channel (what the SDK does under network isolation): the container then
    # never needs S3 access of its own, isolated or not.
    channels.append(_channel(CODE_CHANNEL, settings.source_dir_s3_uri, content_type=None))
    return channels


def _submit_directory(settings: TrainingSpecSettings) -> str:
    return f"{CODE_CHANNEL_DIR}/{settings.source_dir_s3_uri.rsplit('/', 1)[-1]}"


def _hyperparameters(settings: TrainingSpecSettings, overrides: Mapping[str, str] | None) -> dict[str, str]:
    hps = {**settings.hyperparameters, **(overrides or {})}
    # Script-mode contract of the SageMaker framework containers (sagemaker-training-toolkit).
    hps.update(
        {
            "sagemaker_program": settings.program,
            "sagemaker_submit_directory": _submit_directory(settings),
            "sagemaker_region": settings.region,
            "sagemaker_container_log_level": str(settings.container_log_level),
        }
    )
    return {k: str(v) for k, v in hps.items()}


def _algorithm_specification(settings: TrainingSpecSettings) -> dict[str, Any]:
    return {
        "TrainingImage": settings.image_uri,
        "TrainingInputMode": "File",
        "MetricDefinitions": [dict(d) for d in METRIC_DEFINITIONS],
    }


def _output_config(settings: TrainingSpecSettings) -> dict[str, Any]:
    return {
        "S3OutputPath": s3_prefix_uri(settings.model_bucket, settings.model_output_prefix),
        "KmsKeyId": settings.kms_key_arn,
    }


def _resource_config(settings: TrainingSpecSettings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "InstanceType": settings.instance_type,
        "InstanceCount": settings.instance_count,
        "VolumeSizeInGB": settings.volume_size_gb,
    }
    if not has_local_storage(settings.instance_type):
        config["VolumeKmsKeyId"] = settings.kms_key_arn
    return config


def _stopping_condition(settings: TrainingSpecSettings) -> dict[str, int]:
    condition = {"MaxRuntimeInSeconds": settings.max_runtime_seconds}
    if settings.use_spot:
        condition["MaxWaitTimeInSeconds"] = settings.max_wait_seconds or 2 * settings.max_runtime_seconds
    return condition


def _job_body(
    settings: TrainingSpecSettings,
    *,
    run_id: str,
    train: str | None,
    validation: str | None,
    test: str | None,
) -> dict[str, Any]:
    """The parts a training job and a tuning job's TrainingJobDefinition share, keyed as both spell them."""
    body: dict[str, Any] = {
        "AlgorithmSpecification": _algorithm_specification(settings),
        "RoleArn": settings.role_arn,
        "InputDataConfig": _input_channels(settings, train, validation, test),
        "OutputDataConfig": _output_config(settings),
        "ResourceConfig": _resource_config(settings),
        "StoppingCondition": _stopping_condition(settings),
        "EnableNetworkIsolation": settings.enable_network_isolation,
        "EnableInterContainerTrafficEncryption": settings.encrypt_inter_container_traffic,
        "EnableManagedSpotTraining": settings.use_spot,
        "Environment": {"SAGECYCLE_RUN_ID": run_id[:512]},
    }
    vpc = vpc_config(settings)
    if vpc:
        body["VpcConfig"] = vpc
    return body


def build_training_job(
    settings: TrainingSpecSettings,
    *,
    run_id: str,
    reason: str,
    trigger: str = "",
    train_s3_uri: str | None = None,
    validation_s3_uri: str | None = None,
    test_s3_uri: str | None = None,
    hyperparameters: Mapping[str, str] | None = None,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """CreateTrainingJob parameters for one retraining run (`run_id` is the idempotency key).

    Channels default to the settings' prepared prefixes; `hyperparameters` override the defaults.
    """
    name = training_job_name(settings.job_name_prefix, run_id, event_time=event_time)
    params: dict[str, Any] = {
        "TrainingJobName": name,
        **_job_body(settings, run_id=run_id, train=train_s3_uri, validation=validation_s3_uri, test=test_s3_uri),
        "HyperParameters": _hyperparameters(settings, hyperparameters),
        "Tags": job_tags(settings, run_id, reason, trigger),
    }
    if settings.use_spot:
        # One checkpoint folder per job: a new job must never resume from another job's checkpoints.
        base = settings.checkpoint_s3_uri or f"s3://{settings.model_bucket}/checkpoints/"
        params["CheckpointConfig"] = {"S3Uri": f"{base.rstrip('/')}/{name}/", "LocalPath": CHECKPOINT_LOCAL_PATH}
    return params


def _parameter_ranges(ranges: Sequence[ParameterRange]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in ranges:
        if r.kind == "categorical":
            out.setdefault("CategoricalParameterRanges", []).append({"Name": r.name, "Values": list(r.values)})
        else:
            key = "IntegerParameterRanges" if r.kind == "integer" else "ContinuousParameterRanges"
            out.setdefault(key, []).append(
                {"Name": r.name, "MinValue": r.min_value, "MaxValue": r.max_value, "ScalingType": r.scaling}
            )
    return out


def build_tuning_job(
    settings: TrainingSpecSettings,
    *,
    run_id: str,
    reason: str,
    trigger: str = "",
    train_s3_uri: str | None = None,
    validation_s3_uri: str | None = None,
    test_s3_uri: str | None = None,
    warm_start_parent: str | None = None,
    warm_start_type: WarmStartType | None = None,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """CreateHyperParameterTuningJob parameters; the training definition is `build_training_job`'s body.

    `warm_start_parent` names the previous tuning job; its results seed this one's search.
    """
    tuning = settings.tuning
    metric, direction = tuning_objective(settings.objective)
    objective = {"Type": direction, "MetricName": metric}
    tuned = {r.name for r in tuning.ranges}
    # A tuned hyperparameter must not also be static (SageMaker rejects the job).
    static = {k: v for k, v in _hyperparameters(settings, None).items() if k not in tuned}
    limits: dict[str, int] = {
        "MaxNumberOfTrainingJobs": tuning.max_jobs,
        "MaxParallelTrainingJobs": tuning.max_parallel_jobs,
    }
    if tuning.max_runtime_seconds is not None:
        limits["MaxRuntimeInSeconds"] = tuning.max_runtime_seconds
    definition = {
        **_job_body(settings, run_id=run_id, train=train_s3_uri, validation=validation_s3_uri, test=test_s3_uri),
        "StaticHyperParameters": static,
    }
    # No CheckpointConfig: all children of a tuning job would share one checkpoint prefix and could resume
    # from a sibling's checkpoint trained with other hyperparameters. A reclaimed spot child restarts instead.
    params: dict[str, Any] = {
        "HyperParameterTuningJobName": tuning_job_name(settings.job_name_prefix, run_id, event_time=event_time),
        "HyperParameterTuningJobConfig": {
            "Strategy": tuning.strategy,
            "HyperParameterTuningJobObjective": objective,
            "ResourceLimits": limits,
            "ParameterRanges": _parameter_ranges(tuning.ranges),
            "TrainingJobEarlyStoppingType": "Auto" if tuning.early_stopping else "Off",
        },
        "TrainingJobDefinition": definition,
        "Tags": job_tags(settings, run_id, reason, trigger),
    }
    if warm_start_parent:
        params["WarmStartConfig"] = {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": warm_start_parent}],
            "WarmStartType": warm_start_type or tuning.warm_start_type,
        }
    return params
