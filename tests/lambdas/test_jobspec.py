"""The job-spec builder: every request validates against botocore's SageMaker model, names are stable."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import sys
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import botocore.session
import pytest
from botocore.model import Shape
from botocore.validate import ParamValidator

from lambdas.shared import jobspec
from lambdas.shared.jobspec import (
    EndpointSettings,
    ParameterRange,
    SettingsError,
    TrafficRouting,
    TrainingSpecSettings,
    TuningSettings,
    VpcSettings,
    build_endpoint_config,
    build_model,
    build_training_job,
    build_transform_job,
    build_tuning_job,
    build_update_endpoint,
    training_job_name,
    tuning_job_name,
)
from lambdas.shared.metrics import METRIC_DEFINITIONS, format_metric_line, parse_metric_line, tuning_objective

KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BASE = TrainingSpecSettings(
    job_name_prefix="sagecycle-dev",
    image_uri="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5",
    role_arn="arn:aws:iam::123456789012:role/sagecycle-dev-sagemaker-execution",
    region="eu-west-1",
    data_bucket="sagecycle-dev-data-123456789012",
    model_bucket="sagecycle-dev-models-123456789012",
    source_dir_s3_uri="s3://sagecycle-dev-models-123456789012/code/sourcedir-3f2a9c0d1e.tar.gz",
    kms_key_arn=KEY,
    tags={"project": "sagecycle", "stage": "dev"},
)
RUN = "s3:ObjectCreated:sagecycle-dev-data/incoming/2025-01-02/batch.csv#0001"

_SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


def settings(**changes: Any) -> TrainingSpecSettings:
    return dataclasses.replace(BASE, **changes)


# ------------------------------------------------------------------------------------ shape validation


def _tag_chars_ok(text: str) -> bool:
    # Python's re has no \p{..}: SageMaker's tag pattern is [\p{L}\p{Z}\p{N}_.:/=+\-@]*.
    return all(unicodedata.category(c)[0] in "LZN" or c in "_.:/=+-@" for c in text)


def _strict_errors(value: Any, shape: Shape, path: str) -> Iterator[str]:
    """What ParamValidator does not check: max lengths, enums and patterns."""
    meta = shape.metadata
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                yield from _strict_errors(value[name], member, f"{path}.{name}")
    elif shape.type_name == "list":
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path}: {len(value)} items > max {meta['max']}"
        for i, item in enumerate(value):
            yield from _strict_errors(item, shape.member, f"{path}[{i}]")
    elif shape.type_name == "map":
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path}: {len(value)} entries > max {meta['max']}"
        for key, item in value.items():
            yield from _strict_errors(key, shape.key, f"{path} key {key!r}")
            yield from _strict_errors(item, shape.value, f"{path}[{key!r}]")
    elif shape.type_name == "string":
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path}: length {len(value)} > max {meta['max']}"
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            yield f"{path}: {value!r} not in enum"
        pattern = meta.get("pattern")
        if pattern and "\\p{" in pattern:
            if not _tag_chars_ok(value):
                yield f"{path}: {value!r} has characters outside {pattern}"
        elif pattern and not re.fullmatch(pattern, value):
            yield f"{path}: {value!r} does not match {pattern}"
    elif shape.type_name in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            yield f"{path}: {value} < min {meta['min']}"
        if "max" in meta and value > meta["max"]:
            yield f"{path}: {value} > max {meta['max']}"


def shape_errors(operation: str, params: dict[str, Any]) -> list[str]:
    """botocore's own validation (required, types, min) plus the stricter checks above."""
    shape = _SAGEMAKER.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    errors = [report.generate_report()] if report.has_errors() else []
    return errors + list(_strict_errors(params, shape, operation))


# ----------------------------------------------------------------------------------- valid requests


def test_training_job_is_a_valid_create_training_job_request() -> None:
    # GIVEN settings with every optional part switched on
    full = settings(use_spot=True, instance_count=3, vpc=VpcSettings(("subnet-0a1b", "subnet-0c2d"), ("sg-0e3f",)))
    # WHEN the training job is built
    params = build_training_job(full, run_id=RUN, reason="new data: 3 files", trigger="s3://bucket/incoming/a.csv")
    # THEN botocore's SageMaker model accepts it
    assert shape_errors("CreateTrainingJob", params) == []


def test_tuning_job_is_a_valid_create_hyper_parameter_tuning_job_request() -> None:
    # GIVEN tuning with spot, a VPC and a categorical range
    ranges = (*jobspec.DEFAULT_TUNING_RANGES, ParameterRange("grow_policy", "categorical", values=("depthwise",)))
    full = settings(
        use_spot=True, vpc=VpcSettings(("subnet-0a1b",), ("sg-0e3f",)), tuning=TuningSettings(ranges=ranges)
    )
    # WHEN the tuning job is built with a warm-start parent
    params = build_tuning_job(full, run_id=RUN, reason="weekly", warm_start_parent="sagecycle-dev-1a2b3c4d")
    # THEN it validates
    assert shape_errors("CreateHyperParameterTuningJob", params) == []


def test_transform_job_is_a_valid_create_transform_job_request() -> None:
    # GIVEN a champion model and an input prefix
    # WHEN the transform job is built
    params = build_transform_job(
        BASE,
        model_name="sagecycle-dev-250102-1200-7b409f932d",
        input_s3_prefix="s3://sagecycle-dev-data-123456789012/batch/input/",
        output_s3_uri="s3://sagecycle-dev-data-123456789012/batch/output/",
        run_id=RUN,
    )
    # THEN it validates
    assert shape_errors("CreateTransformJob", params) == []


def test_model_is_a_valid_create_model_request() -> None:
    # GIVEN a trained artifact
    # WHEN the model is built with a VPC
    params = build_model(
        settings(vpc=VpcSettings(("subnet-0a1b",), ("sg-0e3f",))),
        model_name="sagecycle-dev-7b409f932d",
        model_data_url="s3://sagecycle-dev-models-123456789012/models/job/output/model.tar.gz",
        run_id=RUN,
    )
    # THEN it validates
    assert shape_errors("CreateModel", params) == []


@pytest.mark.parametrize(
    "endpoint", [EndpointSettings(), EndpointSettings(serverless_memory_mb=2048)], ids=["instance", "serverless"]
)
def test_endpoint_config_is_a_valid_create_endpoint_config_request(endpoint: EndpointSettings) -> None:
    # GIVEN instance-backed or serverless hosting
    # WHEN the endpoint config is built
    params = build_endpoint_config(
        settings(endpoint=endpoint), endpoint_config_name="sagecycle-dev-ec-1", model_name="m-1", run_id=RUN
    )
    # THEN it validates
    assert shape_errors("CreateEndpointConfig", params) == []


@pytest.mark.parametrize("routing", get_args(TrafficRouting))
def test_update_endpoint_is_a_valid_update_endpoint_request(routing: TrafficRouting) -> None:
    # GIVEN each traffic-shifting mode and two rollback alarms
    endpoint = EndpointSettings(traffic_routing=routing, rollback_alarm_names=("sagecycle-5xx", "sagecycle-latency"))
    # WHEN the update is built
    params = build_update_endpoint(settings(endpoint=endpoint), endpoint_name="sagecycle-dev", endpoint_config_name="c")
    # THEN it validates
    assert shape_errors("UpdateEndpoint", params) == []


# --------------------------------------------------------------------------------- invalid requests


def test_shape_check_catches_a_missing_required_parameter() -> None:
    # GIVEN a training job without its role
    params = build_training_job(BASE, run_id=RUN, reason="r")
    del params["RoleArn"]
    # WHEN it is validated
    errors = shape_errors("CreateTrainingJob", params)
    # THEN botocore reports the missing parameter
    assert any("RoleArn" in e for e in errors)


def test_shape_check_catches_a_name_longer_than_sagemaker_allows() -> None:
    # GIVEN a tuning job whose name is a training-job-length name (SageMaker allows 32 characters)
    params = build_tuning_job(BASE, run_id=RUN, reason="r")
    params["HyperParameterTuningJobName"] = training_job_name("a-rather-long-prefix-for-tuning", RUN)
    # WHEN it is validated
    errors = shape_errors("CreateHyperParameterTuningJob", params)
    # THEN the length is reported
    assert any("HyperParameterTuningJobName" in e and "max 32" in e for e in errors)


# -------------------------------------------------------------------------------------------- names


def test_same_trigger_gives_the_same_training_job_name() -> None:
    # GIVEN the same prefix, run id and event time twice
    when = datetime(2025, 1, 2, 12, 34, 56, tzinfo=UTC)
    # WHEN names are made
    # THEN they are equal
    assert training_job_name("sagecycle-dev", RUN, event_time=when) == training_job_name(
        "sagecycle-dev", RUN, event_time=when
    )


def test_different_run_ids_give_different_names() -> None:
    # GIVEN two run ids
    # WHEN names are made
    # THEN they differ
    assert training_job_name("sagecycle-dev", "run-1") != training_job_name("sagecycle-dev", "run-2")


def test_name_time_bucket_is_utc_minute_of_the_event() -> None:
    # GIVEN the same instant in two time zones
    utc = datetime(2025, 1, 2, 12, 34, 56, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    # WHEN names are made
    name = training_job_name("p", RUN, event_time=paris)
    # THEN the bucket is the UTC minute, and the names agree
    assert name.startswith("p-250102-1234-")
    assert name == training_job_name("p", RUN, event_time=utc)


@pytest.mark.parametrize("prefix", ["x" * 80, "My_Prefix..with/odd chars", "---", "-a-"])
def test_names_fit_sagemaker_rules_whatever_the_prefix(prefix: str) -> None:
    # GIVEN an awkward prefix
    when = datetime(2025, 1, 2, tzinfo=UTC)
    # WHEN training and tuning names are made
    training, tuning = training_job_name(prefix, RUN, event_time=when), tuning_job_name(prefix, RUN, event_time=when)
    # THEN both match SageMaker's pattern and length limits
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", training) and len(training) <= 63
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}", tuning) and len(tuning) <= 32


# ------------------------------------------------------------------------------------ training job


def _channel(params: dict[str, Any], name: str) -> dict[str, Any]:
    (channel,) = [c for c in params["InputDataConfig"] if c["ChannelName"] == name]
    return channel


def test_train_channel_is_sharded_across_several_instances() -> None:
    # GIVEN three training instances
    # WHEN the job is built
    params = build_training_job(settings(instance_count=3), run_id=RUN, reason="r")
    # THEN train is sharded by key and validation is replicated
    assert _channel(params, "train")["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert _channel(params, "validation")["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"


def test_train_channel_is_replicated_on_one_instance() -> None:
    # GIVEN one instance
    # WHEN the job is built
    params = build_training_job(BASE, run_id=RUN, reason="r")
    # THEN train is fully replicated
    assert _channel(params, "train")["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"


def test_channels_default_to_the_prepared_prefixes_as_csv() -> None:
    # GIVEN no explicit channel URIs
    # WHEN the job is built
    params = build_training_job(BASE, run_id=RUN, reason="r")
    # THEN train/validation/test read the prepared prefixes (trailing slash) as text/csv
    for name in ("train", "validation", "test"):
        channel = _channel(params, name)
        assert channel["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BASE.data_bucket}/prepared/{name}/"
        assert channel["ContentType"] == "text/csv"


def test_test_channel_is_left_out_when_no_test_prefix_is_configured() -> None:
    # GIVEN no test prefix
    # WHEN the job is built
    params = build_training_job(settings(test_prefix=None), run_id=RUN, reason="r")
    # THEN there is no test channel
    assert "test" not in {c["ChannelName"] for c in params["InputDataConfig"]}


def test_scripts_arrive_through_the_code_channel() -> None:
    # GIVEN the content-hashed sourcedir tarball
    # WHEN the job is built
    params = build_training_job(BASE, run_id=RUN, reason="r")
    # THEN the code channel carries it and sagemaker_submit_directory points at its local copy
    assert _channel(params, "code")["DataSource"]["S3DataSource"]["S3Uri"] == BASE.source_dir_s3_uri
    hps = params["HyperParameters"]
    assert hps["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir-3f2a9c0d1e.tar.gz"
    assert hps["sagemaker_program"] == "train.py"
    assert hps["sagemaker_region"] == "eu-west-1"
    assert hps["sagemaker_container_log_level"] == "20"


def test_hyperparameter_overrides_win_over_the_stage_hyperparameters() -> None:
    # GIVEN a stage that sets two hyperparameters, and a per-run override of one of them
    stage = dataclasses.replace(BASE, hyperparameters={"max_depth": "6", "num_round": "800"})
    # WHEN the job is built
    params = build_training_job(stage, run_id=RUN, reason="r", hyperparameters={"max_depth": "4"})
    # THEN the override is used and the stage's other value stays
    assert params["HyperParameters"]["max_depth"] == "4"
    assert params["HyperParameters"]["num_round"] == "800"


def test_without_stage_hyperparameters_jobs_run_train_py_defaults() -> None:
    # GIVEN the job spec's defaults: none (train.py's own, cross-validated defaults apply)
    # WHEN a job is built
    params = build_training_job(BASE, run_id=RUN, reason="r")
    # THEN it sends no model hyperparameter, only the script-mode entries
    assert {k for k in params["HyperParameters"] if not k.startswith("sagemaker_")} <= {"objective"}


def test_spot_training_sets_max_wait_and_a_per_job_checkpoint_folder() -> None:
    # GIVEN managed spot training
    spot = settings(use_spot=True, max_runtime_seconds=1800, max_wait_seconds=3600)
    # WHEN the job is built
    params = build_training_job(spot, run_id=RUN, reason="r")
    # THEN spot is on, the wait is bounded, and checkpoints go to a folder named after the job
    assert params["EnableManagedSpotTraining"] is True
    assert params["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600}
    assert params["CheckpointConfig"] == {
        "S3Uri": f"s3://{BASE.model_bucket}/checkpoints/{params['TrainingJobName']}/",
        "LocalPath": "/opt/ml/checkpoints",
    }


def test_on_demand_training_has_no_checkpoint_or_max_wait() -> None:
    # GIVEN on-demand training
    # WHEN the job is built
    params = build_training_job(BASE, run_id=RUN, reason="r")
    # THEN neither spot setting appears
    assert params["EnableManagedSpotTraining"] is False
    assert "CheckpointConfig" not in params
    assert "MaxWaitTimeInSeconds" not in params["StoppingCondition"]


def test_training_job_encrypts_volume_and_output_with_the_key() -> None:
    # GIVEN the stage key
    # WHEN the job is built
    params = build_training_job(BASE, run_id=RUN, reason="r")
    # THEN both the volume and the output use it, and traffic between instances is encrypted
    assert params["ResourceConfig"]["VolumeKmsKeyId"] == KEY
    assert params["OutputDataConfig"]["KmsKeyId"] == KEY
    assert params["EnableInterContainerTrafficEncryption"] is True
    assert params["EnableNetworkIsolation"] is True


def test_volume_key_is_left_out_for_instances_with_local_nvme() -> None:
    # GIVEN an instance type with instance storage, which SageMaker refuses a volume key for
    # WHEN the job is built
    params = build_training_job(settings(instance_type="ml.m5d.xlarge"), run_id=RUN, reason="r")
    # THEN there is no volume key, but the output is still encrypted
    assert "VolumeKmsKeyId" not in params["ResourceConfig"]
    assert params["OutputDataConfig"]["KmsKeyId"] == KEY


def test_metric_definitions_are_attached() -> None:
    # GIVEN the shared definitions
    # WHEN the job is built
    params = build_training_job(BASE, run_id=RUN, reason="r")
    # THEN they are what SageMaker scrapes
    assert params["AlgorithmSpecification"]["MetricDefinitions"] == [dict(d) for d in METRIC_DEFINITIONS]


# -------------------------------------------------------------------------------------------- tags


def test_tags_are_sanitised_and_within_limits() -> None:
    # GIVEN a reason with newlines, forbidden punctuation, an emoji and far too many characters
    reason = "drift on <age>; PSI=0.31!\nsee: #ops 🚨 " + "x" * 400
    # WHEN the job is built
    tags = {
        t["Key"]: t["Value"]
        for t in build_training_job(BASE, run_id=RUN, reason=reason, trigger="s3://b/k?v=1")["Tags"]
    }
    # THEN every tag fits SageMaker's character set and the 256-character limit
    assert all(_tag_chars_ok(k) and _tag_chars_ok(v) and len(v) <= 256 for k, v in tags.items())
    assert tags["sagecycle:reason"].startswith("drift on _age__ PSI=0.31_ see: _ops _ x")


def test_tags_carry_run_id_reason_trigger_and_stage_tags() -> None:
    # GIVEN stage tags
    # WHEN the job is built
    params = build_training_job(BASE, run_id=RUN, reason="schedule", trigger="cron weekly")
    tags = {t["Key"]: t["Value"] for t in params["Tags"]}
    # THEN the run's facts and the stage's tags are all there
    assert tags["sagecycle:reason"] == "schedule"
    assert tags["sagecycle:trigger"] == "cron weekly"
    assert tags["sagecycle:run-id"] == jobspec.sanitize_tag_text(RUN)
    assert tags["project"] == "sagecycle"


def test_settings_refuse_reserved_tag_keys() -> None:
    # GIVEN a tag in AWS's reserved namespace
    # WHEN settings are made
    with pytest.raises(SettingsError) as caught:
        settings(tags={"aws:cloudformation:stack-name": "x"})
    # THEN they are refused for that one rule
    assert (caught.value.code, caught.value.where, len(caught.value.problems)) == (
        "invalid",
        "training spec settings",
        1,
    )


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


# ------------------------------------------------------------------------------------------- tuning


def test_tuning_warm_starts_from_the_previous_tuning_job() -> None:
    # GIVEN the previous tuning job's name
    # WHEN the tuning job is built
    params = build_tuning_job(BASE, run_id=RUN, reason="r", warm_start_parent="sagecycle-dev-2501-a1b2c3d4")
    # THEN it transfers what the parent learned (new data, so TransferLearning by default)
    assert params["WarmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "sagecycle-dev-2501-a1b2c3d4"}],
        "WarmStartType": "TransferLearning",
    }


def test_tuning_warm_start_type_can_be_identical_data() -> None:
    # GIVEN a rerun on identical data
    # WHEN built with IdenticalDataAndAlgorithm
    params = build_tuning_job(
        BASE, run_id=RUN, reason="r", warm_start_parent="p-1", warm_start_type="IdenticalDataAndAlgorithm"
    )
    # THEN that type is used
    assert params["WarmStartConfig"]["WarmStartType"] == "IdenticalDataAndAlgorithm"


def test_tuning_without_parent_has_no_warm_start() -> None:
    # GIVEN no previous tuning job
    # WHEN the tuning job is built
    params = build_tuning_job(BASE, run_id=RUN, reason="r")
    # THEN there is no warm start
    assert "WarmStartConfig" not in params


def test_tuned_hyperparameters_are_not_also_static() -> None:
    # GIVEN stage hyperparameters that overlap the tuned ranges (eta, max_depth) and one that does not
    settings = dataclasses.replace(BASE, hyperparameters={"num_round": "1000", "eta": "0.1", "max_depth": "6"})
    # WHEN the tuning job is built
    params = build_tuning_job(settings, run_id=RUN, reason="r")
    static = params["TrainingJobDefinition"]["StaticHyperParameters"]
    # THEN no tuned name is static, and the script-mode entries are
    assert not {r.name for r in BASE.tuning.ranges} & set(static)
    assert static["sagemaker_program"] == "train.py"
    assert static["num_round"] == "1000"


def test_tuning_shares_the_training_job_definition() -> None:
    # GIVEN the same settings
    # WHEN both jobs are built
    training = build_training_job(BASE, run_id=RUN, reason="r")
    definition = build_tuning_job(BASE, run_id=RUN, reason="r")["TrainingJobDefinition"]
    # THEN channels, resources, output and security match
    for key in ("InputDataConfig", "ResourceConfig", "OutputDataConfig", "EnableNetworkIsolation", "RoleArn"):
        assert definition[key] == training[key]


@pytest.mark.parametrize(
    ("objective", "metric", "direction"),
    [
        ("binary:logistic", "validation:auc", "Maximize"),
        ("multi:softprob", "validation:mlogloss", "Minimize"),
        ("reg:squarederror", "validation:rmse", "Minimize"),
    ],
)
def test_tuning_objective_follows_the_model_objective(objective: str, metric: str, direction: str) -> None:
    # GIVEN an objective
    # WHEN the tuning job is built
    config = build_tuning_job(settings(objective=objective), run_id=RUN, reason="r")["HyperParameterTuningJobConfig"]
    # THEN the tuner optimises the matching validation metric, with early stopping
    assert config["HyperParameterTuningJobObjective"] == {"Type": direction, "MetricName": metric}
    assert config["Strategy"] == "Bayesian"
    assert config["TrainingJobEarlyStoppingType"] == "Auto"


# ---------------------------------------------------------------------------------------- metrics


def test_every_tuning_objective_has_a_metric_definition() -> None:
    # GIVEN the three objectives
    # WHEN their metrics are looked up
    # THEN each is defined
    names = {d["Name"] for d in METRIC_DEFINITIONS}
    assert all(tuning_objective(o)[0] in names for o in ("binary:logistic", "multi:softprob", "reg:squarederror"))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "[12]\tvalidation-auc:0.92140\tvalidation-logloss:0.28871",
            {"validation:auc": 0.9214, "validation:logloss": 0.28871},
        ),
        ("[12]#011train-rmse:1.5e-02", {"train:rmse": 0.015}),
        ("metric validation:auc=0.93120 iteration=12", {"validation:auc": 0.9312}),
        ("metric validation:auc=nan", {}),
        ("xvalidation-auc:0.5", {}),
    ],
)
def test_metric_regexes_read_both_line_styles(line: str, expected: dict[str, float]) -> None:
    # GIVEN a log line
    # WHEN parsed as SageMaker would
    # THEN exactly the expected metrics come out
    assert parse_metric_line(line) == pytest.approx(expected)


def test_metric_regexes_read_what_train_py_prints() -> None:
    # GIVEN the training script's own line formatters
    fmt = pytest.importorskip("training_scripts.metrics_format")
    lines = [
        fmt.format_round(7, {"validation-auc": 0.91, "train-logloss": 0.3}),
        fmt.format_final("test", {"auc": 0.93}),
    ]
    # WHEN the Lambda-side definitions parse them
    found = {k: v for line in lines for k, v in parse_metric_line(line).items()}
    # THEN every value is recovered
    assert found == pytest.approx({"validation:auc": 0.91, "train:logloss": 0.3, "test:auc": 0.93})


def test_key_value_metric_line_round_trips() -> None:
    # GIVEN a formatted key=value line
    # WHEN parsed
    # THEN the value comes back
    assert parse_metric_line(format_metric_line("test", "rmse", 0.125, iteration=3)) == {"test:rmse": 0.125}


# ------------------------------------------------------------------------------------- transform


def test_transform_scores_lines_in_batches_with_kms() -> None:
    # GIVEN a champion model
    # WHEN the transform job is built
    params = build_transform_job(
        BASE, model_name="m", input_s3_prefix="s3://b/in/", output_s3_uri="s3://b/out/", run_id=RUN
    )
    # THEN it splits and joins by line, batches records, and encrypts volume and output
    assert params["TransformInput"]["SplitType"] == "Line"
    assert params["TransformInput"]["ContentType"] == "text/csv"
    assert params["BatchStrategy"] == "MultiRecord"
    assert params["TransformOutput"]["AssembleWith"] == "Line"
    assert params["TransformOutput"]["KmsKeyId"] == KEY
    assert params["TransformResources"]["VolumeKmsKeyId"] == KEY


def test_transform_job_name_is_deterministic_and_distinct_from_training() -> None:
    # GIVEN one run id
    # WHEN the transform and training jobs are built twice
    first = build_transform_job(
        BASE, model_name="m", input_s3_prefix="s3://b/i/", output_s3_uri="s3://b/o/", run_id=RUN
    )
    again = build_transform_job(
        BASE, model_name="m", input_s3_prefix="s3://b/i/", output_s3_uri="s3://b/o/", run_id=RUN
    )
    # THEN the transform name repeats and differs from the training name
    assert first["TransformJobName"] == again["TransformJobName"]
    assert first["TransformJobName"] != build_training_job(BASE, run_id=RUN, reason="r")["TrainingJobName"]


# ---------------------------------------------------------------------------------------- hosting


def test_model_serves_inference_py_from_the_artifact_code_folder() -> None:
    # GIVEN a model artifact with code/inference.py
    # WHEN the model is built
    params = build_model(BASE, model_name="m", model_data_url="s3://b/model.tar.gz", run_id=RUN)
    # THEN the framework container loads it from the extracted artifact, isolated from the network
    env = params["PrimaryContainer"]["Environment"]
    assert env["SAGEMAKER_PROGRAM"] == "inference.py"
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert params["EnableNetworkIsolation"] is True


def test_endpoint_config_captures_to_the_data_bucket_with_kms() -> None:
    # GIVEN instance-backed hosting
    # WHEN the endpoint config is built
    params = build_endpoint_config(BASE, endpoint_config_name="c", model_name="m", run_id=RUN)
    capture = params["DataCaptureConfig"]
    # THEN the stable variant name is used, the volume is encrypted, and capture is CSV/JSON text under capture/
    assert params["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    assert params["KmsKeyId"] == KEY
    assert capture["DestinationS3Uri"] == f"s3://{BASE.data_bucket}/capture/"
    assert capture["KmsKeyId"] == KEY
    assert capture["CaptureContentTypeHeader"] == {
        "CsvContentTypes": ["text/csv"],
        "JsonContentTypes": ["application/json", "application/jsonlines"],
    }


def test_serverless_endpoint_config_has_no_capture_or_volume_key() -> None:
    # GIVEN serverless hosting (no data capture and no volume there)
    # WHEN the endpoint config is built
    params = build_endpoint_config(
        settings(endpoint=EndpointSettings(serverless_memory_mb=2048)),
        endpoint_config_name="c",
        model_name="m",
        run_id=RUN,
    )
    # THEN the variant is serverless and neither setting appears
    assert params["ProductionVariants"][0]["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "DataCaptureConfig" not in params
    assert "KmsKeyId" not in params


def test_update_endpoint_shifts_a_canary_and_rolls_back_on_alarms() -> None:
    # GIVEN a 10 % canary and two alarms
    # WHEN the update is built
    params = build_update_endpoint(
        BASE, endpoint_name="e", endpoint_config_name="c", alarm_names=["a-5xx", "a-latency"]
    )
    policy = params["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    # THEN traffic shifts through a canary, alarms roll back, and autoscaled capacity is kept
    assert policy["TrafficRoutingConfiguration"]["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 10}
    assert params["DeploymentConfig"]["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": "a-5xx"}, {"AlarmName": "a-latency"}]
    }
    assert params["RetainAllVariantProperties"] is True


# ------------------------------------------------------------------------------ Lambda constraints


def test_lambda_shared_code_imports_only_stdlib_boto_and_powertools() -> None:
    # GIVEN every module under lambdas/shared
    # contract/ is the stdlib-only rules package the packager ships at the bundle's root, beside lambdas/.
    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore", "aws_lambda_powertools", "lambdas", "contract"}
    root = Path(jobspec.__file__).parent
    # WHEN their imports are listed
    imported = set()
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    # THEN nothing outside the Lambda runtime is needed
    assert imported - allowed == set()


def test_serverless_models_drop_isolation_and_vpc_which_sagemaker_refuses_for_them() -> None:
    # GIVEN settings for a serverless endpoint in a VPC with isolation requested
    from lambdas.shared.jobspec import EndpointSettings, VpcSettings, build_model

    base = settings(
        vpc=VpcSettings(subnet_ids=("subnet-1",), security_group_ids=("sg-1",)),
        endpoint=EndpointSettings(serverless_memory_mb=2048),
    )
    # WHEN the model request is built
    params = build_model(base, model_name="m-1", model_data_url="s3://b/model.tar.gz", run_id="r")
    # THEN neither network isolation nor a VPC is asked for
    assert params["EnableNetworkIsolation"] is False
    assert "VpcConfig" not in params


@pytest.mark.parametrize("prefix", ["sagecycle-dev", "sagecycle-prod", "abcdefghijklmnop-prod"])
def test_tuning_job_names_keep_the_project_prefix_whole(prefix: str) -> None:
    # GIVEN a trigger time WHEN a 32-character tuning job name is made
    from datetime import UTC, datetime

    from lambdas.shared.jobspec import tuning_job_name

    name = tuning_job_name(prefix, "run-1", event_time=datetime(2026, 11, 23, 6, 5, tzinfo=UTC))
    # THEN IAM's and EventBridge's prefix match still holds: the time stamp goes before the prefix is cut
    assert name.startswith(f"{prefix}-") and len(name) <= 32
    assert name == tuning_job_name(prefix, "run-1", event_time=datetime(2026, 11, 23, 6, 5, tzinfo=UTC))
