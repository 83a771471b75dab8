"""Data: the stateful, encrypted data plane (keys, data bucket, model bucket, access logs)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config.settings import StageConfig
from stacks.constructs.keys import EncryptionKeys
from stacks.constructs.secure_bucket import AccessLogBucket, SecureBucket
from stacks.constructs.vpce_perimeter import vpc_endpoint_only
from stacks.cross_account_policies import bucket_read_statement, key_decrypt_statement
from stacks.nag import acknowledge
from stacks.naming import account_pair, bucket_name, table_name


def _pin_logical_id(construct: Construct, logical_id: str) -> None:
    """Stateful resources keep their logical IDs if the construct tree is ever refactored."""
    cfn = construct.node.default_child
    assert isinstance(cfn, CfnResource)
    cfn.override_logical_id(logical_id)


class DataStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, termination_protection=True, **kwargs)
        d = config.data

        self.keys = EncryptionKeys(self, "Keys", app_name=config.app_name, stage=config.stage)
        _pin_logical_id(self.keys.data_key, "DataKey")
        _pin_logical_id(self.keys.log_key, "LogKey")

        self.access_logs = AccessLogBucket(
            self,
            "AccessLogs",
            bucket_name=bucket_name(config, "access-logs"),
            expiry_days=d.access_log_expiry_days,
            noncurrent_version_expiry_days=d.noncurrent_version_expiry_days,
        ).bucket
        _pin_logical_id(self.access_logs, "AccessLogBucket")

        self.data_bucket = SecureBucket(
            self,
            "Data",
            bucket_name=bucket_name(config, "data"),
            encryption_key=self.keys.data_key,
            access_logs=self.access_logs,
            access_logs_prefix="data-bucket/",
            noncurrent_version_expiry_days=d.noncurrent_version_expiry_days,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireCapture", prefix="capture/", expiration=Duration.days(d.capture_expiry_days)
                ),
                s3.LifecycleRule(
                    id="ExpireQuarantine", prefix="quarantine/", expiration=Duration.days(d.quarantine_expiry_days)
                ),
            ],
            replication_reason="Training data is re-creatable from its sources; versioning plus RETAIN guard "
            "against loss, and cross-region replication would double storage cost for every stage.",
        ).bucket
        _pin_logical_id(self.data_bucket, "DataBucket")

        self.model_bucket = SecureBucket(
            self,
            "Models",
            bucket_name=bucket_name(config, "models"),
            encryption_key=self.keys.data_key,
            access_logs=self.access_logs,
            access_logs_prefix="model-bucket/",
            noncurrent_version_expiry_days=d.noncurrent_version_expiry_days,
            replication_reason="Model artifacts are reproducible from versioned data and code; versioning plus "
            "RETAIN guard against loss without a second region's cost.",
        ).bucket
        _pin_logical_id(self.model_bucket, "ModelBucket")

        if config.network.restrict_buckets_to_vpce:
            # Object access only through this account's VPC endpoints; see vpce_perimeter.py for the exemptions.
            execution_role = f"{config.app_name}-{config.stage}-sagemaker-execution"  # the Model stack's role
            for bucket in (self.data_bucket, self.model_bucket):
                bucket.add_to_resource_policy(vpc_endpoint_only(bucket, exempt_role_names=[execution_role]))

        pair = account_pair(config)
        if pair is not None and config.accounts.role == "build":
            # The serving account's promote role reads job outputs (one prefix) and decrypts them through S3.
            self.model_bucket.add_to_resource_policy(iam.PolicyStatement.from_json(bucket_read_statement(pair)))
            self.keys.data_key.add_to_resource_policy(iam.PolicyStatement.from_json(key_decrypt_statement(pair)))

        # Object-created events go to EventBridge (set on the L1, so no notifications custom resource is needed);
        # the Retraining stack routes `incoming/` through a queue to the ingest function.
        cfn_data = self.data_bucket.node.default_child
        assert isinstance(cfn_data, s3.CfnBucket)
        cfn_data.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True)
        )

        # Retraining state: the training lock, run records and counters; Powertools idempotency records.
        self.runs_table = self._table("Runs", table_name(config, "runs"), "pk", "sk", ttl="expires_at")
        self.idempotency_table = self._table(
            "Idempotency", table_name(config, "idempotency"), "id", None, ttl="expiration"
        )

        CfnOutput(self, "DataBucketName", value=self.data_bucket.bucket_name)
        CfnOutput(self, "ModelBucketName", value=self.model_bucket.bucket_name)
        CfnOutput(self, "DataKeyArn", value=self.keys.data_key.key_arn)

    def _table(self, construct_id: str, name: str, pk: str, sk: str | None, *, ttl: str) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            construct_id,
            table_name=name,
            partition_key=dynamodb.Attribute(name=pk, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=sk, type=dynamodb.AttributeType.STRING) if sk else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.keys.data_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            time_to_live_attribute=ttl,
            removal_policy=RemovalPolicy.RETAIN,
        )
        _pin_logical_id(table, f"{construct_id}Table")
        for rule in ("HIPAA.Security-DynamoDBInBackupPlan", "NIST.800.53.R5-DynamoDBInBackupPlan"):
            acknowledge(
                table.node.default_child,
                rule,
                "Point-in-time recovery keeps 35 days of continuous backups; the items are locks, counters and "
                "run records that expire by TTL or are mirrored on the training jobs' tags; a vault adds only cost.",
            )
        return table
