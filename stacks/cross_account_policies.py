"""The grants between a build account and a serving account, written once as policy documents.

The stacks attach them (the build side's resource policies, the serving side's identity policy and bus
policy) and the two-account tests enforce the very same documents on the local stand-in, so what is tested
is what is deployed. Every grant names one principal, the serving account's promote role, and covers one
prefix or resource with read actions only:

- build model package group policy: DescribeModelPackage / ListModelPackages on this group's packages;
- build model bucket policy: GetObject under `contract.CROSS_ACCOUNT_READ_PREFIX` (training job outputs);
- build data key policy: Decrypt, only through S3 in the region, only for objects of that bucket;
- serving approvals bus policy: PutEvents from the build account, for "SageMaker Model Package State Change"
  from aws.sagemaker only;
- serving promote role: the same reads, from its side (cross-account access needs both halves).

Plain dicts, no CDK: `iam.PolicyStatement.from_json` takes them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contract.names import (
    CROSS_ACCOUNT_READ_PREFIX,
    approvals_bus_name,
    bucket_name,
    function_role_name,
    model_package_group_name,
    role_arn,
)

DETAIL_MODEL_PACKAGE = "SageMaker Model Package State Change"  # lambdas.shared.events.DETAIL_MODEL_PACKAGE
PACKAGE_READ_ACTIONS = ("sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages")


@dataclass(frozen=True)
class AccountPair:
    """One stage split over two accounts: every name on either side follows from these."""

    app: str
    stage: str
    region: str
    build_account: str
    serving_account: str
    partition: str = "aws"

    @property
    def serving_promote_role_arn(self) -> str:
        return role_arn(self.serving_account, function_role_name(self.app, self.stage, "promote"), self.partition)

    @property
    def build_models_bucket(self) -> str:
        return bucket_name(self.app, self.stage, "models", self.build_account, self.region)

    @property
    def group(self) -> str:
        return model_package_group_name(self.app, self.stage)

    @property
    def group_arn(self) -> str:
        return f"arn:{self.partition}:sagemaker:{self.region}:{self.build_account}:model-package-group/{self.group}"

    @property
    def packages_arn(self) -> str:
        return f"arn:{self.partition}:sagemaker:{self.region}:{self.build_account}:model-package/{self.group}/*"

    @property
    def granted_objects_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.build_models_bucket}/{CROSS_ACCOUNT_READ_PREFIX}*"

    @property
    def approvals_bus_arn(self) -> str:
        bus = approvals_bus_name(self.app, self.stage)
        return f"arn:{self.partition}:events:{self.region}:{self.serving_account}:event-bus/{bus}"


def _serving_principal(pair: AccountPair) -> dict[str, Any]:
    return {"AWS": pair.serving_promote_role_arn}


def model_package_group_policy(pair: AccountPair) -> dict[str, Any]:
    """Build account: AWS::SageMaker::ModelPackageGroup ModelPackageGroupPolicy."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ServingPromoteReadsPackages",
                "Effect": "Allow",
                "Principal": _serving_principal(pair),
                "Action": list(PACKAGE_READ_ACTIONS),
                "Resource": [pair.group_arn, pair.packages_arn],
            }
        ],
    }


def bucket_read_statement(pair: AccountPair) -> dict[str, Any]:
    """Build account: the model bucket's policy statement."""
    return {
        "Sid": "ServingPromoteReadsJobOutputs",
        "Effect": "Allow",
        "Principal": _serving_principal(pair),
        "Action": "s3:GetObject",
        "Resource": pair.granted_objects_arn,
    }


def key_decrypt_statement(pair: AccountPair) -> dict[str, Any]:
    """Build account: the data key's policy statement (Resource "*" means this key, in a key policy)."""
    return {
        "Sid": "ServingPromoteDecryptsJobOutputsThroughS3",
        "Effect": "Allow",
        "Principal": _serving_principal(pair),
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "kms:ViaService": f"s3.{pair.region}.amazonaws.com",
                "kms:CallerAccount": pair.serving_account,
            },
            "StringLike": {
                "kms:EncryptionContext:aws:s3:arn": f"arn:{pair.partition}:s3:::{pair.build_models_bucket}*"
            },
        },
    }


def approvals_bus_statement(pair: AccountPair) -> dict[str, Any]:
    """Serving account: the approvals bus accepts exactly the build account's registry state changes."""
    return {
        "Sid": "BuildAccountRegistryApprovals",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{pair.partition}:iam::{pair.build_account}:root"},
        "Action": "events:PutEvents",
        "Resource": pair.approvals_bus_arn,
        "Condition": {"StringEquals": {"events:source": "aws.sagemaker", "events:detail-type": DETAIL_MODEL_PACKAGE}},
    }


def serving_promote_statements(pair: AccountPair) -> list[dict[str, Any]]:
    """Serving account: the promote role's own half of each cross-account read."""
    return [
        {
            "Sid": "ReadBuildPackages",
            "Effect": "Allow",
            "Action": list(PACKAGE_READ_ACTIONS),
            "Resource": [pair.group_arn, pair.packages_arn],
        },
        {
            "Sid": "ReadBuildJobOutputs",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": pair.granted_objects_arn,
        },
        {
            "Sid": "DecryptBuildJobOutputsThroughS3",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": f"arn:{pair.partition}:kms:{pair.region}:{pair.build_account}:key/*",
            "Condition": {
                "StringEquals": {"kms:ViaService": f"s3.{pair.region}.amazonaws.com"},
                "StringLike": {
                    "kms:EncryptionContext:aws:s3:arn": f"arn:{pair.partition}:s3:::{pair.build_models_bucket}*"
                },
            },
        },
    ]
