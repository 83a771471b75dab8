"""The hosted champion: a SageMaker model, an endpoint config and an endpoint with canary updates.

Which model.tar.gz is served is never written into the template. `ModelDataUrl` is a dynamic reference to
the champion SSM parameter, resolved by CloudFormation whenever it creates the model:

- A deploy after retraining cannot roll the endpoint back to an older model: the promote Lambda moves the
  endpoint to a new champion out of band (its own model and endpoint config, then the parameter), and the
  parameter's value changing is not a template change, so CloudFormation leaves the endpoint alone.
- When the template does change, CloudFormation creates a new model (no `ModelName`: it names each one
  itself, so replacement never collides), which resolves the parameter again: the current champion. The new
  model forces a new endpoint config and a blue/green update of the endpoint to it.
- A change to the endpoint config or the endpoint alone would re-point the endpoint at the model that
  CloudFormation created last, possibly an older champion. `hosting_revision` closes that gap: it fingerprints
  every setting those two resources carry and puts it in the model's environment, so any such change also
  replaces the model and resolves the champion afresh.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from aws_cdk import Annotations, CfnDynamicReference, CfnDynamicReferenceService
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from config.settings import EndpointConfig
from lambdas.shared.jobspec import has_local_storage, hosting_environment
from stacks.nag import acknowledge

CONTAINER_LOG_LEVEL = "20"  # what the promote Lambda's models use (jobspec.build_model)
CAPTURE_CSV_TYPES = ["text/csv"]
CAPTURE_JSON_TYPES = ["application/json", "application/jsonlines"]


def hosting_revision(settings: EndpointConfig, *, variant_name: str, rollback_alarm_names: Sequence[str]) -> str:
    """A fingerprint of what the endpoint config and the endpoint carry (not autoscaling, not alarm thresholds)."""
    carried = {
        "variant": variant_name,
        "instance_type": settings.instance_type,
        "initial_instance_count": settings.initial_instance_count,
        "serverless": settings.serverless,
        "serverless_memory_mb": settings.serverless_memory_mb,
        "serverless_max_concurrency": settings.serverless_max_concurrency,
        "capture": settings.data_capture_sampling_percent,
        "capture_types": [CAPTURE_CSV_TYPES, CAPTURE_JSON_TYPES],
        "canary": [settings.canary_percent, settings.canary_wait_s],
        "termination_wait_s": settings.termination_wait_s,
        "deployment_timeout_s": settings.deployment_timeout_s,
        "rollback_alarms": list(rollback_alarm_names),
    }
    return hashlib.sha256(json.dumps(carried, sort_keys=True).encode()).hexdigest()[:16]


class HostedEndpoint(Construct):
    """`model`, `endpoint_config` and `endpoint` (L1s); `endpoint_name` and `variant_name` as plain strings.

    Serverless (a dev option) differs where SageMaker refuses features for serverless variants: no VPC and no
    network isolation on the model, no volume KMS key (there is no volume), no data capture, and variant
    properties are not retained (there is no instance count for autoscaling to keep).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        settings: EndpointConfig,
        execution_role: iam.IRole,
        image_uri: str,
        champion_parameter_name: str,
        capture_s3_uri: str,
        data_key: kms.IKey,
        rollback_alarm_names: Sequence[str],
        region: str,
        vpc_subnet_ids: Sequence[str] | None = None,
        security_group_ids: Sequence[str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if (vpc_subnet_ids is None) != (security_group_ids is None):
            raise ValueError("pass vpc_subnet_ids and security_group_ids together, or neither")
        self.endpoint_name, self.variant_name = endpoint_name, variant_name
        serverless = settings.serverless
        if serverless and vpc_subnet_ids is not None:
            Annotations.of(self).add_warning_v2(
                "sagecycle:serverless-outside-vpc",
                "endpoint.serverless is on: SageMaker runs serverless models outside any VPC, so the subnets and "
                "security groups are not used for the endpoint.",
            )

        model_data_url = CfnDynamicReference(CfnDynamicReferenceService.SSM, champion_parameter_name).to_string()
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=execution_role.role_arn,
            enable_network_isolation=not serverless,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri,
                mode="SingleModel",
                model_data_url=model_data_url,
                environment={
                    # The same Environment promote gives every model it deploys (one definition in jobspec).
                    **hosting_environment(region=region, container_log_level=CONTAINER_LOG_LEVEL),
                    "SAGECYCLE_HOSTING_REVISION": hosting_revision(
                        settings, variant_name=variant_name, rollback_alarm_names=rollback_alarm_names
                    ),
                },
            ),
            vpc_config=(
                sagemaker.CfnModel.VpcConfigProperty(
                    subnets=list(vpc_subnet_ids), security_group_ids=list(security_group_ids)
                )
                if vpc_subnet_ids is not None and security_group_ids is not None and not serverless
                else None
            ),
        )

        variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=variant_name,
            model_name=self.model.attr_model_name,
            initial_variant_weight=1.0,
            **(
                {
                    "serverless_config": sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                        memory_size_in_mb=settings.serverless_memory_mb,
                        max_concurrency=settings.serverless_max_concurrency,
                    )
                }
                if serverless
                else {
                    "instance_type": settings.instance_type,
                    "initial_instance_count": settings.initial_instance_count,
                }
            ),
        )
        # Instance types with local NVMe storage refuse a volume key: the hardware encrypts those disks.
        volume_key = None if serverless or has_local_storage(settings.instance_type) else data_key.key_arn
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[variant],
            kms_key_id=volume_key,
            data_capture_config=None
            if serverless
            else sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=settings.data_capture_sampling_percent,
                destination_s3_uri=capture_s3_uri,
                kms_key_id=data_key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                # Recorded as text rather than base64, so the drift monitor reads the rows directly.
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=CAPTURE_CSV_TYPES, json_content_types=CAPTURE_JSON_TYPES
                ),
            ),
        )

        if volume_key is None:
            why = (
                "endpoint.serverless (dev only; prod refuses it in config validation): a serverless variant has no "
                "ML storage volume, and SageMaker takes no KmsKeyId for it."
                if serverless
                else f"{settings.instance_type} has local NVMe instance storage: SageMaker refuses a KmsKeyId for it "
                "and encrypts those disks in hardware."
            )
            for rule in (
                "HIPAA.Security-SageMakerEndpointConfigurationKMSKeyConfigured",
                "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured",
            ):
                acknowledge(self.endpoint_config, rule, why)

        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                        type="CANARY",
                        canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                            type="CAPACITY_PERCENT", value=settings.canary_percent
                        ),
                        wait_interval_in_seconds=settings.canary_wait_s,
                    ),
                    termination_wait_in_seconds=settings.termination_wait_s,
                    maximum_execution_timeout_in_seconds=settings.deployment_timeout_s,
                ),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name) for name in rollback_alarm_names]
                ),
            ),
            # Keep the instance count autoscaling chose across updates, but take the new config's capture
            # settings. No RetainDeploymentConfig: the template always states the deployment config itself.
            retain_all_variant_properties=not serverless,
            exclude_retained_variant_properties=None
            if serverless
            else [sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type="DataCaptureConfig")],
        )
