"""cdk-nag v3 acknowledgments: one finding, one reason, next to the resource it concerns."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct | None, rule_id: str, reason: str) -> None:
    """Acknowledge one nag finding (e.g. `AwsSolutions-IAM5[Resource::*]`) with a specific reason."""
    if scope is None:
        raise ValueError(f"acknowledgment of {rule_id} has no construct to sit on")
    if len(reason) < 20:
        raise ValueError(f"acknowledgment of {rule_id} needs a specific reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))
