"""Names and tag text for SageMaker resources: deterministic per run, within SageMaker's name and tag rules.

Stdlib only (it runs inside Lambda).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from typing import Final

TAG_KEY_MAX: Final = 128
TAG_VALUE_MAX: Final = 256
MAX_TAGS: Final = 50
RESERVED_TAGS: Final = ("sagecycle:run-id", "sagecycle:reason", "sagecycle:trigger")
NOT_NAME_CHAR = re.compile(r"[^a-zA-Z0-9-]+")

_RESOURCE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


def is_resource_name(name: str) -> bool:
    return bool(_RESOURCE_NAME.fullmatch(name))


def resource_name(prefix: str, run_id: str, *, event_time: datetime | None = None, max_length: int = 63) -> str:
    """`<prefix>-[<yymmdd-HHMM>-]<hash of run_id>`: same inputs, same name; fits SageMaker's name rules.

    The time part comes from the trigger (`event_time`), never the clock, so a redelivered event maps to
    the name of the job it already started and CreateTrainingJob fails fast with ResourceInUse.
    """
    digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[: 10 if max_length >= 48 else 8]
    head = NOT_NAME_CHAR.sub("-", prefix).strip("-")
    parts = [digest]
    if event_time is not None:
        stamp = (event_time if event_time.tzinfo else event_time.replace(tzinfo=UTC)).astimezone(UTC)
        # The prefix is what IAM and event rules match on: drop the time stamp before ever cutting the prefix.
        if len(head) + len(digest) + 14 <= max_length:
            parts.insert(0, stamp.strftime("%y%m%d-%H%M"))
    suffix = "-".join(parts)
    head = head[: max(0, max_length - len(suffix) - 1)].strip("-")
    return f"{head}-{suffix}" if head else suffix


def training_job_name(prefix: str, run_id: str, *, event_time: datetime | None = None) -> str:
    """CreateTrainingJob name (<= 63 chars)."""
    return resource_name(prefix, run_id, event_time=event_time, max_length=63)


def tuning_job_name(prefix: str, run_id: str, *, event_time: datetime | None = None) -> str:
    """CreateHyperParameterTuningJob name (<= 32 chars: SageMaker appends -NNN-xxxxxxxx per training job)."""
    return resource_name(prefix, run_id, event_time=event_time, max_length=32)


def transform_job_name(prefix: str, run_id: str, *, event_time: datetime | None = None) -> str:
    """CreateTransformJob name (<= 63 chars); `-bt` keeps it apart from the training job of the same run."""
    return resource_name(f"{prefix}-bt", run_id, event_time=event_time, max_length=63)


def sanitize_tag_text(text: str, max_length: int = TAG_VALUE_MAX) -> str:
    """Fit free text to SageMaker's tag rules: `[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*`, at most `max_length`."""
    out = []
    for char in text:
        if char.isspace():
            out.append(" ")
        elif unicodedata.category(char)[0] in "LZN" or char in "_.:/=+-@":
            out.append(char)
        else:
            out.append("_")
    return " ".join("".join(out).split())[:max_length].rstrip()
