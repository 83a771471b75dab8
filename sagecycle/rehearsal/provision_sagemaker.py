"""Provisioning SageMaker: the model package group, and the Model, EndpointConfig and Endpoint the Endpoint stack
declares (so the local hosting sees them through the sagemaker API), with the properties their template gives.

Each creator takes the provisioner (`sagecycle.rehearsal.stage`), the stack, the logical id and the resource, and
returns what Ref and Fn::GetAtt give for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sagecycle.rehearsal.stage_model import EndpointDef, Physical
from sagecycle.rehearsal.templates import drop_none, generated_name, present, sagemaker_name, tagged

if TYPE_CHECKING:
    from sagecycle.rehearsal.stage import Provisioner


def model_package_group(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    name = props.get("ModelPackageGroupName") or generated_name(stack, logical_id, 63)
    request = drop_none(
        {
            "ModelPackageGroupName": name,
            "ModelPackageGroupDescription": props.get("ModelPackageGroupDescription"),
        }
    ) | tagged(props)
    arn = p.client("sagemaker").create_model_package_group(**request)["ModelPackageGroupArn"]
    return Physical(resource["Type"], arn, {"ModelPackageGroupArn": arn, "ModelPackageGroupName": name})


def sagemaker_model(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    name = props.get("ModelName") or sagemaker_name(stack, logical_id)
    request = {
        "ModelName": name,
        "ExecutionRoleArn": props["ExecutionRoleArn"],
        **present(
            props,
            ("PrimaryContainer", "Containers", "VpcConfig", "EnableNetworkIsolation", "InferenceExecutionConfig"),
        ),
        **tagged(props),
    }
    arn = p.client("sagemaker").create_model(**request)["ModelArn"]
    return Physical(resource["Type"], arn, {"ModelName": name})


def endpoint_config(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    name = props.get("EndpointConfigName") or sagemaker_name(stack, logical_id)
    request = {
        "EndpointConfigName": name,
        "ProductionVariants": props["ProductionVariants"],
        **present(props, ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ShadowProductionVariants")),
        **tagged(props),
    }
    arn = p.client("sagemaker").create_endpoint_config(**request)["EndpointConfigArn"]
    return Physical(resource["Type"], arn, {"EndpointConfigName": name})


def endpoint(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    name = props.get("EndpointName") or sagemaker_name(stack, logical_id)
    request = {
        "EndpointName": name,
        "EndpointConfigName": props["EndpointConfigName"],
        **present(props, ("DeploymentConfig",)),
        **tagged(props),
    }
    sagemaker = p.client("sagemaker")
    arn = sagemaker.create_endpoint(**request)["EndpointArn"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=props["EndpointConfigName"])
    models = tuple(v["ModelName"] for v in config["ProductionVariants"])
    p.stage.endpoints.append(EndpointDef(name, arn, props["EndpointConfigName"], models, props.get("DeploymentConfig")))
    return Physical(resource["Type"], arn, {"EndpointName": name})
