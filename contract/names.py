"""Names and prefixes the stacks, the functions and the offline rehearsal agree on.

Change a name here and the infrastructure (resources, alarms, dashboard, IAM, environment) and the functions
follow; nothing else spells these strings.
"""

from __future__ import annotations

from typing import Final

# ---- CloudWatch metrics published by the functions (namespace, dimension: Stage) -------------------------
METRIC_NAMESPACE: Final = "sagecycle"
METRIC_DIMENSION: Final = "Stage"
METRIC_MAX_PSI: Final = "MaxPSI"  # drift monitor: the largest per-feature PSI of the run
METRIC_FEATURE_PSI: Final = "FeaturePSI"  # drift monitor: per feature, extra dimension "Feature"
METRIC_UNPARSEABLE_RECORDS: Final = "UnparseableCaptureRecords"
METRIC_CAPTURE_RECORDS: Final = "CaptureRecordsRead"
METRIC_FILES_ACCEPTED: Final = "FilesAccepted"
METRIC_FILES_QUARANTINED: Final = "FilesQuarantined"
METRIC_FILES_MISSING = "FilesMissing"  # ingest: the version named in the event was gone
METRIC_TRAINING_STARTED: Final = "TrainingJobsStarted"
METRIC_TRIGGER_SKIPPED: Final = "TriggersSkipped"  # extra dimension "Reason": locked, interval, daily-cap, no-new-data
METRIC_CANDIDATE_APPROVED: Final = "CandidatesApproved"
METRIC_CANDIDATE_REJECTED: Final = "CandidatesRejected"
METRIC_DEPLOYMENT_ROLLED_BACK: Final = "DeploymentsRolledBack"
METRIC_TRAINING_FAILED: Final = "TrainingJobsFailed"
# Published by the user's ground-truth job (labelled live traffic), not by sagecycle; feeds the quality alarm.
METRIC_LIVE_QUALITY: Final = "LiveModelQuality"

# ---- Function names: f"{app}-{stage}-{suffix}" --------------------------------------------------------------
FUNCTIONS: Final = {
    "ingest": "ingest",  # SQS(S3 incoming/) -> validate -> quarantine/ or train/ -> start
    "start_training": "start-training",  # the one start function: new data, schedule, alarms
    "promote": "promote",  # training job finished / endpoint deployment finished -> decision
    "drift_monitor": "drift-monitor",  # scheduled: capture/ vs baseline.json -> PSI metrics
    "alarm_responder": "alarm-responder",  # endpoint health alarms -> notice (+ optional rollback)
}


def function_name(app: str, stage: str, key: str) -> str:
    return f"{app}-{stage}-{FUNCTIONS[key]}"


# ---- Environment variables (every function gets the subset it needs) ------------------------------------
ENV_STAGE: Final = "STAGE"
ENV_DATA_BUCKET: Final = "DATA_BUCKET"
ENV_MODEL_BUCKET: Final = "MODEL_BUCKET"
ENV_OPERATOR_TOPIC_ARN: Final = "OPERATOR_TOPIC_ARN"
ENV_CHAMPION_PARAMETER: Final = "CHAMPION_PARAMETER"  # SSM: s3 URL of the champion model.tar.gz
ENV_RUNS_TABLE: Final = "RUNS_TABLE"  # DynamoDB: the training lock, run records, counters
ENV_IDEMPOTENCY_TABLE: Final = "IDEMPOTENCY_TABLE"  # DynamoDB: Powertools idempotency records
ENV_TRAINING_SETTINGS: Final = "TRAINING_SETTINGS"  # JSON of lambdas.shared.jobspec.TrainingSpecSettings
ENV_RETRAIN_POLICY: Final = "RETRAIN_POLICY"  # JSON of lambdas.shared.policy.RetrainPolicy
ENV_START_FUNCTION: Final = "START_FUNCTION_NAME"
ENV_ENDPOINT_NAME: Final = "ENDPOINT_NAME"
ENV_MODEL_PACKAGE_GROUP: Final = "MODEL_PACKAGE_GROUP"
ENV_ROLLBACK_ALARMS: Final = "ROLLBACK_ALARM_NAMES"  # JSON list: the endpoint alarms for AutoRollbackConfiguration
ENV_ACCOUNT_ROLE: Final = "ACCOUNT_ROLE"  # single | build | serving (config accounts.role)
ENV_PEER_ACCOUNT: Final = "PEER_ACCOUNT"  # build: the serving account; serving: the build account it trusts
ENV_PACKAGE_APPROVAL: Final = "PACKAGE_APPROVAL"  # automatic | manual: how a candidate that passes is registered

# RETRAIN_POLICY keys (all required): min_interval_minutes, daily_cap, metric_floor, tolerance,
# max_file_bytes, drift_psi_threshold, rollback_on_alarm, lock_ttl_seconds

# ---- Data bucket layout ---------------------------------------------------------------------------------------
PREFIX_INCOMING: Final = "incoming/"
PREFIX_QUARANTINE: Final = "quarantine/"
PREFIX_TRAIN: Final = "train/"
PREFIX_VALIDATION: Final = "validation/"
PREFIX_TEST: Final = "test/"
PREFIX_CAPTURE: Final = "capture/"
PREFIX_BASELINE: Final = "baseline/"
PREFIX_BATCH_INPUT: Final = "batch-input/"  # files to score with batch transform (the champion, whole prefix)
DATA_PREFIXES: Final = (
    PREFIX_INCOMING,
    PREFIX_QUARANTINE,
    PREFIX_TRAIN,
    PREFIX_VALIDATION,
    PREFIX_TEST,
    PREFIX_CAPTURE,
    PREFIX_BASELINE,
    PREFIX_BATCH_INPUT,
)

# ---- Model bucket layout -------------------------------------------------------------------------------------
PREFIX_CODE: Final = "code/"
PREFIX_MODELS: Final = "models/"
PREFIX_TRAINING_OUTPUT: Final = "training-output/"
PREFIX_CHECKPOINTS: Final = "checkpoints/"
PREFIX_TRANSFORM_OUTPUT: Final = "transform-output/"
MODEL_PREFIXES: Final = (
    PREFIX_CODE,
    PREFIX_MODELS,
    PREFIX_TRAINING_OUTPUT,
    PREFIX_CHECKPOINTS,
    PREFIX_TRANSFORM_OUTPUT,
)
BASELINE_MODEL_KEY: Final = f"{PREFIX_MODELS}baseline/model.tar.gz"
# Serving account: artifacts of packages approved in the build account, copied in and re-encrypted here.
PREFIX_APPROVED: Final = f"{PREFIX_MODELS}approved/"
# Build account: the one prefix of its model bucket the serving account's promote role may read (job outputs).
CROSS_ACCOUNT_READ_PREFIX: Final = PREFIX_TRAINING_OUTPUT

# ---- What the SageMaker execution role may touch, by prefix (the role, the rehearsal and the tests agree) ----
SAGEMAKER_DATA_READ_PREFIXES: Final = (
    PREFIX_TRAIN,
    PREFIX_VALIDATION,
    PREFIX_TEST,
    PREFIX_BASELINE,
    PREFIX_BATCH_INPUT,
)
SAGEMAKER_DATA_WRITE_PREFIXES: Final = (PREFIX_CAPTURE,)
SAGEMAKER_MODEL_READ_PREFIXES: Final = (PREFIX_CODE, PREFIX_MODELS, PREFIX_TRAINING_OUTPUT, PREFIX_CHECKPOINTS)
SAGEMAKER_MODEL_WRITE_PREFIXES: Final = (PREFIX_TRAINING_OUTPUT, PREFIX_CHECKPOINTS, PREFIX_TRANSFORM_OUTPUT)

# ---- Physical names of the stateful resources -------------------------------------------------------------
BUCKET_PURPOSES: Final = ("data", "models", "trail", "access-logs")
TABLE_PURPOSES: Final = ("runs", "idempotency")


def bucket_name(app: str, stage: str, purpose: str, account: str, region: str) -> str:
    """`<app>-<stage>-<purpose>-<account>-<region>`: unique per account and region, at most 63 characters."""
    if purpose not in BUCKET_PURPOSES:
        raise ValueError(f"unknown bucket purpose {purpose!r}; allowed: {', '.join(BUCKET_PURPOSES)}")
    return f"{app}-{stage}-{purpose}-{account}-{region}"


def table_name(app: str, stage: str, purpose: str) -> str:
    """`<app>-<stage>-<purpose>` for the DynamoDB tables (runs: lock + run records; idempotency)."""
    if purpose not in TABLE_PURPOSES:
        raise ValueError(f"unknown table purpose {purpose!r}; allowed: {', '.join(TABLE_PURPOSES)}")
    return f"{app}-{stage}-{purpose}"


def execution_role_name(app: str, stage: str) -> str:
    """The SageMaker execution role that training jobs, models and transforms run as."""
    return f"{app}-{stage}-sagemaker-execution"


def function_role_name(app: str, stage: str, key: str) -> str:
    """Each glue function runs as a role of its own name, so another account can name it in a resource policy."""
    return function_name(app, stage, key)


def role_arn(account: str, role: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role/{role}"


def approvals_bus_name(app: str, stage: str) -> str:
    """Serving account: the event bus the build account's registry approvals arrive on."""
    return f"{app}-{stage}-approvals"


def model_package_group_name(app: str, stage: str) -> str:
    """The model registry group every candidate is registered in."""
    return f"{app}-{stage}"


def operators_topic_name(app: str, stage: str) -> str:
    """The SNS topic alarms and notices go to."""
    return f"{app}-{stage}-operators"


def champion_parameter_name(app: str, stage: str) -> str:
    """The SSM parameter holding the champion's model data URL (the endpoint resolves it at deploy time)."""
    return f"/{app}/{stage}/champion/model-data-url"


# ---- Endpoint -------------------------------------------------------------------------------------------------
VARIANT_NAME: Final = "AllTraffic"  # stable, so autoscaling survives UpdateEndpoint with RetainAllVariantProperties


def endpoint_name(app: str, stage: str) -> str:
    return f"{app}-{stage}-endpoint"


def job_name_prefix(app: str, stage: str) -> str:
    """Training jobs start with this; the promote rule filters on it."""
    return f"{app}-{stage}"


# Endpoint alarms, by key -> name suffix: f"{app}-{stage}-endpoint-{suffix}"
ENDPOINT_ALARMS: Final = {
    "errors_5xx": "5xx-errors",
    "rate_4xx": "4xx-rate",
    "model_latency": "model-latency-p99",
    "overhead_latency": "overhead-latency",
    "cpu": "cpu",
    "memory": "memory",
    "disk": "disk",
    "no_invocations": "no-invocations",
    "unhealthy": "unhealthy",  # composite
}
# The ones blue/green deployments watch to roll back automatically.
ROLLBACK_ALARM_KEYS: Final = ("errors_5xx", "model_latency")
DRIFT_ALARM_SUFFIX: Final = "drift"
QUALITY_ALARM_SUFFIX: Final = "model-quality"


def alarm_name(app: str, stage: str, suffix: str) -> str:
    return f"{app}-{stage}-endpoint-{suffix}" if suffix in ENDPOINT_ALARMS.values() else f"{app}-{stage}-{suffix}"
