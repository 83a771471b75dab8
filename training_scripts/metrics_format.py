"""The metric lines train.py prints, and the regexes SageMaker reads them back with.

Stdlib only: the job-spec builder and tests import `METRIC_DEFINITIONS` without xgboost or pandas. The
Lambdas keep an identical copy in lambdas/shared/metrics.py (they may not import training_scripts); a
test checks the two agree.

Two kinds of line carry metrics, in the style of SageMaker's built-in XGBoost algorithm:

    [12]\tvalidation-auc:0.9214013\tvalidation-logloss:0.28871      every boosting round (xgboost's values)
    [final]\ttest-auc:0.93071\ttest-accuracy:0.8721\ttest-logloss:0.27  once per split, at the end

A key starts the line or follows whitespace, `]` or `#011` (CloudWatch's rendering of a tab). The regexes
also accept `split:name=value`. Only finite decimals match, so nan/inf never become a metric. The last
value of a metric is the final evaluation at the best iteration, so a tuning job's objective
(`validation:auc`, ...) ranks the model that is actually saved.
"""

from __future__ import annotations

import re

SPLITS: tuple[str, ...] = ("train", "validation", "test")
# docs/artifacts.md's metrics plus xgboost's eval names; 3 splits x 10 names = 30 (SageMaker allows 40).
METRIC_NAMES: tuple[str, ...] = ("auc", "logloss", "error", "accuracy", "f1", "rmse", "mae", "r2", "mlogloss", "merror")
NUMBER_PATTERN = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_BOUNDARY = r"(?:^|[\s\]]|#011)"


def metric_regex(split: str, name: str) -> str:
    """The regex whose group 1 is the value of `<split>-<name>:<v>` (or `<split>:<name>=<v>`) in a line."""
    s, n = re.escape(split), re.escape(name)
    return rf"{_BOUNDARY}(?:{s}-{n}:|{s}:{n}=)({NUMBER_PATTERN})"


# SageMaker CreateTrainingJob AlgorithmSpecification.MetricDefinitions.
METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": f"{split}:{name}", "Regex": metric_regex(split, name)} for split in SPLITS for name in METRIC_NAMES
]


def format_round(iteration: int, values: dict[str, float]) -> str:
    """One per-round line, `[12]\\tvalidation-auc:0.9214013\\t...`; keys are `<split>-<metric>`."""
    return "\t".join([f"[{iteration}]"] + [f"{key}:{value:.8g}" for key, value in values.items()])


def format_final(split: str, metrics: dict[str, float]) -> str:
    """The end-of-training line of one split, `[final]\\ttest-auc:0.93071\\t...`."""
    return "\t".join(["[final]"] + [f"{split}-{name}:{value:.8g}" for name, value in metrics.items()])


def parse_metrics(text: str) -> dict[str, list[float]]:
    """Read log text the way SageMaker does: every value each definition matches, in order of appearance."""
    patterns = [(d["Name"], re.compile(d["Regex"])) for d in METRIC_DEFINITIONS]
    found: dict[str, list[float]] = {}
    for line in text.splitlines():
        for name, pattern in patterns:
            for match in pattern.finditer(line):
                found.setdefault(name, []).append(float(match.group(1)))
    return found
