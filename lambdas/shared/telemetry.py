"""Metrics with an extra dimension, and operator notices (SNS).

Every function publishes into contract.METRIC_NAMESPACE with exactly the Stage dimension (a default
dimension its handler sets; `service=""` keeps Powertools from adding a "service" dimension, which would
make a different CloudWatch metric than the one the alarms watch, POWERTOOLS_SERVICE_NAME or not). A metric
with one more dimension (FeaturePSI{Feature}, TriggersSkipped{Reason}) goes out as its own EMF document
with the same default dimensions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from lambdas.shared.contract import FUNCTIONS, METRIC_NAMESPACE
from lambdas.shared.runtime import client

SUBJECT_MAX: Final = 100


def instruments(function_key: str) -> tuple[Logger, Metrics, Tracer]:
    """A handler's Logger, Metrics and Tracer, named after its function (contract.FUNCTIONS).

    `service=""` on Metrics: no "service" dimension, so the metrics carry exactly the dimensions the alarms name.
    """
    service = FUNCTIONS[function_key]
    return Logger(service=service), Metrics(namespace=METRIC_NAMESPACE, service=""), Tracer(service=service)


MESSAGE_MAX_BYTES: Final = 250_000  # SNS allows 256 KiB


def metric_with_dimension(
    metrics: Metrics, name: str, value: float, *, dimension: str, dimension_value: str, unit: MetricUnit
) -> None:
    single = EphemeralMetrics(namespace=METRIC_NAMESPACE, service="")
    for key, default in metrics.default_dimensions.items():
        single.add_dimension(name=key, value=str(default))
    single.add_dimension(name=dimension, value=dimension_value[:250] or "-")
    single.add_metric(name=name, unit=unit, value=value)
    single.flush_metrics()


def subject_line(text: str) -> str:
    """SNS subjects: printable ASCII, no line breaks, at most 100 characters."""
    cleaned = "".join(c if 32 <= ord(c) < 127 else " " for c in text)
    return " ".join(cleaned.split())[:SUBJECT_MAX] or "sagecycle notice"


def notify(topic_arn: str, subject: str, details: Mapping[str, Any]) -> str:
    """Publish an operator notice: the subject plus the details as indented JSON; returns the message id."""
    message = json.dumps(details, indent=2, sort_keys=True, default=str)
    if len(message.encode("utf-8")) > MESSAGE_MAX_BYTES:
        message = message.encode("utf-8")[:MESSAGE_MAX_BYTES].decode("utf-8", "ignore") + "\n... (truncated)"
    response = client("sns").publish(TopicArn=topic_arn, Subject=subject_line(subject), Message=message)
    return str(response.get("MessageId", ""))
