"""What the job-spec tests share: base settings, and botocore's validation of a request with the stricter
checks SageMaker applies beyond its model (tag characters, name patterns)."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import botocore.session
from botocore.model import Shape
from botocore.validate import ParamValidator

from lambdas.shared.job_settings import TrainingSpecSettings

KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BASE = TrainingSpecSettings(
    job_name_prefix="sagecycle-dev",
    image_uri="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5",
    role_arn="arn:aws:iam::123456789012:role/sagecycle-dev-sagemaker-execution",
    region="eu-west-1",
    data_bucket="sagecycle-dev-data-123456789012",
    model_bucket="sagecycle-dev-models-123456789012",
    source_dir_s3_uri="s3://sagecycle-dev-models-123456789012/code/sourcedir-3f2a9c0d1e.tar.gz",
    kms_key_arn=KEY,
    tags={"project": "sagecycle", "stage": "dev"},
)
RUN = "s3:ObjectCreated:sagecycle-dev-data/incoming/2025-01-02/batch.csv#0001"

_SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


def settings(**changes: Any) -> TrainingSpecSettings:
    return dataclasses.replace(BASE, **changes)


# ------------------------------------------------------------------------------------ shape validation


def tag_chars_ok(text: str) -> bool:
    # Python's re has no \p{..}: SageMaker's tag pattern is [\p{L}\p{Z}\p{N}_.:/=+\-@]*.
    return all(unicodedata.category(c)[0] in "LZN" or c in "_.:/=+-@" for c in text)


def _strict_errors(value: Any, shape: Shape, path: str) -> Iterator[str]:
    """What ParamValidator does not check: max lengths, enums and patterns."""
    meta = shape.metadata
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                yield from _strict_errors(value[name], member, f"{path}.{name}")
    elif shape.type_name == "list":
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path}: {len(value)} items > max {meta['max']}"
        for i, item in enumerate(value):
            yield from _strict_errors(item, shape.member, f"{path}[{i}]")
    elif shape.type_name == "map":
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path}: {len(value)} entries > max {meta['max']}"
        for key, item in value.items():
            yield from _strict_errors(key, shape.key, f"{path} key {key!r}")
            yield from _strict_errors(item, shape.value, f"{path}[{key!r}]")
    elif shape.type_name == "string":
        if "max" in meta and len(value) > meta["max"]:
            yield f"{path}: length {len(value)} > max {meta['max']}"
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            yield f"{path}: {value!r} not in enum"
        pattern = meta.get("pattern")
        if pattern and "\\p{" in pattern:
            if not tag_chars_ok(value):
                yield f"{path}: {value!r} has characters outside {pattern}"
        elif pattern and not re.fullmatch(pattern, value):
            yield f"{path}: {value!r} does not match {pattern}"
    elif shape.type_name in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            yield f"{path}: {value} < min {meta['min']}"
        if "max" in meta and value > meta["max"]:
            yield f"{path}: {value} > max {meta['max']}"


def shape_errors(operation: str, params: dict[str, Any]) -> list[str]:
    """botocore's own validation (required, types, min) plus the stricter checks above."""
    shape = _SAGEMAKER.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    errors = [report.generate_report()] if report.has_errors() else []
    return errors + list(_strict_errors(params, shape, operation))
