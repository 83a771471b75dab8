"""Names the Lambdas, the stacks and the rehearsal agree on. Stdlib only: it ships inside every Lambda.

Change a name here and both the infrastructure (alarms, dashboard, IAM, environment) and the functions
follow; nothing else spells these strings.
"""

from __future__ import annotations

# ---- CloudWatch metrics published by the functions (namespace, dimension: Stage) -------------------------
METRIC_NAMESPACE = "sagecycle"
METRIC_DIMENSION = "Stage"
METRIC_MAX_PSI = "MaxPSI"  # drift monitor: the largest per-feature PSI of the run
METRIC_FEATURE_PSI = "FeaturePSI"  # drift monitor: per feature, extra dimension "Feature"
METRIC_UNPARSEABLE_RECORDS = "UnparseableCaptureRecords"
METRIC_CAPTURE_RECORDS = "CaptureRecordsRead"
METRIC_FILES_ACCEPTED = "FilesAccepted"
METRIC_FILES_QUARANTINED = "FilesQuarantined"
METRIC_TRAINING_STARTED = "TrainingJobsStarted"
METRIC_TRIGGER_SKIPPED = "TriggersSkipped"  # extra dimension "Reason": locked, interval, daily-cap, no-new-data
METRIC_CANDIDATE_APPROVED = "CandidatesApproved"
METRIC_CANDIDATE_REJECTED = "CandidatesRejected"
METRIC_DEPLOYMENT_ROLLED_BACK = "DeploymentsRolledBack"
METRIC_TRAINING_FAILED = "TrainingJobsFailed"
# Published by the user's ground-truth job (labelled live traffic), not by sagecycle; feeds the quality alarm.
METRIC_LIVE_QUALITY = "LiveModelQuality"

# ---- Function names: f"{app}-{stage}-{suffix}" --------------------------------------------------------------
FUNCTIONS = {
    "ingest": "ingest",  # SQS(S3 incoming/) -> validate -> quarantine/ or train/ -> start
    "start_training": "start-training",  # the one start function: new data, schedule, alarms
    "promote": "promote",  # training job finished / endpoint deployment finished -> decision
    "drift_monitor": "drift-monitor",  # scheduled: capture/ vs baseline.json -> PSI metrics
    "alarm_responder": "alarm-responder",  # endpoint health alarms -> notice (+ optional rollback)
}


def function_name(app: str, stage: str, key: str) -> str:
    return f"{app}-{stage}-{FUNCTIONS[key]}"


# ---- Environment variables (every function gets the subset it needs) ------------------------------------
ENV_STAGE = "STAGE"
ENV_DATA_BUCKET = "DATA_BUCKET"
ENV_MODEL_BUCKET = "MODEL_BUCKET"
ENV_OPERATOR_TOPIC_ARN = "OPERATOR_TOPIC_ARN"
ENV_CHAMPION_PARAMETER = "CHAMPION_PARAMETER"  # SSM: s3 URL of the champion model.tar.gz
ENV_RUNS_TABLE = "RUNS_TABLE"  # DynamoDB: the training lock, run records, counters
ENV_IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"  # DynamoDB: Powertools idempotency records
ENV_TRAINING_SETTINGS = "TRAINING_SETTINGS"  # JSON of lambdas.shared.jobspec.TrainingSpecSettings
ENV_RETRAIN_POLICY = "RETRAIN_POLICY"  # JSON of RetrainPolicy below
ENV_START_FUNCTION = "START_FUNCTION_NAME"
ENV_ENDPOINT_NAME = "ENDPOINT_NAME"
ENV_MODEL_PACKAGE_GROUP = "MODEL_PACKAGE_GROUP"
ENV_ROLLBACK_ALARMS = "ROLLBACK_ALARM_NAMES"  # JSON list: the endpoint alarms for AutoRollbackConfiguration

# RETRAIN_POLICY keys (all required): min_interval_minutes, daily_cap, metric_floor, tolerance,
# max_file_bytes, drift_psi_threshold, rollback_on_alarm, lock_ttl_seconds

# ---- Data bucket layout ---------------------------------------------------------------------------------------
PREFIX_INCOMING = "incoming/"
PREFIX_QUARANTINE = "quarantine/"
PREFIX_TRAIN = "train/"
PREFIX_VALIDATION = "validation/"
PREFIX_TEST = "test/"
PREFIX_CAPTURE = "capture/"
PREFIX_BASELINE = "baseline/"
PREFIX_BATCH_INPUT = "batch-input/"  # files to score with batch transform (the champion, whole prefix)

# ---- Model bucket layout -------------------------------------------------------------------------------------
PREFIX_CODE = "code/"
PREFIX_TRAINING_OUTPUT = "training-output/"
PREFIX_CHECKPOINTS = "checkpoints/"
PREFIX_TRANSFORM_OUTPUT = "transform-output/"
BASELINE_MODEL_KEY = "models/baseline/model.tar.gz"

# ---- Endpoint -------------------------------------------------------------------------------------------------
VARIANT_NAME = "AllTraffic"  # stable, so autoscaling survives UpdateEndpoint with RetainAllVariantProperties


def endpoint_name(app: str, stage: str) -> str:
    return f"{app}-{stage}-endpoint"


def job_name_prefix(app: str, stage: str) -> str:
    """Training jobs start with this; the promote rule filters on it."""
    return f"{app}-{stage}"


# Endpoint alarms, by key -> name suffix: f"{app}-{stage}-endpoint-{suffix}"
ENDPOINT_ALARMS = {
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
ROLLBACK_ALARM_KEYS = ("errors_5xx", "model_latency")
DRIFT_ALARM_SUFFIX = "drift"
QUALITY_ALARM_SUFFIX = "model-quality"


def alarm_name(app: str, stage: str, suffix: str) -> str:
    return f"{app}-{stage}-endpoint-{suffix}" if suffix in ENDPOINT_ALARMS.values() else f"{app}-{stage}-{suffix}"
