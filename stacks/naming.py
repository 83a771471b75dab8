"""Deterministic physical names, so stacks refer to each other's buckets without cross-stack tokens.

The names themselves are spelled once, in contract/names.py, which the functions and the rehearsal read too;
these helpers only supply the stage's app, stage, account and region.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnResource, Stack
from constructs import IConstruct

from config.settings import StageConfig
from contract import names
from stacks.cross_account_policies import AccountPair

BUCKET_PURPOSES = names.BUCKET_PURPOSES


def bucket_name(config: StageConfig, purpose: str, *, account: str = Aws.ACCOUNT_ID) -> str:
    """`<app>-<stage>-<purpose>-<account>-<region>`: unique per account and region, at most 63 characters.

    The account is the deploy-time token unless given (the offline rehearsal's local account).
    """
    return names.bucket_name(config.app_name, config.stage, purpose, account, config.region)


def account_pair(config: StageConfig) -> AccountPair | None:
    """The two accounts of a build or serving stage (None for a single-account stage)."""
    a = config.accounts
    if a.role == "single" or config.account is None:
        return None
    build, serving = (config.account, a.serving_account) if a.role == "build" else (a.build_account, config.account)
    assert build is not None and serving is not None  # config/rules.py refuses a stage without its peer
    return AccountPair(
        app=config.app_name, stage=config.stage, region=config.region, build_account=build, serving_account=serving
    )


def table_name(config: StageConfig, purpose: str) -> str:
    """`<app>-<stage>-<purpose>` for the DynamoDB tables (runs: lock + run records; idempotency)."""
    return names.table_name(config.app_name, config.stage, purpose)


def execution_role_name(config: StageConfig) -> str:
    """The SageMaker execution role's name (the Model stack creates it; the Data stack's key policy names it)."""
    return names.execution_role_name(config.app_name, config.stage)


def model_package_group_name(config: StageConfig) -> str:
    """The model registry group every candidate is registered in."""
    return names.model_package_group_name(config.app_name, config.stage)


def operators_topic_name(config: StageConfig) -> str:
    """The operators' SNS topic."""
    return names.operators_topic_name(config.app_name, config.stage)


def champion_parameter_name(config: StageConfig) -> str:
    """The SSM parameter holding the champion's model data URL."""
    return names.champion_parameter_name(config.app_name, config.stage)


def nag_bucket_arn(config: StageConfig, purpose: str, scope: IConstruct) -> str:
    """The bucket ARN as cdk-nag prints it inside a finding id (tokens shown as <AWS::...>)."""
    name = names.bucket_name(config.app_name, config.stage, purpose, "<AWS::AccountId>", config.region)
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
