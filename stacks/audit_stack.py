"""Audit: CloudTrail into its own encrypted bucket and log group, security alarms, the operators' topic."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from config.settings import StageConfig
from stacks.constructs.glue_function import encrypted_queue
from stacks.constructs.retention import retention
from stacks.constructs.secure_bucket import SecureBucket
from stacks.constructs.security_alarms import SecurityAlarms
from stacks.nag import acknowledge
from stacks.naming import bucket_name, keep_depends_on


class AuditStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        log_key: kms.IKey,
        access_logs: s3.IBucket,
        watched_buckets: list[s3.IBucket],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=True, **kwargs)

        self.operator_topic = sns.Topic(
            self,
            "OperatorTopic",
            topic_name=f"{config.app_name}-{config.stage}-operators",
            display_name=f"{config.app_name} {config.stage} operators",
            master_key=log_key,
            enforce_ssl=True,
        )
        if config.operator_email:
            # Notices that cannot be delivered (a bouncing mailbox) wait in an encrypted queue, not nowhere, and
            # alarm like every other dead-letter queue (the alarm's state shows even while the mailbox bounces).
            undelivered = encrypted_queue(
                self,
                "UndeliveredNotices",
                key=log_key,
                topic=self.operator_topic,
                purpose="the operator e-mail subscription",
            )
            self.operator_topic.add_subscription(
                subscriptions.EmailSubscription(config.operator_email, dead_letter_queue=undelivered)
            )
            log_key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="SnsRedrivesToEncryptedQueue",
                    principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceAccount": self.account}},
                )
            )

        self.trail_bucket = SecureBucket(
            self,
            "TrailBucket",
            bucket_name=bucket_name(config, "trail"),
            encryption_key=log_key,
            access_logs=access_logs,
            access_logs_prefix="trail-bucket/",
            noncurrent_version_expiry_days=config.data.noncurrent_version_expiry_days,
            replication_reason="The trail is also delivered to CloudWatch Logs with retention, and log file "
            "validation detects tampering; a second-region copy is left to an organization trail.",
        ).bucket

        self.trail_log_group = logs.LogGroup(
            self,
            "TrailLogs",
            encryption_key=log_key,
            retention=retention(config.data.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            bucket=self.trail_bucket,
            encryption_key=log_key,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_file_validation=True,
            send_to_cloud_watch_logs=True,
            cloud_watch_log_group=self.trail_log_group,
        )
        # The L2 trail lists its log role in DependsOn although CloudWatchLogsRoleArn already orders it (cfn-lint
        # W3005); keep only the dependencies that carry meaning: the role's policy and the bucket policy.
        keep_depends_on(
            self.trail.node.default_child,
            self.trail.node.find_child("LogsRole").node.find_child("DefaultPolicy").node.default_child,
            self.trail_bucket.policy.node.default_child if self.trail_bucket.policy else None,
        )
        # CloudTrail encrypts with the audit key; the key policy allows this trail only.
        log_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailEncryptsThisTrail",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:DescribeKey"],
                resources=["*"],
                conditions={
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": (
                            f"arn:{self.partition}:cloudtrail:*:{self.account}:trail/*"
                        )
                    }
                },
            )
        )
        logs_policy = self.trail.node.find_child("LogsRole").node.find_child("DefaultPolicy").node.default_child
        for rule in ("HIPAA.Security-IAMNoInlinePolicy", "NIST.800.53.R5-IAMNoInlinePolicy"):
            acknowledge(
                logs_policy,
                rule,
                "The CloudTrail L2 gives its log-delivery role this one policy, scoped to the trail's own log group; "
                "a managed policy would be shared by nothing and add a resource to keep in sync.",
            )
        self.trail.add_s3_event_selector(
            [cloudtrail.S3EventSelector(bucket=b) for b in watched_buckets],
            include_management_events=True,
            read_write_type=cloudtrail.ReadWriteType.ALL,
        )

        self.security_alarms = SecurityAlarms(
            self, "SecurityAlarms", log_group=self.trail_log_group, topic=self.operator_topic
        )
        CfnOutput(self, "OperatorTopicArn", value=self.operator_topic.topic_arn)
        CfnOutput(self, "TrailArn", value=self.trail.trail_arn)
