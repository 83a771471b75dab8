"""Hosting and batch scoring requests: CreateModel, CreateEndpointConfig, UpdateEndpoint, CreateTransformJob."""

from __future__ import annotations

from lambdas.shared.hosting import build_endpoint_config, build_model, build_transform_job, build_update_endpoint
from lambdas.shared.job_settings import (
    EndpointSettings,
    VpcSettings,
)
from lambdas.shared.training_jobs import build_training_job
from tests.lambdas.jobspec_support import BASE, KEY, RUN, settings

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


def test_serverless_models_drop_isolation_and_vpc_which_sagemaker_refuses_for_them() -> None:
    # GIVEN settings for a serverless endpoint in a VPC with isolation requested
    base = settings(
        vpc=VpcSettings(subnet_ids=("subnet-1",), security_group_ids=("sg-1",)),
        endpoint=EndpointSettings(serverless_memory_mb=2048),
    )
    # WHEN the model request is built
    params = build_model(base, model_name="m-1", model_data_url="s3://b/model.tar.gz", run_id="r")
    # THEN neither network isolation nor a VPC is asked for
    assert params["EnableNetworkIsolation"] is False
    assert "VpcConfig" not in params
