"""Metric filters and alarms on the trail for the signals that matter to this project (CIS-style)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

METRIC_NAMESPACE = "sagecycle/Security"

_IAM_POLICY_EVENTS = (
    "DeleteGroupPolicy DeleteRolePolicy DeleteUserPolicy PutGroupPolicy PutRolePolicy PutUserPolicy CreatePolicy "
    "DeletePolicy CreatePolicyVersion DeletePolicyVersion SetDefaultPolicyVersion AttachRolePolicy DetachRolePolicy "
    "AttachUserPolicy DetachUserPolicy AttachGroupPolicy DetachGroupPolicy"
).split()
_BUCKET_POLICY_EVENTS = (
    "PutBucketAcl PutBucketPolicy PutBucketCors PutBucketLifecycle PutBucketReplication DeleteBucketPolicy "
    "DeleteBucketCors DeleteBucketLifecycle DeleteBucketReplication PutBucketPublicAccessBlock "
    "DeleteBucketPublicAccessBlock PutBucketOwnershipControls PutBucketEncryption DeleteBucketEncryption"
).split()


def _any_event(names: list[str]) -> str:
    return " || ".join(f"($.eventName = {n})" for n in names)


# name -> (CloudWatch Logs filter pattern, what it means)
SECURITY_SIGNALS: dict[str, tuple[str, str]] = {
    "UnauthorizedApiCalls": (
        '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }',
        "API calls denied for lack of permission",
    ),
    "CmkDisabledOrScheduledForDeletion": (
        f"{{ ($.eventSource = kms.amazonaws.com) && ({_any_event(['DisableKey', 'ScheduleKeyDeletion'])}) }}",
        "a customer-managed KMS key was disabled or scheduled for deletion",
    ),
    "BucketPolicyChanges": (
        f"{{ ($.eventSource = s3.amazonaws.com) && ({_any_event(_BUCKET_POLICY_EVENTS)}) }}",
        "an S3 bucket policy, ACL, encryption or public-access setting changed",
    ),
    "IamPolicyChanges": (f"{{ {_any_event(_IAM_POLICY_EVENTS)} }}", "an IAM policy was created, changed or attached"),
}


class SecurityAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, log_group: logs.ILogGroup, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, (pattern, meaning) in SECURITY_SIGNALS.items():
            metric_filter = logs.MetricFilter(
                self,
                f"{name}Filter",
                log_group=log_group,
                filter_pattern=logs.FilterPattern.literal(pattern),
                metric_namespace=METRIC_NAMESPACE,
                metric_name=name,
                metric_value="1",
                default_value=0,
            )
            alarm = metric_filter.metric(statistic="Sum", period=Duration.minutes(5)).create_alarm(
                self,
                f"{name}Alarm",
                alarm_description=f"CloudTrail shows {meaning}.",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(actions.SnsAction(topic))
            self.alarms[name] = alarm
