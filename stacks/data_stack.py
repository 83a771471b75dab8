"""Data: the stateful, encrypted data plane (keys, data bucket, model bucket, access logs)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnResource, Duration, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config.settings import StageConfig
from stacks.constructs.keys import EncryptionKeys
from stacks.constructs.secure_bucket import AccessLogBucket, SecureBucket
from stacks.naming import bucket_name

# The data bucket's layout; every component agrees on these prefixes.
DATA_PREFIXES = ("incoming/", "quarantine/", "train/", "validation/", "test/", "capture/", "baseline/")


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

        CfnOutput(self, "DataBucketName", value=self.data_bucket.bucket_name)
        CfnOutput(self, "ModelBucketName", value=self.model_bucket.bucket_name)
        CfnOutput(self, "DataKeyArn", value=self.keys.data_key.key_arn)
