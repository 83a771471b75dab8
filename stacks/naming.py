"""Deterministic physical names, so stacks refer to each other's buckets without cross-stack tokens."""

from __future__ import annotations

from aws_cdk import Aws, CfnResource, Stack
from constructs import IConstruct

from config.settings import StageConfig

BUCKET_PURPOSES = ("data", "models", "trail", "access-logs")


def bucket_name(config: StageConfig, purpose: str, *, account: str = Aws.ACCOUNT_ID) -> str:
    """`<app>-<stage>-<purpose>-<account>-<region>`: unique per account and region, at most 63 characters.

    The account is the deploy-time token unless given (the offline rehearsal's local account).
    """
    if purpose not in BUCKET_PURPOSES:
        raise ValueError(f"unknown bucket purpose {purpose!r}; allowed: {', '.join(BUCKET_PURPOSES)}")
    return f"{config.app_name}-{config.stage}-{purpose}-{account}-{config.region}"


def table_name(config: StageConfig, purpose: str) -> str:
    """`<app>-<stage>-<purpose>` for the DynamoDB tables (runs: lock + run records; idempotency)."""
    if purpose not in ("runs", "idempotency"):
        raise ValueError(f"unknown table purpose {purpose!r}; allowed: runs, idempotency")
    return f"{config.app_name}-{config.stage}-{purpose}"


def nag_bucket_arn(config: StageConfig, purpose: str, scope: IConstruct) -> str:
    """The bucket ARN as cdk-nag prints it inside a finding id (tokens shown as <AWS::...>)."""
    name = f"{config.app_name}-{config.stage}-{purpose}-<AWS::AccountId>-{config.region}"
    partition = Stack.of(scope).partition  # a literal once the stack's region is known
    return f"arn:{'<AWS::Partition>' if partition.startswith('${Token') else partition}:s3:::{name}"


def keep_depends_on(resource: IConstruct | None, *needed: IConstruct | None) -> None:
    """Replace an L2's DependsOn with the ones that carry meaning.

    Several L2s list a role in DependsOn although a GetAtt on it already orders the resources (cfn-lint
    W3005); the role's policy is the dependency that matters.
    """
    assert isinstance(resource, CfnResource)
    stack = Stack.of(resource)
    ids = [stack.get_logical_id(n) for n in needed if isinstance(n, CfnResource)]
    resource.add_override("DependsOn", ids)
