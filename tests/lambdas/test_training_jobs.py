"""CreateTrainingJob and CreateHyperParameterTuningJob requests: channels, spot, encryption, tuning, metrics."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from lambdas.shared.metrics import METRIC_DEFINITIONS, format_metric_line, parse_metric_line, tuning_objective
from lambdas.shared.training_jobs import build_training_job, build_tuning_job
from tests.lambdas.jobspec_support import BASE, KEY, RUN, settings

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
