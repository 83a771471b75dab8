"""The model registry as promote writes it: every candidate is registered, approved or not, with the reason.

A candidate that passes is registered Approved (approval "automatic": a single-account stage deploys it at
once), or PendingManualApproval (approval "manual", a build account's default: a person approves it, and the
approval reaches the serving account).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, Final, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas.promote.decision import Candidate, Verdict
from lambdas.shared import artifacts, packages
from lambdas.shared.contract import FUNCTIONS
from lambdas.shared.jobspec import TrainingSpecSettings, build_model, sanitize_tag_text
from lambdas.shared.policy import RetrainPolicy
from lambdas.shared.runtime import client, error_code

logger = Logger(service=FUNCTIONS["promote"], child=True)
CONTENT_TYPES: Final = ["text/csv", "application/json"]


class RegistrySettings(Protocol):
    @property
    def model_package_group(self) -> str: ...
    @property
    def training(self) -> TrainingSpecSettings: ...
    @property
    def policy(self) -> RetrainPolicy: ...
    @property
    def approval(self) -> str: ...


def client_token(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:32]


def split_metrics(evaluation: Mapping[str, Any] | None, split: str) -> dict[str, float]:
    metrics = ((evaluation or {}).get("splits") or {}).get(split) or {}
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    }


def put_evaluation(model_data_url: str, evaluation: Mapping[str, Any] | None) -> str | None:
    """evaluation.json next to model.tar.gz, for the package's ModelMetrics; best effort (None if refused)."""
    if evaluation is None:
        return None
    bucket, key = artifacts.parse_s3_url(model_data_url)
    target = f"{key.rsplit('/', 1)[0]}/evaluation.json" if "/" in key else "evaluation.json"
    try:
        client("s3").put_object(
            Bucket=bucket,
            Key=target,
            Body=json.dumps(evaluation, indent=2).encode("utf-8"),
            ContentType="application/json",
        )
    except ClientError as error:
        logger.warning(
            "could not store evaluation.json for ModelMetrics; registering without",
            extra={"target": f"s3://{bucket}/{target}", "error": error_code(error)},
        )
        return None
    return artifacts.s3_url(bucket, target)


def approval_status(verdict: Verdict, approval: str) -> packages.ApprovalStatus:
    """Rejected when the rule says no; otherwise Approved, or PendingManualApproval under manual approval."""
    if not verdict.approved:
        return "Rejected"
    return "Approved" if approval == "automatic" else "PendingManualApproval"


def register_package(
    candidate: Candidate,
    settings: RegistrySettings,
    model_url: str,
    evaluation: Mapping[str, Any] | None,
    verdict: Verdict,
    champion_url: str | None,
    run: Mapping[str, Any],
) -> str:
    """CreateModelPackage: every candidate is registered, approved or rejected, with the reason."""
    job = candidate.job_name
    model = build_model(settings.training, model_name=job, model_data_url=model_url, run_id=job)
    container = {k: model["PrimaryContainer"][k] for k in ("Image", "ModelDataUrl", "Environment")}
    endpoint = settings.training.endpoint
    inference: dict[str, Any] = {
        "Containers": [container],
        "SupportedContentTypes": CONTENT_TYPES,
        "SupportedResponseMIMETypes": CONTENT_TYPES,
    }
    if not endpoint.serverless:
        inference["SupportedRealtimeInferenceInstanceTypes"] = [endpoint.instance_type]
    inference["SupportedTransformInstanceTypes"] = [settings.training.transform.instance_type]
    metadata = packages.metadata(
        {
            "training-job": job,
            "tuning-job": candidate.tuning_job,
            "decision": "approved" if verdict.approved else "rejected",
            "reason": verdict.reason,
            "primary-metric": verdict.metric or None,
            "candidate-value": verdict.candidate,
            "champion-value": verdict.champion,
            "champion-model": champion_url,
            "metric-floor": settings.policy.metric_floor,
            "tolerance": settings.policy.tolerance,
            "run-reason": run.get("reason"),
            "trigger": run.get("trigger"),
            **{f"test-{k}": v for k, v in split_metrics(evaluation, "test").items()},
            **{f"validation-{k}": v for k, v in split_metrics(evaluation, "validation").items()},
        }
    )
    params: dict[str, Any] = {
        "ModelPackageGroupName": settings.model_package_group,
        "ModelPackageDescription": sanitize_tag_text(f"{job}: {verdict.reason}", 1000),
        "InferenceSpecification": inference,
        "ModelApprovalStatus": approval_status(verdict, settings.approval),
        "CustomerMetadataProperties": metadata,
        "ClientToken": client_token("package", job),
    }
    if candidate.job_arn:
        params["MetadataProperties"] = {"GeneratedBy": candidate.job_arn}
    statistics = put_evaluation(model_url, evaluation)
    if statistics:
        params["ModelMetrics"] = {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": statistics}}
        }
    arn = str(client("sagemaker").create_model_package(**params)["ModelPackageArn"])
    logger.info("model package registered", extra={"job_name": job, "model_package_arn": arn})
    return arn
