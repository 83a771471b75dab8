"""The settings every SageMaker request is built from, and their JSON codec.

`TrainingSpecSettings` is what the stage configuration decides (config/function_inputs.py builds it), serialised
by the CDK app into one Lambda environment variable (TRAINING_SETTINGS) and parsed back with `from_json`, which
refuses unknown keys and wrong types by path. Every dataclass checks its own rules on construction and raises
one `SettingsError` listing every broken rule.

Stdlib only (it runs inside Lambda).
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from typing import Any, Final, Literal, Union, get_args, get_origin, get_type_hints

from lambdas.shared.job_names import MAX_TAGS, NOT_NAME_CHAR, RESERVED_TAGS, is_resource_name
from lambdas.shared.metrics import tuning_objective

SETTINGS_FORMAT_VERSION: Final = 1

TuningStrategy = Literal["Bayesian", "Random"]
WarmStartType = Literal["IdenticalDataAndAlgorithm", "TransferLearning"]
RangeKind = Literal["integer", "continuous", "categorical"]
Scaling = Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]
TrafficRouting = Literal["CANARY", "LINEAR", "ALL_AT_ONCE"]

_ROLE_ARN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
_KMS_KEY = re.compile(r"[a-zA-Z0-9:/_-]+")
_S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
# Hyperparameters train.py reads as integers; tuning ranges for them must be IntegerParameterRanges.
INTEGER_HYPERPARAMETERS: Final = frozenset({"num_round", "max_depth", "max_leaves", "max_bin", "early_stopping_rounds"})


# What kind of mistake a SettingsError reports, for code and tests that branch on it (the text is for people).
SettingsErrorCode = Literal[
    "invalid",  # one or more rules of a settings class are broken (`problems` lists them)
    "not-json",  # TRAINING_SETTINGS is not JSON
    "not-an-object",  # a JSON value that must be an object is not
    "unknown-keys",  # an object has keys its settings class does not know
    "missing-field",  # an object lacks a required field
    "not-a-choice",  # a value outside its Literal's choices
    "wrong-type",  # a JSON value of the wrong kind
]


class SettingsError(ValueError):
    """The settings are inconsistent; the message lists every broken rule. `code` says what kind of mistake,
    `where` which settings (`training spec settings`, or a JSON path such as `settings.tuning`), and `problems`
    the broken rules one by one (for `invalid`)."""

    def __init__(
        self, message: str, *, code: SettingsErrorCode = "invalid", where: str = "", problems: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.code: SettingsErrorCode = code
        self.where = where
        self.problems = problems


def _require(problems: list[str], ok: bool, message: str) -> None:
    if not ok:
        problems.append(message)


def _raise_if(problems: list[str], where: str) -> None:
    if problems:
        raise SettingsError(f"invalid {where}: " + "; ".join(problems), where=where, problems=tuple(problems))


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
        _require(problems, is_resource_name(self.variant_name), f"variant_name {self.variant_name!r} is not valid")
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
        _require(problems, bool(NOT_NAME_CHAR.sub("", self.job_name_prefix)), "job_name_prefix needs a letter/digit")
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
            raise SettingsError(f"settings are not JSON: {error}", code="not-json", where="settings") from None
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
            raise SettingsError(f"{where} must be an object", code="not-an-object", where=where)
        hints = get_type_hints(hint)
        known = {f.name for f in fields(hint)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise SettingsError(f"{where} has unknown keys {unknown}", code="unknown-keys", where=where)
        kwargs = {key: _from_jsonable(hints[key], item, f"{where}.{key}") for key, item in value.items()}
        try:
            return hint(**kwargs)
        except TypeError as error:  # a required field is missing
            raise SettingsError(f"{where}: {error}", code="missing-field", where=where) from None
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _from_jsonable(inner, value, where)
    if origin is Literal:
        if value not in args:
            raise SettingsError(f"{where} must be one of {list(args)}, got {value!r}", code="not-a-choice", where=where)
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise SettingsError(f"{where} must be a list", code="wrong-type", where=where)
        return tuple(_from_jsonable(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, dict):
            raise SettingsError(f"{where} must be an object", code="not-an-object", where=where)
        return {str(k): _from_jsonable(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise SettingsError(
        f"{where} must be {getattr(hint, '__name__', hint)}, got {value!r}", code="wrong-type", where=where
    )
