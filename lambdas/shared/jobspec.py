"""The one builder of SageMaker request parameters, shared by the Lambdas, the tests and the rehearsal.

Pure functions from a frozen `TrainingSpecSettings` (what the stage config decides, serialised by the
CDK app into a Lambda environment variable) plus per-run facts (run id, reason, S3 URIs) to the exact
keyword arguments of boto3's `create_training_job`, `create_hyper_parameter_tuning_job`,
`create_transform_job`, `create_model`, `create_endpoint_config` and `update_endpoint`.

Stdlib only: this runs inside Lambda, where the SageMaker SDK is not available (and not wanted).
"""

from __future__ import annotations

import hashlib
import json
import re
import types
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, Union, get_args, get_origin, get_type_hints

from lambdas.shared.metrics import METRIC_DEFINITIONS, tuning_objective

SETTINGS_FORMAT_VERSION: Final = 1

# Where the framework containers look for things (sagemaker-python-sdk's script-mode conventions).
CODE_CHANNEL: Final = "code"
CODE_CHANNEL_DIR: Final = "/opt/ml/input/data/code"
CHECKPOINT_LOCAL_PATH: Final = "/opt/ml/checkpoints"
MODEL_CODE_DIR: Final = "/opt/ml/model/code"  # code/ inside model.tar.gz, extracted under /opt/ml/model
SERVING_PROGRAM: Final = "inference.py"  # train.py writes it (and what it imports) into the model's code/
# What the seed's client reads when it sends no Accept; without it the toolkit answers application/json.
DEFAULT_INVOCATIONS_ACCEPT: Final = "text/csv"


def hosting_environment(*, region: str, container_log_level: int | str) -> dict[str, str]:
    """The model container's Environment, one definition for CreateModel (promote) and the Endpoint stack.

    The serving code ships inside model.tar.gz under code/ (train.py writes it there), so the container imports
    SAGEMAKER_PROGRAM from SAGEMAKER_SUBMIT_DIRECTORY inside the extracted artifact, even with network isolation.
    `sagecycle serve` starts a model from this same Environment.
    """
    return {
        "SAGEMAKER_PROGRAM": SERVING_PROGRAM,
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": DEFAULT_INVOCATIONS_ACCEPT,
        "SAGEMAKER_SUBMIT_DIRECTORY": MODEL_CODE_DIR,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": str(container_log_level),
        "SAGEMAKER_REGION": region,
    }


TAG_KEY_MAX: Final = 128
TAG_VALUE_MAX: Final = 256
MAX_TAGS: Final = 50
RESERVED_TAGS: Final = ("sagecycle:run-id", "sagecycle:reason", "sagecycle:trigger")

TuningStrategy = Literal["Bayesian", "Random"]
WarmStartType = Literal["IdenticalDataAndAlgorithm", "TransferLearning"]
RangeKind = Literal["integer", "continuous", "categorical"]
Scaling = Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]
TrafficRouting = Literal["CANARY", "LINEAR", "ALL_AT_ONCE"]

_ROLE_ARN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
_KMS_KEY = re.compile(r"[a-zA-Z0-9:/_-]+")
_S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_NOT_NAME_CHAR = re.compile(r"[^a-zA-Z0-9-]+")
# Hyperparameters train.py reads as integers; tuning ranges for them must be IntegerParameterRanges.
INTEGER_HYPERPARAMETERS: Final = frozenset({"num_round", "max_depth", "max_leaves", "max_bin", "early_stopping_rounds"})
# Instance families with local NVMe storage reject a volume KMS key (SageMaker encrypts those disks itself).
_LOCAL_STORAGE_FAMILIES: Final = frozenset({"g5", "g6", "g6e", "p5", "p5e", "p5en", "inf2", "trn1", "trn1n"})


class SettingsError(ValueError):
    """The settings are inconsistent; the message lists every broken rule."""


def _require(problems: list[str], ok: bool, message: str) -> None:
    if not ok:
        problems.append(message)


def _raise_if(problems: list[str], where: str) -> None:
    if problems:
        raise SettingsError(f"invalid {where}: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class VpcSettings:
    """Subnets and security groups for training, transform and hosting containers."""

    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        problems: list[str] = []
        _require(problems, 1 <= len(self.subnet_ids) <= 16, "subnet_ids needs 1..16 subnets")
        _require(problems, 1 <= len(self.security_group_ids) <= 5, "security_group_ids needs 1..5 groups")
        _raise_if(problems, "vpc settings")


@dataclass(frozen=True)
class ParameterRange:
    """One tuned hyperparameter (a SageMaker built-in XGBoost name) and its search space."""

    name: str
    kind: RangeKind
    min_value: str = ""
    max_value: str = ""
    values: tuple[str, ...] = ()
    scaling: Scaling = "Auto"

    def __post_init__(self) -> None:
        problems: list[str] = []
        _require(problems, bool(self.name) and not self.name.startswith("sagemaker_"), f"bad name {self.name!r}")
        if self.kind == "categorical":
            _require(problems, 1 <= len(self.values) <= 30, f"{self.name}: categorical needs 1..30 values")
        else:
            try:
                low, high = float(self.min_value), float(self.max_value)
            except ValueError:
                problems.append(f"{self.name}: min_value/max_value must be numbers")
            else:
                _require(problems, low < high, f"{self.name}: min_value must be < max_value")
                if self.scaling in ("Logarithmic", "ReverseLogarithmic"):
                    _require(problems, low > 0, f"{self.name}: logarithmic scaling needs min_value > 0")
                if self.kind == "integer":
                    _require(problems, low.is_integer() and high.is_integer(), f"{self.name}: bounds must be integers")
        _raise_if(problems, "tuning range")

    @classmethod
    def from_bounds(cls, name: str, low: float, high: float) -> ParameterRange:
        """A range from `[min, max]` (the stage config's form): integer kind for integer hyperparameters."""
        if name in INTEGER_HYPERPARAMETERS:
            return cls(name=name, kind="integer", min_value=str(int(low)), max_value=str(int(high)))
        return cls(name=name, kind="continuous", min_value=_num(low), max_value=_num(high))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# None: every job runs train.py's own defaults (training_scripts/hyperparameters.py, chosen by cross-validation in
# bench/defaults.py); a stage adds only what its config overrides, so the defaults live in one place.
DEFAULT_HYPERPARAMETERS: Final[Mapping[str, str]] = types.MappingProxyType({})
# Around those defaults, where the cross-validation found the good models; config/settings.py takes them from here.
DEFAULT_TUNING_RANGES: Final[tuple[ParameterRange, ...]] = (
    ParameterRange("eta", "continuous", "0.01", "0.05", scaling="Logarithmic"),
    ParameterRange("max_depth", "integer", "3", "6"),
    ParameterRange("min_child_weight", "continuous", "0.5", "4"),
    ParameterRange("subsample", "continuous", "0.8", "1"),
    ParameterRange("colsample_bytree", "continuous", "0.3", "0.8"),
    ParameterRange("lambda", "continuous", "0.1", "3"),
)


@dataclass(frozen=True)
class TuningSettings:
    """Hyperparameter tuning: off by default; when on, retraining runs a tuning job instead of one job."""

    enabled: bool = False
    strategy: TuningStrategy = "Bayesian"
    max_jobs: int = 20
    max_parallel_jobs: int = 2
    max_runtime_seconds: int | None = None
    early_stopping: bool = True
    # Retraining sees new data, so the parent's results transfer rather than repeat (AWS warm start docs).
    warm_start_type: WarmStartType = "TransferLearning"
    ranges: tuple[ParameterRange, ...] = DEFAULT_TUNING_RANGES

    def __post_init__(self) -> None:
        problems: list[str] = []
        _require(problems, self.max_jobs >= 1, "max_jobs must be >= 1")
        _require(problems, 1 <= self.max_parallel_jobs <= self.max_jobs, "max_parallel_jobs must be 1..max_jobs")
        if self.max_runtime_seconds is not None:
            _require(problems, 120 <= self.max_runtime_seconds <= 15768000, "max_runtime_seconds must be 120..15768000")
        names = [r.name for r in self.ranges]
        _require(problems, bool(names), "ranges must not be empty")
        _require(problems, len(set(names)) == len(names), "ranges names must be unique")
        for kind in ("integer", "continuous", "categorical"):
            _require(problems, sum(r.kind == kind for r in self.ranges) <= 30, f"at most 30 {kind} ranges")
        _raise_if(problems, "tuning settings")


@dataclass(frozen=True)
class TransformSettings:
    """Batch transform: score every file under an S3 prefix with the champion model."""

    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    # 1 MB keeps a mini-batch under inference.py's 100,000-row limit for any row of 10 bytes or more.
    max_payload_mb: int = 1
    max_concurrent_transforms: int | None = None
    accept: str = "text/csv"

    def __post_init__(self) -> None:
        problems: list[str] = []
        _require(problems, self.instance_type.startswith("ml."), "instance_type must start with 'ml.'")
        _require(problems, self.instance_count >= 1, "instance_count must be >= 1")
        _require(problems, 1 <= self.max_payload_mb <= 100, "max_payload_mb must be 1..100")
        if self.max_concurrent_transforms is not None:
            _require(problems, self.max_concurrent_transforms >= 1, "max_concurrent_transforms must be >= 1")
            # SageMaker rejects MaxConcurrentTransforms * MaxPayloadInMB > 100.
            _require(
                problems,
                self.max_concurrent_transforms * self.max_payload_mb <= 100,
                "max_concurrent_transforms * max_payload_mb must be <= 100",
            )
        _raise_if(problems, "transform settings")


@dataclass(frozen=True)
class EndpointSettings:
    """Hosting: model, endpoint config and the guarded (blue/green) update the promote Lambda runs."""

    variant_name: str = "AllTraffic"
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 1
    # Set to use a serverless variant (then instance_type/initial_instance_count are ignored).
    serverless_memory_mb: int | None = None
    serverless_max_concurrency: int = 5
    enable_network_isolation: bool = True
    capture_enabled: bool = True
    capture_sampling_percent: int = 100
    capture_prefix: str = "capture/"
    traffic_routing: TrafficRouting = "CANARY"
    canary_percent: int = 10  # canary size, or the step of a LINEAR shift
    wait_interval_seconds: int = 600
    termination_wait_seconds: int = 300
    max_execution_timeout_seconds: int = 3600
    rollback_alarm_names: tuple[str, ...] = ()

    @property
    def serverless(self) -> bool:
        return self.serverless_memory_mb is not None

    def __post_init__(self) -> None:
        problems: list[str] = []
        _require(problems, _is_resource_name(self.variant_name), f"variant_name {self.variant_name!r} is not valid")
        _require(problems, self.instance_type.startswith("ml."), "instance_type must start with 'ml.'")
        _require(problems, self.initial_instance_count >= 1, "initial_instance_count must be >= 1")
        if self.serverless_memory_mb is not None:
            _require(
                problems,
                self.serverless_memory_mb in (1024, 2048, 3072, 4096, 5120, 6144),
                "serverless_memory_mb must be one of 1024, 2048, 3072, 4096, 5120, 6144",
            )
        _require(problems, 1 <= self.serverless_max_concurrency <= 200, "serverless_max_concurrency must be 1..200")
        _require(problems, 0 <= self.capture_sampling_percent <= 100, "capture_sampling_percent must be 0..100")
        _require(problems, 1 <= self.canary_percent <= 100, "canary_percent must be 1..100")
        _require(problems, 0 <= self.wait_interval_seconds <= 3600, "wait_interval_seconds must be 0..3600")
        _require(problems, 0 <= self.termination_wait_seconds <= 3600, "termination_wait_seconds must be 0..3600")
        _require(
            problems,
            600 <= self.max_execution_timeout_seconds <= 28800,
            "max_execution_timeout_seconds must be 600..28800",
        )
        _require(problems, len(self.rollback_alarm_names) <= 10, "at most 10 rollback_alarm_names")
        _raise_if(problems, "endpoint settings")


@dataclass(frozen=True)
class TrainingSpecSettings:
    """Everything the stage configuration decides about SageMaker jobs; JSON round-trips for Lambda env."""

    job_name_prefix: str
    image_uri: str
    role_arn: str
    region: str
    data_bucket: str
    model_bucket: str
    source_dir_s3_uri: str  # content-hashed sourcedir tarball with train.py (and inference.py)
    kms_key_arn: str  # volumes, outputs, capture: one customer-managed key everywhere
    objective: str = "binary:logistic"
    program: str = "train.py"
    train_prefix: str = "prepared/train/"
    validation_prefix: str = "prepared/validation/"
    test_prefix: str | None = "prepared/test/"
    model_output_prefix: str = "models/"
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_size_gb: int = 30
    max_runtime_seconds: int = 3600
    use_spot: bool = False
    max_wait_seconds: int | None = None  # spot only; None means twice max_runtime_seconds
    checkpoint_s3_uri: str | None = None  # spot only; None means s3://<model_bucket>/checkpoints/
    container_log_level: int = 20
    hyperparameters: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_HYPERPARAMETERS))
    vpc: VpcSettings | None = None
    enable_network_isolation: bool = True
    encrypt_inter_container_traffic: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)
    tuning: TuningSettings = field(default_factory=TuningSettings)
    transform: TransformSettings = field(default_factory=TransformSettings)
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    format_version: int = SETTINGS_FORMAT_VERSION

    def __post_init__(self) -> None:
        # Read-only views, so a frozen settings object cannot be changed through its mappings.
        object.__setattr__(self, "hyperparameters", types.MappingProxyType(dict(self.hyperparameters)))
        object.__setattr__(self, "tags", types.MappingProxyType(dict(self.tags)))
        problems: list[str] = []
        version = self.format_version
        _require(problems, version == SETTINGS_FORMAT_VERSION, f"unknown format_version {version}")
        _require(problems, bool(_NOT_NAME_CHAR.sub("", self.job_name_prefix)), "job_name_prefix needs a letter/digit")
        _require(problems, 1 <= len(self.image_uri.strip()) <= 255, "image_uri must be 1..255 characters")
        _require(problems, bool(_ROLE_ARN.fullmatch(self.role_arn)), f"role_arn {self.role_arn!r} is not a role ARN")
        _require(problems, bool(self.region), "region must be set")
        _require(problems, bool(_KMS_KEY.fullmatch(self.kms_key_arn)), "kms_key_arn must be a KMS key ARN, id or alias")
        for name in ("data_bucket", "model_bucket"):
            _require(problems, bool(_BUCKET.fullmatch(getattr(self, name))), f"{name} is not a bucket name")
        _require(
            problems,
            bool(_S3_URI.fullmatch(self.source_dir_s3_uri)) and self.source_dir_s3_uri.endswith(".tar.gz"),
            "source_dir_s3_uri must be an s3:// URI of a .tar.gz",
        )
        try:
            tuning_objective(self.objective)
        except ValueError as error:
            problems.append(str(error))
        _require(problems, self.program.endswith(".py"), "program must be a .py file")
        _require(problems, self.instance_type.startswith("ml."), "instance_type must start with 'ml.'")
        _require(problems, self.instance_count >= 1, "instance_count must be >= 1")
        _require(problems, 1 <= self.volume_size_gb <= 16384, "volume_size_gb must be 1..16384")
        _require(problems, self.max_runtime_seconds >= 1, "max_runtime_seconds must be >= 1")
        if self.max_wait_seconds is not None:
            # SageMaker requires MaxWaitTimeInSeconds >= MaxRuntimeInSeconds for spot jobs.
            _require(problems, self.max_wait_seconds >= self.max_runtime_seconds, "max_wait_seconds < max_runtime")
        if self.checkpoint_s3_uri is not None:
            _require(problems, bool(_S3_URI.fullmatch(self.checkpoint_s3_uri)), "checkpoint_s3_uri must be s3://")
        for key, value in self.hyperparameters.items():
            _require(problems, not key.startswith("sagemaker_"), f"hyperparameter {key!r} is reserved")
            _require(problems, isinstance(value, str), f"hyperparameter {key!r} must be a string")
        _require(problems, len(self.hyperparameters) <= 90, "at most 90 hyperparameters")
        _require(problems, len(self.tags) <= MAX_TAGS - len(RESERVED_TAGS), "too many tags")
        for key in self.tags:
            _require(problems, not key.lower().startswith("aws:"), f"tag key {key!r} uses the reserved aws: prefix")
            _require(problems, key not in RESERVED_TAGS, f"tag key {key!r} is set by sagecycle")
        _raise_if(problems, "training spec settings")

    # JSON: the CDK app serialises this into one Lambda environment variable (all variables share 4 KB).
    def to_json(self, *, include_defaults: bool = False) -> str:
        """Compact JSON; fields left at their defaults are omitted unless `include_defaults`."""
        return json.dumps(_to_jsonable(self, include_defaults), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TrainingSpecSettings:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SettingsError(f"settings are not JSON: {error}") from None
        settings: TrainingSpecSettings = _from_jsonable(cls, data, "settings")
        return settings


def _default_of(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _to_jsonable(value: Any, include_defaults: bool) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in fields(value):
            item = getattr(value, f.name)
            if include_defaults or item != _default_of(f):
                out[f.name] = _to_jsonable(item, include_defaults)
        return out
    if isinstance(value, tuple | list):
        return [_to_jsonable(item, include_defaults) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _to_jsonable(v, include_defaults) for k, v in value.items()}
    return value


def _from_jsonable(hint: Any, value: Any, where: str) -> Any:
    """Rebuild a typed value from parsed JSON, rejecting unknown keys and wrong types by path."""
    origin, args = get_origin(hint), get_args(hint)
    if isinstance(hint, type) and is_dataclass(hint):
        if not isinstance(value, dict):
            raise SettingsError(f"{where} must be an object")
        hints = get_type_hints(hint)
        known = {f.name for f in fields(hint)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise SettingsError(f"{where} has unknown keys {unknown}")
        kwargs = {key: _from_jsonable(hints[key], item, f"{where}.{key}") for key, item in value.items()}
        try:
            return hint(**kwargs)
        except TypeError as error:  # a required field is missing
            raise SettingsError(f"{where}: {error}") from None
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _from_jsonable(inner, value, where)
    if origin is Literal:
        if value not in args:
            raise SettingsError(f"{where} must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise SettingsError(f"{where} must be a list")
        return tuple(_from_jsonable(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, dict):
            raise SettingsError(f"{where} must be an object")
        return {str(k): _from_jsonable(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise SettingsError(f"{where} must be {getattr(hint, '__name__', hint)}, got {value!r}")


# ------------------------------------------------------------------------------------------------ names

_RESOURCE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


def _is_resource_name(name: str) -> bool:
    return bool(_RESOURCE_NAME.fullmatch(name))


def resource_name(prefix: str, run_id: str, *, event_time: datetime | None = None, max_length: int = 63) -> str:
    """`<prefix>-[<yymmdd-HHMM>-]<hash of run_id>`: same inputs, same name; fits SageMaker's name rules.

    The time part comes from the trigger (`event_time`), never the clock, so a redelivered event maps to
    the name of the job it already started and CreateTrainingJob fails fast with ResourceInUse.
    """
    digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[: 10 if max_length >= 48 else 8]
    head = _NOT_NAME_CHAR.sub("-", prefix).strip("-")
    parts = [digest]
    if event_time is not None:
        stamp = (event_time if event_time.tzinfo else event_time.replace(tzinfo=UTC)).astimezone(UTC)
        # The prefix is what IAM and event rules match on: drop the time stamp before ever cutting the prefix.
        if len(head) + len(digest) + 14 <= max_length:
            parts.insert(0, stamp.strftime("%y%m%d-%H%M"))
    suffix = "-".join(parts)
    head = head[: max(0, max_length - len(suffix) - 1)].strip("-")
    return f"{head}-{suffix}" if head else suffix


def training_job_name(prefix: str, run_id: str, *, event_time: datetime | None = None) -> str:
    """CreateTrainingJob name (<= 63 chars)."""
    return resource_name(prefix, run_id, event_time=event_time, max_length=63)


def tuning_job_name(prefix: str, run_id: str, *, event_time: datetime | None = None) -> str:
    """CreateHyperParameterTuningJob name (<= 32 chars: SageMaker appends -NNN-xxxxxxxx per training job)."""
    return resource_name(prefix, run_id, event_time=event_time, max_length=32)


def transform_job_name(prefix: str, run_id: str, *, event_time: datetime | None = None) -> str:
    """CreateTransformJob name (<= 63 chars); `-bt` keeps it apart from the training job of the same run."""
    return resource_name(f"{prefix}-bt", run_id, event_time=event_time, max_length=63)


# ------------------------------------------------------------------------------------------------- tags


def sanitize_tag_text(text: str, max_length: int = TAG_VALUE_MAX) -> str:
    """Fit free text to SageMaker's tag rules: `[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*`, at most `max_length`."""
    out = []
    for char in text:
        if char.isspace():
            out.append(" ")
        elif unicodedata.category(char)[0] in "LZN" or char in "_.:/=+-@":
            out.append(char)
        else:
            out.append("_")
    return " ".join("".join(out).split())[:max_length].rstrip()


def _tags(settings: TrainingSpecSettings, run_id: str, reason: str = "", trigger: str = "") -> list[dict[str, str]]:
    tags = {sanitize_tag_text(k, TAG_KEY_MAX): sanitize_tag_text(v) for k, v in settings.tags.items()}
    tags["sagecycle:run-id"] = sanitize_tag_text(run_id)
    if reason:
        tags["sagecycle:reason"] = sanitize_tag_text(reason)
    if trigger:
        tags["sagecycle:trigger"] = sanitize_tag_text(trigger)
    return [{"Key": k, "Value": v} for k, v in tags.items() if k]


# ------------------------------------------------------------------------------------------- job pieces


# Captured as readable text rather than base64 (what inference.py accepts besides CSV).
JSON_CAPTURE_TYPES = ["application/json", "application/jsonlines"]


def has_local_storage(instance_type: str) -> bool:
    """Instance types with NVMe instance storage, where SageMaker refuses a volume KMS key."""
    family = instance_type.removeprefix("ml.").split(".", 1)[0]
    # m5d, c5d, r5dn, g4dn, p4d, c6gd...: a 'd' after the generation number marks local disks.
    return family in _LOCAL_STORAGE_FAMILIES or bool(re.fullmatch(r"[a-z]+\d+[a-z]*d[a-z]*", family))


def s3_prefix_uri(bucket: str, prefix: str) -> str:
    """`s3://bucket/prefix/`; the trailing slash keeps `train/` from also matching `train-old/`."""
    key = prefix.strip("/")
    return f"s3://{bucket}/{key}/" if key else f"s3://{bucket}/"


def _channel(name: str, uri: str, *, sharded: bool = False, content_type: str | None = "text/csv") -> dict[str, Any]:
    """One S3 input channel. `sharded` is ShardedByS3Key: SageMaker gives each instance whole objects, never part of
    one, so a train prefix needs at least one data file per instance or the extra instances train on nothing."""
    channel: dict[str, Any] = {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "ShardedByS3Key" if sharded else "FullyReplicated",
            }
        },
        "InputMode": "File",
    }
    if content_type:
        channel["ContentType"] = content_type
    return channel


def _input_channels(
    settings: TrainingSpecSettings, train: str | None, validation: str | None, test: str | None
) -> list[dict[str, Any]]:
    # Distributed XGBoost trains each host on its own shard; validation is evaluated whole everywhere.
    channels = [
        _channel(
            "train",
            train or s3_prefix_uri(settings.data_bucket, settings.train_prefix),
            sharded=settings.instance_count > 1,
        ),
        _channel("validation", validation or s3_prefix_uri(settings.data_bucket, settings.validation_prefix)),
    ]
    test_uri = test or (s3_prefix_uri(settings.data_bucket, settings.test_prefix) if settings.test_prefix else None)
    if test_uri:
        channels.append(_channel("test", test_uri))
    # The scripts arrive as a channel (what the SDK does under network isolation): the container then
    # never needs S3 access of its own, isolated or not.
    channels.append(_channel(CODE_CHANNEL, settings.source_dir_s3_uri, content_type=None))
    return channels


def _submit_directory(settings: TrainingSpecSettings) -> str:
    return f"{CODE_CHANNEL_DIR}/{settings.source_dir_s3_uri.rsplit('/', 1)[-1]}"


def _hyperparameters(settings: TrainingSpecSettings, overrides: Mapping[str, str] | None) -> dict[str, str]:
    hps = {**settings.hyperparameters, **(overrides or {})}
    # Script-mode contract of the SageMaker framework containers (sagemaker-training-toolkit).
    hps.update(
        {
            "sagemaker_program": settings.program,
            "sagemaker_submit_directory": _submit_directory(settings),
            "sagemaker_region": settings.region,
            "sagemaker_container_log_level": str(settings.container_log_level),
        }
    )
    return {k: str(v) for k, v in hps.items()}


def _algorithm_specification(settings: TrainingSpecSettings) -> dict[str, Any]:
    return {
        "TrainingImage": settings.image_uri,
        "TrainingInputMode": "File",
        "MetricDefinitions": [dict(d) for d in METRIC_DEFINITIONS],
    }


def _output_config(settings: TrainingSpecSettings) -> dict[str, Any]:
    return {
        "S3OutputPath": s3_prefix_uri(settings.model_bucket, settings.model_output_prefix),
        "KmsKeyId": settings.kms_key_arn,
    }


def _resource_config(settings: TrainingSpecSettings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "InstanceType": settings.instance_type,
        "InstanceCount": settings.instance_count,
        "VolumeSizeInGB": settings.volume_size_gb,
    }
    if not has_local_storage(settings.instance_type):
        config["VolumeKmsKeyId"] = settings.kms_key_arn
    return config


def _stopping_condition(settings: TrainingSpecSettings) -> dict[str, int]:
    condition = {"MaxRuntimeInSeconds": settings.max_runtime_seconds}
    if settings.use_spot:
        condition["MaxWaitTimeInSeconds"] = settings.max_wait_seconds or 2 * settings.max_runtime_seconds
    return condition


def _vpc_config(settings: TrainingSpecSettings) -> dict[str, list[str]] | None:
    if settings.vpc is None:
        return None
    return {"SecurityGroupIds": list(settings.vpc.security_group_ids), "Subnets": list(settings.vpc.subnet_ids)}


def _job_body(
    settings: TrainingSpecSettings,
    *,
    run_id: str,
    train: str | None,
    validation: str | None,
    test: str | None,
) -> dict[str, Any]:
    """The parts a training job and a tuning job's TrainingJobDefinition share, keyed as both spell them."""
    body: dict[str, Any] = {
        "AlgorithmSpecification": _algorithm_specification(settings),
        "RoleArn": settings.role_arn,
        "InputDataConfig": _input_channels(settings, train, validation, test),
        "OutputDataConfig": _output_config(settings),
        "ResourceConfig": _resource_config(settings),
        "StoppingCondition": _stopping_condition(settings),
        "EnableNetworkIsolation": settings.enable_network_isolation,
        "EnableInterContainerTrafficEncryption": settings.encrypt_inter_container_traffic,
        "EnableManagedSpotTraining": settings.use_spot,
        "Environment": {"SAGECYCLE_RUN_ID": run_id[:512]},
    }
    vpc = _vpc_config(settings)
    if vpc:
        body["VpcConfig"] = vpc
    return body


# --------------------------------------------------------------------------------------------- builders


def build_training_job(
    settings: TrainingSpecSettings,
    *,
    run_id: str,
    reason: str,
    trigger: str = "",
    train_s3_uri: str | None = None,
    validation_s3_uri: str | None = None,
    test_s3_uri: str | None = None,
    hyperparameters: Mapping[str, str] | None = None,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """CreateTrainingJob parameters for one retraining run (`run_id` is the idempotency key).

    Channels default to the settings' prepared prefixes; `hyperparameters` override the defaults.
    """
    name = training_job_name(settings.job_name_prefix, run_id, event_time=event_time)
    params: dict[str, Any] = {
        "TrainingJobName": name,
        **_job_body(settings, run_id=run_id, train=train_s3_uri, validation=validation_s3_uri, test=test_s3_uri),
        "HyperParameters": _hyperparameters(settings, hyperparameters),
        "Tags": _tags(settings, run_id, reason, trigger),
    }
    if settings.use_spot:
        # One checkpoint folder per job: a new job must never resume from another job's checkpoints.
        base = settings.checkpoint_s3_uri or f"s3://{settings.model_bucket}/checkpoints/"
        params["CheckpointConfig"] = {"S3Uri": f"{base.rstrip('/')}/{name}/", "LocalPath": CHECKPOINT_LOCAL_PATH}
    return params


def _parameter_ranges(ranges: Sequence[ParameterRange]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in ranges:
        if r.kind == "categorical":
            out.setdefault("CategoricalParameterRanges", []).append({"Name": r.name, "Values": list(r.values)})
        else:
            key = "IntegerParameterRanges" if r.kind == "integer" else "ContinuousParameterRanges"
            out.setdefault(key, []).append(
                {"Name": r.name, "MinValue": r.min_value, "MaxValue": r.max_value, "ScalingType": r.scaling}
            )
    return out


def build_tuning_job(
    settings: TrainingSpecSettings,
    *,
    run_id: str,
    reason: str,
    trigger: str = "",
    train_s3_uri: str | None = None,
    validation_s3_uri: str | None = None,
    test_s3_uri: str | None = None,
    warm_start_parent: str | None = None,
    warm_start_type: WarmStartType | None = None,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """CreateHyperParameterTuningJob parameters; the training definition is `build_training_job`'s body.

    `warm_start_parent` names the previous tuning job; its results seed this one's search.
    """
    tuning = settings.tuning
    metric, direction = tuning_objective(settings.objective)
    objective = {"Type": direction, "MetricName": metric}
    tuned = {r.name for r in tuning.ranges}
    # A tuned hyperparameter must not also be static (SageMaker rejects the job).
    static = {k: v for k, v in _hyperparameters(settings, None).items() if k not in tuned}
    limits: dict[str, int] = {
        "MaxNumberOfTrainingJobs": tuning.max_jobs,
        "MaxParallelTrainingJobs": tuning.max_parallel_jobs,
    }
    if tuning.max_runtime_seconds is not None:
        limits["MaxRuntimeInSeconds"] = tuning.max_runtime_seconds
    definition = {
        **_job_body(settings, run_id=run_id, train=train_s3_uri, validation=validation_s3_uri, test=test_s3_uri),
        "StaticHyperParameters": static,
    }
    # No CheckpointConfig: all children of a tuning job would share one checkpoint prefix and could resume
    # from a sibling's checkpoint trained with other hyperparameters. A reclaimed spot child restarts instead.
    params: dict[str, Any] = {
        "HyperParameterTuningJobName": tuning_job_name(settings.job_name_prefix, run_id, event_time=event_time),
        "HyperParameterTuningJobConfig": {
            "Strategy": tuning.strategy,
            "HyperParameterTuningJobObjective": objective,
            "ResourceLimits": limits,
            "ParameterRanges": _parameter_ranges(tuning.ranges),
            "TrainingJobEarlyStoppingType": "Auto" if tuning.early_stopping else "Off",
        },
        "TrainingJobDefinition": definition,
        "Tags": _tags(settings, run_id, reason, trigger),
    }
    if warm_start_parent:
        params["WarmStartConfig"] = {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": warm_start_parent}],
            "WarmStartType": warm_start_type or tuning.warm_start_type,
        }
    return params


def build_transform_job(
    settings: TrainingSpecSettings,
    *,
    model_name: str,
    input_s3_prefix: str,
    output_s3_uri: str,
    run_id: str,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """CreateTransformJob parameters: score every CSV under `input_s3_prefix` (feature rows, no label)."""
    transform = settings.transform
    resources: dict[str, Any] = {"InstanceType": transform.instance_type, "InstanceCount": transform.instance_count}
    if not has_local_storage(transform.instance_type):
        resources["VolumeKmsKeyId"] = settings.kms_key_arn
    params: dict[str, Any] = {
        "TransformJobName": transform_job_name(settings.job_name_prefix, run_id, event_time=event_time),
        "ModelName": model_name,
        "MaxPayloadInMB": transform.max_payload_mb,
        # Many rows per request, split at line ends and joined back line by line: output row i = input row i.
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_s3_prefix}},
            "ContentType": "text/csv",
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": output_s3_uri,
            "Accept": transform.accept,
            "AssembleWith": "Line",
            "KmsKeyId": settings.kms_key_arn,
        },
        "TransformResources": resources,
        "Tags": _tags(settings, run_id),
    }
    if transform.max_concurrent_transforms is not None:
        params["MaxConcurrentTransforms"] = transform.max_concurrent_transforms
    return params


def build_model(
    settings: TrainingSpecSettings,
    *,
    model_name: str,
    model_data_url: str,
    run_id: str,
) -> dict[str, Any]:
    """CreateModel parameters for a trained model.tar.gz, served by its own code/inference.py.

    SAGEMAKER_SUBMIT_DIRECTORY points at code/ inside the extracted model artifact (see `hosting_environment`).
    """
    container = {
        "Image": settings.image_uri,
        "Mode": "SingleModel",
        "ModelDataUrl": model_data_url,
        "Environment": hosting_environment(region=settings.region, container_log_level=settings.container_log_level),
    }
    params: dict[str, Any] = {
        "ModelName": model_name,
        "PrimaryContainer": container,
        "ExecutionRoleArn": settings.role_arn,
        # Serverless hosting supports neither network isolation nor a VPC; SageMaker refuses both.
        "EnableNetworkIsolation": settings.endpoint.enable_network_isolation and not settings.endpoint.serverless,
        "Tags": _tags(settings, run_id),
    }
    vpc = _vpc_config(settings)
    if vpc and not settings.endpoint.serverless:
        params["VpcConfig"] = vpc
    return params


def build_endpoint_config(
    settings: TrainingSpecSettings,
    *,
    endpoint_config_name: str,
    model_name: str,
    run_id: str,
) -> dict[str, Any]:
    """CreateEndpointConfig parameters: one stable-named variant, KMS, and data capture for drift checks."""
    endpoint = settings.endpoint
    variant: dict[str, Any] = {"VariantName": endpoint.variant_name, "ModelName": model_name}
    if endpoint.serverless:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": endpoint.serverless_memory_mb,
            "MaxConcurrency": endpoint.serverless_max_concurrency,
        }
    else:
        variant.update(
            InstanceType=endpoint.instance_type,
            InitialInstanceCount=endpoint.initial_instance_count,
            InitialVariantWeight=1.0,
        )
    params: dict[str, Any] = {
        "EndpointConfigName": endpoint_config_name,
        "ProductionVariants": [variant],
        "Tags": _tags(settings, run_id),
    }
    # Serverless variants have no volume to encrypt and do not support data capture.
    if not endpoint.serverless and not has_local_storage(endpoint.instance_type):
        params["KmsKeyId"] = settings.kms_key_arn
    if endpoint.capture_enabled and not endpoint.serverless:
        params["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": endpoint.capture_sampling_percent,
            "DestinationS3Uri": s3_prefix_uri(settings.data_bucket, endpoint.capture_prefix),
            "KmsKeyId": settings.kms_key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            # Record CSV/JSON as text rather than base64, so the drift monitor reads it directly.
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": JSON_CAPTURE_TYPES},
        }
    return params


def build_update_endpoint(
    settings: TrainingSpecSettings,
    *,
    endpoint_name: str,
    endpoint_config_name: str,
    alarm_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """UpdateEndpoint parameters: blue/green with a canary (or linear) shift and alarm-driven rollback.

    Deployment guardrails need the new config's variant to keep the old name (`variant_name`).
    """
    endpoint = settings.endpoint
    routing: dict[str, Any] = {
        "Type": endpoint.traffic_routing,
        "WaitIntervalInSeconds": endpoint.wait_interval_seconds,
    }
    step = {"Type": "CAPACITY_PERCENT", "Value": endpoint.canary_percent}
    if endpoint.traffic_routing == "CANARY":
        routing["CanarySize"] = step
    elif endpoint.traffic_routing == "LINEAR":
        routing["LinearStepSize"] = step
    deployment: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": endpoint.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": endpoint.max_execution_timeout_seconds,
        }
    }
    alarms = list(endpoint.rollback_alarm_names if alarm_names is None else alarm_names)
    if alarms:
        deployment["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return {
        "EndpointName": endpoint_name,
        "EndpointConfigName": endpoint_config_name,
        "DeploymentConfig": deployment,
        # Keep the instance count autoscaling chose, but take the new config's capture settings.
        "RetainAllVariantProperties": True,
        "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DataCaptureConfig"}],
    }
