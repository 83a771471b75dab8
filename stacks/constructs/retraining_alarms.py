"""The two alarms that start a retraining: a feature drifted, or the champion's live metric crossed the floor.

Both notify the operators; the Routes construct's RetrainAlarms rule turns their ALARM state into a start.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from config.settings import RetrainingConfig
from lambdas.shared import contract as c


class RetrainingAlarms(Construct):
    """`drift` (MaxPSI over the threshold) and `quality` (LiveModelQuality past the floor, by the objective)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        stage: str,
        settings: RetrainingConfig,
        lower_is_better: bool,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        dims = {c.METRIC_DIMENSION: stage}
        self.drift = cloudwatch.Alarm(
            self,
            "Drift",
            alarm_name=c.alarm_name(app_name, stage, c.DRIFT_ALARM_SUFFIX),
            alarm_description=f"A feature's PSI against the champion's baseline is above "
            f"{settings.drift_psi_threshold}: the input distribution moved; retraining starts.",
            metric=cloudwatch.Metric(
                namespace=c.METRIC_NAMESPACE,
                metric_name=c.METRIC_MAX_PSI,
                dimensions_map=dims,
                statistic="Maximum",
                period=Duration.hours(1),
            ),
            threshold=settings.drift_psi_threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.quality = cloudwatch.Alarm(
            self,
            "Quality",
            alarm_name=c.alarm_name(app_name, stage, c.QUALITY_ALARM_SUFFIX),
            alarm_description="The champion's metric on labelled live traffic (published by your ground-truth "
            "job as sagecycle/LiveModelQuality) crossed the promotion floor; retraining starts.",
            metric=cloudwatch.Metric(
                namespace=c.METRIC_NAMESPACE,
                metric_name=c.METRIC_LIVE_QUALITY,
                dimensions_map=dims,
                statistic="Average",
                period=Duration.hours(6),
            ),
            threshold=settings.metric_floor,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
            if lower_is_better
            else cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.drift, self.quality):
            alarm.add_alarm_action(actions.SnsAction(topic))
