"""An S3 bucket with every control this project requires, in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.nag import acknowledge, exempt

TLS_MINIMUM = 1.2


def _common_props(noncurrent_version_expiry_days: int) -> dict[str, Any]:
    return {
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "enforce_ssl": True,
        "minimum_tls_version": TLS_MINIMUM,
        "versioned": True,
        "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        "removal_policy": RemovalPolicy.RETAIN,
        "lifecycle_rules": [
            s3.LifecycleRule(
                id="OldVersionsAndUploads",
                noncurrent_version_expiration=Duration.days(noncurrent_version_expiry_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ],
    }


class AccessLogBucket(Construct):
    """Target of S3 server access logs: SSE-S3 (the only encryption log delivery supports), no self-logging."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_name: str | None = None,
        expiry_days: int,
        noncurrent_version_expiry_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        props = _common_props(noncurrent_version_expiry_days)
        props["lifecycle_rules"] = [
            *props["lifecycle_rules"],
            s3.LifecycleRule(id="ExpireAccessLogs", expiration=Duration.days(expiry_days)),
        ]
        self.bucket = s3.Bucket(
            self, "Bucket", bucket_name=bucket_name, encryption=s3.BucketEncryption.S3_MANAGED, **props
        )
        cfn = self.bucket.node.default_child
        exempt(cfn, "s3-no-access-log", "This is the access-log target bucket; S3 cannot log a bucket to itself.")
        exempt(cfn, "s3-sse-s3", "S3 server access log delivery supports only SSE-S3 on the target bucket.")
        for rule in ("HIPAA.Security-S3BucketReplicationEnabled", "NIST.800.53.R5-S3BucketReplicationEnabled"):
            acknowledge(
                cfn, rule, "Access logs are diagnostic copies; versioning protects them, replication is not worth it."
            )


class SecureBucket(Construct):
    """SSE-KMS with a bucket key, TLS only (>= 1.2), versioned, access-logged, owner-enforced, retained.

    A bucket policy denies uploads that ask for another key or another kind of encryption. Uploads that ask
    for nothing get the bucket default (our key), so well-behaved clients need not repeat the key id.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_name: str | None = None,
        encryption_key: kms.IKey,
        access_logs: s3.IBucket,
        access_logs_prefix: str,
        noncurrent_version_expiry_days: int,
        lifecycle_rules: Sequence[s3.LifecycleRule] = (),
        replication_reason: str,
    ) -> None:
        super().__init__(scope, construct_id)
        props = _common_props(noncurrent_version_expiry_days)
        props["lifecycle_rules"] = [*props["lifecycle_rules"], *lifecycle_rules]
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            bucket_key_enabled=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=access_logs_prefix,
            **props,
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyUploadsWithOtherEncryption",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions={"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyUploadsWithOtherKey",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions={
                    "StringNotEqualsIfExists": {
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": encryption_key.key_arn
                    }
                },
            )
        )
        cfn = self.bucket.node.default_child
        for rule in ("HIPAA.Security-S3BucketReplicationEnabled", "NIST.800.53.R5-S3BucketReplicationEnabled"):
            acknowledge(cfn, rule, replication_reason)
