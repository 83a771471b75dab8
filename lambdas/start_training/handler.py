"""Lambda entry point: `lambdas.start_training.handler.handler` (async invokes and EventBridge rules)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.shared.contract import (
    FUNCTIONS,
    METRIC_DIMENSION,
    METRIC_TRAINING_STARTED,
    METRIC_TRIGGER_SKIPPED,
)
from lambdas.shared.runtime import cached, retry_config, session, utcnow
from lambdas.shared.telemetry import instruments, metric_with_dimension
from lambdas.start_training import logic

SERVICE = FUNCTIONS["start_training"]
IDEMPOTENCY_TTL_SECONDS: Final = 2 * 24 * 3600  # longer than any SQS or EventBridge redelivery
logger, metrics, tracer = instruments("start_training")


@cached
def settings() -> logic.Settings:
    return logic.Settings.from_env(os.environ)


def _mark_replay(response: Any, idempotent_data: DataRecord) -> Any:
    """A duplicate delivery gets the first delivery's answer, marked, so it is not counted twice."""
    return {**response, "replayed": True} if isinstance(response, dict) else response


@cached
def idempotent_start() -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    """The start, wrapped once per execution environment (the persistence layer creates a client)."""
    config = settings()
    persistence = DynamoDBPersistenceLayer(
        table_name=config.idempotency_table, boto_config=retry_config(), boto3_session=session()
    )
    idempotency = IdempotencyConfig(
        event_key_jmespath="trigger_id",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        hash_function="sha256",
        response_hook=_mark_replay,
    )

    def start(trigger: dict[str, Any]) -> dict[str, Any]:
        return logic.start_training(logic.Trigger.from_dict(trigger), config, utcnow())

    wrapped = idempotent_function(
        start, data_keyword_argument="trigger", persistence_store=persistence, config=idempotency, key_prefix=SERVICE
    )
    return wrapped, idempotency


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = settings()
    metrics.set_default_dimensions(**{METRIC_DIMENSION: config.stage})
    parsed = logic.parse_trigger(event, settings=config, request_id=context.aws_request_id)
    if isinstance(parsed, logic.Ignore):
        logger.info("event ignored", extra={"reason": parsed.reason})
        return {"started": False, "ignored": parsed.reason}
    logger.append_keys(trigger_id=parsed.trigger_id, trigger_kind=parsed.kind)
    start, idempotency = idempotent_start()
    idempotency.register_lambda_context(context)
    try:
        result = start(trigger=parsed.to_dict())
    except Exception:
        logger.exception("start failed; the trigger will be delivered again")
        raise
    if result.get("replayed"):
        logger.info("duplicate delivery of a trigger already handled", extra={"result": result})
    elif result.get("started"):
        metrics.add_metric(name=METRIC_TRAINING_STARTED, unit=MetricUnit.Count, value=1)
    elif result.get("skip_reason"):
        metric_with_dimension(
            metrics,
            METRIC_TRIGGER_SKIPPED,
            1,
            dimension="Reason",
            dimension_value=str(result["skip_reason"]),
            unit=MetricUnit.Count,
        )
    return result
