"""The stage configuration's sections: one frozen dataclass per concern, each field with its default and, where
it has them, its bounds or choices (`num`, `choice`), and `StageConfig`, which holds them all.

What `dev` and `prod` change from these defaults, and loading, are in config/settings.py; the rules across
fields are in config/rules.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from config.fields import choice, num
from lambdas.shared.job_settings import DEFAULT_TUNING_RANGES
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


@dataclass(frozen=True)
class DataConfig:
    capture_expiry_days: int = num(30, 1, 3650)
    quarantine_expiry_days: int = num(90, 1, 3650)
    noncurrent_version_expiry_days: int = num(30, 1, 3650)
    access_log_expiry_days: int = num(365, 1, 3650)
    log_retention_days: int = choice(365, LOG_RETENTION_DAYS)


def _default_ranges() -> dict[str, tuple[float, float]]:
    # The job spec's default ranges (lambdas/shared/job_settings.py), around train.py's cross-validated defaults.
    return {r.name: (float(r.min_value), float(r.max_value)) for r in DEFAULT_TUNING_RANGES}


@dataclass(frozen=True)
class TuningConfig:
    enabled: bool = False
    max_jobs: int = num(20, 1, 500)
    max_parallel_jobs: int = num(2, 1, 500)
    # name -> [min, max]: train.py's names (training_scripts/hyperparameters.py), integer or continuous ranges
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=_default_ranges)


@dataclass(frozen=True)
class TrainingConfig:
    xgboost_framework_version: str = choice("3.2-0", XGBOOST_FRAMEWORK_VERSIONS)
    objective: str = choice("binary:logistic", OBJECTIVES)
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = num(1, 1, 20)
    volume_size_gb: int = num(30, 5, 512)
    max_runtime_s: int = num(3600, 60, 432000)
    use_spot: bool = True
    max_wait_s: int = num(7200, 60, 432000)
    # Overrides on top of train.py's defaults, with the built-in algorithm's names (strings, as SageMaker sends).
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    tuning: TuningConfig = field(default_factory=TuningConfig)


@dataclass(frozen=True)
class EndpointConfig:
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = num(1, 1, 100)
    serverless: bool = False
    serverless_memory_mb: int = choice(2048, SERVERLESS_MEMORY_MB)
    # Bounded by the functions' TRAINING_SETTINGS parser (EndpointSettings), which synth runs.
    serverless_max_concurrency: int = 5
    min_capacity: int = num(1, 1, 100)
    max_capacity: int = num(2, 1, 100)
    # Measured per-instance throughput (invocations/s) and the share of it we target. bench/serve.py, single rows,
    # 2 workers x 16 threads on 2 CPUs (ml.m5.large has 2 vCPUs): 1,331-1,474/s at 4 clients under a load average
    # of 4-7, rounded down; a quieter machine measures more, so the target errs on the side of scaling out early.
    measured_invocations_per_second: float = num(1300.0, 0, 1_000_000, low_open=True)
    target_utilisation: float = num(0.5, 0, 0.9, low_open=True)
    scale_in_cooldown_s: int = num(600, 1, 86400)
    scale_out_cooldown_s: int = num(60, 1, 86400)
    scheduled_scale_down: bool = False
    data_capture_sampling_percent: int = num(100, 0, 100)
    latency_slo_ms: int = num(100, 1, 60000)
    canary_percent: int = num(10, 1, 50)
    # SageMaker's BlueGreenUpdatePolicy limits: bake and termination waits 0..3600 s, timeout 600..28800 s.
    canary_wait_s: int = num(600, 1, 3600)
    termination_wait_s: int = num(300, 0, 3600)
    # The whole blue/green update (green fleet start-up, canary bake, final bake) must finish within this.
    deployment_timeout_s: int = num(3600, 600, 28800)
    max_5xx_per_minute: int = num(1, 0, 100000)
    max_4xx_rate_percent: float = num(5.0, 0, 100, high_open=True)
    # How long the endpoint may receive no request at all before the no-invocations alarm fires.
    no_invocations_alarm_minutes: int = num(30, 5, 1440)

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
    min_interval_minutes: int = num(60, high=10080, policy="min_interval_minutes")
    daily_cap: int = num(4, high=100, policy="daily_cap")
    # Promotion: the candidate must clear the floor and be no worse than the champion by more than tolerance.
    metric_floor: float = num(0.90, 0, policy="metric_floor")
    tolerance: float = num(0.002, policy="tolerance")
    max_file_mb: int = num(100, 1, 5120)
    drift_psi_threshold: float = num(0.2, high=10, policy="drift_psi_threshold")
    drift_schedule: str = "rate(1 hour)"
    # The new-data queue waits up to this long to batch a burst of uploads into one ingest run (SQS: <= 300 s).
    debounce_seconds: int = num(60, 0, 300)
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
    volume_size_gb: int = num(10, 5, 16384)
    idle_minutes: int = num(60, 5, 1440)
    # An open browser tab (a kernel connection) keeps the instance running unless this is true.
    ignore_connections: bool = False
    platform_identifier: str = "notebook-al2023-v1"


ACCOUNT_ROLES = ("single", "build", "serving")
APPROVALS = ("automatic", "manual")


@dataclass(frozen=True)
class AccountsConfig:
    """Where this stage sits in a two-account layout (docs/two-accounts.md).

    single: one account builds and serves (the default, as before). build: data, training and the registry;
    candidates are registered PendingManualApproval (or Approved with approval "automatic") and the registry's
    approvals go to `serving_account`'s bus. serving: the endpoint, its alarms and a promote function that
    deploys only packages Approved in `build_account`'s registry. Both accounts use the same app name, stage
    and region, so each side derives the other's names (contract/names.py).
    """

    role: str = choice("single", ACCOUNT_ROLES)
    build_account: str | None = None  # serving: whose registry approvals this stage deploys
    serving_account: str | None = None  # build: whose bus receives this registry's approvals
    # None: "automatic" in a single-account stage (as before), "manual" in a build stage.
    approval: str | None = choice(None, (None, *APPROVALS))

    @property
    def effective_approval(self) -> str:
        if self.approval is not None:
            return self.approval
        return "automatic" if self.role == "single" else "manual"

    @property
    def builds(self) -> bool:
        """Data, training, the registry and the retraining glue live in this account."""
        return self.role in ("single", "build")

    @property
    def serves(self) -> bool:
        """The endpoint, its alarms, drift and the deploying promote function live in this account."""
        return self.role in ("single", "serving")


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
    accounts: AccountsConfig = field(default_factory=AccountsConfig)

    def stack_name(self, concern: str) -> str:
        """`<app>-<stage>-<Concern>`; in a two-account layout `<app>-<stage>-<role>-<Concern>`, so both sides
        can be synthesized in one app (their resources keep the stage's names: they live in different accounts)."""
        if self.accounts.role == "single":
            return f"{self.app_name}-{self.stage}-{concern}"
        return f"{self.app_name}-{self.stage}-{self.accounts.role}-{concern}"

    @property
    def is_prod(self) -> bool:
        return self.stage == "prod"
