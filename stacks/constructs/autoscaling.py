"""Application Auto Scaling for an instance-backed endpoint variant (serverless variants scale themselves).

Target tracking on SageMakerVariantInvocationsPerInstance: the average invocations per instance per MINUTE.
The target is `EndpointConfig.invocations_per_instance_target`, AWS's recommended derivation

    target = measured max invocations/s of one instance x 60 x safety factor (target_utilisation, 0.5 default)

with the measured figure from bench/serve.py. That bench measures one serving process, while the container
starts several workers (SAGEMAKER_MODEL_SERVER_WORKERS, by default one per vCPU): a per-process figure
under-counts an instance and errs towards more instances. Load-test the real endpoint for the true figure.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from config.settings import EndpointConfig

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# The standard service-linked role; CloudFormation creates it on first use when the template names its ARN.
SERVICE_LINKED_ROLE = (
    "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)
# Dev nights and weekends (UTC): down to min_capacity at 19:00 every day, back up at 07:00 Monday to Friday.
SCALE_DOWN = appscaling.Schedule.cron(minute="0", hour="19")
SCALE_UP = appscaling.Schedule.cron(minute="0", hour="7", week_day="MON-FRI")


def resource_id(endpoint_name: str, variant_name: str) -> str:
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


class EndpointAutoScaling(Construct):
    """`target` (the variant's instance count) and `policy` (target tracking); scheduled actions when asked."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        settings: EndpointConfig,
        endpoint: IConstruct,
    ) -> None:
        super().__init__(scope, construct_id)
        if settings.serverless:
            raise ValueError("serverless endpoints scale themselves; do not add Application Auto Scaling")
        role = iam.Role.from_role_arn(
            self,
            "ServiceLinkedRole",
            Stack.of(self).format_arn(service="iam", region="", resource="role", resource_name=SERVICE_LINKED_ROLE),
            mutable=False,
        )
        self.target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            scalable_dimension=SCALABLE_DIMENSION,
            resource_id=resource_id(endpoint_name, variant_name),
            min_capacity=settings.min_capacity,
            max_capacity=settings.max_capacity,
            role=role,
        )
        # The resource id is a plain string, so CloudFormation needs telling that the variant must exist first.
        self.target.node.add_dependency(endpoint)
        self.policy = self.target.scale_to_track_metric(
            "InvocationsPerInstance",
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            target_value=settings.invocations_per_instance_target,
            # Out fast (a new instance takes minutes to serve), in slowly (do not flap on a lull).
            scale_out_cooldown=Duration.seconds(settings.scale_out_cooldown_s),
            scale_in_cooldown=Duration.seconds(settings.scale_in_cooldown_s),
        )
        if settings.scheduled_scale_down:
            # An instance endpoint cannot go below one instance; capping max at min is what "off" means here.
            self.target.scale_on_schedule(
                "NightlyScaleDown",
                schedule=SCALE_DOWN,
                min_capacity=settings.min_capacity,
                max_capacity=settings.min_capacity,
            )
            self.target.scale_on_schedule(
                "MorningScaleUp",
                schedule=SCALE_UP,
                min_capacity=settings.min_capacity,
                max_capacity=settings.max_capacity,
            )
