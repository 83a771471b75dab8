"""Training metrics as SageMaker sees them: a re-export of `contract.metrics` for the job-spec builder.

The regexes and line formats live once, in contract/metrics.py, which train.py prints with and the Lambdas,
the tests and the offline rehearsal read back with.
"""

from __future__ import annotations

from contract.metrics import (
    METRIC_DEFINITIONS,
    METRIC_NAMES,
    NUMBER_PATTERN,
    SPLITS,
    MetricDefinition,
    ObjectiveType,
    format_metric_line,
    metric_regex,
    parse_metric_line,
    tuning_objective,
)

__all__ = [
    "METRIC_DEFINITIONS",
    "METRIC_NAMES",
    "NUMBER_PATTERN",
    "SPLITS",
    "MetricDefinition",
    "ObjectiveType",
    "format_metric_line",
    "metric_regex",
    "parse_metric_line",
    "tuning_objective",
]
