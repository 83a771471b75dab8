"""Lambda entry point: `lambdas.ingest.handler.handler` (SQS event source, ReportBatchItemFailures on)."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.ingest import logic
from lambdas.shared.contract import (
    FUNCTIONS,
    METRIC_DIMENSION,
    METRIC_FILES_ACCEPTED,
    METRIC_FILES_MISSING,
    METRIC_FILES_QUARANTINED,
)
from lambdas.shared.runtime import cached, client, on_reset, utcnow
from lambdas.shared.telemetry import instruments

SERVICE = FUNCTIONS["ingest"]
logger, metrics, tracer = instruments("ingest")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
on_reset(logic.clear_schema_cache)


@cached
def settings() -> logic.Settings:
    return logic.Settings.from_env(os.environ)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = settings()
    metrics.set_default_dimensions(**{METRIC_DIMENSION: config.stage})
    run = logic.BatchRun(config)

    def record_handler(record: SQSRecord) -> list[str]:
        try:
            outcomes = run.process_message(record.body, now=utcnow())
        except Exception:
            logger.exception("message failed; SQS will deliver it again", extra={"message_id": record.message_id})
            raise
        for outcome in outcomes:
            if outcome.result == "accepted":
                metrics.add_metric(name=METRIC_FILES_ACCEPTED, unit=MetricUnit.Count, value=1)
            elif outcome.result == "quarantined":
                metrics.add_metric(name=METRIC_FILES_QUARANTINED, unit=MetricUnit.Count, value=1)
            elif outcome.result == "missing":
                metrics.add_metric(name=METRIC_FILES_MISSING, unit=MetricUnit.Count, value=1)
        return [f"{o.key}:{o.result}" for o in outcomes]

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    keys = run.announced_keys()
    if keys:
        records = event.get("Records", [])
        batch = logic.batch_id([r.get("messageId", "") for r in records])
        payload = logic.start_payload(keys, batch, logic.batch_time(records, default=utcnow()))
        # A failure here fails the whole invocation: SQS redelivers, the objects are duplicates by then,
        # and the retry announces them again.
        client("lambda").invoke(
            FunctionName=config.start_function,
            InvocationType="Event",
            Payload=json.dumps(payload).encode("utf-8"),
        )
        logger.info("start function invoked", extra={"batch_id": batch, "keys": len(keys)})
    failures = response.get("batchItemFailures", [])
    if failures:
        logger.warning("some messages failed and will be retried", extra={"failed": len(failures)})
    return dict(response)
