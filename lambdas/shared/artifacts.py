"""Reading model artifacts (docs/artifacts.md) from S3: the champion pointer, files inside model.tar.gz.

- `champion_url(parameter)`: the SSM parameter's value (s3 URL of the champion model.tar.gz), None if unset.
- `model_files(url)`: schema.json, evaluation.json and baseline.json out of a model.tar.gz, streamed (the
  tarball is never written to disk, the booster is skipped unread) and cached per URL for the life of the
  execution environment: a URL names immutable content (a training job never rewrites its output).
- `primary_metric(evaluation)`: the metric promotion compares, with its direction and its domain checked
  (AUC in [0, 1], RMSE >= 0, ...): a value no model can score is a broken evaluation, never a candidate.
- `ArtifactMissingError`: the model.tar.gz or its evaluation.json is not there (`is_missing_object` tells
  S3's "no such object" answers apart from other errors).

Stdlib + boto3 only.
"""

from __future__ import annotations

import json
import math
import tarfile
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import ClientError

from lambdas.shared.runtime import client, error_code, on_reset

SCHEMA_FILE: Final = "schema.json"
EVALUATION_FILE: Final = "evaluation.json"
BASELINE_FILE: Final = "baseline.json"
MAX_MEMBER_BYTES: Final = 32 * 1024 * 1024  # a JSON artifact larger than this is not ours
_CACHE_SIZE: Final = 8

# Metric name -> higher is better. evaluation.json states the direction too; the two must agree.
METRIC_DIRECTIONS: Final[dict[str, bool]] = {
    "auc": True,
    "accuracy": True,
    "f1": True,
    "r2": True,
    "rmse": False,
    "mae": False,
    "mlogloss": False,
    "logloss": False,
    "error": False,
    "merror": False,
}


# Metric name -> the closed interval its values lie in. A value outside it (AUC 1.3, RMSE -0.1) says the
# evaluation is broken, whatever it would mean for the decision.
METRIC_DOMAINS: Final[dict[str, tuple[float, float]]] = {
    "auc": (0.0, 1.0),
    "accuracy": (0.0, 1.0),
    "f1": (0.0, 1.0),
    "error": (0.0, 1.0),
    "merror": (0.0, 1.0),
    "r2": (-math.inf, 1.0),
    "rmse": (0.0, math.inf),
    "mae": (0.0, math.inf),
    "logloss": (0.0, math.inf),
    "mlogloss": (0.0, math.inf),
}
# S3's answers for an object (or version) that does not exist. GetObject says NoSuchKey / NoSuchVersion;
# HeadObject has no body, so botocore reports the status code. Without s3:ListBucket S3 answers 403 instead.
MISSING_OBJECT_CODES: Final = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404", "NotFound"})


class ArtifactError(ValueError):
    """An artifact is missing, unreadable or not in the documented format; the message says which."""


class ArtifactMissingError(ArtifactError):
    """The model.tar.gz, or the evaluation.json inside it, does not exist."""


def is_missing_object(error: BaseException) -> bool:
    """True for S3's "this object (version) does not exist" errors."""
    return error_code(error) in MISSING_OBJECT_CODES


def parse_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ArtifactError(f"not an s3:// URL: {url!r}")
    bucket, _, key = url[5:].partition("/")
    if not bucket or not key:
        raise ArtifactError(f"s3 URL needs a bucket and a key: {url!r}")
    return bucket, key


def s3_url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def champion_url(parameter: str) -> str | None:
    """The champion model.tar.gz URL in SSM; None when the parameter does not exist or is not an s3 URL."""
    try:
        value = client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as error:
        if error_code(error) == "ParameterNotFound":
            return None
        raise
    value = str(value).strip()
    return value if value.startswith("s3://") else None


def read_tar_members(url: str, names: Iterable[str]) -> dict[str, bytes]:
    """The named files (top level of the tarball, `./` optional) that exist; raises ClientError on S3 errors."""
    wanted = set(names)
    bucket, key = parse_s3_url(url)
    body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if name not in wanted or not member.isfile():
                    continue
                if member.size > MAX_MEMBER_BYTES:
                    raise ArtifactError(f"{url}: {name} is {member.size} bytes, over {MAX_MEMBER_BYTES}")
                handle = archive.extractfile(member)
                if handle is not None:
                    found[name] = handle.read()
                if len(found) == len(wanted):
                    break
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ArtifactError(f"{url} is not a readable model.tar.gz: {error}") from None
    finally:
        body.close()
    return found


def _json(url: str, name: str, raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{url}: {name} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ArtifactError(f"{url}: {name} must be a JSON object")
    return value


@dataclass(frozen=True)
class ModelFiles:
    url: str
    schema: dict[str, Any] | None
    evaluation: dict[str, Any] | None
    baseline: dict[str, Any] | None


_files_cache: OrderedDict[str, ModelFiles] = OrderedDict()
on_reset(_files_cache.clear)


def model_files(url: str) -> ModelFiles:
    """schema/evaluation/baseline of one model.tar.gz (None for a file it lacks); cached per URL."""
    cached = _files_cache.get(url)
    if cached is not None:
        _files_cache.move_to_end(url)
        return cached
    raw = read_tar_members(url, (SCHEMA_FILE, EVALUATION_FILE, BASELINE_FILE))
    files = ModelFiles(
        url=url,
        schema=_json(url, SCHEMA_FILE, raw.get(SCHEMA_FILE)),
        evaluation=_json(url, EVALUATION_FILE, raw.get(EVALUATION_FILE)),
        baseline=_json(url, BASELINE_FILE, raw.get(BASELINE_FILE)),
    )
    _files_cache[url] = files
    while len(_files_cache) > _CACHE_SIZE:
        _files_cache.popitem(last=False)
    return files


def read_json_object(url: str) -> dict[str, Any] | None:
    """A JSON object stored as a plain S3 object; None when the object does not exist."""
    bucket, key = parse_s3_url(url)
    try:
        raw = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if is_missing_object(error):
            return None
        raise
    return _json(url, key, raw)


# ------------------------------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class PrimaryMetric:
    name: str
    split: str
    value: float
    higher_is_better: bool


def primary_metric(evaluation: dict[str, Any] | None, *, where: str = "evaluation.json") -> PrimaryMetric:
    """evaluation.json's primary metric; ArtifactError when it is non-finite, outside its metric's domain or
    self-contradictory, ArtifactMissingError when there is no evaluation."""
    if evaluation is None:
        raise ArtifactMissingError(f"{where} is missing")
    block = evaluation.get("primary_metric")
    if not isinstance(block, dict):
        raise ArtifactError(f"{where} has no primary_metric object")
    name, split, value, higher = (block.get(k) for k in ("name", "split", "value", "higher_is_better"))
    if not isinstance(name, str) or not name:
        raise ArtifactError(f"{where}: primary_metric.name must be a non-empty string")
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ArtifactError(f"{where}: primary_metric.value must be a finite number, got {value!r}")
    if not isinstance(higher, bool):
        raise ArtifactError(f"{where}: primary_metric.higher_is_better must be true or false")
    known = METRIC_DIRECTIONS.get(name)
    if known is not None and known != higher:
        raise ArtifactError(f"{where}: {name} is {'higher' if known else 'lower'}-is-better, the file says otherwise")
    low, high = METRIC_DOMAINS.get(name, (-math.inf, math.inf))
    if not low <= value <= high:
        raise ArtifactError(f"{where}: primary_metric {name} = {value!r} is outside its domain [{low}, {high}]")
    return PrimaryMetric(name=name, split=str(split or ""), value=float(value), higher_is_better=higher)


def serving_model_url(endpoint: dict[str, Any]) -> str | None:
    """The model data URL behind the endpoint's current config (None when it cannot be told)."""
    sagemaker = client("sagemaker")
    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    except (ClientError, KeyError, IndexError):
        return None
    url = (model.get("PrimaryContainer") or {}).get("ModelDataUrl")
    return str(url) if url else None
