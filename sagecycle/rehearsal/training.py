"""Local SageMaker training jobs: a CreateTrainingJob recorded in the local AWS is run as SageMaker would run it.

`LocalTraining` registers itself with the moto extensions (`moto_sagemaker`), so a CreateTrainingJob leaves the job
`InProgress` and queues it here; `reconcile()` (or `run(job_name)`) then runs it:

- the job's own S3 channels are downloaded (ShardedByS3Key / FullyReplicated as each channel says), and train.py
  runs under the container contract through `sagecycle.local_training.run_local_training` on
  ResourceConfig.InstanceCount local hosts, with the job's hyperparameters (the `sagemaker_*` ones are the
  toolkit's, not the script's);
- the scripts come from the job's `code` channel: the source tarball the Model stack uploads (its `contract/` is
  rebuilt from this checkout by the same packager, so the two cannot differ); a job without a code channel runs
  this checkout's training_scripts/;
- `model.tar.gz` is exactly what the job left in its model directory, written to ModelArtifacts.S3ModelArtifacts
  (SSE-KMS with OutputDataConfig.KmsKeyId); files in output/data go to `<job>/output/output.tar.gz`;
- DescribeTrainingJob follows: InProgress (Starting, Downloading, Training, Uploading), then Completed with
  FinalMetricDataList from the job's MetricDefinitions over the training log, or Failed with the FailureReason
  SageMaker shows (`AlgorithmError: ` + what train.py wrote to /opt/ml/output/failure; an empty channel is a
  `ClientError`, worded as SageMaker words it);
- a "SageMaker Training Job State Change" event (the documented shape, `FailureReason` on a Failed job) goes to
  `emit`, and the timeline records training.started / training.completed / training.failed.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tarfile
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sagecycle.local_training import SCRIPTS_DIR, LocalTrainingError, TrainingResult, run_local_training
from sagecycle.rehearsal import ACCOUNT  # moto's account
from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.moto_sagemaker import (
    LOCK,
    Emit,
    LocalManager,
    backend,
    naive_utc,
    register_training_manager,
    unregister_training_manager,
)
from sagecycle.rehearsal.timeline import Timeline
from stacks.packaging import deterministic_targz

CODE_CHANNEL = "code"
FAILURE_REASON_LIMIT = 1024  # DescribeTrainingJob's FailureReason length limit
# SageMaker's wording for a channel with nothing under its prefix.
EMPTY_CHANNEL = (
    'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure that the '
    "bucket exists in the selected region ({region}), that objects exist under that S3 prefix, and that the role "
    '"{role}" has "s3:ListBucket" permissions on bucket "{bucket}".'
)


class JobFailed(Exception):
    """The job failed; the message is its FailureReason."""


def training_job_event(
    describe: Mapping[str, Any], *, region: str, time: datetime, tags: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A "SageMaker Training Job State Change" event for `describe` (a DescribeTrainingJob answer): the event bus's
    own builder (`events.training_state_change`), so the shape is written once."""
    from sagecycle.rehearsal.events import training_state_change

    account = str(describe["TrainingJobArn"]).split(":")[4]
    return training_state_change(describe, account=account, region=region, time=time, tags=tags)


def final_metrics(log: str, definitions: list[Mapping[str, str]], at: datetime) -> list[dict[str, Any]]:
    """FinalMetricDataList as SageMaker builds it: each definition's regex over the log, its last match."""
    found: list[dict[str, Any]] = []
    for definition in definitions:
        try:
            matches = re.findall(definition["Regex"], log)
        except re.error:
            continue
        if not matches:
            continue
        last = matches[-1]
        value = last[0] if isinstance(last, tuple) else last
        with contextlib.suppress(ValueError):
            found.append({"MetricName": definition["Name"], "Value": float(value), "Timestamp": naive_utc(at)})
    return found


class LocalTraining(LocalManager, contextlib.AbstractContextManager["LocalTraining"]):
    """Runs the training jobs recorded in the local AWS (see the module's docstring).

    Takes `LocalManager`'s arguments; `work_dir` holds one directory per job: its channels, hosts' trees, logs and
    model.tar.gz, and `emit` receives the state-change events.
    """

    def __init__(
        self, aws: Any, work_dir: Path, clock: Clock, timeline: Timeline, emit: Emit | None = None, *,
        account: str = ACCOUNT,
    ) -> None:  # fmt: skip
        super().__init__(aws, work_dir, clock, timeline, emit, account=account)
        self.results: dict[str, TrainingResult] = {}
        self._pending: list[str] = []
        self._lock = threading.Lock()
        register_training_manager(account, self.region, self)

    def training_job_created(self, account: str, region: str, job_name: str) -> None:
        """Called by the moto extension (in a server thread) when CreateTrainingJob has recorded a job."""
        with self._lock:
            self._pending.append(job_name)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        unregister_training_manager(self.account, self.region, self)

    def reconcile(self) -> list[dict[str, Any]]:
        """Runs every job created since the last call, in order; returns their final state-change events."""
        events: list[dict[str, Any]] = []
        while True:
            with self._lock:
                if not self._pending:
                    return events
                name = self._pending.pop(0)
            events.append(self.run(name)[0])

    def run(self, job_name: str) -> tuple[dict[str, Any], TrainingResult | None]:
        """Runs `job_name`; returns its final "SageMaker Training Job State Change" event and the local result
        (None when the job failed)."""
        with self._lock:
            if job_name in self._pending:
                self._pending.remove(job_name)
        job = self.aws.client("sagemaker").describe_training_job(TrainingJobName=job_name)
        root = self.work_dir / job_name
        if root.exists():
            shutil.rmtree(root)
        self._progress(job_name, "Downloading", "Downloading input data", start=True)
        self.timeline.record("training.started", f"training job {job_name} started", job=job_name)
        self._emit(job_name)
        try:
            channels, distribution, scripts = self._stage(job, root)
            self._progress(job_name, "Training", "Training image download completed. Training in progress.")
            try:
                result = run_local_training(
                    channels,
                    hyperparameters={k: v for k, v in job["HyperParameters"].items() if not k.startswith("sagemaker_")},
                    instance_count=int(job["ResourceConfig"].get("InstanceCount", 1)),
                    work_dir=root / "job",
                    output_tar=root / "model.tar.gz",
                    distribution=distribution,
                    scripts_dir=scripts or SCRIPTS_DIR,
                )
            except LocalTrainingError as e:
                failure = next((h.failure for h in e.hosts if h.failure), None) or str(e).split("\n", 1)[0]
                raise JobFailed(f"AlgorithmError: {failure}") from e
            self._progress(job_name, "Uploading", "Uploading generated training model")
            self._upload(job, result)
        except JobFailed as e:
            self._finish(job_name, "Failed", failure=str(e)[:FAILURE_REASON_LIMIT])
            self.timeline.record("training.failed", f"training job {job_name} failed: {e}", job=job_name, reason=str(e))
            return self._emit(job_name), None
        metrics = final_metrics(result.log, job["AlgorithmSpecification"].get("MetricDefinitions") or [], self.now())
        self._finish(job_name, "Completed", metrics=metrics)
        self.results[job_name] = result
        self.timeline.record(
            "training.completed",
            f"training job {job_name} completed",
            job=job_name,
            model=job["ModelArtifacts"]["S3ModelArtifacts"],
            evaluation=result.evaluation.get("primary_metric"),
            wall_seconds=round(result.wall_seconds, 3),
        )
        return self._emit(job_name), result

    # -------------------------------------------------------------------------------------------- stages

    def _stage(self, job: Mapping[str, Any], root: Path) -> tuple[dict[str, Path], dict[str, Any], Path | None]:
        channels: dict[str, Path] = {}
        distribution: dict[str, Any] = {}
        scripts: Path | None = None
        for channel in job.get("InputDataConfig") or []:
            name = channel["ChannelName"]
            source = channel["DataSource"]["S3DataSource"]
            target = root / ("code-channel" if name == CODE_CHANNEL else f"channels/{name}")
            self._download(str(source["S3Uri"]), target, str(job.get("RoleArn", "")))
            if name == CODE_CHANNEL:
                scripts = self._scripts(job, target, root / "code-src")
                continue
            channels[name] = target
            distribution[name] = source.get("S3DataDistributionType", "FullyReplicated")
        return channels, distribution, scripts

    def _download(self, uri: str, dest: Path, role: str) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        s3 = self.aws.client("s3")
        dest.mkdir(parents=True, exist_ok=True)
        found = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/"):
                    continue
                name = obj["Key"][len(prefix) :].lstrip("/") or Path(obj["Key"]).name
                path = dest / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                found += 1
        if not found:
            raise JobFailed(EMPTY_CHANNEL.format(uri=uri, region=self.region, role=role, bucket=bucket))

    def _scripts(self, job: Mapping[str, Any], channel: Path, dest: Path) -> Path:
        """The scripts of the code channel's source tarball (the one sagemaker_submit_directory names)."""
        submit = str(job["HyperParameters"].get("sagemaker_submit_directory", ""))
        wanted = submit.rsplit("/", 1)[-1]
        tarballs = sorted(p for p in channel.rglob("*.tar.gz") if not wanted or p.name == wanted)
        if not tarballs:
            raise JobFailed(f"AlgorithmError: no source tarball {wanted or '*.tar.gz'} in the code channel")
        dest.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(tarballs[0]) as tar:
                tar.extractall(dest, filter="data")
        except (tarfile.TarError, OSError) as e:
            raise JobFailed(f"AlgorithmError: the source tarball cannot be extracted: {e}") from None
        # run_local_training's packager adds contract/ from this checkout, the same files the tarball carries.
        shutil.rmtree(dest / "contract", ignore_errors=True)
        return dest

    def _upload(self, job: Mapping[str, Any], result: TrainingResult) -> None:
        s3 = self.aws.client("s3")
        kms = (job.get("OutputDataConfig") or {}).get("KmsKeyId")
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms} if kms else {}
        artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
        bucket, _, key = artifact.removeprefix("s3://").partition("/")
        assert result.model_tar is not None
        s3.put_object(Bucket=bucket, Key=key, Body=result.model_tar.read_bytes(), **extra)
        outputs = sorted(p for p in result.hosts[0].output_data_dir.rglob("*") if p.is_file())
        if outputs:
            data_dir = result.hosts[0].output_data_dir
            body = deterministic_targz((p.relative_to(data_dir).as_posix(), p.read_bytes()) for p in outputs)
            s3.put_object(Bucket=bucket, Key=key.rsplit("/", 1)[0] + "/output.tar.gz", Body=body, **extra)

    # -------------------------------------------------------------------------------------------- moto state

    def _job(self, name: str) -> Any:
        return backend(self.account, self.region).training_jobs[name]

    def _progress(self, name: str, secondary: str, message: str, *, start: bool = False) -> None:
        now = naive_utc(self.now())
        with LOCK:
            job = self._job(name)
            transitions = list(job.secondary_status_transitions or [])
            if transitions and "EndTime" not in transitions[-1]:
                transitions[-1] = {**transitions[-1], "EndTime": now}
            transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": message})
            job.secondary_status_transitions = transitions
            job.training_job_status, job.secondary_status = "InProgress", secondary
            job.last_modified_time = now
            if start:
                job.training_start_time = now

    def _finish(
        self, name: str, status: str, *, failure: str | None = None, metrics: list[dict[str, Any]] | None = None
    ) -> None:
        self._progress(name, status, "Training job completed" if status == "Completed" else failure or status)
        now = naive_utc(self.now())
        with LOCK:
            job = self._job(name)
            job.secondary_status_transitions[-1]["EndTime"] = now
            job.training_job_status = status
            job.training_end_time = now
            job.failure_reason = failure
            job.final_metric_data_list = metrics or []

    def _emit(self, name: str) -> dict[str, Any]:
        describe, tags = self.job_snapshot("training_jobs", name)
        return self.publish(training_job_event(describe, region=self.region, time=self.now(), tags=tags))
