"""Model packages in the registry: their metadata, their approval status, and whose they are.

Promote registers candidates and moves them (Rejected after a failed deployment, champion metadata once
InService); the operator command line approves and rejects them. A package another account owns (the build
account's, seen from a serving account) is only ever read here: the serving side holds read grants alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

from lambdas.shared.job_names import sanitize_tag_text
from lambdas.shared.runtime import client, iso

METADATA_PREFIX: Final = "sagecycle:"
MAX_METADATA: Final = 50
ApprovalStatus = Literal["Approved", "Rejected", "PendingManualApproval"]
APPROVAL_STATUSES: Final = ("Approved", "Rejected", "PendingManualApproval")


def metadata(values: Mapping[str, Any]) -> dict[str, str]:
    """CustomerMetadataProperties: <= 50 entries, keys <= 128 and values <= 256 tag-safe characters."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None or len(out) >= MAX_METADATA:
            continue
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        out[sanitize_tag_text(f"{METADATA_PREFIX}{key}", 128)] = sanitize_tag_text(text, 256) or "-"
    return out


def account_of(arn: str) -> str:
    """The account field of an ARN (`arn:partition:service:region:account:resource`); "" when there is none."""
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[0] == "arn" else ""


def group_of(package_arn: str) -> str:
    """`arn:...:model-package/<group>/<version>` -> group ("" for an unversioned package)."""
    resource = package_arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "model-package" else ""


def set_approval(package_arn: str, status: ApprovalStatus, description: str) -> None:
    client("sagemaker").update_model_package(
        ModelPackageArn=package_arn,
        ModelApprovalStatus=status,
        ApprovalDescription=sanitize_tag_text(description, 1000) or status,
    )


def mark_champion(package_arn: str, now: datetime) -> None:
    client("sagemaker").update_model_package(
        ModelPackageArn=package_arn,
        CustomerMetadataProperties=metadata({"champion": "true", "champion-since": iso(now)}),
    )
