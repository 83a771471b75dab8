"""Promote's pure decisions: the promotion rule, what a candidate is, and which jobs may become one.

No AWS calls here (runs.held_lock only reads the records it is given): every rule is tested on values alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from lambdas.shared import artifacts, runs
from lambdas.shared.events import TrainingJobChange


@dataclass(frozen=True)
class Verdict:
    approved: bool
    reason: str
    metric: str
    candidate: float | None
    champion: float | None
    higher_is_better: bool | None


def decide_promotion(
    candidate: artifacts.PrimaryMetric,
    champion: artifacts.PrimaryMetric | None,
    *,
    metric_floor: float,
    tolerance: float,
) -> Verdict:
    """Floor (a ceiling when lower is better), then no worse than the champion by more than `tolerance`."""
    higher = candidate.higher_is_better
    name, value = candidate.name, candidate.value

    def verdict(approved: bool, reason: str) -> Verdict:
        return Verdict(approved, reason, name, value, champion.value if champion else None, higher)

    if higher and value < metric_floor:
        return verdict(False, f"{name} {value:.6g} is below the floor {metric_floor:.6g}")
    if not higher and value > metric_floor:
        return verdict(False, f"{name} {value:.6g} is above the ceiling {metric_floor:.6g} (lower is better)")
    if champion is None:
        return verdict(True, f"{name} {value:.6g} clears the floor; no champion evaluation to compare with")
    if champion.name != name or champion.higher_is_better != higher:
        return verdict(False, f"candidate is measured on {name}, the champion on {champion.name}: not comparable")
    margin = value - champion.value if higher else champion.value - value
    if margin < -tolerance - 1e-12:
        return verdict(
            False,
            f"{name} {value:.6g} is worse than the champion's {champion.value:.6g} by {-margin:.6g} "
            f"(tolerance {tolerance:.6g})",
        )
    return verdict(True, f"{name} {value:.6g} vs champion {champion.value:.6g}: within tolerance or better")


# SageMaker names a tuning job's children `<tuning job>-<NNN>-<8 hex>`; our own training jobs end in 10 hex.
TUNING_CHILD_NAME: Final = re.compile(r"(?P<tuning>[a-zA-Z0-9-]{1,32})-\d{3}-[0-9a-f]{8}")


@dataclass(frozen=True)
class Candidate:
    """A finished model to decide on: a training job's own, or the best training job of a tuning job."""

    run: str  # the run record and the lock owner: the training job, or the tuning job
    job_name: str  # the training job that wrote the model: names its package token, model and endpoint config
    job_arn: str = ""
    model_data_url: str | None = None  # None: DescribeTrainingJob says
    tuning_job: str | None = None

    @classmethod
    def of_training_job(cls, change: TrainingJobChange) -> Candidate:
        return cls(
            run=change.job_name, job_name=change.job_name, job_arn=change.job_arn, model_data_url=change.model_data_url
        )


def distrust(run: Mapping[str, Any] | None, job: str, lock: Mapping[str, Any] | None) -> str | None:
    """Why a job with our name prefix may not become a candidate (None: it may).

    Only the start function of this stage records runs, under the training lock; a job without that record, or
    whose record shows no lock, was started by someone else (by hand, another tool, another stage that shares
    the prefix), and its model must never reach the registry or the endpoint.
    """
    if run is None:
        return "no run record: the start function of this stage did not start it"
    if not runs.held_lock(run, lock, job):
        return "its run record shows no training lock, and it does not hold the lock"
    return None
