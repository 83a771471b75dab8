"""RETRAIN_POLICY: the stage's cost and safety bounds for retraining, promotion, drift and rollback.

The CDK app serialises it into the RETRAIN_POLICY environment variable as one JSON object. Required keys
(contract.py): min_interval_minutes, daily_cap, metric_floor, tolerance, max_file_bytes,
drift_psi_threshold, rollback_on_alarm, lock_ttl_seconds. Optional keys (defaults below):
drift_min_samples, drift_max_files. Unknown keys are refused, so a typo cannot silently fall back
to a default.

Promotion semantics (the promote function):
- higher-is-better metrics (auc): the candidate must reach `metric_floor` (value >= floor) and be at least
  champion - tolerance;
- lower-is-better metrics (rmse, mlogloss): the floor flips into a ceiling (value <= metric_floor) and the
  candidate must be at most champion + tolerance.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, Final, Literal

from lambdas.shared.contract import ENV_RETRAIN_POLICY

DEFAULT_DRIFT_MIN_SAMPLES: Final = 200
DEFAULT_DRIFT_MAX_FILES: Final = 2000


# What kind of mistake a PolicyError reports, for code and tests that branch on it (the text is for people).
PolicyErrorCode = Literal[
    "not-json",  # RETRAIN_POLICY does not parse
    "not-an-object",  # it parses, but not to a JSON object
    "unknown-keys",  # keys RetrainPolicy does not know (`problems` names them)
    "missing-keys",  # required keys left out (`problems` names them)
    "wrong-type",  # a value of the wrong JSON type (`problems` names its key)
    "out-of-bounds",  # values outside their RULES (`problems` names each key)
]


class PolicyError(ValueError):
    """RETRAIN_POLICY is not valid; the message names the key.

    `code` (a PolicyErrorCode: not-json, not-an-object, unknown-keys, missing-keys, wrong-type, out-of-bounds) says
    what kind of mistake; every raise site sets it. `problems` holds (key, what is allowed) for each broken rule,
    so the CDK app can name its own setting.
    """

    def __init__(self, message: str, *, code: PolicyErrorCode, problems: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.code: PolicyErrorCode = code
        self.problems = problems


# key -> (check, what is allowed): the bounds of RETRAIN_POLICY's values. The CDK app parses the policy it
# writes with this class at synth, so a stage configuration the functions would refuse never deploys.
RULES: Final[Mapping[str, tuple[Callable[[Any], bool], str]]] = {
    "min_interval_minutes": (lambda v: v >= 0, ">= 0"),
    "daily_cap": (lambda v: v >= 1, ">= 1"),
    "metric_floor": (math.isfinite, "finite"),
    "tolerance": (lambda v: math.isfinite(v) and v >= 0, ">= 0"),
    "max_file_bytes": (lambda v: v >= 1, ">= 1"),
    "drift_psi_threshold": (lambda v: math.isfinite(v) and v > 0, "> 0"),
    "lock_ttl_seconds": (lambda v: v >= 60, ">= 60"),
    "drift_min_samples": (lambda v: v >= 1, ">= 1"),
    "drift_max_files": (lambda v: v >= 1, ">= 1"),
}


@dataclass(frozen=True)
class RetrainPolicy:
    min_interval_minutes: int
    daily_cap: int
    metric_floor: float
    tolerance: float
    max_file_bytes: int
    drift_psi_threshold: float
    rollback_on_alarm: bool
    lock_ttl_seconds: int
    # Drift monitor: no PSI is published from fewer request rows than this (noise, not drift)...
    drift_min_samples: int = DEFAULT_DRIFT_MIN_SAMPLES
    # ...and one run reads at most this many capture files (the rest wait for the next run).
    drift_max_files: int = DEFAULT_DRIFT_MAX_FILES

    def __post_init__(self) -> None:
        problems = tuple((name, allowed) for name, (ok, allowed) in RULES.items() if not ok(getattr(self, name)))
        if problems:
            raise PolicyError(
                f"{ENV_RETRAIN_POLICY}: " + "; ".join(f"{name} must be {allowed}" for name, allowed in problems),
                code="out-of-bounds",
                problems=problems,
            )

    @classmethod
    def from_json(cls, text: str) -> RetrainPolicy:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise PolicyError(f"{ENV_RETRAIN_POLICY} is not JSON: {error}", code="not-json") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> RetrainPolicy:
        if not isinstance(data, dict):
            raise PolicyError(f"{ENV_RETRAIN_POLICY} must be a JSON object", code="not-an-object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise PolicyError(
                f"{ENV_RETRAIN_POLICY} has unknown keys {unknown}",
                code="unknown-keys",
                problems=tuple((k, "no such key") for k in unknown),
            )
        required = [name for name, f in known.items() if f.default is MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise PolicyError(
                f"{ENV_RETRAIN_POLICY} is missing keys {missing}",
                code="missing-keys",
                problems=tuple((k, "required") for k in missing),
            )
        values: dict[str, Any] = {}
        for name, value in data.items():
            kind = known[name].type
            if kind == "bool":
                ok = isinstance(value, bool)
            elif kind == "int":
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:  # float: ints are fine too
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                value = float(value) if ok else value
            if not ok:
                raise PolicyError(
                    f"{ENV_RETRAIN_POLICY}.{name} must be {kind}, got {value!r}",
                    code="wrong-type",
                    problems=((name, str(kind)),),
                )
            values[name] = value
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)}, sort_keys=True)
