"""The endpoint's health alarms, each to the operators' topic, named by the shared contract.

Blue/green deployments watch two of them (contract.ROLLBACK_ALARM_KEYS) and roll back on their own; the
composite "unhealthy" alarm is what the alarm responder listens to outside deployments.
"""

from __future__ import annotations

import math

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from config.settings import EndpointConfig
from lambdas.shared.contract import ENDPOINT_ALARMS, alarm_name

INVOCATION_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"  # published per instance-backed variant only, not serverless
MICROSECONDS_PER_MS = 1000  # ModelLatency and OverheadLatency are published in microseconds
# SageMaker's own overhead (routing, (de)serialisation at the front end) should stay a small share of the SLO.
OVERHEAD_SHARE_OF_SLO = 0.5
CPU_PERCENT = 80  # of the whole instance, after normalising by its vCPUs
MEMORY_PERCENT = 85
DISK_PERCENT = 80
# Size -> vCPUs, the same for every family config.settings allows (t3.medium has 2 vCPUs like a large).
_VCPUS = {"medium": 2, "large": 2, "xlarge": 4}


def vcpus(instance_type: str) -> int:
    """vCPUs of an `ml.<family>.<size>` instance: large 2, xlarge 4, Nxlarge 4N."""
    size = instance_type.rsplit(".", 1)[-1]
    if size in _VCPUS:
        return _VCPUS[size]
    if size.endswith("xlarge") and size[: -len("xlarge")].isdigit():
        return 4 * int(size[: -len("xlarge")])
    raise ValueError(f"cannot tell the vCPUs of {instance_type!r}")


class EndpointMetrics:
    """The variant's CloudWatch metrics, shared by the alarms and the dashboard."""

    def __init__(self, *, endpoint_name: str, variant_name: str) -> None:
        self.dimensions = {"EndpointName": endpoint_name, "VariantName": variant_name}

    def invocation(self, name: str, statistic: str, period: Duration, label: str | None = None) -> cloudwatch.Metric:
        """AWS/SageMaker: Invocations, Invocation4XXErrors, Invocation5XXErrors, ModelLatency, OverheadLatency."""
        return cloudwatch.Metric(
            namespace=INVOCATION_NAMESPACE,
            metric_name=name,
            dimensions_map=self.dimensions,
            statistic=statistic,
            period=period,
            label=label,
        )

    def instance(self, name: str, statistic: str, period: Duration, label: str | None = None) -> cloudwatch.Metric:
        """/aws/sagemaker/Endpoints: CPUUtilization, MemoryUtilization, DiskUtilization."""
        return cloudwatch.Metric(
            namespace=INSTANCE_NAMESPACE,
            metric_name=name,
            dimensions_map=self.dimensions,
            statistic=statistic,
            period=period,
            label=label,
        )

    def rate_4xx(self, period: Duration) -> cloudwatch.MathExpression:
        """Client errors as a percentage of invocations; no traffic reads as 0 %, not as an error."""
        return cloudwatch.MathExpression(
            expression="IF(invocations > 0, 100 * FILL(errors, 0) / invocations, 0)",
            using_metrics={
                "invocations": self.invocation("Invocations", "Sum", period),
                "errors": self.invocation("Invocation4XXErrors", "Sum", period),
            },
            label="4xx errors, % of invocations",
            period=period,
        )

    def cpu_of_instance(self, instance_type: str, period: Duration) -> cloudwatch.MathExpression:
        """CPUUtilization is summed over vCPUs (0..100 x vCPUs): divided here, so 100 % means every core busy."""
        return cloudwatch.MathExpression(
            expression=f"cpu / {vcpus(instance_type)}",
            using_metrics={"cpu": self.instance("CPUUtilization", "Average", period)},
            label="CPU, % of all vCPUs",
            period=period,
        )


class EndpointAlarms(Construct):
    """`alarms` by contract.ENDPOINT_ALARMS key; without instance metrics (serverless) cpu/memory/disk are absent."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        stage: str,
        metrics: EndpointMetrics,
        settings: EndpointConfig,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: dict[str, cloudwatch.AlarmBase] = {}
        self._app, self._stage, self._topic = app_name, stage, topic
        minute, five = Duration.minutes(1), Duration.minutes(5)
        slo_us = settings.latency_slo_ms * MICROSECONDS_PER_MS

        # Quick enough to stop a canary: 2 of 3 one-minute periods.
        self._alarm(
            "errors_5xx",
            metrics.invocation("Invocation5XXErrors", "Sum", minute),
            threshold=settings.max_5xx_per_minute,
            periods=3,
            datapoints=2,
            description=f"More than {settings.max_5xx_per_minute} server error(s) a minute: the model container "
            "fails requests. During a deployment this rolls the endpoint back.",
        )
        self._alarm(
            "rate_4xx",
            metrics.rate_4xx(five),
            threshold=settings.max_4xx_rate_percent,
            periods=3,
            datapoints=2,
            description=f"More than {settings.max_4xx_rate_percent} % of requests are rejected as client errors: "
            "callers send what the model does not accept (schema change upstream?).",
        )
        self._alarm(
            "model_latency",
            metrics.invocation("ModelLatency", "p99", minute),
            threshold=slo_us,
            periods=5,
            datapoints=3,
            description=f"p99 model latency above the {settings.latency_slo_ms} ms SLO (metric in microseconds). "
            "During a deployment this rolls the endpoint back.",
        )
        overhead_us = int(slo_us * OVERHEAD_SHARE_OF_SLO)
        self._alarm(
            "overhead_latency",
            metrics.invocation("OverheadLatency", "p99", minute),
            threshold=overhead_us,
            periods=5,
            datapoints=3,
            description=f"p99 SageMaker overhead above {overhead_us // MICROSECONDS_PER_MS} ms, half the latency "
            "SLO: the instances are saturated or payloads are too large.",
        )
        if not settings.serverless:
            self._alarm(
                "cpu",
                metrics.cpu_of_instance(settings.instance_type, five),
                threshold=CPU_PERCENT,
                periods=3,
                datapoints=3,
                description=f"CPU above {CPU_PERCENT} % of all {vcpus(settings.instance_type)} vCPUs of "
                f"{settings.instance_type} for 15 minutes: autoscaling is at its maximum or too slow.",
            )
            for key, name, threshold in (
                ("memory", "MemoryUtilization", MEMORY_PERCENT),
                ("disk", "DiskUtilization", DISK_PERCENT),
            ):
                self._alarm(
                    key,
                    metrics.instance(name, "Average", five),
                    threshold=threshold,
                    periods=3,
                    datapoints=3,
                    description=f"{name} above {threshold} % for 15 minutes on the endpoint's instances.",
                )
        idle_periods = math.ceil(settings.no_invocations_alarm_minutes / 5)
        # Silence is the symptom here: no data at all must alarm too.
        self._alarm(
            "no_invocations",
            metrics.invocation("Invocations", "Sum", five),
            threshold=1,
            periods=idle_periods,
            datapoints=idle_periods,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing=cloudwatch.TreatMissingData.BREACHING,
            description=f"No request reached the endpoint for {settings.no_invocations_alarm_minutes} minutes: "
            "callers cannot reach it, or the caller is down.",
        )
        unhealthy = cloudwatch.CompositeAlarm(
            self,
            "Unhealthy",
            composite_alarm_name=self._name("unhealthy"),
            alarm_description="The endpoint is unhealthy: server errors, latency or no traffic at all. "
            "See the member alarms for which.",
            alarm_rule=cloudwatch.AlarmRule.any_of(
                *(
                    cloudwatch.AlarmRule.from_alarm(self.alarms[k], cloudwatch.AlarmState.ALARM)
                    for k in ("errors_5xx", "model_latency", "overhead_latency", "no_invocations")
                )
            ),
        )
        unhealthy.add_alarm_action(actions.SnsAction(topic))
        self.alarms["unhealthy"] = unhealthy

    def _name(self, key: str) -> str:
        return alarm_name(self._app, self._stage, ENDPOINT_ALARMS[key])

    def _alarm(
        self,
        key: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        periods: int,
        datapoints: int,
        description: str,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            "".join(part.capitalize() for part in key.split("_")),
            alarm_name=self._name(key),
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints,
            comparison_operator=comparison,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(actions.SnsAction(self._topic))
        self.alarms[key] = alarm
