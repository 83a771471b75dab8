"""Training metrics as SageMaker sees them: the lines train.py prints and the regexes that read them back.

SageMaker runs every MetricDefinition regex over each line the training container prints and publishes
group 1 as the metric (CloudWatch, and the objective of a tuning job). Two kinds of line carry metrics, in
the style of SageMaker's built-in XGBoost algorithm, plus a key=value spelling for other scripts:

    [12]\\tvalidation-auc:0.9214013\\tvalidation-logloss:0.28871      every boosting round (xgboost's values)
    [final]\\ttest-auc:0.93071\\ttest-accuracy:0.8721\\ttest-logloss:0.27  once per split, at the end
    metric validation:auc=0.93120 iteration=12                          key=value style

A key starts the line or follows whitespace, `]` or `#011` (CloudWatch's rendering of a tab). Only finite
decimals match (the data contract's number grammar), so nan/inf never become a metric. The last value a job
prints is what a tuning job ranks on, so train.py prints the final evaluation (best iteration) last.
"""

from __future__ import annotations

import re
from typing import Final, Literal, TypedDict

from contract.data import DECIMAL_PATTERN

SPLITS: Final[tuple[str, ...]] = ("train", "validation", "test")
# docs/artifacts.md's metrics plus xgboost's eval names; 3 splits x 10 names = 30 (SageMaker allows 40).
METRIC_NAMES: Final[tuple[str, ...]] = (
    "auc",
    "logloss",
    "error",
    "accuracy",
    "f1",
    "rmse",
    "mae",
    "r2",
    "mlogloss",
    "merror",
)
NUMBER_PATTERN: Final[str] = DECIMAL_PATTERN
_BOUNDARY: Final[str] = r"(?:^|[\s\]]|#011)"


class MetricDefinition(TypedDict):
    """One entry of AlgorithmSpecification.MetricDefinitions."""

    Name: str
    Regex: str


def metric_regex(split: str, name: str) -> str:
    """The regex for `<split>:<name>`; group 1 is the value. Accepts `split-name:v` and `split:name=v`."""
    s, n = re.escape(split), re.escape(name)
    # The boundary keeps "validation-auc" from matching inside e.g. "xvalidation-auc".
    return rf"{_BOUNDARY}(?:{s}-{n}:|{s}:{n}=)({NUMBER_PATTERN})"


METRIC_DEFINITIONS: Final[tuple[MetricDefinition, ...]] = tuple(
    MetricDefinition(Name=f"{split}:{name}", Regex=metric_regex(split, name))
    for split in SPLITS
    for name in METRIC_NAMES
)

ObjectiveType = Literal["Maximize", "Minimize"]

# objective family -> (tuning objective metric, direction). The primary metric of docs/artifacts.md, read on
# validation because a tuner must never see the test split.
_TUNING_OBJECTIVES: Final[dict[str, tuple[str, ObjectiveType]]] = {
    "binary": ("validation:auc", "Maximize"),
    "multi": ("validation:mlogloss", "Minimize"),
    "reg": ("validation:rmse", "Minimize"),
}


def tuning_objective(objective: str) -> tuple[str, ObjectiveType]:
    """(metric name, Maximize | Minimize) for an XGBoost objective such as `binary:logistic`."""
    family = objective.split(":", 1)[0]
    try:
        return _TUNING_OBJECTIVES[family]
    except KeyError:
        raise ValueError(f"unsupported objective {objective!r}; expected binary:*, multi:* or reg:*") from None


def format_round(iteration: int, values: dict[str, float]) -> str:
    """One per-round line, `[12]\\tvalidation-auc:0.9214013\\t...`; keys are `<split>-<metric>`."""
    return "\t".join([f"[{iteration}]"] + [f"{key}:{value:.8g}" for key, value in values.items()])


def format_final(split: str, metrics: dict[str, float]) -> str:
    """The end-of-training line of one split, `[final]\\ttest-auc:0.93071\\t...`."""
    return "\t".join(["[final]"] + [f"{split}-{name}:{value:.8g}" for name, value in metrics.items()])


def format_metric_line(split: str, name: str, value: float, iteration: int | None = None) -> str:
    """A key=value metric line that METRIC_DEFINITIONS matches (handy for scripts without xgboost logging)."""
    line = f"metric {split}:{name}={value:.6g}"
    return line if iteration is None else f"{line} iteration={iteration}"


_COMPILED: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (d["Name"], re.compile(d["Regex"])) for d in METRIC_DEFINITIONS
)


def parse_metric_line(line: str) -> dict[str, float]:
    """Every metric SageMaker would extract from one log line: the first match of each definition."""
    found: dict[str, float] = {}
    for name, pattern in _COMPILED:
        match = pattern.search(line)
        if match:
            found[name] = float(match.group(1))
    return found


def parse_metrics(text: str) -> dict[str, list[float]]:
    """Read log text the way SageMaker does: every value each definition matches, in order of appearance."""
    found: dict[str, list[float]] = {}
    for line in text.splitlines():
        for name, pattern in _COMPILED:
            for match in pattern.finditer(line):
                found.setdefault(name, []).append(float(match.group(1)))
    return found
