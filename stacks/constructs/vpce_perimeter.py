"""A bucket-policy statement that keeps object access inside this account's VPC endpoints (a network perimeter).

Why `aws:VpceAccount` and not `aws:SourceVpce`: the Data stack deploys before the Network stack (the flow
logs need its log key), so the endpoint id does not exist when the bucket policy is written, and importing
it would make the two stacks depend on each other. A value passed through SSM would be read only when the
Data stack is next deployed, so a replaced endpoint would lock the VPC out until someone redeployed. The
account owning the endpoint is known at synth, never changes, and S3 sets the key for gateway and interface
endpoints alike. The price: any VPC endpoint of this account passes, not only ours. The Network stack's S3
gateway policy narrows the other direction (only this account's buckets are reachable through it).

Left outside the perimeter, on purpose:
- AWS services acting as themselves (`aws:PrincipalIsAWSService`: CloudTrail, S3 log delivery, S3 events)
  or on a caller's behalf (`aws:ViaAWSService`: forward access sessions);
- the CDK deployment roles (`cdk-*-cfn-exec-role-*`, `cdk-*-deploy-role-*`), so CloudFormation can still
  manage the buckets;
- named service roles SageMaker uses from its own network (CreateModel checks the model artifact with the
  execution role before any VPC is involved);
- any role tagged `sagecycle:network-perimeter=exempt` (for CDK-generated helpers, such as the
  BucketDeployment copier, whose names we do not choose). Tagging roles needs IAM rights, which is the
  boundary this control assumes.
Bucket-level management (policy, encryption, notifications) is not denied, so CDK's notification helper and
an administrator can always repair the configuration; the BucketPolicyChanges alarm watches those calls.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

PERIMETER_EXEMPT_TAG = "sagecycle:network-perimeter"
PERIMETER_EXEMPT_VALUE = "exempt"
# Object reads, writes, deletes and listings: the data plane, not the bucket's configuration.
DATA_ACTIONS = (
    "s3:GetObject*",
    "s3:PutObject*",
    "s3:DeleteObject*",
    "s3:RestoreObject",
    "s3:ListBucket*",
    "s3:ListMultipartUploadParts",
    "s3:AbortMultipartUpload",
)


def vpc_endpoint_only(bucket: s3.IBucket, *, exempt_role_names: Sequence[str] = ()) -> iam.PolicyStatement:
    """Deny object access that does not arrive through a VPC endpoint owned by the bucket's account."""
    stack = Stack.of(bucket)
    account, partition, region = stack.account, stack.partition, stack.region
    exempt_roles = [
        f"arn:{partition}:iam::{account}:role/cdk-*-cfn-exec-role-{account}-{region}",
        f"arn:{partition}:iam::{account}:role/cdk-*-deploy-role-{account}-{region}",
        *(f"arn:{partition}:iam::{account}:role/{name}" for name in exempt_role_names),
    ]
    return iam.PolicyStatement(
        sid="DenyOutsideOwnVpcEndpoints",
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=list(DATA_ACTIONS),
        resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
        conditions={
            # Absent (no endpoint) or another account's endpoint -> deny; a tagged exemption -> no deny.
            "StringNotEqualsIfExists": {
                "aws:VpceAccount": account,
                f"aws:PrincipalTag/{PERIMETER_EXEMPT_TAG}": PERIMETER_EXEMPT_VALUE,
            },
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false", "aws:ViaAWSService": "false"},
            "ArnNotLikeIfExists": {"aws:PrincipalArn": exempt_roles},
        },
    )
