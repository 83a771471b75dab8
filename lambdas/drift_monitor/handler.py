"""Lambda entry point: `lambdas.drift_monitor.handler.handler` (EventBridge schedule)."""

from __future__ import annotations

import os
import time
from typing import Any, Final

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.drift_monitor import logic
from lambdas.shared.contract import (
    FUNCTIONS,
    METRIC_CAPTURE_RECORDS,
    METRIC_DIMENSION,
    METRIC_FEATURE_PSI,
    METRIC_MAX_PSI,
    METRIC_UNPARSEABLE_RECORDS,
)
from lambdas.shared.runtime import cached, utcnow
from lambdas.shared.telemetry import instruments, metric_with_dimension

SERVICE = FUNCTIONS["drift_monitor"]
logger, metrics, tracer = instruments("drift_monitor")
# Of the time left when the run starts, keep this share (at least MIN_RESERVE_SECONDS) for the file being
# read when the budget runs out, the metrics and the watermark: a backlog is read over several runs.
RESERVE_SHARE: Final = 0.25
MIN_RESERVE_SECONDS: Final = 10.0


def deadline(context: LambdaContext) -> float:
    """time.monotonic() after which the run starts no new capture file."""
    remaining = context.get_remaining_time_in_millis() / 1000
    return time.monotonic() + max(0.0, remaining - max(MIN_RESERVE_SECONDS, remaining * RESERVE_SHARE))


@cached
def settings() -> logic.Settings:
    return logic.Settings.from_env(os.environ)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = settings()
    metrics.set_default_dimensions(**{METRIC_DIMENSION: config.stage})
    try:
        run = logic.run_drift_check(config, utcnow(), deadline=deadline(context))
    except Exception:
        logger.exception("drift check failed; no metrics published, the watermark did not move")
        raise
    if run.consumed:
        metrics.add_metric(name=METRIC_CAPTURE_RECORDS, unit=MetricUnit.Count, value=run.records)
        metrics.add_metric(name=METRIC_UNPARSEABLE_RECORDS, unit=MetricUnit.Count, value=run.unparseable)
    if run.unparseable:
        logger.warning("capture records could not be parsed", extra={"unparseable": run.unparseable})
    if run.published and run.max_psi is not None:
        metrics.add_metric(name=METRIC_MAX_PSI, unit=MetricUnit.NoUnit, value=run.max_psi)
        for drift in run.drifts:
            metric_with_dimension(
                metrics,
                METRIC_FEATURE_PSI,
                drift.psi,
                dimension="Feature",
                dimension_value=drift.name,
                unit=MetricUnit.NoUnit,
            )
        above = [d.name for d in run.drifts if d.psi > config.policy.drift_psi_threshold]
        logger.info("drift measured", extra={**run.to_dict(), "features_above_threshold": above})
    else:
        logger.info(
            "not enough captured rows to publish PSI; files left for the next run",
            extra={**run.to_dict(), "min_samples": config.policy.drift_min_samples},
        )
    return run.to_dict()
