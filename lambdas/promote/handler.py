"""Lambda entry point: `lambdas.promote.handler.handler` (EventBridge: SageMaker training/tuning job, endpoint)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.promote import approval, endpoints, logic
from lambdas.shared.contract import (
    FUNCTIONS,
    METRIC_CANDIDATE_APPROVED,
    METRIC_CANDIDATE_REJECTED,
    METRIC_DEPLOYMENT_ROLLED_BACK,
    METRIC_DIMENSION,
    METRIC_TRAINING_FAILED,
)
from lambdas.shared.events import (
    DETAIL_ENDPOINT,
    DETAIL_ENDPOINT_DEPLOYMENT,
    DETAIL_MODEL_PACKAGE,
    DETAIL_TRAINING_JOB,
    DETAIL_TUNING_JOB,
    SOURCE_SAGEMAKER,
    detail_type,
    parse_endpoint_event,
    parse_model_package_event,
    parse_training_job_event,
    parse_tuning_job_event,
)
from lambdas.shared.runtime import cached, utcnow
from lambdas.shared.telemetry import instruments

SERVICE = FUNCTIONS["promote"]
logger, metrics, tracer = instruments("promote")


@cached
def settings() -> logic.Settings:
    return logic.Settings.from_env(os.environ)


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def _count_job_result(result: dict[str, Any]) -> dict[str, Any]:
    """A finished training or tuning job: approved / rejected candidate, or a failure (duplicates not again)."""
    if result.get("duplicate") or result.get("ignored"):
        return result
    if result.get("decision") == "approved":
        _count(METRIC_CANDIDATE_APPROVED)
    elif result.get("decision") == "rejected":
        _count(METRIC_CANDIDATE_REJECTED)
    elif result.get("counted"):
        _count(METRIC_TRAINING_FAILED)
    return result


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = settings()
    metrics.set_default_dimensions(**{METRIC_DIMENSION: config.stage})
    source, kind = detail_type(event)
    if source == SOURCE_SAGEMAKER and kind == DETAIL_TRAINING_JOB:
        change = parse_training_job_event(event)
        logger.append_keys(job_name=change.job_name, status=change.status)
        try:
            result = logic.handle_training_job(change, config, utcnow())
        except Exception:
            logger.exception("training job event failed; the lock is released, the event will be retried")
            raise
        return _count_job_result(result)
    if source == SOURCE_SAGEMAKER and kind == DETAIL_TUNING_JOB:
        tuning = parse_tuning_job_event(event)
        logger.append_keys(job_name=tuning.job_name, status=tuning.status)
        try:
            result = logic.handle_tuning_job(tuning, config, utcnow())
        except Exception:
            logger.exception("tuning job event failed; the lock is released, the event will be retried")
            raise
        return _count_job_result(result)
    if source == SOURCE_SAGEMAKER and kind in (DETAIL_ENDPOINT, DETAIL_ENDPOINT_DEPLOYMENT):
        endpoint = parse_endpoint_event(event)
        logger.append_keys(endpoint=endpoint.endpoint_name, endpoint_status=endpoint.status)
        try:
            result = endpoints.handle_endpoint(endpoint, config, utcnow())
        except Exception:
            logger.exception("endpoint event failed; it will be retried")
            raise
        if result.get("deployment") == "rolled_back" and result.get("kind") == "promotion":
            _count(METRIC_DEPLOYMENT_ROLLED_BACK)
        return result
    if source == SOURCE_SAGEMAKER and kind == DETAIL_MODEL_PACKAGE:
        package = parse_model_package_event(event)
        logger.append_keys(model_package_arn=package.package_arn, approval=package.status)
        try:
            return approval.handle_package(package, config, utcnow())
        except Exception:
            logger.exception("model package event failed; it will be retried")
            raise
    logger.warning("unsupported event; ignored", extra={"source": source, "detail_type": kind})
    return {"ignored": f"unsupported event {source}/{kind}"}
