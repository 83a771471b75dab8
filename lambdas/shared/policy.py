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
from dataclasses import MISSING, dataclass, fields
from typing import Any, Final

from lambdas.shared.contract import ENV_RETRAIN_POLICY

DEFAULT_DRIFT_MIN_SAMPLES: Final = 200
DEFAULT_DRIFT_MAX_FILES: Final = 2000


class PolicyError(ValueError):
    """RETRAIN_POLICY is not valid; the message names the key."""


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
        problems = []
        if self.min_interval_minutes < 0:
            problems.append("min_interval_minutes must be >= 0")
        if self.daily_cap < 1:
            problems.append("daily_cap must be >= 1")
        if not math.isfinite(self.metric_floor):
            problems.append("metric_floor must be finite")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            problems.append("tolerance must be >= 0")
        if self.max_file_bytes < 1:
            problems.append("max_file_bytes must be >= 1")
        if not (math.isfinite(self.drift_psi_threshold) and self.drift_psi_threshold > 0):
            problems.append("drift_psi_threshold must be > 0")
        if self.lock_ttl_seconds < 60:
            problems.append("lock_ttl_seconds must be >= 60")
        if self.drift_min_samples < 1:
            problems.append("drift_min_samples must be >= 1")
        if self.drift_max_files < 1:
            problems.append("drift_max_files must be >= 1")
        if problems:
            raise PolicyError(f"{ENV_RETRAIN_POLICY}: " + "; ".join(problems))

    @classmethod
    def from_json(cls, text: str) -> RetrainPolicy:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise PolicyError(f"{ENV_RETRAIN_POLICY} is not JSON: {error}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> RetrainPolicy:
        if not isinstance(data, dict):
            raise PolicyError(f"{ENV_RETRAIN_POLICY} must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise PolicyError(f"{ENV_RETRAIN_POLICY} has unknown keys {unknown}")
        required = [name for name, f in known.items() if f.default is MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise PolicyError(f"{ENV_RETRAIN_POLICY} is missing keys {missing}")
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
                raise PolicyError(f"{ENV_RETRAIN_POLICY}.{name} must be {kind}, got {value!r}")
            values[name] = value
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)}, sort_keys=True)
