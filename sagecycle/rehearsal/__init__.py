"""The offline rehearsal's AWS: moto's server on 127.0.0.1, provisioned like a deployed stage, and the real
retraining functions run against it.

`LocalAws` starts the server and points every boto3 client of this process at it (`AWS_ENDPOINT_URL`,
fake credentials). `provision` creates what the stacks would (buckets, tables, the champion parameter, the
operators' topic, the model registry group) under the same names. `Functions` runs the Lambda handlers
in-process with the environment the Retraining stack gives them, and routes their own `lambda:Invoke` of
each other (ingest -> start-training) to the handler, as Lambda would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.settings import StageConfig
from lambdas.shared import contract as c
from sagecycle.local_training import free_port
from stacks.model_stack import champion_parameter_name
from stacks.naming import bucket_name, table_name

ACCOUNT = "123456789012"  # moto's account


@dataclass(frozen=True)
class Names:
    """The deployed names of one stage, in the local account."""

    config: StageConfig

    @property
    def data_bucket(self) -> str:
        return bucket_name(self.config, "data", account=ACCOUNT)

    @property
    def model_bucket(self) -> str:
        return bucket_name(self.config, "models", account=ACCOUNT)

    @property
    def runs_table(self) -> str:
        return table_name(self.config, "runs")

    @property
    def idempotency_table(self) -> str:
        return table_name(self.config, "idempotency")

    @property
    def champion_parameter(self) -> str:
        return champion_parameter_name(self.config)

    @property
    def champion_url(self) -> str:
        return f"s3://{self.model_bucket}/{c.BASELINE_MODEL_KEY}"

    @property
    def model_package_group(self) -> str:
        return f"{self.config.app_name}-{self.config.stage}"

    def function(self, key: str) -> str:
        return c.function_name(self.config.app_name, self.config.stage, key)


class LocalAws(contextlib.AbstractContextManager["LocalAws"]):
    """moto's server on 127.0.0.1 for the length of a `with` block; this process's clients talk to it."""

    def __init__(self, region: str) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> LocalAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's per-request log
        self._server.start()
        env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "rehearsal",
            "AWS_SECRET_ACCESS_KEY": "rehearsal",
            "AWS_SESSION_TOKEN": "rehearsal",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        for key, value in env.items():
            self._saved[key] = os.environ.get(key)
            os.environ[key] = value
        return self

    def __exit__(self, *exc: object) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._server.stop()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=self.region)


@dataclass
class Provisioned:
    names: Names
    kms_key_arn: str
    topic_arn: str
    notices_queue_url: str


def provision(
    aws: LocalAws, config: StageConfig, champion_model: Path, prepared_data: Path | None = None
) -> Provisioned:
    """What the Data, Audit and Model stacks deploy, under the same names; the champion is `champion_model`.

    `prepared_data` (the output of `sagecycle prepare`) seeds train/, validation/ and test/, as a first upload.
    """
    names = Names(config)
    s3, kms = aws.client("s3"), aws.client("kms")
    key_arn = kms.create_key(Description=f"{names.data_bucket} data key")["KeyMetadata"]["Arn"]
    for bucket in (names.data_bucket, names.model_bucket):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )
    dynamodb = aws.client("dynamodb")
    dynamodb.create_table(
        TableName=names.runs_table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=names.idempotency_table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name=f"{config.app_name}-{config.stage}-operators")["TopicArn"]
    inbox = sqs.create_queue(QueueName="operator-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    aws.client("sagemaker").create_model_package_group(ModelPackageGroupName=names.model_package_group)
    s3.put_object(Bucket=names.model_bucket, Key=c.BASELINE_MODEL_KEY, Body=champion_model.read_bytes())
    aws.client("ssm").put_parameter(Name=names.champion_parameter, Value=names.champion_url, Type="String")
    if prepared_data is not None:
        for prefix in (c.PREFIX_TRAIN, c.PREFIX_VALIDATION, c.PREFIX_TEST):
            for path in sorted((prepared_data / prefix.rstrip("/")).glob("*")):
                s3.put_object(Bucket=names.data_bucket, Key=f"{prefix}{path.name}", Body=path.read_bytes())
    return Provisioned(names=names, kms_key_arn=key_arn, topic_arn=topic, notices_queue_url=inbox)


@dataclass
class LocalContext:
    """The Lambda context object the handlers' Powertools decorators read."""

    function_name: str
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'us-east-1')}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class Functions:
    """The retraining functions, in-process, with the environment the Retraining stack gives them.

    Their JSON logs go to `log` (a file), not the terminal; `invocations` lists who called whom.
    """

    def __init__(self, aws: LocalAws, provisioned: Provisioned, config: StageConfig, log: Path) -> None:
        from stacks.constructs.images import xgboost_image_uri
        from stacks.retraining_stack import _SENTINEL_ACCOUNT, ModelFacts, retrain_policy, training_settings

        names = provisioned.names
        facts = ModelFacts(
            image_uri=xgboost_image_uri(config.region, config.training.xgboost_framework_version),
            execution_role_name=f"{config.app_name}-{config.stage}-sagemaker-execution",
            sourcedir_name="sourcedir-rehearsal.tar.gz",
            champion_parameter=names.champion_parameter,
            model_package_group=names.model_package_group,
        )
        settings = training_settings(config, facts, "aws")
        settings_json = settings.to_json().replace(settings.kms_key_arn, provisioned.kms_key_arn)
        self.environment = {
            c.ENV_STAGE: config.stage,
            c.ENV_DATA_BUCKET: names.data_bucket,
            c.ENV_MODEL_BUCKET: names.model_bucket,
            c.ENV_OPERATOR_TOPIC_ARN: provisioned.topic_arn,
            c.ENV_CHAMPION_PARAMETER: names.champion_parameter,
            c.ENV_RUNS_TABLE: names.runs_table,
            c.ENV_IDEMPOTENCY_TABLE: names.idempotency_table,
            c.ENV_RETRAIN_POLICY: json.dumps(retrain_policy(config)),
            c.ENV_TRAINING_SETTINGS: settings_json.replace(_SENTINEL_ACCOUNT, ACCOUNT),
            c.ENV_START_FUNCTION: names.function("start_training"),
            c.ENV_ENDPOINT_NAME: c.endpoint_name(config.app_name, config.stage),
            c.ENV_MODEL_PACKAGE_GROUP: names.model_package_group,
            c.ENV_ROLLBACK_ALARMS: json.dumps(list(settings.endpoint.rollback_alarm_names)),
            "POWERTOOLS_SERVICE_NAME": f"{config.app_name}-{config.stage}",
            "POWERTOOLS_METRICS_NAMESPACE": c.METRIC_NAMESPACE,
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
        self.names = names
        self.invocations: list[tuple[str, str]] = []
        self._routed = False
        self._sink = log.open("a")
        self._streams: dict[str, Any] = {}  # function -> the stream its logger had before

    def close(self) -> None:
        """Give the functions' loggers their own streams back and close the log file."""
        import importlib

        for key, stream in self._streams.items():
            importlib.import_module(f"lambdas.{key}.handler").logger.registered_handler.setStream(stream)
        self._streams.clear()
        self._sink.close()

    @contextlib.contextmanager
    def _environment(self) -> Iterator[None]:
        saved = {k: os.environ.get(k) for k in self.environment}
        os.environ.update(self.environment)
        try:
            with contextlib.redirect_stdout(self._sink), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="No application metrics")
                yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _route_invokes(self) -> None:
        """Lambda's Invoke between our functions becomes an in-process call, as the service would make it."""
        if self._routed:
            return
        from botocore.awsrequest import AWSResponse

        from lambdas.shared.runtime import client

        def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            by_name = {self.names.function(k): k for k in c.FUNCTIONS}
            key = by_name[params["FunctionName"]]
            self.invocations.append((params["FunctionName"], params.get("InvocationType", "RequestResponse")))
            self.call(key, json.loads(params["Payload"]))
            return AWSResponse(None, 202, {}, None), {"StatusCode": 202}

        calls: list[dict[str, Any]] = []
        events = client("lambda").meta.events
        events.register("provide-client-params.lambda.Invoke", lambda params, **_: calls.append(params))
        events.register("before-call.lambda.Invoke", lambda **kw: answer(calls[-1]))
        self._routed = True

    def call(self, key: str, event: Mapping[str, Any]) -> Any:
        """Run one function's handler on `event`, as Lambda would."""
        import importlib

        module = importlib.import_module(f"lambdas.{key}.handler")
        if key not in self._streams:
            # Powertools' handler keeps the stdout it saw at import: point it at the log file until close().
            self._streams[key] = module.logger.registered_handler.setStream(self._sink)
        with self._environment():
            self._route_invokes()
            return module.handler(dict(event), LocalContext(function_name=self.names.function(key)))

    def new_data_event(self, keys: list[str]) -> dict[str, Any]:
        """The new-data queue's batch for `keys`: S3 Object Created events as EventBridge sends them."""
        s3 = __import__("boto3").client("s3")
        records = []
        for n, key in enumerate(keys):
            head = s3.head_object(Bucket=self.names.data_bucket, Key=key)
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Object Created",
                "source": "aws.s3",
                "account": ACCOUNT,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": os.environ.get("AWS_REGION", "us-east-1"),
                "resources": [f"arn:aws:s3:::{self.names.data_bucket}"],
                "detail": {
                    "version": "0",
                    "bucket": {"name": self.names.data_bucket},
                    "object": {
                        "key": key,
                        "size": head["ContentLength"],
                        "etag": head["ETag"].strip('"'),
                        "version-id": head.get("VersionId"),
                        "sequencer": f"{n:016X}",
                    },
                    "reason": "PutObject",
                },
            }
            records.append(
                {
                    "messageId": str(uuid.uuid4()),
                    "receiptHandle": f"rehearsal-{n}",
                    "body": json.dumps(event),
                    "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:{os.environ.get('AWS_REGION')}:{ACCOUNT}:new-data",
                    "awsRegion": os.environ.get("AWS_REGION"),
                }
            )
        return {"Records": records}


def operator_notices(aws: LocalAws, provisioned: Provisioned) -> list[dict[str, Any]]:
    """What reached the operators' topic so far (drained)."""
    sqs = aws.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=provisioned.notices_queue_url, MaxNumberOfMessages=10).get("Messages")
        if not batch:
            return found
        for message in batch:
            envelope = json.loads(message["Body"])
            found.append({"Subject": envelope.get("Subject", ""), "Message": envelope.get("Message", "")})
            sqs.delete_message(QueueUrl=provisioned.notices_queue_url, ReceiptHandle=message["ReceiptHandle"])


class LocalSageMaker:
    """Runs a training job recorded in the local AWS as SageMaker would, then says what EventBridge would.

    The job's own description decides everything: its S3 channels are downloaded, train.py runs through the
    script-mode contract on this machine (the `code` channel is this checkout's training_scripts/), and
    model.tar.gz goes to the job's artifact URL.
    """

    def __init__(self, aws: LocalAws, work_dir: Path) -> None:
        self.aws = aws
        self.work_dir = work_dir

    def _download(self, uri: str, dest: Path) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        s3 = self.aws.client("s3")
        dest.mkdir(parents=True, exist_ok=True)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :].lstrip("/") or Path(obj["Key"]).name
                (dest / name).write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())

    def run(self, job_name: str) -> tuple[dict[str, Any], Any]:
        """Train `job_name`; returns the "SageMaker Training Job State Change" event and the local result."""
        from sagecycle.local_training import run_local_training

        job = self.aws.client("sagemaker").describe_training_job(TrainingJobName=job_name)
        root = self.work_dir / job_name
        channels: dict[str, Path] = {}
        for channel in job["InputDataConfig"]:
            if channel["ChannelName"] == "code":
                continue
            channels[channel["ChannelName"]] = root / "channels" / channel["ChannelName"]
            self._download(channel["DataSource"]["S3DataSource"]["S3Uri"], channels[channel["ChannelName"]])
        hyperparameters = {k: v for k, v in job["HyperParameters"].items() if not k.startswith("sagemaker_")}
        result = run_local_training(
            channels, hyperparameters=hyperparameters, work_dir=root / "job", output_tar=root / "model.tar.gz"
        )
        artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
        bucket, _, key = artifact.removeprefix("s3://").partition("/")
        self.aws.client("s3").put_object(Bucket=bucket, Key=key, Body=result.model_tar.read_bytes())
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "SageMaker Training Job State Change",
            "source": "aws.sagemaker",
            "account": ACCOUNT,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.aws.region,
            "resources": [job["TrainingJobArn"]],
            "detail": {
                "TrainingJobName": job_name,
                "TrainingJobArn": job["TrainingJobArn"],
                "TrainingJobStatus": "Completed",
                "SecondaryStatus": "Completed",
                "HyperParameters": job["HyperParameters"],
                "ModelArtifacts": {"S3ModelArtifacts": artifact},
                "Tags": {},
            },
        }
        return event, result
