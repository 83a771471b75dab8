"""Request pieces every SageMaker builder shares: tags, S3 prefixes, VPC config, and which instances take a volume key.

Stdlib only (it runs inside Lambda).
"""

from __future__ import annotations

import re
from typing import Final

from lambdas.shared.job_names import TAG_KEY_MAX, sanitize_tag_text
from lambdas.shared.job_settings import TrainingSpecSettings

# Instance families with local NVMe storage reject a volume KMS key (SageMaker encrypts those disks itself).
LOCAL_STORAGE_FAMILIES: Final = frozenset({"g5", "g6", "g6e", "p5", "p5e", "p5en", "inf2", "trn1", "trn1n"})


def job_tags(settings: TrainingSpecSettings, run_id: str, reason: str = "", trigger: str = "") -> list[dict[str, str]]:
    tags = {sanitize_tag_text(k, TAG_KEY_MAX): sanitize_tag_text(v) for k, v in settings.tags.items()}
    tags["sagecycle:run-id"] = sanitize_tag_text(run_id)
    if reason:
        tags["sagecycle:reason"] = sanitize_tag_text(reason)
    if trigger:
        tags["sagecycle:trigger"] = sanitize_tag_text(trigger)
    return [{"Key": k, "Value": v} for k, v in tags.items() if k]


def has_local_storage(instance_type: str) -> bool:
    """Instance types with NVMe instance storage, where SageMaker refuses a volume KMS key."""
    family = instance_type.removeprefix("ml.").split(".", 1)[0]
    # m5d, c5d, r5dn, g4dn, p4d, c6gd...: a 'd' after the generation number marks local disks.
    return family in LOCAL_STORAGE_FAMILIES or bool(re.fullmatch(r"[a-z]+\d+[a-z]*d[a-z]*", family))


def s3_prefix_uri(bucket: str, prefix: str) -> str:
    """`s3://bucket/prefix/`; the trailing slash keeps `train/` from also matching `train-old/`."""
    key = prefix.strip("/")
    return f"s3://{bucket}/{key}/" if key else f"s3://{bucket}/"


def vpc_config(settings: TrainingSpecSettings) -> dict[str, list[str]] | None:
    if settings.vpc is None:
        return None
    return {"SecurityGroupIds": list(settings.vpc.security_group_ids), "Subnets": list(settings.vpc.subnet_ids)}
