"""Training metrics as SageMaker sees them: regexes over the training job's log lines.

SageMaker runs every MetricDefinition regex over each line the training container prints and publishes
group 1 as the metric (CloudWatch, and the objective of a tuning job). Stdlib data only, so the Lambdas,
the tests and the offline rehearsal share one copy; Lambdas may not import `training_scripts`.

A metric value is `<split>` (train | validation | test) and `<name>` (one of METRIC_NAMES) followed by
a finite decimal, in either spelling:

    [12]\\tvalidation-auc:0.92140\\tvalidation-logloss:0.28871     xgboost / built-in algorithm style
    metric validation:auc=0.93120 iteration=12                   key=value style

The key must start the line or follow whitespace, `]` or `#011` (CloudWatch's rendering of a tab).
`nan`/`inf` never match, so a script prints nothing rather than a non-finite value. The last value a
job prints is what a tuning job ranks on, so print the final evaluation (best iteration) last.
"""

from __future__ import annotations

import re
from typing import Final, Literal, TypedDict

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

# A finite decimal: no nan/inf, no bare sign, optional exponent.
NUMBER_PATTERN: Final[str] = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
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


def format_metric_line(split: str, name: str, value: float, iteration: int | None = None) -> str:
    """A key=value metric line that METRIC_DEFINITIONS matches (handy for scripts without xgboost logging)."""
    line = f"metric {split}:{name}={value:.6g}"
    return line if iteration is None else f"{line} iteration={iteration}"


_COMPILED: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (d["Name"], re.compile(d["Regex"])) for d in METRIC_DEFINITIONS
)


def parse_metric_line(line: str) -> dict[str, float]:
    """Every metric SageMaker would extract from one log line (the offline rehearsal reads logs with this)."""
    found: dict[str, float] = {}
    for name, pattern in _COMPILED:
        match = pattern.search(line)
        if match:
            found[name] = float(match.group(1))
    return found
