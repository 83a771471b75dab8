"""Shared test material for the retraining functions: names, environment, tiny model tarballs, AWS set-up.

Everything AWS runs against moto inside `mock_aws()`; calls moto cannot follow are recorded or stubbed
(`CallRecorder`, botocore's Stubber) on the very client the functions use (`runtime.client(...)`).
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import moto  # noqa: F401 - imported before any client exists, so moto sees every client
from botocore.awsrequest import AWSResponse

from lambdas.shared import contract as c
from lambdas.shared.jobspec import EndpointSettings, TrainingSpecSettings, TuningSettings
from lambdas.shared.runtime import client, session

EVENTS = Path(__file__).resolve().parents[1] / "events" / "functions"
REGION = "us-east-1"
ACCOUNT = "123456789012"
APP, STAGE = "sagecycle", "dev"
DATA_BUCKET = f"{APP}-{STAGE}-data-{ACCOUNT}-{REGION}"
MODEL_BUCKET = f"{APP}-{STAGE}-models-{ACCOUNT}-{REGION}"
TOPIC_NAME = f"{APP}-{STAGE}-operator"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC_NAME}"
CHAMPION_PARAMETER = f"/{APP}/{STAGE}/champion/model-data-url"
RUNS_TABLE = f"{APP}-{STAGE}-runs"
IDEMPOTENCY_TABLE = f"{APP}-{STAGE}-idempotency"
START_FUNCTION = c.function_name(APP, STAGE, "start_training")
ENDPOINT = c.endpoint_name(APP, STAGE)
GROUP = f"{APP}-{STAGE}"
PREFIX = c.job_name_prefix(APP, STAGE)
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLLBACK_ALARMS = [c.alarm_name(APP, STAGE, c.ENDPOINT_ALARMS[k]) for k in c.ROLLBACK_ALARM_KEYS]
CHAMPION_URL = f"s3://{MODEL_BUCKET}/{c.BASELINE_MODEL_KEY}"

SETTINGS = TrainingSpecSettings(
    job_name_prefix=PREFIX,
    image_uri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0",
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/{APP}-{STAGE}-sagemaker-execution",
    region=REGION,
    data_bucket=DATA_BUCKET,
    model_bucket=MODEL_BUCKET,
    source_dir_s3_uri=f"s3://{MODEL_BUCKET}/{c.PREFIX_CODE}sourcedir-3f2a9c0d1e.tar.gz",
    kms_key_arn=KEY_ARN,
    train_prefix=c.PREFIX_TRAIN,
    validation_prefix=c.PREFIX_VALIDATION,
    test_prefix=c.PREFIX_TEST,
    model_output_prefix=c.PREFIX_TRAINING_OUTPUT,
    tags={"project": APP, "stage": STAGE},
    endpoint=EndpointSettings(variant_name=c.VARIANT_NAME, rollback_alarm_names=tuple(ROLLBACK_ALARMS)),
)
# Tuning on: 4 children, 2 at a time, so two waves of the 3600 s jobs fit POLICY's 7200 s lock.
TUNING_SETTINGS = replace(SETTINGS, tuning=TuningSettings(enabled=True, max_jobs=4, max_parallel_jobs=2))
POLICY: dict[str, Any] = {
    "min_interval_minutes": 60,
    "daily_cap": 4,
    "metric_floor": 0.80,
    "tolerance": 0.002,
    "max_file_bytes": 64 * 1024,
    "drift_psi_threshold": 0.2,
    "rollback_on_alarm": False,
    "lock_ttl_seconds": 3600 + 3600,
    "drift_min_samples": 200,
}
ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": c.METRIC_NAMESPACE,
    "POWERTOOLS_SERVICE_NAME": f"{APP}-{STAGE}",
    "POWERTOOLS_DEV": "false",
    c.ENV_STAGE: STAGE,
    c.ENV_DATA_BUCKET: DATA_BUCKET,
    c.ENV_MODEL_BUCKET: MODEL_BUCKET,
    c.ENV_OPERATOR_TOPIC_ARN: TOPIC_ARN,
    c.ENV_CHAMPION_PARAMETER: CHAMPION_PARAMETER,
    c.ENV_RUNS_TABLE: RUNS_TABLE,
    c.ENV_IDEMPOTENCY_TABLE: IDEMPOTENCY_TABLE,
    c.ENV_TRAINING_SETTINGS: SETTINGS.to_json(),
    c.ENV_RETRAIN_POLICY: json.dumps(POLICY),
    c.ENV_START_FUNCTION: START_FUNCTION,
    c.ENV_ENDPOINT_NAME: ENDPOINT,
    c.ENV_MODEL_PACKAGE_GROUP: GROUP,
    c.ENV_ROLLBACK_ALARMS: json.dumps(ROLLBACK_ALARMS),
}


_TEST_CLIENTS: dict[str, Any] = {}


def aws_client(service: str) -> Any:
    """A test-side client (never the functions' own): created once, moto answers it inside `mock_aws`."""
    if service not in _TEST_CLIENTS:
        _TEST_CLIENTS[service] = session().client(service, region_name=REGION)
    return _TEST_CLIENTS[service]


# ------------------------------------------------------------------------------------------ artifacts

WORKCLASS = ["Federal-gov", "Local-gov", "Private", "Self-emp"]
COLOR = [f"c{i}" for i in range(12)]
SCHEMA: dict[str, Any] = {
    "format_version": 1,
    "objective": "binary:logistic",
    "label": {"name": "income", "task": "binary", "classes": ["<=50K", ">50K"]},
    "features": [
        {"name": "age", "type": "numeric"},
        {"name": "workclass", "type": "categorical", "categories": WORKCLASS},
        {"name": "hours", "type": "numeric"},
        {"name": "color", "type": "categorical", "categories": COLOR},
    ],
    "missing_tokens": ["", "?"],
}
GOOD_CSV = b"0,39,2,40,3\n1,50,0,13,11\n0,38,,40,\n1,,3,45.5,0\n"


def evaluation(value: float, name: str = "auc", *, higher_is_better: bool = True) -> dict[str, Any]:
    return {
        "format_version": 1,
        "objective": "binary:logistic",
        "primary_metric": {"name": name, "split": "test", "value": value, "higher_is_better": higher_is_better},
        "threshold": {"value": 0.5, "method": "max_accuracy"},
        "splits": {"test": {name: value, "accuracy": 0.85, "logloss": 0.31}},
        "dataset_sizes": {"train": 1000, "validation": 100, "test": 100},
        "hyperparameters": {"num_round": 100},
        "best_iteration": 42,
        "xgboost_version": "3.2.0",
    }


def sample_rows(n: int, *, seed: int = 7, shift: float = 0.0) -> list[list[Any]]:
    """Feature rows (no label) in schema order; `shift` moves age/hours and skews the categories."""
    rng = random.Random(seed)
    rows: list[list[Any]] = []
    for _ in range(n):
        age = round(rng.gauss(40 + 25 * shift, 10), 1)
        hours = round(rng.gauss(40 - 15 * shift, 8), 1)
        weights = [1, 1, 6, 2] if shift == 0 else [6, 1, 1, 2]
        workclass = rng.choices(range(len(WORKCLASS)), weights=weights)[0]
        color = rng.randrange(6 if shift == 0 else 12)
        rows.append([age, workclass, hours, color])
    return rows


def baseline_from_rows(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """baseline.json as docs/artifacts.md describes it: numeric deciles, categorical frequencies."""
    features: dict[str, Any] = {}
    for index, feature in enumerate(SCHEMA["features"]):
        values = [r[index] for r in rows if r[index] is not None]
        if feature["type"] == "numeric":
            ordered = sorted(float(v) for v in values)
            edges = sorted({ordered[min(len(ordered) - 1, int(q * len(ordered) / 10))] for q in range(11)})
            edges[0], edges[-1] = ordered[0], ordered[-1]
            counts = [0] * (len(edges) - 1)
            for v in ordered:
                counts[min(len(counts) - 1, max(0, bisect.bisect_right(edges, v) - 1))] += 1
            features[feature["name"]] = {
                "type": "numeric",
                "bin_edges": edges,
                "proportions": [n / len(ordered) for n in counts],
                "missing_proportion": 0.0,
            }
        else:
            names = feature["categories"]
            counts_by: dict[str, int] = {}
            for v in values:
                counts_by[names[int(v)]] = counts_by.get(names[int(v)], 0) + 1
            features[feature["name"]] = {
                "type": "categorical",
                "frequencies": {k: n / len(values) for k, n in counts_by.items()},
                "missing_proportion": 0.0,
            }
    return {"format_version": 1, "sample_size": len(rows), "features": features}


BASELINE = baseline_from_rows(sample_rows(4000, seed=1))


def model_tar(
    *,
    schema: Mapping[str, Any] | None = SCHEMA,
    evaluation_json: Mapping[str, Any] | None = None,
    baseline: Mapping[str, Any] | None = BASELINE,
    extra: Mapping[str, bytes] | None = None,
) -> bytes:
    """A tiny model.tar.gz with the artifact files (and a stand-in booster, as SageMaker writes them: ./x)."""
    files: dict[str, bytes] = {"xgboost-model": b"{}", "code/inference.py": b"# serving\n"}
    if schema is not None:
        files["schema.json"] = json.dumps(schema).encode()
    if evaluation_json is not None:
        files["evaluation.json"] = json.dumps(evaluation_json).encode()
    if baseline is not None:
        files["baseline.json"] = json.dumps(baseline).encode()
    files.update(extra or {})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}" if name == "xgboost-model" else name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def put_model(url: str, tarball: bytes) -> None:
    bucket, _, key = url[5:].partition("/")
    aws_client("s3").put_object(Bucket=bucket, Key=key, Body=tarball)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------- AWS set-up


@dataclass
class Aws:
    """Handles on the moto resources a test looks at."""

    notices_queue_url: str
    kms_key_id: str

    def notices(self) -> list[dict[str, Any]]:
        """SNS notices that reached the operator topic: [{"Subject": ..., "Message": parsed JSON}]."""
        sqs = aws_client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.notices_queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                envelope = json.loads(message["Body"])
                found.append({"Subject": envelope.get("Subject", ""), "Message": json.loads(envelope["Message"])})
                sqs.delete_message(QueueUrl=self.notices_queue_url, ReceiptHandle=message["ReceiptHandle"])


def create_resources(*, champion: bool = True, champion_evaluation: Mapping[str, Any] | None = None) -> Aws:
    """Buckets (versioned, SSE-KMS data bucket), both tables, the topic (+ a queue to read it), SSM, registry."""
    s3 = aws_client("s3")
    kms_key = aws_client("kms").create_key()["KeyMetadata"]["KeyId"]
    for bucket in (DATA_BUCKET, MODEL_BUCKET):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=DATA_BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    dynamodb = aws_client("dynamodb")
    dynamodb.create_table(
        TableName=RUNS_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=IDEMPOTENCY_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sns = aws_client("sns")
    sqs = aws_client("sqs")
    topic = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    queue_url = sqs.create_queue(QueueName="operator-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    aws_client("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
    if champion:
        put_model(CHAMPION_URL, model_tar(evaluation_json=champion_evaluation or evaluation(0.90)))
        aws_client("ssm").put_parameter(Name=CHAMPION_PARAMETER, Value=CHAMPION_URL, Type="String")
    return Aws(notices_queue_url=queue_url, kms_key_id=kms_key)


# -------------------------------------------------------------------------------------------- events


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def s3_notification(
    key: str, *, size: int, etag: str, version_id: str | None, sequencer: str, time: str = "2026-11-23T04:00:00.000Z"
) -> dict[str, Any]:
    """An S3 event notification (the SQS message body), exactly as S3 sends it (key URL-encoded)."""
    from urllib.parse import quote_plus

    body = load_event("s3_notification_object_created.json")
    record = body["Records"][0]
    record["eventTime"] = time
    record["s3"]["bucket"]["name"] = DATA_BUCKET
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{DATA_BUCKET}"
    obj = record["s3"]["object"]
    obj.update({"key": quote_plus(key, safe="/"), "size": size, "eTag": etag, "sequencer": sequencer})
    if version_id:
        obj["versionId"] = version_id
    else:
        obj.pop("versionId", None)
    return body


def sqs_event(bodies: Iterable[Mapping[str, Any] | str], *, first_id: int = 0) -> dict[str, Any]:
    """A Lambda SQS event with one record per body (message ids are deterministic)."""
    template = load_event("sqs_batch.json")["Records"][0]
    records = []
    for i, body in enumerate(bodies, start=first_id):
        record = json.loads(json.dumps(template))
        record["messageId"] = f"0c6e2c1e-7a11-4c5d-9f0a-{i:012d}"
        record["body"] = body if isinstance(body, str) else json.dumps(body)
        record["md5OfBody"] = hashlib.md5(record["body"].encode()).hexdigest()
        records.append(record)
    return {"Records": records}


def upload(key: str, data: bytes) -> dict[str, Any]:
    """Put an object into the data bucket and return the S3 notification that announces it."""
    s3 = aws_client("s3")
    response = s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=data)
    return s3_notification(
        key,
        size=len(data),
        etag=response["ETag"].strip('"'),
        version_id=response.get("VersionId"),
        sequencer=hashlib.sha1(key.encode() + data).hexdigest()[:18].upper(),
    )


# ------------------------------------------------------------------------------------------- runs


def record_started_run(
    job_name: str, *, lock: bool = True, kind: str = "training", trigger_id: str = "event:1", at: datetime | None = None
) -> None:
    """The lock and the run record exactly as the start function leaves them for a job it started.

    `lock=False`: the job took the lock when it started, but holds it no more (expired, or taken by a newer job).
    """
    from lambdas.shared import runs

    now = at or datetime.now(UTC)
    ttl = json.loads(ENV[c.ENV_RETRAIN_POLICY])["lock_ttl_seconds"]
    if lock:
        assert runs.acquire_lock(RUNS_TABLE, owner=job_name, trigger_id=trigger_id, now=now, ttl_seconds=ttl)
    fields = {
        "kind": kind,
        "trigger_kind": "schedule",
        "reason": "schedule",
        "trigger": "schedule at 2026-11-23T05:00:00Z",
    }
    assert runs.record_run_starting(
        RUNS_TABLE, job_name=job_name, trigger_id=trigger_id, now=now, lock_ttl_seconds=ttl, fields=fields
    )
    runs.update_item(RUNS_TABLE, runs.run_key(job_name), set_values={"status": runs.RUN_IN_PROGRESS})


# ---------------------------------------------------------------------------------------- recording


@dataclass
class FakeContext:
    function_name: str = "sagecycle-dev-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sagecycle-dev-test"
    aws_request_id: str = "5e1b7c2a-2b2e-4b8e-9d5b-3f2a9c0d1e7f"
    log_group_name: str = "/aws/lambda/sagecycle-dev-test"
    log_stream_name: str = "2026/11/23/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class CallRecorder:
    """Records calls of one operation on a function's client and answers them without reaching moto.

    `respond` gives the parsed response for the call's parameters; raise inside it to fail the call; return
    None to let this one call through to moto.
    """

    service: str
    operation: str  # API name, e.g. "Invoke", "UpdateEndpoint"
    respond: Callable[[dict[str, Any]], dict[str, Any] | None] = lambda params: {}
    calls: list[dict[str, Any]] = field(default_factory=list)

    def install(self) -> CallRecorder:
        events = client(self.service).meta.events
        events.register(f"provide-client-params.{self._service_id}.{self.operation}", self._record)
        events.register(f"before-call.{self._service_id}.{self.operation}", self._answer)
        return self

    @property
    def _service_id(self) -> str:
        return str(client(self.service).meta.service_model.service_id).replace(" ", "-").lower()

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        def plain(value: Any) -> Any:
            return value.decode() if isinstance(value, bytes) else str(value)

        self.calls.append(json.loads(json.dumps(params, default=plain)))

    def _answer(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        parsed = self.respond(self.calls[-1])
        if parsed is None:
            return None
        status = int(parsed.get("ResponseMetadata", {}).get("HTTPStatusCode", 200))
        return AWSResponse(None, status, {}, None), parsed


def error_response(code: str, message: str, status: int = 400) -> dict[str, Any]:
    """A parsed response botocore turns into ClientError(code)."""
    return {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


@dataclass
class CallCounter:
    """Counts (and keeps the parameters of) calls that still go through to moto."""

    service: str
    operation: str
    calls: list[dict[str, Any]] = field(default_factory=list)

    def install(self) -> CallCounter:
        service_id = str(client(self.service).meta.service_model.service_id).replace(" ", "-").lower()
        client(self.service).meta.events.register(f"provide-client-params.{service_id}.{self.operation}", self._record)
        return self

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(dict(params))


def enforce_copy_source_if_match() -> CallRecorder:
    """CopyObject refuses a source whose ETag is not CopySourceIfMatch, as S3 does (412 PreconditionFailed).

    moto ignores the x-amz-copy-source-if-match header; without this, a copy of an object replaced since it was
    read would pass here and fail on AWS. Every other CopyObject goes through to moto.
    """
    from botocore.exceptions import ClientError

    def check(params: dict[str, Any]) -> dict[str, Any] | None:
        expected, source = params.get("CopySourceIfMatch"), params.get("CopySource")
        if not expected or not isinstance(source, dict):
            return None
        args = {"Bucket": source["Bucket"], "Key": source["Key"]}
        if source.get("VersionId"):
            args["VersionId"] = source["VersionId"]
        try:
            etag = str(aws_client("s3").head_object(**args)["ETag"])
        except ClientError:
            return None  # moto answers a missing source itself
        if etag.strip('"') != str(expected).strip('"'):
            return error_response("PreconditionFailed", "At least one of the pre-conditions did not hold", 412)
        return None

    return CallRecorder("s3", "CopyObject", check).install()


def forbid(service: str, *operations: str) -> None:
    """Make any call of these operations fail the test (proves a path never touches them)."""

    def refuse(params: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError(f"{service} call that must not happen: {params}")

    for operation in operations:
        CallRecorder(service, operation, refuse).install()


def emf_metrics(output: str) -> list[tuple[str, float, dict[str, str]]]:
    """(metric name, value, dimensions) of every EMF document Powertools printed."""
    found: list[tuple[str, float, dict[str, str]]] = []
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            dims = {d: str(doc[d]) for group in directive["Dimensions"] for d in group}
            for metric in directive["Metrics"]:
                value = doc[metric["Name"]]
                for v in value if isinstance(value, list) else [value]:
                    found.append((metric["Name"], float(v), dims))
    return found
