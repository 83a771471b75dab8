"""Hosting and batch scoring parameters: CreateModel, CreateEndpointConfig, the guarded (blue/green)
UpdateEndpoint, CreateTransformJob, and the model container's Environment, which the Endpoint stack uses too.

Stdlib only (it runs inside Lambda).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from lambdas.shared.job_names import transform_job_name
from lambdas.shared.job_parts import has_local_storage, job_tags, s3_prefix_uri, vpc_config
from lambdas.shared.job_settings import TrainingSpecSettings

MODEL_CODE_DIR: Final = "/opt/ml/model/code"  # code/ inside model.tar.gz, extracted under /opt/ml/model
SERVING_PROGRAM: Final = "inference.py"  # train.py writes it (and what it imports) into the model's code/
# What the seed's client reads when it sends no Accept; without it the toolkit answers application/json.
DEFAULT_INVOCATIONS_ACCEPT: Final = "text/csv"


def hosting_environment(*, region: str, container_log_level: int | str) -> dict[str, str]:
    """The model container's Environment, one definition for CreateModel (promote) and the Endpoint stack.

    The serving code ships inside model.tar.gz under code/ (train.py writes it there), so the container imports
    SAGEMAKER_PROGRAM from SAGEMAKER_SUBMIT_DIRECTORY inside the extracted artifact, even with network isolation.
    `sagecycle serve` starts a model from this same Environment.
    """
    return {
        "SAGEMAKER_PROGRAM": SERVING_PROGRAM,
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": DEFAULT_INVOCATIONS_ACCEPT,
        "SAGEMAKER_SUBMIT_DIRECTORY": MODEL_CODE_DIR,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": str(container_log_level),
        "SAGEMAKER_REGION": region,
    }


# Captured as readable text rather than base64 (what inference.py accepts besides CSV).
JSON_CAPTURE_TYPES = ["application/json", "application/jsonlines"]


def build_transform_job(
    settings: TrainingSpecSettings,
    *,
    model_name: str,
    input_s3_prefix: str,
    output_s3_uri: str,
    run_id: str,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """CreateTransformJob parameters: score every CSV under `input_s3_prefix` (feature rows, no label)."""
    transform = settings.transform
    resources: dict[str, Any] = {"InstanceType": transform.instance_type, "InstanceCount": transform.instance_count}
    if not has_local_storage(transform.instance_type):
        resources["VolumeKmsKeyId"] = settings.kms_key_arn
    params: dict[str, Any] = {
        "TransformJobName": transform_job_name(settings.job_name_prefix, run_id, event_time=event_time),
        "ModelName": model_name,
        "MaxPayloadInMB": transform.max_payload_mb,
        # Many rows per request, split at line ends and joined back line by line: output row i = input row i.
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_s3_prefix}},
            "ContentType": "text/csv",
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": output_s3_uri,
            "Accept": transform.accept,
            "AssembleWith": "Line",
            "KmsKeyId": settings.kms_key_arn,
        },
        "TransformResources": resources,
        "Tags": job_tags(settings, run_id),
    }
    if transform.max_concurrent_transforms is not None:
        params["MaxConcurrentTransforms"] = transform.max_concurrent_transforms
    return params


def build_model(
    settings: TrainingSpecSettings,
    *,
    model_name: str,
    model_data_url: str,
    run_id: str,
) -> dict[str, Any]:
    """CreateModel parameters for a trained model.tar.gz, served by its own code/inference.py.

    SAGEMAKER_SUBMIT_DIRECTORY points at code/ inside the extracted model artifact (see `hosting_environment`).
    """
    container = {
        "Image": settings.image_uri,
        "Mode": "SingleModel",
        "ModelDataUrl": model_data_url,
        "Environment": hosting_environment(region=settings.region, container_log_level=settings.container_log_level),
    }
    params: dict[str, Any] = {
        "ModelName": model_name,
        "PrimaryContainer": container,
        "ExecutionRoleArn": settings.role_arn,
        # Serverless hosting supports neither network isolation nor a VPC; SageMaker refuses both.
        "EnableNetworkIsolation": settings.endpoint.enable_network_isolation and not settings.endpoint.serverless,
        "Tags": job_tags(settings, run_id),
    }
    vpc = vpc_config(settings)
    if vpc and not settings.endpoint.serverless:
        params["VpcConfig"] = vpc
    return params


def build_endpoint_config(
    settings: TrainingSpecSettings,
    *,
    endpoint_config_name: str,
    model_name: str,
    run_id: str,
) -> dict[str, Any]:
    """CreateEndpointConfig parameters: one stable-named variant, KMS, and data capture for drift checks."""
    endpoint = settings.endpoint
    variant: dict[str, Any] = {"VariantName": endpoint.variant_name, "ModelName": model_name}
    if endpoint.serverless:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": endpoint.serverless_memory_mb,
            "MaxConcurrency": endpoint.serverless_max_concurrency,
        }
    else:
        variant.update(
            InstanceType=endpoint.instance_type,
            InitialInstanceCount=endpoint.initial_instance_count,
            InitialVariantWeight=1.0,
        )
    params: dict[str, Any] = {
        "EndpointConfigName": endpoint_config_name,
        "ProductionVariants": [variant],
        "Tags": job_tags(settings, run_id),
    }
    # Serverless variants have no volume to encrypt and do not support data capture.
    if not endpoint.serverless and not has_local_storage(endpoint.instance_type):
        params["KmsKeyId"] = settings.kms_key_arn
    if endpoint.capture_enabled and not endpoint.serverless:
        params["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": endpoint.capture_sampling_percent,
            "DestinationS3Uri": s3_prefix_uri(settings.data_bucket, endpoint.capture_prefix),
            "KmsKeyId": settings.kms_key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            # Record CSV/JSON as text rather than base64, so the drift monitor reads it directly.
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": JSON_CAPTURE_TYPES},
        }
    return params


def build_update_endpoint(
    settings: TrainingSpecSettings,
    *,
    endpoint_name: str,
    endpoint_config_name: str,
    alarm_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """UpdateEndpoint parameters: blue/green with a canary (or linear) shift and alarm-driven rollback.

    Deployment guardrails need the new config's variant to keep the old name (`variant_name`).
    """
    endpoint = settings.endpoint
    routing: dict[str, Any] = {
        "Type": endpoint.traffic_routing,
        "WaitIntervalInSeconds": endpoint.wait_interval_seconds,
    }
    step = {"Type": "CAPACITY_PERCENT", "Value": endpoint.canary_percent}
    if endpoint.traffic_routing == "CANARY":
        routing["CanarySize"] = step
    elif endpoint.traffic_routing == "LINEAR":
        routing["LinearStepSize"] = step
    deployment: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": endpoint.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": endpoint.max_execution_timeout_seconds,
        }
    }
    alarms = list(endpoint.rollback_alarm_names if alarm_names is None else alarm_names)
    if alarms:
        deployment["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return {
        "EndpointName": endpoint_name,
        "EndpointConfigName": endpoint_config_name,
        "DeploymentConfig": deployment,
        # Keep the instance count autoscaling chose, but take the new config's capture settings.
        "RetainAllVariantProperties": True,
        "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DataCaptureConfig"}],
    }
