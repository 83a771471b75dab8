"""Local SageMaker batch transform: a CreateTransformJob recorded in the local AWS is run as SageMaker runs it.

`LocalTransform` registers itself with the moto extensions (`moto_sagemaker`), so a CreateTransformJob leaves the job
`InProgress` and hands it over here. `reconcile()` (or `run(job_name)`) runs it; with `background=True` a worker
thread runs each job as soon as it is created, so a caller that only speaks the SageMaker API (CreateTransformJob,
then DescribeTransformJob until it is done) sees it finish on its own. What a run does, following the API
reference (CreateTransformJob, TransformInput, TransformOutput) and the batch transform guide:

- The model's container starts as an endpoint's does (`serving_process`): `sagecycle serve` on the model's
  artifact (its ModelDataUrl) with its container Environment, plus the job's Environment and what SageMaker sets
  in a transform container (`SAGEMAKER_BATCH=true`, `SAGEMAKER_MAX_PAYLOAD_IN_MB`, `SAGEMAKER_BATCH_STRATEGY`,
  `SAGEMAKER_MAX_CONCURRENT_TRANSFORMS`), its front end limited to MaxPayloadInMB. So every record is scored by
  `sagecycle.container.start_container` through sagemaker-inference's `Transformer`, the same code as an endpoint.
- Every S3 object under the input prefix is read (in key order; `Gzip` is decompressed). `SplitType` `Line` splits
  it into records at newlines; `BatchStrategy` `MultiRecord` (the XGBoost container's default) packs as many
  records into each mini-batch as fit in MaxPayloadInMB (default 6), `SingleRecord` sends one per request;
  `SplitType` `None` sends the whole object. A record (or an unsplit object) larger than MaxPayloadInMB cannot be
  sent: the object fails. Each mini-batch is a `POST /invocations` with the job's ContentType and Accept.
- The answers of one object are joined in order (`AssembleWith` `Line`: each ends with a newline; `None`: as they
  are) into one object, `<S3OutputPath>/<input key relative to the input prefix's folder>.out`, encrypted with
  TransformOutput.KmsKeyId (SSE-KMS) when there is one. An object that fails uploads nothing; the other objects are
  still processed and uploaded, and the job ends `Failed` with a FailureReason naming the first failed object
  (`bucket/key`, as SageMaker's data log names it). Otherwise it ends `Completed`.
- DescribeTransformJob follows (TransformStartTime when the container is launched, TransformEndTime at the end,
  FailureReason only on a Failed job); a "SageMaker Transform Job State Change" event goes to `emit` at each change
  and the timeline records transform.started / transform.completed / transform.failed.

The FailureReason texts are ours (`ClientError: ` for a problem with the input or a 4xx from the model,
`AlgorithmError: ` for a container that fails); SageMaker's own reason points at the job's CloudWatch logs, which the
rehearsal does not have. Known differences, kept on purpose: one container, mini-batches sent one at a time whatever
MaxConcurrentTransforms and InstanceCount say; a failed invocation is not retried (ModelClientConfig's
InvocationsMaxRetries), since the local model answers the same way every time.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import logging
import queue
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from sagecycle.rehearsal import ACCOUNT  # moto's account
from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.moto_sagemaker import (
    LOCK,
    Emit,
    LocalManager,
    backend,
    naive_utc,
    register_transform_manager,
    unregister_transform_manager,
)
from sagecycle.rehearsal.sagemaker_events import transform_job_event
from sagecycle.rehearsal.serving_process import (
    EndpointStartError,
    log_tail,
    start_model,
    stop_process,
    wait_healthy,
)
from sagecycle.rehearsal.timeline import Timeline

LOG = logging.getLogger("sagecycle.rehearsal.transform")
FAILURE_REASON_LIMIT = 1024  # DescribeTransformJob's FailureReason length limit
DEFAULT_MAX_PAYLOAD_MB = 6  # CreateTransformJob's default MaxPayloadInMB
DEFAULT_INVOCATION_TIMEOUT_S = 600  # ModelClientConfig.InvocationsTimeoutInSeconds' default
MB = 1024 * 1024  # as `sagecycle serve --max-payload-mb` counts a megabyte
# Our wording (see the module's docstring).
NO_INPUT = 'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source.'
RECORD_TOO_LARGE = (
    "ClientError: {object}: a record of {size:,} bytes is larger than MaxPayloadInMB ({limit} MB): it cannot be sent "
    "in one request. Split the data into smaller records (SplitType) or raise MaxPayloadInMB."
)
MODEL_ERROR = "{category}: {object}: the model container answered {status}: {message}"
CONTAINER_FAILED = "AlgorithmError: the model container did not pass the ping health check: {detail}"


class ObjectFailed(Exception):
    """One input object could not be transformed; the message is the job's FailureReason for it."""


class JobFailed(Exception):
    """The job failed before or while it ran; the message is its FailureReason."""


def output_key(input_prefix_key: str, object_key: str, output_prefix_key: str) -> str:
    """The `.out` object's key: the input key relative to the input prefix's folder, under the output prefix."""
    folder = input_prefix_key[: input_prefix_key.rfind("/") + 1]
    relative = object_key[len(folder) :]
    return "/".join(p for p in (output_prefix_key.rstrip("/"), relative + ".out") if p)


def records(data: bytes, split_type: str) -> list[bytes]:
    """The records of one object: its lines (without the newline) for `Line`, the whole object for `None`."""
    if split_type != "Line":
        return [data]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":  # a final newline ends the last record; it does not start another
        lines.pop()
    return lines


def mini_batches(items: list[bytes], *, limit: int, multi_record: bool, split: bool) -> Iterator[bytes | int]:
    """The request bodies for `items`: each record ends with a newline when split by lines; MultiRecord packs as
    many as fit in `limit` bytes. Yields the size of a record that alone is over `limit` instead of a body."""
    batch: list[bytes] = []
    size = 0
    for item in items:
        record = item + b"\n" if split else item
        if len(record) > limit:  # what was packed before it is sent; the object stops at this record
            if batch:
                yield b"".join(batch)
            yield len(record)
            return
        if batch and (not multi_record or size + len(record) > limit):
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(record)
        size += len(record)
    if batch:
        yield b"".join(batch)


class LocalTransform(LocalManager, contextlib.AbstractContextManager["LocalTransform"]):
    """Runs the batch transform jobs recorded in the local AWS (see the module's docstring).

    Takes `LocalManager`'s arguments (`work_dir` holds one directory per job: the model artifact and the container's
    log; `emit` receives the state-change events), and:
        background: run each job in a worker thread as soon as it is created (else `reconcile()` runs them).
        startup_timeout: wall seconds the container has to answer /ping.
    """

    def __init__(
        self, aws: Any, work_dir: Path, clock: Clock, timeline: Timeline, emit: Emit | None = None, *,
        account: str = ACCOUNT, background: bool = False, startup_timeout: float = 60.0,
    ) -> None:  # fmt: skip
        super().__init__(aws, work_dir, clock, timeline, emit, account=account)
        self.startup_timeout = startup_timeout
        self._pending: queue.Queue[str | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._closed = False
        register_transform_manager(account, self.region, self)
        if background:
            self._worker = threading.Thread(target=self._work, name="sagemaker-transform", daemon=True)
            self._worker.start()

    def transform_job_created(self, account: str, region: str, job_name: str) -> None:
        """Called by the moto extension (in a server thread) when CreateTransformJob has recorded a job."""
        self._pending.put(job_name)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops taking jobs; a background worker finishes the job it is running first (idempotent)."""
        if self._closed:
            return
        self._closed = True
        unregister_transform_manager(self.account, self.region, self)
        if self._worker is not None:
            self._pending.put(None)
            self._worker.join()

    def reconcile(self) -> list[dict[str, Any]]:
        """Runs every job created since the last call, in order; returns their final DescribeTransformJob answers."""
        finished: list[dict[str, Any]] = []
        while True:
            try:
                name = self._pending.get_nowait()
            except queue.Empty:
                return finished
            if name is not None:
                finished.append(self.run(name))

    def _work(self) -> None:
        while (name := self._pending.get()) is not None:
            try:
                self.run(name)
            except Exception:  # a bug here must not stop the jobs after this one
                LOG.exception("transform job %s could not be run", name)

    # ---------------------------------------------------------------------------------------------- a run

    def run(self, job_name: str) -> dict[str, Any]:
        """Runs `job_name` to Completed or Failed; returns its final DescribeTransformJob answer."""
        sagemaker = self.aws.client("sagemaker")
        job = sagemaker.describe_transform_job(TransformJobName=job_name)
        root = self.work_dir / job_name
        self._update(job_name, start=True)
        self.timeline.record("transform.started", f"transform job {job_name} started", job=job_name)
        self._emit(job_name)
        failure: str | None = None
        try:
            inputs = self._inputs(job)
            outputs = self._transform(job, inputs, root)
        except JobFailed as e:
            failure = str(e)
        except ClientError as e:  # S3 refused (no such bucket, no access): the job's input or output is wrong
            failure = f"ClientError: {e}"
        except Exception as e:  # a job never stays InProgress, whatever went wrong here
            LOG.exception("transform job %s failed in the rehearsal", job_name)
            failure = f"InternalServerError: {type(e).__name__}: {e}"
        if failure is not None:
            reason = failure[:FAILURE_REASON_LIMIT]
            self._update(job_name, status="Failed", failure=reason)
            self.timeline.record(
                "transform.failed", f"transform job {job_name} failed: {reason}", job=job_name, reason=reason
            )
        else:
            self._update(job_name, status="Completed")
            self.timeline.record(
                "transform.completed",
                f"transform job {job_name} completed: {len(outputs)} object(s)",
                job=job_name,
                outputs=outputs,
            )
        self._emit(job_name)
        return dict(sagemaker.describe_transform_job(TransformJobName=job_name))

    def _inputs(self, job: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(bucket, key) of every object under the input prefix, in key order."""
        uri = str(job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        s3 = self.aws.client("s3")
        keys = [
            obj["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
            if not obj["Key"].endswith("/")
        ]
        if not keys:
            raise JobFailed(NO_INPUT.format(uri=uri))
        return [(bucket, key) for key in sorted(keys)]

    def _transform(self, job: Mapping[str, Any], inputs: list[tuple[str, str]], root: Path) -> list[str]:
        """Starts the model's container, transforms every object and uploads the `.out` of each that succeeded."""
        payload_mb = int(job.get("MaxPayloadInMB") or DEFAULT_MAX_PAYLOAD_MB)
        strategy = str(job.get("BatchStrategy") or "MultiRecord")
        environment = {
            **(job.get("Environment") or {}),
            "SAGEMAKER_BATCH": "true",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(payload_mb),
            "SAGEMAKER_BATCH_STRATEGY": "MULTI_RECORD" if strategy == "MultiRecord" else "SINGLE_RECORD",
            "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(job.get("MaxConcurrentTransforms") or 1),
        }
        try:
            _, port, process, log_path = start_model(
                self.aws.client("sagemaker"),
                self.aws.client("s3"),
                str(job["ModelName"]),
                artifact=root / "model.tar.gz",
                log_path=lambda _: root / "container.log",
                environment=environment,
                options=["--batch", "--max-payload-mb", str(payload_mb)],
            )
        except EndpointStartError as e:
            raise JobFailed(f"ClientError: {e}") from None
        try:
            if not wait_healthy(port, process, self.startup_timeout):
                tail = log_tail(log_path).strip().splitlines()
                raise JobFailed(CONTAINER_FAILED.format(detail=tail[-1] if tail else "no output"))
            return self._objects(job, inputs, port, payload_mb * MB)
        finally:
            stop_process(process)

    def _objects(self, job: Mapping[str, Any], inputs: list[tuple[str, str]], port: int, limit: int) -> list[str]:
        s3 = self.aws.client("s3")
        source = job["TransformInput"]
        output = job["TransformOutput"]
        input_prefix = str(source["DataSource"]["S3DataSource"]["S3Uri"]).removeprefix("s3://").partition("/")[2]
        out_bucket, _, out_prefix = str(output["S3OutputPath"]).removeprefix("s3://").partition("/")
        kms = output.get("KmsKeyId")
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms} if kms else {}
        written: list[str] = []
        failures: list[str] = []
        for bucket, key in inputs:
            try:
                body = self._object(job, s3.get_object(Bucket=bucket, Key=key)["Body"].read(), f"{bucket}/{key}", port)
            except ObjectFailed as e:  # SageMaker goes on with the other objects, then fails the job
                failures.append(str(e))
                continue
            target = output_key(input_prefix, key, out_prefix)
            s3.put_object(Bucket=out_bucket, Key=target, Body=body, **extra)
            written.append(f"s3://{out_bucket}/{target}")
        if failures:
            raise JobFailed(failures[0])
        return written

    def _object(self, job: Mapping[str, Any], data: bytes, name: str, port: int) -> bytes:
        """One input object through the container: split, batched, invoked, assembled."""
        source = job["TransformInput"]
        output = job["TransformOutput"]
        if source.get("CompressionType") == "Gzip":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as e:
                raise ObjectFailed(f"ClientError: {name}: the object is not gzip data ({e})") from None
        split = str(source.get("SplitType") or "None")
        limit = int(job.get("MaxPayloadInMB") or DEFAULT_MAX_PAYLOAD_MB) * MB
        multi = str(job.get("BatchStrategy") or "MultiRecord") == "MultiRecord"
        line = output.get("AssembleWith") == "Line"
        parts: list[bytes] = []
        for batch in mini_batches(records(data, split), limit=limit, multi_record=multi, split=split == "Line"):
            if isinstance(batch, int):
                raise ObjectFailed(RECORD_TOO_LARGE.format(object=name, size=batch, limit=limit // MB))
            answer = self._invoke(job, batch, name, port)
            parts.append(answer + b"\n" if line and not answer.endswith(b"\n") else answer)
        return b"".join(parts)

    def _invoke(self, job: Mapping[str, Any], body: bytes, name: str, port: int) -> bytes:
        headers = {"Content-Length": str(len(body))}
        if job["TransformInput"].get("ContentType"):
            headers["Content-Type"] = str(job["TransformInput"]["ContentType"])
        if job["TransformOutput"].get("Accept"):
            headers["Accept"] = str(job["TransformOutput"]["Accept"])
        timeout = int(
            (job.get("ModelClientConfig") or {}).get("InvocationsTimeoutInSeconds") or DEFAULT_INVOCATION_TIMEOUT_S
        )
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("POST", "/invocations", body=body, headers=headers)
            response = connection.getresponse()
            status, answer = response.status, response.read()
        except (OSError, http.client.HTTPException) as e:
            raise ObjectFailed(
                MODEL_ERROR.format(category="AlgorithmError", object=name, status="nothing", message=str(e))
            ) from None
        finally:
            connection.close()
        if status != 200:
            message = answer.decode("utf-8", "replace").split("\n", 1)[0]
            category = "ClientError" if 400 <= status < 500 else "AlgorithmError"
            raise ObjectFailed(MODEL_ERROR.format(category=category, object=name, status=status, message=message))
        return answer

    # -------------------------------------------------------------------------------------------- moto state

    def _update(self, name: str, *, start: bool = False, status: str | None = None, failure: str | None = None) -> None:
        now = naive_utc(self.now())
        with LOCK:
            job = backend(self.account, self.region).transform_jobs[name]
            job.last_modified_time = now
            if start:
                job.transform_start_time = now
            if status is not None:
                job.transform_job_status = status
                job.transform_end_time = now
                job.failure_reason = failure

    def _emit(self, name: str) -> dict[str, Any]:
        describe, tags = self.job_snapshot("transform_jobs", name)
        return self.publish(transform_job_event(describe, region=self.region, time=self.now(), tags=tags))
