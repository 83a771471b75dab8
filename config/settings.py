"""Typed, validated stage configuration: the one place that says what `dev` and `prod` mean.

`app.py` builds a `StageConfig` with `load_config(stage, overrides)` and hands typed fields down; nothing
below it reads the environment or raw CDK context. A wrong value fails synth with one `ConfigError` that
names the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import botocore.session

STAGES = ("dev", "prod")

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
OBJECTIVES = ("binary:logistic", "multi:softprob", "reg:squarederror")
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
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# <= 16 characters, so "<app>-prod-<hash>" fits a tuning job's 32-character name with the prefix whole.
_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,15}$")
_CRON = re.compile(r"^cron\(\S+ \S+ \S+ \S+ \S+ \S+\)$|^rate\(\d+ (minute|minutes|hour|hours|day|days)\)$")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and the allowed values."""


@dataclass(frozen=True)
class DataConfig:
    capture_expiry_days: int = 30
    quarantine_expiry_days: int = 90
    noncurrent_version_expiry_days: int = 30
    access_log_expiry_days: int = 365
    log_retention_days: int = 365


@dataclass(frozen=True)
class TuningConfig:
    enabled: bool = False
    max_jobs: int = 20
    max_parallel_jobs: int = 2
    # name -> [min, max] (continuous/integer ranges of SageMaker's built-in XGBoost names)
    ranges: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "eta": (0.01, 0.3),
            "max_depth": (3.0, 10.0),
            "min_child_weight": (1.0, 10.0),
            "subsample": (0.5, 1.0),
            "colsample_bytree": (0.5, 1.0),
            "gamma": (0.0, 5.0),
        }
    )


@dataclass(frozen=True)
class TrainingConfig:
    xgboost_framework_version: str = "3.2-0"
    objective: str = "binary:logistic"
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_size_gb: int = 30
    max_runtime_s: int = 3600
    use_spot: bool = True
    max_wait_s: int = 7200
    # Overrides on top of train.py's defaults, with the built-in algorithm's names.
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    tuning: TuningConfig = field(default_factory=TuningConfig)


@dataclass(frozen=True)
class EndpointConfig:
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 1
    serverless: bool = False
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    min_capacity: int = 1
    max_capacity: int = 2
    # Measured per-instance throughput (invocations/s, bench/serve.py) and the share of it we target.
    measured_invocations_per_second: float = 1000.0
    target_utilisation: float = 0.5
    scale_in_cooldown_s: int = 600
    scale_out_cooldown_s: int = 60
    scheduled_scale_down: bool = False
    data_capture_sampling_percent: int = 100
    latency_slo_ms: int = 100
    canary_percent: int = 10
    canary_wait_s: int = 600
    termination_wait_s: int = 300
    # The whole blue/green update (green fleet start-up, canary bake, final bake) must finish within this.
    deployment_timeout_s: int = 3600
    max_5xx_per_minute: int = 1
    max_4xx_rate_percent: float = 5.0
    # How long the endpoint may receive no request at all before the no-invocations alarm fires.
    no_invocations_alarm_minutes: int = 30

    @property
    def invocations_per_instance_target(self) -> int:
        """Target for SageMakerVariantInvocationsPerInstance (a per-minute metric)."""
        return max(1, int(self.measured_invocations_per_second * 60 * self.target_utilisation))


@dataclass(frozen=True)
class RetrainingConfig:
    schedule: str = "cron(0 3 * * ? *)"
    min_interval_minutes: int = 60
    daily_cap: int = 4
    # Promotion: the candidate must clear the floor and be no worse than the champion by more than tolerance.
    metric_floor: float = 0.90
    tolerance: float = 0.002
    max_file_mb: int = 100
    drift_psi_threshold: float = 0.2
    drift_schedule: str = "rate(1 hour)"
    # The new-data queue waits up to this long to batch a burst of uploads into one ingest run.
    debounce_seconds: int = 60
    rollback_on_alarm: bool = False


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
    volume_size_gb: int = 10
    idle_minutes: int = 60
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


T = TypeVar("T")


def _merge(obj: T, overrides: Mapping[str, Any], path: str) -> T:
    """Apply nested overrides to a frozen dataclass, rejecting unknown keys by name."""
    assert is_dataclass(obj) and not isinstance(obj, type)
    hints = get_type_hints(type(obj))
    names = [f.name for f in fields(obj)]
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        where = f"{path}{key}"
        if key not in names:
            raise ConfigError(f"unknown configuration key {where!r}; allowed: {', '.join(names)}")
        current = getattr(obj, key)
        if is_dataclass(current) and not isinstance(current, type):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where} must be a mapping of {', '.join(f.name for f in fields(current))}")
            changes[key] = _merge(current, value, f"{where}.")
        else:
            changes[key] = _coerce(value, hints[key], where)
    return replace(obj, **changes)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = get_origin(hint)
    args = get_args(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if hint is int:
        try:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be an integer, got {value!r}") from None
    if hint is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
    if hint is str:
        return str(value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(value)
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if args and type(None) in args:  # Optional[str]
        return None if value is None else str(value)
    return value


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_instance(key: str, instance_type: str) -> None:
    family, _, size = instance_type.rpartition(".")
    _check(
        family in INSTANCE_FAMILIES and size in INSTANCE_SIZES,
        f"{key}={instance_type!r} is not a known instance type; allowed families: {', '.join(INSTANCE_FAMILIES)}"
        f" with sizes {', '.join(INSTANCE_SIZES)}",
    )


def _known_regions() -> list[str]:
    return sorted(botocore.session.get_session().get_available_regions("sagemaker"))


def _notebook_platforms() -> list[str]:
    """Amazon Linux 2023 platform identifiers the SageMaker API model knows (AL1/AL2 are deprecated)."""
    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("PlatformIdentifier")
    return sorted(p for p in re.findall(r"notebook-[a-z0-9-]+", shape.metadata.get("pattern", "")) if "al2023" in p)


def _check_cidr(cidr: str) -> None:
    try:
        network = ipaddress.ip_network(cidr)
    except ValueError:
        network = None
    _check(
        network is not None and network.version == 4 and network.is_private and 16 <= network.prefixlen <= 24,
        f"network.vpc_cidr={cidr!r} must be a private IPv4 network from /16 to /24, e.g. 10.40.0.0/16",
    )


def validate(cfg: StageConfig) -> StageConfig:
    """Every rule a human could get wrong; the first broken one raises with the key and allowed values."""
    _check(cfg.stage in STAGES, f"stage={cfg.stage!r} is not a stage; allowed: {', '.join(STAGES)}")
    _check(bool(_APP_NAME.match(cfg.app_name)), f"app_name={cfg.app_name!r} must match {_APP_NAME.pattern}")
    regions = _known_regions()
    _check(cfg.region in regions, f"region={cfg.region!r} is not a SageMaker region; allowed: {', '.join(regions)}")
    _check(
        len(cfg.availability_zones) >= 2 and all(az.startswith(cfg.region) for az in cfg.availability_zones),
        f"availability_zones={list(cfg.availability_zones)!r} must name at least 2 zones of {cfg.region}",
    )
    _check(
        cfg.account is None or bool(re.fullmatch(r"\d{12}", cfg.account)),
        f"account={cfg.account!r} must be 12 digits",
    )
    if cfg.is_prod:
        _check(
            cfg.operator_email is not None,
            "operator_email is required in prod (alarms must reach a person); pass -c operator_email=you@example.com",
        )
    _check(
        cfg.operator_email is None or bool(_EMAIL.match(cfg.operator_email)),
        f"operator_email={cfg.operator_email!r} is not an e-mail address",
    )
    d = cfg.data
    for name in ("capture_expiry_days", "quarantine_expiry_days", "noncurrent_version_expiry_days"):
        _check(getattr(d, name) >= 1, f"data.{name} must be >= 1, got {getattr(d, name)}")
    retention = LOG_RETENTION_DAYS
    _check(
        d.log_retention_days in retention,
        f"data.log_retention_days={d.log_retention_days} is not a CloudWatch Logs retention; allowed: {retention}",
    )
    t = cfg.training
    _check(t.objective in OBJECTIVES, f"training.objective={t.objective!r}; allowed: {', '.join(OBJECTIVES)}")
    _check_instance("training.instance_type", t.instance_type)
    _check(1 <= t.instance_count <= 20, f"training.instance_count must be 1..20, got {t.instance_count}")
    _check(5 <= t.volume_size_gb <= 512, f"training.volume_size_gb must be 5..512, got {t.volume_size_gb}")
    _check(60 <= t.max_runtime_s <= 432000, f"training.max_runtime_s must be 60..432000, got {t.max_runtime_s}")
    if t.use_spot:
        _check(
            t.max_wait_s >= t.max_runtime_s,
            f"training.max_wait_s ({t.max_wait_s}) must be >= training.max_runtime_s ({t.max_runtime_s}) with spot",
        )
    tu = t.tuning
    _check(
        1 <= tu.max_parallel_jobs <= tu.max_jobs <= 500,
        f"training.tuning needs 1 <= max_parallel_jobs ({tu.max_parallel_jobs}) <= max_jobs ({tu.max_jobs}) <= 500",
    )
    for name, bounds in tu.ranges.items():
        _check(
            len(bounds) == 2 and bounds[0] < bounds[1],
            f"training.tuning.ranges.{name}={list(bounds)!r} must be [min, max] with min < max",
        )
    e = cfg.endpoint
    _check_instance("endpoint.instance_type", e.instance_type)
    _check(e.min_capacity >= 1, f"endpoint.min_capacity must be >= 1, got {e.min_capacity}")
    _check(
        e.min_capacity <= e.max_capacity,
        f"endpoint.min_capacity ({e.min_capacity}) must be <= endpoint.max_capacity ({e.max_capacity})",
    )
    _check(
        e.min_capacity <= e.initial_instance_count <= e.max_capacity,
        f"endpoint.initial_instance_count ({e.initial_instance_count}) must lie in "
        f"[min_capacity {e.min_capacity}, max_capacity {e.max_capacity}]",
    )
    if cfg.is_prod:
        _check(e.min_capacity >= 2, f"endpoint.min_capacity must be >= 2 in prod (two AZs), got {e.min_capacity}")
        _check(not e.serverless, "endpoint.serverless is a dev option; allowed in prod: false")
    _check(
        e.serverless_memory_mb in (1024, 2048, 3072, 4096, 5120, 6144),
        f"endpoint.serverless_memory_mb={e.serverless_memory_mb}; allowed: 1024, 2048, 3072, 4096, 5120, 6144",
    )
    _check(
        0 <= e.data_capture_sampling_percent <= 100,
        f"endpoint.data_capture_sampling_percent must be 0..100, got {e.data_capture_sampling_percent}",
    )
    _check(1 <= e.canary_percent <= 50, f"endpoint.canary_percent must be 1..50, got {e.canary_percent}")
    _check(e.measured_invocations_per_second > 0, "endpoint.measured_invocations_per_second must be > 0")
    _check(
        0 < e.target_utilisation <= 0.9,
        f"endpoint.target_utilisation must be in (0, 0.9], got {e.target_utilisation}",
    )
    for name in ("latency_slo_ms", "scale_in_cooldown_s", "scale_out_cooldown_s", "canary_wait_s"):
        _check(getattr(e, name) > 0, f"endpoint.{name} must be > 0, got {getattr(e, name)}")
    _check(e.max_4xx_rate_percent >= 0, f"endpoint.max_4xx_rate_percent must be >= 0, got {e.max_4xx_rate_percent}")
    # SageMaker's BlueGreenUpdatePolicy limits: bake and termination waits 0..3600 s, timeout 600..28800 s.
    _check(e.canary_wait_s <= 3600, f"endpoint.canary_wait_s must be <= 3600, got {e.canary_wait_s}")
    _check(
        0 <= e.termination_wait_s <= 3600, f"endpoint.termination_wait_s must be 0..3600, got {e.termination_wait_s}"
    )
    _check(
        600 <= e.deployment_timeout_s <= 28800 and e.deployment_timeout_s > e.canary_wait_s + e.termination_wait_s,
        f"endpoint.deployment_timeout_s ({e.deployment_timeout_s}) must be 600..28800 and > canary_wait_s + "
        f"termination_wait_s ({e.canary_wait_s + e.termination_wait_s})",
    )
    _check(
        5 <= e.no_invocations_alarm_minutes <= 1440 and e.no_invocations_alarm_minutes % 5 == 0,
        "endpoint.no_invocations_alarm_minutes must be a multiple of 5 in 5..1440, "
        f"got {e.no_invocations_alarm_minutes}",
    )
    r = cfg.retraining
    _check(bool(_CRON.match(r.schedule)), f"retraining.schedule={r.schedule!r} must be cron(6 fields) or rate(N unit)")
    _check(
        bool(_CRON.match(r.drift_schedule)),
        f"retraining.drift_schedule={r.drift_schedule!r} must be cron(6 fields) or rate(N unit)",
    )
    _check(r.min_interval_minutes >= 0, f"retraining.min_interval_minutes must be >= 0, got {r.min_interval_minutes}")
    _check(0 <= r.debounce_seconds <= 300, f"retraining.debounce_seconds must be 0..300, got {r.debounce_seconds}")
    _check(r.daily_cap >= 1, f"retraining.daily_cap must be >= 1, got {r.daily_cap}")
    _check(r.tolerance >= 0, f"retraining.tolerance must be >= 0, got {r.tolerance}")
    _check(r.metric_floor >= 0, f"retraining.metric_floor must be >= 0, got {r.metric_floor}")
    _check(r.drift_psi_threshold > 0, f"retraining.drift_psi_threshold must be > 0, got {r.drift_psi_threshold}")
    _check(1 <= r.max_file_mb <= 5120, f"retraining.max_file_mb must be 1..5120, got {r.max_file_mb}")
    n = cfg.network
    unknown = sorted(set(n.interface_endpoints) - set(INTERFACE_ENDPOINTS))
    _check(
        not unknown,
        f"network.interface_endpoints has unknown {unknown}; allowed: {', '.join(INTERFACE_ENDPOINTS)}",
    )
    # An override replaces the whole mapping, so a partial one would silently switch the rest off.
    missing = [name for name in INTERFACE_ENDPOINTS if name not in n.interface_endpoints]
    _check(not missing, f"network.interface_endpoints is missing {missing}; list every endpoint as true or false")
    _check_cidr(n.vpc_cidr)
    _check(
        n.enabled or not n.restrict_buckets_to_vpce,
        "network.restrict_buckets_to_vpce needs network.enabled (no VPC endpoint would be left to reach the buckets)",
    )
    nb = cfg.notebook
    _check_instance("notebook.instance_type", nb.instance_type)
    _check(5 <= nb.volume_size_gb <= 16384, f"notebook.volume_size_gb must be 5..16384, got {nb.volume_size_gb}")
    _check(nb.idle_minutes >= 5, f"notebook.idle_minutes must be >= 5, got {nb.idle_minutes}")
    platforms = _notebook_platforms()
    _check(
        nb.platform_identifier in platforms,
        f"notebook.platform_identifier={nb.platform_identifier!r}; allowed: {', '.join(platforms)}",
    )
    _check(
        not nb.enabled or n.enabled,
        "notebook.enabled needs network.enabled (the notebook runs in a private subnet without internet access)",
    )
    return cfg


def load_config(
    stage: str,
    *,
    region: str = "us-east-1",
    account: str | None = None,
    availability_zones: list[str] | None = None,
    operator_email: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> StageConfig:
    """The stage's defaults, then explicit values, then nested overrides; validated as a whole."""
    if stage not in STAGES:
        raise ConfigError(f"stage={stage!r} is not a stage; allowed: {', '.join(STAGES)}")
    cfg = _defaults(stage, region)
    if availability_zones:
        cfg = replace(cfg, availability_zones=tuple(availability_zones))
    cfg = replace(cfg, account=account, operator_email=operator_email)
    if overrides:
        cfg = _merge(cfg, overrides, "")
    return validate(cfg)


def as_dict(cfg: StageConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
