"""Endpoint: the champion served in real time, its canary rollouts, autoscaling, alarms and the dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from config.settings import StageConfig
from lambdas.shared import contract
from lambdas.shared.metrics import tuning_objective
from stacks.constructs.autoscaling import EndpointAutoScaling
from stacks.constructs.dashboard import EndpointDashboard
from stacks.constructs.endpoint import HostedEndpoint
from stacks.constructs.endpoint_alarms import EndpointAlarms, EndpointMetrics
from stacks.naming import bucket_name


class EndpointStack(Stack):
    """`hosted` (model, config, endpoint), `alarms`, `scaling` (None when serverless) and `dashboard`.

    `vpc_subnet_ids` and `security_group_ids` put the model in the private subnets (the Network stack's
    `subnet_ids` and `sagemaker_security_group`); without them the model runs network-isolated outside a VPC.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        execution_role_name: str,
        image_uri: str,
        champion_parameter_name: str,
        data_key: kms.IKey,
        operator_topic: sns.ITopic,
        vpc_subnet_ids: Sequence[str] | None = None,
        security_group_ids: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        app, stage, settings = config.app_name, config.stage, config.endpoint
        endpoint_name = contract.endpoint_name(app, stage)
        metrics = EndpointMetrics(endpoint_name=endpoint_name, variant_name=contract.VARIANT_NAME)

        # Alarms first, by the endpoint's deterministic name: the endpoint's rollback config names them in turn.
        self.alarms = EndpointAlarms(
            self, "Alarms", app_name=app, stage=stage, metrics=metrics, settings=settings, topic=operator_topic
        )
        rollback_keys = contract.ROLLBACK_ALARM_KEYS
        rollback = [self.alarms.alarms[key] for key in rollback_keys]

        # The role by name, as the Retraining stack does: no cross-stack reference into the Model stack.
        execution_role = iam.Role.from_role_name(self, "ExecutionRole", execution_role_name)
        self.hosted = HostedEndpoint(
            self,
            "Hosting",
            endpoint_name=endpoint_name,
            variant_name=contract.VARIANT_NAME,
            settings=settings,
            execution_role=execution_role,
            image_uri=image_uri,
            champion_parameter_name=champion_parameter_name,
            capture_s3_uri=f"s3://{bucket_name(config, 'data')}/{contract.PREFIX_CAPTURE}",
            data_key=data_key,
            rollback_alarm_names=[contract.alarm_name(app, stage, contract.ENDPOINT_ALARMS[k]) for k in rollback_keys],
            region=config.region,
            vpc_subnet_ids=vpc_subnet_ids,
            security_group_ids=security_group_ids,
        )
        # SageMaker checks the rollback alarms when a deployment starts: they exist before the endpoint.
        self.hosted.endpoint.node.add_dependency(*rollback)

        self.scaling = (
            None
            if settings.serverless
            else EndpointAutoScaling(
                self,
                "Scaling",
                endpoint_name=endpoint_name,
                variant_name=contract.VARIANT_NAME,
                settings=settings,
                endpoint=self.hosted.endpoint,
            )
        )

        self.dashboard = EndpointDashboard(
            self,
            "Dashboard",
            dashboard_name=f"{app}-{stage}",
            stage=stage,
            metrics=metrics,
            settings=settings,
            alarms=list(self.alarms.alarms.values()),
            drift_psi_threshold=config.retraining.drift_psi_threshold,
            training_job_prefix=contract.job_name_prefix(app, stage),
            training_objective_metric=tuning_objective(config.training.objective)[0],
        )

        CfnOutput(self, "EndpointName", value=endpoint_name)
        CfnOutput(self, "DashboardName", value=f"{app}-{stage}")
