"""cdk-nag: every stack passes the four packs with zero unacknowledged findings."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aws_cdk import App, CfnResource, Stack
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NagPack, NIST80053R5Checks, ServerlessChecks

from config.settings import ConfigError, load_config
from stacks.constructs.keys import EncryptionKeys
from stacks.constructs.secure_bucket import AccessLogBucket, SecureBucket
from tests.infrastructure.conftest import Synthesized, cdk_context

PACKS: dict[str, Callable[[], NagPack]] = {
    "AwsSolutions": AwsSolutionsChecks,
    "HIPAA.Security": HIPAASecurityChecks,
    "NIST.800.53.R5": NIST80053R5Checks,
    "Serverless": ServerlessChecks,
}


def findings(scope: Stack, pack_name: str) -> list[str]:
    report = PACKS[pack_name]().validate_scope(scope)
    return [
        f"{v.rule_name} at {r.construct_path}: {v.description[:140]}"
        for v in report.violations
        for r in v.violating_resources
    ]


@pytest.mark.parametrize("pack_name", sorted(PACKS))
def test_every_stack_passes_the_pack(synthesized: Synthesized, pack_name: str) -> None:
    # GIVEN every stack of the stage, synthesized once for the session
    # WHEN the nag pack validates each stack
    problems = {s.stack_name: findings(s, pack_name) for s in synthesized.stage.stacks()}
    # THEN nothing is reported that has not been acknowledged with a reason
    assert {k: v for k, v in problems.items() if v} == {}


def test_nag_fails_when_bucket_encryption_is_removed() -> None:
    # GIVEN a stack with one of our secure buckets whose KMS encryption has been stripped at the L1 level
    app = App(context=cdk_context())
    stack = Stack(app, "Probe", env={"region": "us-east-1"})
    keys = EncryptionKeys(stack, "Keys", app_name="probe", stage="dev")
    logs = AccessLogBucket(stack, "Logs", expiry_days=30, noncurrent_version_expiry_days=30).bucket
    bucket = SecureBucket(
        stack,
        "Data",
        encryption_key=keys.data_key,
        access_logs=logs,
        access_logs_prefix="x/",
        noncurrent_version_expiry_days=30,
        replication_reason="probe stack for the negative nag test, never deployed",
    ).bucket
    assert findings(stack, "NIST.800.53.R5") == []
    cfn = bucket.node.default_child
    assert isinstance(cfn, CfnResource)
    cfn.bucket_encryption = None  # type: ignore[attr-defined]

    # WHEN the packs validate the stack again
    nist = findings(stack, "NIST.800.53.R5")
    hipaa = findings(stack, "HIPAA.Security")

    # THEN the missing encryption is reported by name
    assert any("S3DefaultEncryptionKMS" in f and "Data/Bucket" in f for f in nist), nist
    assert any("S3DefaultEncryptionKMS" in f for f in hipaa), hipaa


def test_acknowledgment_needs_a_specific_reason() -> None:
    # GIVEN a stack and a lazy reason
    from stacks.nag import acknowledge

    stack = Stack(App(), "Probe")
    # WHEN/THEN an acknowledgment with a throwaway reason is refused (stacks.nag raises a plain ValueError)
    with pytest.raises(ValueError):
        acknowledge(stack, "AwsSolutions-S1", "not needed")
    # AND a specific reason is taken
    acknowledge(stack, "AwsSolutions-S1", "the probe stack has no bucket to log")


def test_prod_requires_an_operator_email() -> None:
    # GIVEN prod without an operator e-mail WHEN the config loads THEN it is refused, naming the key
    with pytest.raises(ConfigError) as refused:
        load_config("prod")
    assert (refused.value.key, refused.value.code) == ("operator_email", "missing")
