"""The metric lines train.py prints and the regexes SageMaker reads them back with: `contract.metrics`.

The formats live once, in contract/metrics.py (shipped next to train.py in the source tarball); this module
keeps the names train.py and its tests import.
"""

from __future__ import annotations

from contract.metrics import METRIC_DEFINITIONS as _DEFINITIONS
from contract.metrics import (
    METRIC_NAMES,
    NUMBER_PATTERN,
    SPLITS,
    format_final,
    format_round,
    metric_regex,
    parse_metrics,
)

# SageMaker CreateTrainingJob AlgorithmSpecification.MetricDefinitions, as plain dicts.
METRIC_DEFINITIONS: list[dict[str, str]] = [{"Name": d["Name"], "Regex": d["Regex"]} for d in _DEFINITIONS]

__all__ = [
    "METRIC_DEFINITIONS",
    "METRIC_NAMES",
    "NUMBER_PATTERN",
    "SPLITS",
    "format_final",
    "format_round",
    "metric_regex",
    "parse_metrics",
]
