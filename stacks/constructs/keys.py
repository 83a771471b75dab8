"""Customer-managed KMS keys: one for data and models, one for logs and audit."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class EncryptionKeys(Construct):
    """Rotating CMKs whose key policies name only the services that use them.

    The account root statement CDK adds is what lets IAM policies (our roles' grants) work at all; it is
    not a grant to everyone in the account. Service principals are scoped with `aws:SourceAccount` or an
    encryption context so another account's resource cannot use our keys through the service.
    """

    def __init__(self, scope: Construct, construct_id: str, *, app_name: str, stage: str) -> None:
        super().__init__(scope, construct_id)
        self.data_key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{app_name}-{stage}-data",
            description=f"{app_name} {stage}: training data, captured requests, model artifacts",
            enable_key_rotation=True,
            rotation_period=Duration.days(365),
            removal_policy=RemovalPolicy.RETAIN,
            pending_window=Duration.days(30),
        )
        self.log_key = kms.Key(
            self,
            "LogKey",
            alias=f"alias/{app_name}-{stage}-audit",
            description=f"{app_name} {stage}: CloudTrail, CloudWatch Logs, operator notifications",
            enable_key_rotation=True,
            rotation_period=Duration.days(365),
            removal_policy=RemovalPolicy.RETAIN,
            pending_window=Duration.days(30),
        )
        log_groups_of_this_account = f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"
        # CloudWatch Logs encrypts log groups of this account only (encryption context names the log group).
        self.log_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsInThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups_of_this_account}},
            )
        )
        # CloudWatch alarms publish to the encrypted operator topic.
        self.log_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        # EventBridge rules deliver to the encrypted topic and dead-letter queues.
        for key, sid in ((self.log_key, "EventBridgeDeliversToTopic"), (self.data_key, "EventBridgeDeliversToQueues")):
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                )
            )
        # S3 event notifications go to an SQS queue encrypted with the data key.
        self.data_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3NotificationsToEncryptedQueue",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
