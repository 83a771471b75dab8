"""One dashboard per stage: traffic, latency, errors, capacity, drift, retraining and every alarm's state."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from config.settings import EndpointConfig
from lambdas.shared import contract
from stacks.constructs.endpoint_alarms import (
    CPU_PERCENT,
    MICROSECONDS_PER_MS,
    EndpointMetrics,
)

TRAINING_NAMESPACE = "/aws/sagemaker/TrainingJobs"
PERCENTILES = ("p50", "p90", "p99")


class EndpointDashboard(Construct):
    """`dashboard`, with `widget_titles` in order (what the tests and the README list)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        stage: str,
        metrics: EndpointMetrics,
        settings: EndpointConfig,
        alarms: Sequence[cloudwatch.IAlarm],
        drift_psi_threshold: float,
        training_job_prefix: str,
        training_objective_metric: str,
    ) -> None:
        super().__init__(scope, construct_id)
        minute, hour = Duration.minutes(1), Duration.hours(1)
        graphs: list[cloudwatch.IWidget] = []
        self.widget_titles: list[str] = []

        def graph(
            title: str,
            left: Sequence[cloudwatch.IMetric],
            *,
            right: Sequence[cloudwatch.IMetric] = (),
            left_annotations: Sequence[cloudwatch.HorizontalAnnotation] = (),
        ) -> None:
            graphs.append(
                cloudwatch.GraphWidget(
                    title=title,
                    left=list(left),
                    right=list(right),
                    left_annotations=list(left_annotations),
                    width=8,
                    height=6,
                )
            )
            self.widget_titles.append(title)

        graph("Invocations per minute", [metrics.invocation("Invocations", "Sum", minute, "invocations")])
        graph(
            "Errors per minute",
            [
                metrics.invocation("Invocation4XXErrors", "Sum", minute, "4xx"),
                metrics.invocation("Invocation5XXErrors", "Sum", minute, "5xx"),
            ],
            right=[metrics.rate_4xx(Duration.minutes(5))],
        )
        slo = cloudwatch.HorizontalAnnotation(
            value=settings.latency_slo_ms * MICROSECONDS_PER_MS, label=f"SLO {settings.latency_slo_ms} ms"
        )
        for name in ("ModelLatency", "OverheadLatency"):
            graph(
                f"{name} (microseconds)",
                [metrics.invocation(name, p, minute, f"{name} {p}") for p in PERCENTILES],
                left_annotations=[slo],
            )
        if not settings.serverless:
            # Each instance publishes one CPUUtilization sample a minute: the sample count is the instance count.
            graph(
                "Instances in service",
                [metrics.instance("CPUUtilization", "SampleCount", minute, "instances")],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=settings.min_capacity, label="min capacity"),
                    cloudwatch.HorizontalAnnotation(value=settings.max_capacity, label="max capacity"),
                ],
            )
            graph(
                "Instance utilisation (%)",
                [
                    metrics.cpu_of_instance(settings.instance_type, Duration.minutes(5)),
                    metrics.instance("MemoryUtilization", "Average", Duration.minutes(5), "memory"),
                    metrics.instance("DiskUtilization", "Average", Duration.minutes(5), "disk"),
                ],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=CPU_PERCENT, label="CPU alarm")],
            )

        def ours(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=contract.METRIC_NAMESPACE,
                metric_name=name,
                dimensions_map={contract.METRIC_DIMENSION: stage},
                statistic=statistic,
                period=hour,
                label=name,
            )

        graph(
            "Drift: largest feature PSI",
            [ours(contract.METRIC_MAX_PSI, "Maximum")],
            left_annotations=[cloudwatch.HorizontalAnnotation(value=drift_psi_threshold, label="retrain")],
        )
        graph(
            "Retraining per hour",
            [
                ours(name, "Sum")
                for name in (
                    contract.METRIC_TRAINING_STARTED,
                    contract.METRIC_TRAINING_FAILED,
                    contract.METRIC_CANDIDATE_APPROVED,
                    contract.METRIC_CANDIDATE_REJECTED,
                    contract.METRIC_DEPLOYMENT_ROLLED_BACK,
                )
            ],
        )
        # One line per training job of this stage (names start with the prefix), from its MetricDefinitions.
        graph(
            f"Training jobs: {training_objective_metric}",
            [
                cloudwatch.SearchExpression(
                    expression=f"SEARCH('{{{TRAINING_NAMESPACE},TrainingJobName}} "
                    f'TrainingJobName={training_job_prefix} MetricName="{training_objective_metric}"\', '
                    "'Maximum', 3600)",
                    label="",
                    period=hour,
                )
            ],
        )
        status = cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=4)
        self.widget_titles.append("Alarms")

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=Duration.hours(6),
            # Alarm states on top, then the graphs three to a row.
            widgets=[[status], *(graphs[i : i + 3] for i in range(0, len(graphs), 3))],
        )
