"""Typed, validated stage configuration: the one place that says what `dev` and `prod` mean.

`app.py` builds a `StageConfig` with `load_from_context(...)` (or `load_config(stage, ...)`) and hands typed
fields down; nothing below it reads the environment or raw CDK context.

Every key is type-checked and bounded before any construct is built: booleans are JSON booleans, numbers are
finite and in range, lists have the right length and unique members, hyperparameters and tuning ranges are
what train.py accepts (training_scripts/hyperparameters.py), schedules are EventBridge expressions. Then the
values the stacks hand to the functions (TRAINING_SETTINGS, RETRAIN_POLICY) go through the functions' own
parsers, so nothing a function would refuse at run time deploys. Every failure is one `ConfigError` whose
text is one line: `configuration error: <key>: <problem> (allowed: ...)`.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from importlib.util import find_spec
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import botocore.session

from lambdas.shared import contract as c
from lambdas.shared.function_settings import check_lock_outlives_run, longest_run_seconds
from lambdas.shared.jobspec import (
    DEFAULT_HYPERPARAMETERS,
    DEFAULT_TUNING_RANGES,
    INTEGER_HYPERPARAMETERS,
    EndpointSettings,
    ParameterRange,
    SettingsError,
    TrainingSpecSettings,
    TuningSettings,
    VpcSettings,
)
from lambdas.shared.metrics import tuning_objective
from lambdas.shared.policy import RULES as POLICY_RULES
from lambdas.shared.policy import PolicyError, RetrainPolicy
from lambdas.shared.runtime import ConfigError as FunctionConfigError
from training_scripts import hyperparameters as hp

STAGES = ("dev", "prod")
# The context keys app.py reads (cdk.json's "context" or `cdk synth -c key=value`).
CONTEXT_KEYS = ("stage", "region", "account", "availability_zones", "operator_email", "config_overrides")

# Instance families SageMaker offers for training/hosting that this project has been checked with.
INSTANCE_FAMILIES = (
    "ml.t3",
    "ml.m5",
    "ml.m6i",
    "ml.m7i",
    "ml.c5",
    "ml.c6i",
    "ml.c7i",
    "ml.r5",
    "ml.r6i",
    "ml.r7i",
    "ml.g4dn",
    "ml.g5",
    "ml.g6",
    "ml.p3",
)
INSTANCE_SIZES = ("medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge")
OBJECTIVES = hp.OBJECTIVES
# The framework container train.py is written for (xgboost.collective, Booster slicing, UBJSON checkpoints).
XGBOOST_FRAMEWORK_VERSIONS = ("3.2-0",)
INTERFACE_ENDPOINTS = (
    "sagemaker_api",
    "sagemaker_runtime",
    "sagemaker_notebook",
    "sts",
    "logs",
    "monitoring",
    "ecr_api",
    "ecr_dkr",
    "kms",
    "ssm",
    "events",
)
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288)
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
# One address: no list, no display name, no second address after a comma or semicolon.
_EMAIL = re.compile(r"[^@\s,;<>\"'()\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# <= 16 characters, so "<app>-prod-<hash>" fits a tuning job's 32-character name with the prefix whole.
_APP_NAME = re.compile(r"[a-z][a-z0-9-]{1,15}")
_ACCOUNT = re.compile(r"\d{12}")
# Placeholders for what only the stacks know (names, ARNs, URIs); the stage's own values are checked around them.
_SENTINEL_ACCOUNT = "000000000000"
_SHOWN_CHARS = 60


class ConfigError(ValueError):
    """A configuration value is wrong. Its text is one line: `configuration error: <key>: <problem> (allowed: ...)`."""

    def __init__(self, key: str, problem: str, allowed: str) -> None:
        self.key, self.problem, self.allowed = key, _one_line(problem), _one_line(allowed)
        super().__init__(f"configuration error: {self.key}: {self.problem} (allowed: {self.allowed})")


def _one_line(text: str) -> str:
    return " ".join(str(text).splitlines())


def _show(value: Any) -> str:
    """A value as a message quotes it: repr, cut short (an override may hold megabytes)."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[: _SHOWN_CHARS - 3]}..."


# ----------------------------------------------------------------------------------------------- bounds


@dataclass(frozen=True)
class Bound:
    """A numeric range; either end may be open or absent (then another rule owns that side)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def text(self) -> str:
        closed = not (self.low_open or self.high_open)
        if self.low is not None and self.high is not None and closed:
            return f"{self.low:g}..{self.high:g}"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return " and ".join(parts)


def _num(
    default: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    policy: str | None = None,
) -> Any:
    """A numeric field and its bounds. `policy` names the RETRAIN_POLICY key whose parser owns the rest."""
    metadata = {"bound": Bound(low, high, low_open, high_open), "policy": policy}
    return field(default=default, metadata=metadata)


def _choice(default: Any, choices: tuple[Any, ...]) -> Any:
    return field(default=default, metadata={"choices": choices})


# ------------------------------------------------------------------------------------------ the config


@dataclass(frozen=True)
class DataConfig:
    capture_expiry_days: int = _num(30, 1, 3650)
    quarantine_expiry_days: int = _num(90, 1, 3650)
    noncurrent_version_expiry_days: int = _num(30, 1, 3650)
    access_log_expiry_days: int = _num(365, 1, 3650)
    log_retention_days: int = _choice(365, LOG_RETENTION_DAYS)


def _default_ranges() -> dict[str, tuple[float, float]]:
    # The job spec's default ranges (lambdas/shared/jobspec.py), around train.py's cross-validated defaults.
    return {r.name: (float(r.min_value), float(r.max_value)) for r in DEFAULT_TUNING_RANGES}


@dataclass(frozen=True)
class TuningConfig:
    enabled: bool = False
    max_jobs: int = _num(20, 1, 500)
    max_parallel_jobs: int = _num(2, 1, 500)
    # name -> [min, max]: train.py's names (training_scripts/hyperparameters.py), integer or continuous ranges
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=_default_ranges)


@dataclass(frozen=True)
class TrainingConfig:
    xgboost_framework_version: str = _choice("3.2-0", XGBOOST_FRAMEWORK_VERSIONS)
    objective: str = _choice("binary:logistic", OBJECTIVES)
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = _num(1, 1, 20)
    volume_size_gb: int = _num(30, 5, 512)
    max_runtime_s: int = _num(3600, 60, 432000)
    use_spot: bool = True
    max_wait_s: int = _num(7200, 60, 432000)
    # Overrides on top of train.py's defaults, with the built-in algorithm's names (strings, as SageMaker sends).
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    tuning: TuningConfig = field(default_factory=TuningConfig)


@dataclass(frozen=True)
class EndpointConfig:
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = _num(1, 1, 100)
    serverless: bool = False
    serverless_memory_mb: int = _choice(2048, SERVERLESS_MEMORY_MB)
    # Bounded by the functions' TRAINING_SETTINGS parser (EndpointSettings), which synth runs.
    serverless_max_concurrency: int = 5
    min_capacity: int = _num(1, 1, 100)
    max_capacity: int = _num(2, 1, 100)
    # Measured per-instance throughput (invocations/s) and the share of it we target. bench/serve.py, single rows,
    # 2 workers x 16 threads on 2 CPUs (ml.m5.large has 2 vCPUs): 1,331-1,474/s at 4 clients under a load average
    # of 4-7, rounded down; a quieter machine measures more, so the target errs on the side of scaling out early.
    measured_invocations_per_second: float = _num(1300.0, 0, 1_000_000, low_open=True)
    target_utilisation: float = _num(0.5, 0, 0.9, low_open=True)
    scale_in_cooldown_s: int = _num(600, 1, 86400)
    scale_out_cooldown_s: int = _num(60, 1, 86400)
    scheduled_scale_down: bool = False
    data_capture_sampling_percent: int = _num(100, 0, 100)
    latency_slo_ms: int = _num(100, 1, 60000)
    canary_percent: int = _num(10, 1, 50)
    # SageMaker's BlueGreenUpdatePolicy limits: bake and termination waits 0..3600 s, timeout 600..28800 s.
    canary_wait_s: int = _num(600, 1, 3600)
    termination_wait_s: int = _num(300, 0, 3600)
    # The whole blue/green update (green fleet start-up, canary bake, final bake) must finish within this.
    deployment_timeout_s: int = _num(3600, 600, 28800)
    max_5xx_per_minute: int = _num(1, 0, 100000)
    max_4xx_rate_percent: float = _num(5.0, 0, 100, high_open=True)
    # How long the endpoint may receive no request at all before the no-invocations alarm fires.
    no_invocations_alarm_minutes: int = _num(30, 5, 1440)

    @property
    def invocations_per_instance_target(self) -> int:
        """Target for SageMakerVariantInvocationsPerInstance (a per-minute metric)."""
        return max(1, int(self.measured_invocations_per_second * 60 * self.target_utilisation))


# The ingest function streams each file (lambdas/ingest/logic.py), so its memory no longer grows with the file:
# measured peak RSS 84 MiB at the default max_file_mb (100), 75 MiB of it the runtime's imports, the same at
# 10 MiB. What grows is time: the exact check runs single-threaded at >= 8 MiB/s per vCPU (the narrowest rows
# measured; 28 MiB/s for wider ones), and Lambda gives CPU in proportion to memory (1,769 MB = one vCPU). So the
# memory is sized from max_file_mb to check the largest file in 80% of the timeout, never below 1,024 MB; a
# file that would need more than one vCPU (max_file_mb > 8 * 240 = 1,920) cannot fit.
INGEST_TIMEOUT_S = 300
INGEST_MIN_MEMORY_MB = 1024
INGEST_ONE_VCPU_MB = 1769
INGEST_MIB_PER_VCPU_SECOND = 8
INGEST_CHECK_SECONDS = INGEST_TIMEOUT_S * 4 // 5


def ingest_memory_mb(max_file_mb: int) -> int:
    """The ingest function's memory for files up to `max_file_mb` (may exceed one vCPU: then it cannot fit)."""
    needed = math.ceil(max_file_mb * INGEST_ONE_VCPU_MB / (INGEST_MIB_PER_VCPU_SECOND * INGEST_CHECK_SECONDS))
    return max(INGEST_MIN_MEMORY_MB, needed)


@dataclass(frozen=True)
class RetrainingConfig:
    schedule: str = "cron(0 3 * * ? *)"
    # The lower bounds of these four are RETRAIN_POLICY's (lambdas/shared/policy.py RULES), checked by its parser.
    min_interval_minutes: int = _num(60, high=10080, policy="min_interval_minutes")
    daily_cap: int = _num(4, high=100, policy="daily_cap")
    # Promotion: the candidate must clear the floor and be no worse than the champion by more than tolerance.
    metric_floor: float = _num(0.90, 0, policy="metric_floor")
    tolerance: float = _num(0.002, policy="tolerance")
    max_file_mb: int = _num(100, 1, 5120)
    drift_psi_threshold: float = _num(0.2, high=10, policy="drift_psi_threshold")
    drift_schedule: str = "rate(1 hour)"
    # The new-data queue waits up to this long to batch a burst of uploads into one ingest run (SQS: <= 300 s).
    debounce_seconds: int = _num(60, 0, 300)
    rollback_on_alarm: bool = False

    @property
    def ingest_memory_mb(self) -> int:
        return ingest_memory_mb(self.max_file_mb)


@dataclass(frozen=True)
class NetworkConfig:
    enabled: bool = True
    # Private address range of the VPC; both isolated subnets are carved from it.
    vpc_cidr: str = "10.40.0.0/16"
    restrict_buckets_to_vpce: bool = False
    interface_endpoints: Mapping[str, bool] = field(default_factory=lambda: dict.fromkeys(INTERFACE_ENDPOINTS, True))


@dataclass(frozen=True)
class NotebookConfig:
    enabled: bool = True
    instance_type: str = "ml.t3.medium"
    volume_size_gb: int = _num(10, 5, 16384)
    idle_minutes: int = _num(60, 5, 1440)
    # An open browser tab (a kernel connection) keeps the instance running unless this is true.
    ignore_connections: bool = False
    platform_identifier: str = "notebook-al2023-v1"


@dataclass(frozen=True)
class StageConfig:
    stage: str
    region: str
    availability_zones: tuple[str, ...]
    account: str | None = None
    app_name: str = "sagecycle"
    operator_email: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    retraining: RetrainingConfig = field(default_factory=RetrainingConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    notebook: NotebookConfig = field(default_factory=NotebookConfig)

    def stack_name(self, concern: str) -> str:
        return f"{self.app_name}-{self.stage}-{concern}"

    @property
    def is_prod(self) -> bool:
        return self.stage == "prod"


def _defaults(stage: str, region: str) -> StageConfig:
    azs = (f"{region}a", f"{region}b")
    if stage == "dev":
        return StageConfig(
            stage="dev",
            region=region,
            availability_zones=azs,
            data=DataConfig(capture_expiry_days=14, quarantine_expiry_days=30, log_retention_days=90),
            endpoint=EndpointConfig(serverless=False, min_capacity=1, max_capacity=2, scheduled_scale_down=True),
            network=NetworkConfig(
                interface_endpoints={name: name not in {"sagemaker_notebook"} for name in INTERFACE_ENDPOINTS}
            ),
        )
    return StageConfig(
        stage="prod",
        region=region,
        availability_zones=azs,
        training=TrainingConfig(use_spot=False),
        endpoint=EndpointConfig(initial_instance_count=2, min_capacity=2, max_capacity=6, canary_wait_s=900),
        retraining=RetrainingConfig(rollback_on_alarm=True),
        notebook=NotebookConfig(enabled=False),
    )


# ------------------------------------------------------------------------------------------- overrides

T = TypeVar("T")


def _merge(obj: T, overrides: Any, path: str) -> T:
    """Apply nested overrides to a frozen dataclass, rejecting unknown keys by name. Types are checked later."""
    assert is_dataclass(obj) and not isinstance(obj, type)
    names = [f.name for f in fields(obj)]
    if not isinstance(overrides, Mapping):
        where = path.rstrip(".") or "config_overrides"
        raise ConfigError(where, f"{_show(overrides)} is not a JSON object", f"an object of {', '.join(names)}")
    hints = get_type_hints(type(obj))
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        where = f"{path}{key}"
        if key not in names:
            raise ConfigError(where, "is not a configuration key", ", ".join(names))
        if not path and key == "stage":
            raise ConfigError(
                "config_overrides.stage",
                "the stage cannot be changed from inside config_overrides",
                "-c stage=dev|prod",
            )
        current = getattr(obj, key)
        if is_dataclass(current) and not isinstance(current, type):
            changes[key] = _merge(current, value, f"{where}.")
        else:
            changes[key] = _normalise(value, hints[key], where)
    return replace(obj, **changes)


def _normalise(value: Any, hint: Any, where: str) -> Any:
    """JSON shapes into the field's shape (lists into tuples, numbers into hyperparameter strings); no coercion
    of kinds: a string stays a string, so "false" for a boolean is an error at validation."""
    if get_origin(hint) is tuple and isinstance(value, list):
        return tuple(value)
    if get_origin(hint) is Mapping and isinstance(value, Mapping):
        inner = get_args(hint)[1]
        if get_origin(inner) is tuple:
            return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        if where == "training.hyperparameters":
            return {k: _hyperparameter_text(v) for k, v in value.items()}
        return dict(value)
    return value


def _hyperparameter_text(value: Any) -> Any:
    """A JSON hyperparameter value as the string SageMaker passes to train.py (anything else is left to fail)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return value


# ------------------------------------------------------------------------------------------ types, bounds


def _allowed(key: str, f: dataclasses.Field[Any] | None = None) -> str | None:
    """What a key's bounds and choices allow, in words; the RETRAIN_POLICY parser's own side included."""
    f = f or _field_at(key)
    if f is None:
        return None
    if "choices" in f.metadata:
        return ", ".join(str(v) for v in f.metadata["choices"])
    parts = []
    if f.metadata.get("policy"):
        parts.append(POLICY_RULES[f.metadata["policy"]][1])
    if "bound" in f.metadata and f.metadata["bound"].text():
        parts.append(f.metadata["bound"].text())
    return " and ".join(parts) or None


def _field_at(key: str) -> dataclasses.Field[Any] | None:
    cls: Any = StageConfig
    found = None
    for name in key.split("."):
        if not (isinstance(cls, type) and is_dataclass(cls)):
            return None
        found = {f.name: f for f in fields(cls)}.get(name)
        if found is None:
            return None
        cls = get_type_hints(cls)[name]
    return found


def _value_at(cfg: StageConfig, key: str) -> Any:
    value: Any = cfg
    for name in key.split("."):
        value = value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)
    return value


def _check_fields(obj: Any, path: str) -> None:
    """Every field of a (nested) config dataclass has its declared type and lies within its bounds."""
    hints = get_type_hints(type(obj))
    for f in fields(obj):
        key, value, hint = f"{path}{f.name}", getattr(obj, f.name), hints[f.name]
        if isinstance(hint, type) and is_dataclass(hint):
            if not isinstance(value, hint):
                raise ConfigError(key, f"{_show(value)} is not a JSON object", ", ".join(x.name for x in fields(hint)))
            _check_fields(value, f"{key}.")
            continue
        _check_value(key, value, hint, _allowed(key, f) or _TEXT_ALLOWED.get(key))
        if "choices" in f.metadata and value not in f.metadata["choices"]:
            raise ConfigError(key, f"{_show(value)} is not one of the choices", _allowed(key, f) or "")
        bound = f.metadata.get("bound")
        if bound is not None and not bound.holds(value):
            raise ConfigError(key, f"{_show(value)} is out of range", _allowed(key, f) or bound.text())


# What a field without bounds or choices holds, in words (its own rule comes later in validate()).
_TEXT_ALLOWED = {
    "account": "12 digits, as a string",
    "operator_email": "one e-mail address, as a string",
    "app_name": "a short lower-case name, as a string",
    "availability_zones": "a JSON list of two zones of the region",
    "training.hyperparameters": "an object of train.py's names and string values",
    "training.tuning.ranges": "an object of hyperparameter names and [min, max]",
    "network.interface_endpoints": "an object of endpoint names and true or false",
}


def _check_value(key: str, value: Any, hint: Any, allowed: str | None) -> None:
    origin, args = get_origin(hint), get_args(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(
                key, f"{_show(value)} is not a boolean (a JSON true or false, not a string)", "true, false"
            )
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"{_show(value)} is not an integer", allowed or "an integer")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"{_show(value)} is not a number", allowed or "a finite number")
        if not math.isfinite(value):
            raise ConfigError(key, f"{_show(value)} is not a finite number", allowed or "a finite number")
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"{_show(value)} is not one string", allowed or "a string")
    elif origin in (Union, UnionType):  # `str | None`
        if value is not None:
            (inner,) = [a for a in args if a is not type(None)]
            _check_value(key, value, inner, allowed)
    elif origin is tuple:
        if not isinstance(value, tuple):
            raise ConfigError(key, f"{_show(value)} is not a list", allowed or "a list")
        if args and args[-1] is not Ellipsis and len(value) != len(args):
            raise ConfigError(key, f"{_show(list(value))} has {len(value)} items, needs {len(args)}", allowed or "")
        for i, item in enumerate(value):
            _check_value(f"{key}[{i}]", item, args[0] if args[-1] is Ellipsis else args[i], allowed)
    elif origin is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"{_show(value)} is not a JSON object", allowed or "an object")
        for name, item in value.items():
            if not isinstance(name, str):
                raise ConfigError(key, f"key {_show(name)} is not a string", "string keys")
            inner = "[min, max]: two finite numbers" if get_origin(args[1]) is tuple else None
            _check_value(f"{key}.{name}", item, args[1], inner)
    else:  # pragma: no cover - a field type this walk does not know is a bug here, not a bad value
        raise TypeError(f"{key}: no check for {hint!r}")


# ------------------------------------------------------------------------------------------ the rules


@functools.cache
def _sagemaker_regions() -> frozenset[str]:
    """botocore's model of where SageMaker runs (parsing it takes a tenth of a second: read once)."""
    return frozenset(botocore.session.get_session().get_available_regions("sagemaker"))


def _known_regions() -> list[str]:
    """Regions where SageMaker runs (botocore's model) and the XGBoost framework image exists (the SDK's table)."""
    regions = _sagemaker_regions()
    image_regions = _xgboost_image_regions()
    return sorted(regions & image_regions if image_regions is not None else regions)


@functools.cache
def _xgboost_image_config() -> dict[str, Any] | None:
    """sagemaker-core's image table for the XGBoost framework, read as data (importing the SDK takes seconds)."""
    spec = find_spec("sagemaker")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "core" / "image_uri_config" / "xgboost.json"
        if path.is_file():
            table: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["training"]["versions"]
            return table
    return None


def _xgboost_image_regions(version: str = XGBOOST_FRAMEWORK_VERSIONS[0]) -> set[str] | None:
    table = _xgboost_image_config()
    if table is None:
        return None
    return set(table.get(version, {}).get("registries", {}))


@functools.cache
def _notebook_platforms() -> tuple[str, ...]:
    """Amazon Linux 2023 platform identifiers the SageMaker API model knows (AL1/AL2 are deprecated)."""
    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("PlatformIdentifier")
    return tuple(
        sorted(p for p in re.findall(r"notebook-[a-z0-9-]+", shape.metadata.get("pattern", "")) if "al2023" in p)
    )


def _check(condition: bool, key: str, problem: str, allowed: str) -> None:
    if not condition:
        raise ConfigError(key, problem, allowed)


def _check_instance(key: str, instance_type: str) -> None:
    family, _, size = instance_type.rpartition(".")
    _check(
        family in INSTANCE_FAMILIES and size in INSTANCE_SIZES,
        key,
        f"{instance_type!r} is not a known instance type",
        f"families {', '.join(INSTANCE_FAMILIES)} with sizes {', '.join(INSTANCE_SIZES)}",
    )


def _check_cidr(cidr: str) -> None:
    try:
        network = ipaddress.ip_network(cidr)
    except ValueError:
        network = None
    _check(
        network is not None and network.version == 4 and network.is_private and 16 <= network.prefixlen <= 24,
        "network.vpc_cidr",
        f"{_show(cidr)} is not a private IPv4 network from /16 to /24",
        "e.g. 10.40.0.0/16",
    )


# EventBridge schedule expressions (eb-scheduled-rule-pattern): cron with six fields, or rate(value unit).
SCHEDULE_ALLOWED = (
    "cron(minutes hours day-of-month month day-of-week year) with ? in exactly one of the day fields, "
    "or rate(1 minute|hour|day) / rate(N minutes|hours|days)"
)
_RATE = re.compile(r"rate\(([1-9][0-9]{0,8}) (minute|minutes|hour|hours|day|days)\)")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# name, lowest, highest, names for 1.., wildcards beyond , - * /
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...], str], ...] = (
    ("minutes", 0, 59, (), ""),
    ("hours", 0, 23, (), ""),
    ("day-of-month", 1, 31, (), "?LW"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _WEEKDAYS, "?L#"),
    ("year", 1970, 2199, (), ""),
)


def schedule_problem(expression: str) -> str | None:
    """Why EventBridge would refuse a schedule expression, or None when it is valid."""
    if expression.startswith("rate("):
        match = _RATE.fullmatch(expression)
        if match is None:
            return "is not rate(value unit) with a positive whole value"
        value, unit = int(match.group(1)), match.group(2)
        if (value == 1) != (not unit.endswith("s")):
            return f"needs a {'singular' if value == 1 else 'plural'} unit for {value}"
        return None
    if not (expression.startswith("cron(") and expression.endswith(")")):
        return "is neither cron(...) nor rate(...)"
    parts = expression[5:-1].split(" ")
    if len(parts) != 6:
        return f"has {len(parts)} cron fields, needs 6"
    for (name, low, high, names, extra), text in zip(_CRON_FIELDS, parts, strict=True):
        problem = _cron_field_problem(text, low, high, names, extra)
        if problem:
            return f"{name} field {text!r}: {problem}"
    if (parts[2] == "?") == (parts[4] == "?"):
        return "needs ? in exactly one of day-of-month and day-of-week"
    return None


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    if text.upper() in names:
        return True
    return text.isdigit() and low <= int(text) <= high


def _cron_field_problem(text: str, low: int, high: int, names: tuple[str, ...], extra: str) -> str | None:
    if text == "?":
        return None if "?" in extra else "? is only for day-of-month and day-of-week"
    if "#" in text:
        day, _, nth = text.partition("#")
        ok = "#" in extra and _cron_value(day, low, high, names) and nth in {"1", "2", "3", "4", "5"}
        return None if ok else "# needs one weekday#1..5 and nothing else"
    for item in text.split(","):
        if "L" in extra and (item == "L" or (item.endswith("L") and _cron_value(item[:-1], low, high, names))):
            continue
        if "W" in extra and item.endswith("W") and (item == "LW" or _cron_value(item[:-1], low, high, ())):
            continue
        base, slash, step = item.partition("/")
        if slash and not (step.isdigit() and 1 <= int(step) <= high):
            return f"step {step!r} must be 1..{high}"
        first, dash, last = base.partition("-")
        if base == "*" or (_cron_value(first, low, high, names) and (not dash or _cron_value(last, low, high, names))):
            continue
        return f"{item!r} is not a value {low}..{high}{', a name' if names else ''}, a range, a step or *"
    return None


def _check_hyperparameters(t: TrainingConfig) -> None:
    names = ", ".join(sorted(hp.HYPERPARAMETERS))
    for name, raw in t.hyperparameters.items():
        key = f"training.hyperparameters.{name}"
        _check_hyperparameter_name(key, name, names)
        spec = hp.HYPERPARAMETERS[name]
        try:
            value = hp.parse_value(name, raw)
        except hp.UsageError as error:
            raise ConfigError(key, f"{_show(raw)} is refused by train.py: {error}", spec.allowed()) from None
        _check(
            name != "objective" or value in (None, t.objective),
            key,
            f"{value!r} contradicts training.objective {t.objective!r}",
            f"training.objective's value, {t.objective}",
        )


def _check_hyperparameter_name(key: str, name: str, names: str) -> None:
    _check(name not in hp.ALIASES, key, f"is train.py's alias of {hp.ALIASES.get(name)!r}; use that name", names)
    _check(name in hp.HYPERPARAMETERS, key, "is not a hyperparameter train.py accepts", names)


def _tunable() -> list[str]:
    """Numeric names whose tuning range SageMaker sends in a form train.py reads (integers as integers)."""
    return sorted(
        name
        for name, spec in hp.HYPERPARAMETERS.items()
        if spec.kind == "float" or (spec.kind == "int" and name in INTEGER_HYPERPARAMETERS)
    )


def _check_tuning_ranges(tu: TuningConfig) -> None:
    tunable = _tunable()
    for name, (low, high) in tu.ranges.items():
        key = f"training.tuning.ranges.{name}"
        _check_hyperparameter_name(key, name, ", ".join(tunable))
        spec = hp.HYPERPARAMETERS[name]
        _check(
            name in tunable,
            key,
            f"train.py reads {name} as an integer, but a tuning job would send it fractions"
            if spec.kind == "int"
            else f"{name} is a {spec.kind} hyperparameter, not a number to tune",
            ", ".join(tunable),
        )
        _check(low < high, key, f"[{low:g}, {high:g}] is not [min, max] with min < max", spec.allowed())
        if spec.kind == "int":
            whole = float(low).is_integer() and float(high).is_integer()
            _check(whole, key, f"[{low:g}, {high:g}] has a fractional bound", f"whole numbers, {spec.allowed()}")
        for bound in (low, high):
            try:
                hp.parse_value(name, _hyperparameter_text(bound))
            except hp.UsageError as error:
                raise ConfigError(key, f"bound {bound:g} is refused by train.py: {error}", spec.allowed()) from None


def _check_metric_domain(cfg: StageConfig) -> None:
    """The floor and tolerance are on the primary metric's scale: AUC lies in [0, 1], log loss and RMSE >= 0."""
    r, objective = cfg.retraining, cfg.training.objective
    metric, direction = tuning_objective(objective)
    if direction == "Maximize":  # AUC
        for name in ("metric_floor", "tolerance"):
            value = getattr(r, name)
            _check(
                value <= 1,
                f"retraining.{name}",
                f"{value!r} is outside the scale of {metric}, the metric {objective} promotes on",
                "0..1",
            )


def validate(cfg: StageConfig) -> StageConfig:
    """Every rule a human could get wrong; the first broken one raises with the key and the allowed values."""
    if not isinstance(cfg, StageConfig):
        raise ConfigError("config", f"{_show(cfg)} is not a StageConfig", "load_config's result")
    _check_fields(cfg, "")
    _check(cfg.stage in STAGES, "stage", f"{cfg.stage!r} is not a stage", ", ".join(STAGES))
    _check(
        bool(_APP_NAME.fullmatch(cfg.app_name)),
        "app_name",
        f"{_show(cfg.app_name)} is not a short lower-case name",
        "2..16 of a-z, 0-9, -, starting with a letter",
    )
    regions = _known_regions()
    if cfg.region in _sagemaker_regions() and cfg.region not in regions:
        problem = f"SageMaker runs in {cfg.region}, but the XGBoost framework container is not published there"
    else:
        problem = f"{_show(cfg.region)} is not a SageMaker region"
    _check(cfg.region in regions, "region", problem, ", ".join(regions))
    zones, zone = cfg.availability_zones, re.compile(re.escape(cfg.region) + "[a-z]")
    _check(
        len(zones) == 2 and len(set(zones)) == 2 and all(zone.fullmatch(z) for z in zones),
        "availability_zones",
        f"{_show(list(zones))} are not two distinct zones of {cfg.region}",
        f'two of {cfg.region}a, {cfg.region}b, ...; -c availability_zones=\'["{cfg.region}a", "{cfg.region}b"]\'',
    )
    _check(
        cfg.account is None or bool(_ACCOUNT.fullmatch(cfg.account)),
        "account",
        f"{_show(cfg.account)} is not an AWS account id",
        "12 digits",
    )
    if cfg.is_prod:
        _check(
            cfg.operator_email is not None,
            "operator_email",
            "missing: operator_email is required in prod (alarms must reach a person)",
            "one e-mail address; pass -c operator_email=you@example.com",
        )
    _check(
        cfg.operator_email is None or (len(cfg.operator_email) <= 254 and bool(_EMAIL.fullmatch(cfg.operator_email))),
        "operator_email",
        f"{_show(cfg.operator_email)} is not one e-mail address",
        "one address such as ops@example.com",
    )

    t = cfg.training
    _check_instance("training.instance_type", t.instance_type)
    image_regions = _xgboost_image_regions(t.xgboost_framework_version)
    _check(
        image_regions is None or cfg.region in image_regions,
        "training.xgboost_framework_version",
        f"the {t.xgboost_framework_version} container is not published in {cfg.region}",
        ", ".join(sorted(image_regions or ())),
    )
    if t.use_spot:
        _check(
            t.max_wait_s >= t.max_runtime_s,
            "training.max_wait_s",
            f"{t.max_wait_s} is shorter than training.max_runtime_s ({t.max_runtime_s}) with spot",
            f">= training.max_runtime_s, {_allowed('training.max_wait_s')}",
        )
    _check_hyperparameters(t)
    tu = t.tuning
    _check(
        tu.max_parallel_jobs <= tu.max_jobs,
        "training.tuning.max_parallel_jobs",
        f"{tu.max_parallel_jobs} is more than training.tuning.max_jobs ({tu.max_jobs})",
        f"1..max_jobs ({tu.max_jobs})",
    )
    _check_tuning_ranges(tu)

    e = cfg.endpoint
    _check_instance("endpoint.instance_type", e.instance_type)
    _check(
        e.min_capacity <= e.max_capacity,
        "endpoint.min_capacity",
        f"{e.min_capacity} is more than endpoint.max_capacity ({e.max_capacity})",
        f"1..max_capacity ({e.max_capacity})",
    )
    _check(
        e.min_capacity <= e.initial_instance_count <= e.max_capacity,
        "endpoint.initial_instance_count",
        f"{e.initial_instance_count} is outside [min_capacity, max_capacity]",
        f"{e.min_capacity}..{e.max_capacity}",
    )
    if cfg.is_prod:
        _check(e.min_capacity >= 2, "endpoint.min_capacity", f"{e.min_capacity} in prod (two AZs)", ">= 2 in prod")
        _check(not e.serverless, "endpoint.serverless", "true is a dev option", "false in prod")
    _check(
        e.deployment_timeout_s > e.canary_wait_s + e.termination_wait_s,
        "endpoint.deployment_timeout_s",
        f"{e.deployment_timeout_s} does not cover canary_wait_s + termination_wait_s "
        f"({e.canary_wait_s + e.termination_wait_s})",
        f"> {e.canary_wait_s + e.termination_wait_s}, {_allowed('endpoint.deployment_timeout_s')}",
    )
    _check(
        e.no_invocations_alarm_minutes % 5 == 0,
        "endpoint.no_invocations_alarm_minutes",
        f"{e.no_invocations_alarm_minutes} is not a whole number of the alarm's 5-minute periods",
        "a multiple of 5 in 5..1440",
    )

    r = cfg.retraining
    for name in ("schedule", "drift_schedule"):
        issue = schedule_problem(getattr(r, name))
        _check(issue is None, f"retraining.{name}", f"{_show(getattr(r, name))} {issue}", SCHEDULE_ALLOWED)
    _check_metric_domain(cfg)
    fits = INGEST_MIB_PER_VCPU_SECOND * INGEST_CHECK_SECONDS
    _check(
        r.ingest_memory_mb <= INGEST_ONE_VCPU_MB,
        "retraining.max_file_mb",
        f"{r.max_file_mb} MB cannot be checked within the ingest function's {INGEST_TIMEOUT_S} s timeout "
        f"(one vCPU checks {INGEST_MIB_PER_VCPU_SECOND} MiB/s)",
        f"1..{fits}",
    )

    n = cfg.network
    unknown = sorted(set(n.interface_endpoints) - set(INTERFACE_ENDPOINTS))
    _check(not unknown, "network.interface_endpoints", f"unknown {unknown}", ", ".join(INTERFACE_ENDPOINTS))
    # An override replaces the whole mapping, so a partial one would silently switch the rest off.
    missing = [name for name in INTERFACE_ENDPOINTS if name not in n.interface_endpoints]
    _check(
        not missing,
        "network.interface_endpoints",
        f"is missing {missing}",
        f"every one of {', '.join(INTERFACE_ENDPOINTS)} as true or false",
    )
    _check_cidr(n.vpc_cidr)
    _check(
        n.enabled or not n.restrict_buckets_to_vpce,
        "network.restrict_buckets_to_vpce",
        "needs network.enabled (no VPC endpoint would be left to reach the buckets)",
        "false while network.enabled is false",
    )

    nb = cfg.notebook
    _check_instance("notebook.instance_type", nb.instance_type)
    platforms = _notebook_platforms()
    _check(
        nb.platform_identifier in platforms,
        "notebook.platform_identifier",
        f"{_show(nb.platform_identifier)} is not an Amazon Linux 2023 platform",
        ", ".join(platforms),
    )
    _check(
        not nb.enabled or n.enabled,
        "notebook.enabled",
        "needs network.enabled (the notebook runs in a private subnet without internet access)",
        "false while network.enabled is false",
    )
    _check_with_function_parsers(cfg)
    return cfg


# ------------------------------------------------------------------- what the functions will be given


def training_spec_fields(cfg: StageConfig) -> dict[str, Any]:
    """The TrainingSpecSettings fields the stage configuration decides; the Retraining stack adds the names,
    ARNs and URIs only it knows. Building the nested settings runs their own checks (SettingsError)."""
    app, stage, t, e = cfg.app_name, cfg.stage, cfg.training, cfg.endpoint
    return {
        "job_name_prefix": c.job_name_prefix(app, stage),
        "region": cfg.region,
        "objective": t.objective,
        "instance_type": t.instance_type,
        "instance_count": t.instance_count,
        "volume_size_gb": t.volume_size_gb,
        "max_runtime_seconds": t.max_runtime_s,
        "use_spot": t.use_spot,
        "max_wait_seconds": t.max_wait_s if t.use_spot else None,
        "hyperparameters": {**DEFAULT_HYPERPARAMETERS, **t.hyperparameters},
        "enable_network_isolation": True,
        "encrypt_inter_container_traffic": True,
        "tags": {"project": app, "stage": stage},
        "tuning": TuningSettings(
            enabled=t.tuning.enabled,
            max_jobs=t.tuning.max_jobs,
            max_parallel_jobs=t.tuning.max_parallel_jobs,
            ranges=tuple(ParameterRange.from_bounds(n, lo, hi) for n, (lo, hi) in t.tuning.ranges.items()),
        ),
        "endpoint": EndpointSettings(
            variant_name=c.VARIANT_NAME,
            instance_type=e.instance_type,
            initial_instance_count=e.initial_instance_count,
            serverless_memory_mb=e.serverless_memory_mb if e.serverless else None,
            serverless_max_concurrency=e.serverless_max_concurrency,
            capture_enabled=not e.serverless,
            capture_sampling_percent=e.data_capture_sampling_percent,
            capture_prefix=c.PREFIX_CAPTURE,
            canary_percent=e.canary_percent,
            wait_interval_seconds=e.canary_wait_s,
            termination_wait_seconds=e.termination_wait_s,
            max_execution_timeout_seconds=e.deployment_timeout_s,
            rollback_alarm_names=tuple(c.alarm_name(app, stage, c.ENDPOINT_ALARMS[k]) for k in c.ROLLBACK_ALARM_KEYS),
        ),
    }


def _placeholder_spec(cfg: StageConfig) -> TrainingSpecSettings:
    """TRAINING_SETTINGS as the stack writes it, with placeholders (the shapes the stack uses) for what only
    the stacks know, so the stage's own values meet the functions' parser."""
    app, stage, region, account = cfg.app_name, cfg.stage, cfg.region, _SENTINEL_ACCOUNT
    models = f"{app}-{stage}-models-{account}-{region}"
    return TrainingSpecSettings(
        image_uri=f"{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:{cfg.training.xgboost_framework_version}",
        role_arn=f"arn:aws:iam::{account}:role/{app}-{stage}-sagemaker-execution",
        data_bucket=f"{app}-{stage}-data-{account}-{region}",
        model_bucket=models,
        source_dir_s3_uri=f"s3://{models}/{c.PREFIX_CODE}sourcedir-0000000000000000.tar.gz",
        kms_key_arn=f"arn:aws:kms:{region}:{account}:key/00000000-0000-4000-8000-000000000000",
        train_prefix=c.PREFIX_TRAIN,
        validation_prefix=c.PREFIX_VALIDATION,
        test_prefix=c.PREFIX_TEST,
        model_output_prefix=c.PREFIX_TRAINING_OUTPUT,
        checkpoint_s3_uri=f"s3://{models}/{c.PREFIX_CHECKPOINTS}" if cfg.training.use_spot else None,
        vpc=VpcSettings(subnet_ids=("subnet-0", "subnet-1"), security_group_ids=("sg-0",))
        if cfg.network.enabled
        else None,
        **training_spec_fields(cfg),
    )


def retrain_policy_document(cfg: StageConfig) -> dict[str, Any]:
    """RETRAIN_POLICY as the functions read it (lambdas/shared/policy.py).

    The lock outlives the longest run the start function may begin (the functions' own longest_run_seconds),
    plus an hour, so a lost "finished" event cannot wedge retraining forever.
    """
    r = cfg.retraining
    return {
        "min_interval_minutes": r.min_interval_minutes,
        "daily_cap": r.daily_cap,
        "metric_floor": r.metric_floor,
        "tolerance": r.tolerance,
        "max_file_bytes": r.max_file_mb * 1024 * 1024,
        "drift_psi_threshold": r.drift_psi_threshold,
        "rollback_on_alarm": r.rollback_on_alarm,
        "lock_ttl_seconds": longest_run_seconds(_placeholder_spec(cfg)) + 3600,
    }


# RETRAIN_POLICY key -> the stage setting it comes from.
_POLICY_KEYS = {
    "min_interval_minutes": "retraining.min_interval_minutes",
    "daily_cap": "retraining.daily_cap",
    "metric_floor": "retraining.metric_floor",
    "tolerance": "retraining.tolerance",
    "max_file_bytes": "retraining.max_file_mb",
    "drift_psi_threshold": "retraining.drift_psi_threshold",
    "rollback_on_alarm": "retraining.rollback_on_alarm",
    "lock_ttl_seconds": "training.max_runtime_s",
}
# TRAINING_SETTINGS field (as its parser's messages name it) -> the stage setting it comes from.
_SPEC_KEYS = {
    "job_name_prefix": "app_name",
    "data_bucket": "app_name",
    "model_bucket": "app_name",
    "tag": "app_name",
    "region": "region",
    "objective": "training.objective",
    "instance_count": "training.instance_count",
    "volume_size_gb": "training.volume_size_gb",
    "max_runtime": "training.max_runtime_s",
    "max_wait_seconds": "training.max_wait_s",
    "hyperparameter": "training.hyperparameters",
    "max_jobs": "training.tuning.max_jobs",
    "max_parallel_jobs": "training.tuning.max_parallel_jobs",
    "ranges": "training.tuning.ranges",
    "initial_instance_count": "endpoint.initial_instance_count",
    "serverless_memory_mb": "endpoint.serverless_memory_mb",
    "serverless_max_concurrency": "endpoint.serverless_max_concurrency",
    "capture_sampling_percent": "endpoint.data_capture_sampling_percent",
    "canary_percent": "endpoint.canary_percent",
    "wait_interval_seconds": "endpoint.canary_wait_s",
    "termination_wait_seconds": "endpoint.termination_wait_s",
    "max_execution_timeout_seconds": "endpoint.deployment_timeout_s",
}


def _spec_key(message: str) -> str:
    """The stage setting a TRAINING_SETTINGS parser message is about (its first named field), else `training`."""
    where, _, problems = message.partition(": ")
    first = problems.split("; ")[0]
    if where == "invalid tuning range":
        return f"training.tuning.ranges.{first.partition(':')[0]}"
    if first.startswith("instance_type"):
        return "endpoint.instance_type" if where == "invalid endpoint settings" else "training.instance_type"
    hits = [(m.start(), key) for name, key in _SPEC_KEYS.items() for m in [re.search(rf"\b{name}", first)] if m]
    return min(hits)[1] if hits else "training"


def _parser_error(cfg: StageConfig, key: str, parser: str, detail: str) -> ConfigError:
    requirement = re.search(r"must (not be empty|be .+)$", detail)
    said = requirement.group(1) if requirement else None
    allowed = _allowed(key) or ("at least one" if said == "not be empty" else said and said[3:]) or "what it accepts"
    return ConfigError(
        key, f"{_show(_value_at(cfg, key))} is refused by the functions' {parser} parser: {detail}", allowed
    )


def _check_with_function_parsers(cfg: StageConfig) -> None:
    """What the stacks hand the functions goes through the functions' own parsers and cross-checks: every rule
    they enforce at run time also fails synth, named by the stage setting it comes from."""
    settings = c.ENV_TRAINING_SETTINGS
    try:
        spec = _placeholder_spec(cfg)
        parsed = TrainingSpecSettings.from_json(spec.to_json())
    except SettingsError as error:
        raise _parser_error(cfg, _spec_key(str(error)), settings, str(error).partition(": ")[2]) from None
    _check(parsed == spec, "training", f"does not survive the functions' {settings} JSON codec", "JSON-safe values")
    try:
        policy = RetrainPolicy.from_json(json.dumps(retrain_policy_document(cfg)))
    except PolicyError as error:
        name, allowed = error.problems[0] if error.problems else ("", "")
        detail = f"{name} must be {allowed}" if name else str(error)
        raise _parser_error(cfg, _POLICY_KEYS.get(name, "retraining"), c.ENV_RETRAIN_POLICY, detail) from None
    try:
        check_lock_outlives_run(parsed, policy)
    except FunctionConfigError as error:
        raise ConfigError(
            "training.max_runtime_s", f"the training lock would not outlive a run: {error}", "a lock >= the longest run"
        ) from None


# ------------------------------------------------------------------------------------------- loading


def load_config(
    stage: Any,
    *,
    region: Any = "us-east-1",
    account: Any = None,
    availability_zones: Any = None,
    operator_email: Any = None,
    overrides: Any = None,
) -> StageConfig:
    """The stage's defaults, then explicit values, then nested overrides; validated as a whole."""
    _check(isinstance(stage, str) and stage in STAGES, "stage", f"{_show(stage)} is not a stage", ", ".join(STAGES))
    _check(isinstance(region, str), "region", f"{_show(region)} is not one string", "a region name such as us-east-1")
    cfg = _defaults(stage, region)
    if availability_zones is not None:
        _check(
            isinstance(availability_zones, list | tuple),
            "availability_zones",
            f"{_show(availability_zones)} is not a list",
            f'a JSON list of two zones of {region}, e.g. ["{region}a", "{region}b"]',
        )
        cfg = replace(cfg, availability_zones=tuple(availability_zones))
    cfg = replace(cfg, account=account, operator_email=operator_email)
    if overrides is not None:
        cfg = _merge(cfg, overrides, "")
    return validate(cfg)


def load_from_context(context: Callable[[str], Any], environ: Mapping[str, str]) -> StageConfig:
    """The config from CDK context (`-c key=value` gives strings, cdk.json any JSON) and CDK's environment."""

    def given(key: str, fallback: Any = None) -> Any:
        value = context(key)
        return fallback if value is None else value

    return load_config(
        given("stage", "dev"),
        region=given("region", environ.get("CDK_DEFAULT_REGION") or "us-east-1"),
        account=given("account", environ.get("CDK_DEFAULT_ACCOUNT") or None),
        availability_zones=_json_context("availability_zones", context("availability_zones"), list),
        operator_email=context("operator_email"),
        overrides=_json_context("config_overrides", context("config_overrides"), dict),
    )


_JSON_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _json_context(key: str, value: Any, kind: type) -> Any:
    """A context value that holds JSON: as given in cdk.json, or parsed from the string `-c` passes."""
    want = "a JSON object" if kind is dict else "a JSON list"
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_json(key, value)
        if isinstance(value, str):
            raise ConfigError(key, f"is a JSON string, not {want} (encoded twice?)", want)
    if not isinstance(value, kind):
        got = _JSON_KINDS.get(type(value), "a number")
        raise ConfigError(key, f"is {got}, not {want}", want)
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"key {twice[0]!r} appears twice")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(key: str, text: str) -> Any:
    """Strict JSON: no NaN/Infinity, no repeated keys; any failure is one ConfigError naming the key."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except RecursionError:
        raise ConfigError(key, "nests too deeply to be a configuration", "valid JSON") from None
    except ValueError as error:  # JSONDecodeError, our hooks, and integers past Python's digit limit
        raise ConfigError(key, f"is not valid JSON: {error}", "valid JSON") from None


def as_dict(cfg: StageConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
