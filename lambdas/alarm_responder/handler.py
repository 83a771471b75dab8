"""Lambda entry point: `lambdas.alarm_responder.handler.handler` (EventBridge: CloudWatch Alarm State Change)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.alarm_responder import logic
from lambdas.shared.contract import FUNCTIONS, METRIC_DEPLOYMENT_ROLLED_BACK, METRIC_DIMENSION
from lambdas.shared.events import DETAIL_ALARM, SOURCE_CLOUDWATCH, SOURCE_MANUAL, detail_type, parse_alarm_event
from lambdas.shared.runtime import cached, utcnow
from lambdas.shared.telemetry import instruments

SERVICE = FUNCTIONS["alarm_responder"]
logger, metrics, tracer = instruments("alarm_responder")


@cached
def settings() -> logic.Settings:
    return logic.Settings.from_env(os.environ)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = settings()
    metrics.set_default_dimensions(**{METRIC_DIMENSION: config.stage})
    if event.get("source") == SOURCE_MANUAL:
        request = logic.RollbackRequest.from_event(event, context.aws_request_id)
        logger.append_keys(request_id=request.request_id)
        rollback = logic.manual_rollback(request, config, utcnow())
        if rollback.get("action") == "rollback" and not rollback.get("duplicate"):
            metrics.add_metric(name=METRIC_DEPLOYMENT_ROLLED_BACK, unit=MetricUnit.Count, value=1)
        return rollback
    if detail_type(event) != (SOURCE_CLOUDWATCH, DETAIL_ALARM):
        logger.warning("not a CloudWatch alarm state change; ignored", extra={"detail_type": detail_type(event)})
        return {"action": "ignored", "reason": "unsupported event"}
    alarm = parse_alarm_event(event)
    logger.append_keys(alarm=alarm.alarm_name, episode=alarm.episode)
    try:
        result = logic.respond(alarm, config, utcnow())
    except Exception:
        logger.exception("alarm response failed; the event will be retried")
        raise
    if (result.get("rollback") or {}).get("action") == "rollback":
        metrics.add_metric(name=METRIC_DEPLOYMENT_ROLLED_BACK, unit=MetricUnit.Count, value=1)
    return result
