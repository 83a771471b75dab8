"""cdk-nag v3 acknowledgments: one finding, one reason, next to the resource it concerns.

Policy-as-code scanners (checkov, cfn_nag) read the templates in cdk.out, not cdk-nag's acknowledgments, so a
finding that CDK cannot fix is written twice by `exempt`: acknowledged in cdk-nag and recorded, with the same
reason, in the resource's template Metadata in the form each scanner reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct | None, rule_id: str, reason: str) -> None:
    """Acknowledge one nag finding (e.g. `AwsSolutions-IAM5[Resource::*]`) with a specific reason."""
    if scope is None:
        raise ValueError(f"acknowledgment of {rule_id} has no construct to sit on")
    if len(reason) < 20:
        raise ValueError(f"acknowledgment of {rule_id} needs a specific reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


@dataclass(frozen=True)
class Finding:
    """One kind of finding, as each tool names it."""

    nag: tuple[str, ...]  # cdk-nag rule ids
    checkov: tuple[str, ...]  # checkov check ids (Metadata.checkov.skip)
    cfn_nag: tuple[str, ...]  # cfn_nag rule ids (Metadata.cfn_nag.rules_to_suppress)


FINDINGS: dict[str, Finding] = {
    "lambda-no-dlq": Finding(
        nag=("HIPAA.Security-LambdaDLQ", "NIST.800.53.R5-LambdaDLQ", "Serverless-LambdaDLQ"),
        checkov=("CKV_AWS_116",),
        cfn_nag=(),
    ),
    "lambda-no-reserved-concurrency": Finding(
        nag=("HIPAA.Security-LambdaConcurrency", "NIST.800.53.R5-LambdaConcurrency"),
        checkov=("CKV_AWS_115",),
        cfn_nag=("W92",),
    ),
    "lambda-outside-vpc": Finding(
        nag=("HIPAA.Security-LambdaInsideVPC", "NIST.800.53.R5-LambdaInsideVPC"),
        checkov=("CKV_AWS_117",),
        cfn_nag=("W89",),
    ),
    "s3-no-access-log": Finding(
        nag=("AwsSolutions-S1", "HIPAA.Security-S3BucketLoggingEnabled", "NIST.800.53.R5-S3BucketLoggingEnabled"),
        checkov=("CKV_AWS_18",),
        cfn_nag=("W35",),
    ),
    "s3-sse-s3": Finding(
        nag=("HIPAA.Security-S3DefaultEncryptionKMS", "NIST.800.53.R5-S3DefaultEncryptionKMS"),
        checkov=("CKV_AWS_145",),
        cfn_nag=(),
    ),
}


def exempt(scope: IConstruct | None, finding: str, reason: str, *, nag: bool = True) -> None:
    """Document one finding CDK can't fix on its resource: in cdk-nag and in the template's Metadata.

    `nag=False` for resources cdk-nag does not inspect (CDK's raw `CfnResource` provider functions), so no
    acknowledgment is left standing for a finding that can never be raised.
    """
    if finding not in FINDINGS:
        raise ValueError(f"unknown finding {finding!r}; allowed: {', '.join(sorted(FINDINGS))}")
    resource = scope.node.default_child if scope is not None and not isinstance(scope, CfnResource) else scope
    if not isinstance(resource, CfnResource):
        raise ValueError(f"exemption from {finding} has no CloudFormation resource to sit on")
    kind = FINDINGS[finding]
    if nag:
        for rule in kind.nag:
            acknowledge(resource, rule, reason)
    elif len(reason) < 20:
        raise ValueError(f"exemption from {finding} needs a specific reason, got {reason!r}")
    _append(resource, "checkov", "skip", [{"id": i, "comment": reason} for i in kind.checkov])
    _append(resource, "cfn_nag", "rules_to_suppress", [{"id": i, "reason": reason} for i in kind.cfn_nag])


def _append(resource: CfnResource, tool: str, key: str, entries: list[dict[str, str]]) -> None:
    if not entries:
        return
    existing: Any = resource.get_metadata(tool) or {}
    listed = [e for e in existing.get(key, []) if e["id"] not in {n["id"] for n in entries}]
    resource.add_metadata(tool, {**existing, key: [*listed, *entries]})
