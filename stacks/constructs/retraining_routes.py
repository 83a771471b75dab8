"""The retraining routes: which events and schedules invoke which glue function, and the patterns they match.

schedule, drift / model-quality alarms ---> start-training
training or tuning job finished, endpoint state change ---> promote
drift schedule ---> drift-monitor
endpoint health alarm ---> alarm-responder
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from config.settings import RetrainingConfig, StageConfig
from lambdas.shared import contract as c
from lambdas.shared.events import TERMINAL_TRAINING_STATES, TERMINAL_TUNING_STATES
from stacks.constructs.glue_function import GlueFunction
from stacks.constructs.new_data_ingestion import RULE_RETRY_ATTEMPTS

MAX_EVENT_AGE = Duration.hours(12)  # how long a rule keeps retrying a function it could not invoke


def _any_case(statuses: frozenset[str]) -> list[dict[str, str]]:
    """The statuses the handler acts on, in any casing (the handler normalises them the same way)."""
    return [{"equals-ignore-case": s} for s in sorted(statuses)]


def event_patterns(config: StageConfig, account: str) -> dict[str, dict[str, Any]]:
    """Every EventBridge pattern the retraining glue routes on, by rule; tests match them against AWS's samples.

    Each pattern is no stricter than the handler's own re-check: what the handler would act on always arrives,
    and fields SageMaker may send as `null` or leave out are not matched on at all.
    """
    app, stage = config.app_name, config.stage
    return {
        "NewData": {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {
                "bucket": {"name": [f"{app}-{stage}-data-{account}-{config.region}"]},
                "object": {"key": [{"prefix": c.PREFIX_INCOMING}]},
            },
        },
        "RetrainAlarms": {
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {
                "alarmName": [
                    c.alarm_name(app, stage, c.DRIFT_ALARM_SUFFIX),
                    c.alarm_name(app, stage, c.QUALITY_ALARM_SUFFIX),
                ],
                "state": {"value": ["ALARM"]},
            },
        },
        # A tuning job's children are not candidates, but the rule lets them through: SageMaker sends
        # `TuningJobArn` set, `null` or not at all, and `{"exists": false}` does not match `null`. The promote
        # function re-checks every finished job (TuningJobArn, else DescribeTrainingJob for a child's name).
        "TrainingFinished": {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Training Job State Change"],
            "detail": {
                "TrainingJobName": [{"prefix": f"{c.job_name_prefix(app, stage)}-"}],
                "TrainingJobStatus": _any_case(TERMINAL_TRAINING_STATES),
            },
        },
        "TuningFinished": {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker HyperParameter Tuning Job State Change"],
            "detail": {
                "HyperParameterTuningJobName": [{"prefix": f"{c.job_name_prefix(app, stage)}-"}],
                "HyperParameterTuningJobStatus": _any_case(TERMINAL_TUNING_STATES),
            },
        },
        "EndpointChanged": {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Endpoint State Change", "SageMaker Endpoint Deployment State Change"],
            "detail": {"EndpointName": [c.endpoint_name(app, stage)]},
        },
        "PackageApproval": {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Package State Change"],
            "account": [account],
            "detail": {
                "ModelPackageGroupName": [c.model_package_group_name(app, stage)],
                "ModelApprovalStatus": ["Approved", "Rejected"],
            },
        },
        "EndpointUnhealthy": {
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {
                "alarmName": [c.alarm_name(app, stage, c.ENDPOINT_ALARMS["unhealthy"])],
                "state": {"value": ["ALARM"]},
            },
        },
    }


def event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """One of `event_patterns` as CDK takes it."""
    return events.EventPattern(
        source=pattern["source"],
        detail_type=pattern["detail-type"],
        account=pattern.get("account"),
        detail=pattern["detail"],
    )


@dataclass(frozen=True)
class GlueFunctions:
    """The functions the routes invoke; a two-account stage has some of them only (docs/two-accounts.md), and
    a route whose function is not in this account is not made."""

    promote: GlueFunction
    start: GlueFunction | None = None
    drift: GlueFunction | None = None
    responder: GlueFunction | None = None
    own_approvals: bool = False  # this registry's approvals reach promote (manual approval, or a build stage)


class RetrainingRoutes(Construct):
    """One rule per route (`rules`, by construct id); every Lambda target retries and dead-letters the same way."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        patterns: dict[str, dict[str, Any]],
        schedules: RetrainingConfig,
        functions: GlueFunctions,
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        f = functions
        # (construct id, description, pattern or schedule, function)
        routes: list[tuple[str, str, events.EventPattern | events.Schedule, GlueFunction | None]] = [
            (
                "RetrainAlarms",
                "Drift or model-quality alarm: retrain",
                event_pattern(patterns["RetrainAlarms"]),
                f.start,
            ),
            (
                "Schedule",
                "Scheduled retraining, only when new accepted data has arrived",
                events.Schedule.expression(schedules.schedule),
                f.start,
            ),
            (
                "TrainingFinished",
                "Our training jobs reached a terminal state",
                event_pattern(patterns["TrainingFinished"]),
                f.promote,
            ),
            (
                "TuningFinished",
                "Our tuning jobs reached a terminal state",
                event_pattern(patterns["TuningFinished"]),
                f.promote,
            ),
            (
                "EndpointChanged",
                "Our endpoint changed state: a deployment finished or rolled back",
                event_pattern(patterns["EndpointChanged"]),
                f.promote,
            ),
            (
                "DriftSchedule",
                "Scheduled drift check of captured requests",
                events.Schedule.expression(schedules.drift_schedule),
                f.drift,
            ),
            (
                "EndpointUnhealthy",
                "The endpoint's composite health alarm fired",
                event_pattern(patterns["EndpointUnhealthy"]),
                f.responder,
            ),
            (
                "PackageApproval",
                "A person approved or rejected a package of our registry",
                event_pattern(patterns["PackageApproval"]),
                f.promote if f.own_approvals else None,
            ),
        ]
        self.rules: dict[str, events.Rule] = {}
        for rule_id, description, trigger, fn in routes:
            if fn is None:
                continue
            is_schedule = isinstance(trigger, events.Schedule)
            rule = events.Rule(
                self,
                rule_id,
                description=description,
                schedule=trigger if is_schedule else None,  # type: ignore[arg-type]
                event_pattern=None if is_schedule else trigger,  # type: ignore[arg-type]
            )
            rule.add_target(
                targets.LambdaFunction(
                    fn.function,
                    dead_letter_queue=dead_letters,
                    retry_attempts=RULE_RETRY_ATTEMPTS,
                    max_event_age=MAX_EVENT_AGE,
                )
            )
            self.rules[rule_id] = rule
