"""Promote: a finished training job becomes a registered candidate, and maybe the endpoint's new champion.

(a) "SageMaker Training Job State Change", terminal states only:
- Completed: read evaluation.json from the candidate's model.tar.gz and the champion's, decide
  (`decide_promotion`), register a model package in MODEL_PACKAGE_GROUP (Approved or Rejected, with the
  metrics and the reason in CustomerMetadataProperties and evaluation.json as ModelMetrics). Approved:
  CreateModel + CreateEndpointConfig (both named after the training job: unique and deterministic) and a
  blue/green UpdateEndpoint that rolls back on ROLLBACK_ALARM_NAMES; the deployment is recorded in the runs
  table. If the endpoint is busy (another update in flight), the deployment is queued and started by (b)
  once the endpoint is InService again.
- Failed / Stopped: the operator topic gets the FailureReason.
- Every terminal path releases the training lock (try/finally), exceptions included.
- Only a job this stage started is acted on: it needs the run record the start function wrote under the lock
  (`distrust`). A job with our name prefix and no such record is ignored, its lock left alone, and the operator
  told once.
- A Completed job whose model.tar.gz or evaluation.json is missing is recorded Failed (never left InProgress),
  counted as a failed training and told to the operator; nothing is registered. A metric outside its domain
  (AUC 1.2, RMSE -1, NaN) is a Rejected candidate with the reason. A champion whose metric cannot be read leaves
  the floor alone to decide, and the operator is told.
(b) "SageMaker Endpoint Deployment State Change" / "SageMaker Endpoint State Change" for ENDPOINT_NAME.
The event is a hint; DescribeEndpoint is the truth (events arrive late and more than once):
- InService on the new config -> the champion parameter is set (the old value kept in
  `<CHAMPION_PARAMETER>/previous` and in the runs table) and the package is marked champion;
- InService on another config, with no update pending -> the deployment rolled back: the package is
  Rejected with the reason, the operator notified;
- Failed / UpdateRollbackFailed / OutOfService -> the operator is notified.

(c) "SageMaker HyperParameter Tuning Job State Change", terminal states only (the tuning job holds the lock):
- Completed: the tuning job becomes the next warm-start parent (runs table, `state#tuning`); its best
  training job (BestTrainingJob, from the event or DescribeHyperParameterTuningJob) goes through (a)'s
  Completed path exactly, its model read from DescribeTrainingJob; the run record is the tuning job's.
- Failed / Stopped: the operator topic gets the FailureReason.
- Every terminal path releases the lock, exceptions included. A tuning job's child training jobs are
  ignored in (a): never a candidate, never a lock release (detail TuningJobArn, or DescribeTrainingJob for a
  name in the children's `<tuning job>-NNN-xxxxxxxx` pattern).
Promotion rule (docs/artifacts.md primary metric; RETRAIN_POLICY metric_floor and tolerance):
- higher-is-better (auc): approve if value >= metric_floor and value >= champion - tolerance;
- lower-is-better (rmse, mlogloss): the floor becomes a ceiling, approve if value <= metric_floor and
  value <= champion + tolerance.
No readable champion evaluation: the floor alone decides. A champion measured on another metric: rejected
(the two cannot be compared; promote by hand if the objective changed on purpose).

The promote function runs with reserved concurrency 1, so its read-check-act steps on the runs table do
not race; every AWS step is idempotent on its own (deterministic names, ClientToken, state checks), so a
redelivered or retried event finishes what an earlier attempt started and repeats nothing visible.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas.shared import artifacts, runs
from lambdas.shared.contract import (
    ENV_CHAMPION_PARAMETER,
    ENV_ENDPOINT_NAME,
    ENV_MODEL_PACKAGE_GROUP,
    ENV_OPERATOR_TOPIC_ARN,
    ENV_ROLLBACK_ALARMS,
    ENV_RUNS_TABLE,
    ENV_STAGE,
    FUNCTIONS,
)
from lambdas.shared.deployments import (
    Deployment,
    create_model_and_config,
    deployment_outcome,
    describe_endpoint,
    record_started,
    update_endpoint,
)
from lambdas.shared.events import EndpointChange, TrainingJobChange, TuningJobChange
from lambdas.shared.function_settings import retrain_policy, training_settings
from lambdas.shared.jobspec import TrainingSpecSettings, build_model, resource_name, sanitize_tag_text
from lambdas.shared.policy import RetrainPolicy
from lambdas.shared.runtime import client, env_arn, env_str, env_str_list, epoch, error_code, iso
from lambdas.shared.telemetry import notify

logger = Logger(service=FUNCTIONS["promote"], child=True)
# A champion the endpoint strayed from is re-deployed at most once in this window (no loops).
REASSERT_WINDOW: Final = timedelta(hours=24)
UNTRUSTED_NOTICE: Final = timedelta(days=30)  # one operator notice per untrusted job name in this window

PREVIOUS_SUFFIX: Final = "/previous"
METADATA_PREFIX: Final = "sagecycle:"
MAX_METADATA: Final = 50
BUSY_STATES: Final = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
CONTENT_TYPES: Final = ["text/csv", "application/json"]


@dataclass(frozen=True)
class Settings:
    stage: str
    runs_table: str
    operator_topic_arn: str
    champion_parameter: str
    model_package_group: str
    endpoint_name: str
    rollback_alarms: tuple[str, ...]
    training: TrainingSpecSettings
    policy: RetrainPolicy

    @property
    def previous_parameter(self) -> str:
        return f"{self.champion_parameter}{PREVIOUS_SUFFIX}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        return cls(
            stage=env_str(ENV_STAGE, environ),
            runs_table=env_str(ENV_RUNS_TABLE, environ),
            operator_topic_arn=env_arn(ENV_OPERATOR_TOPIC_ARN, "sns", environ),
            champion_parameter=env_str(ENV_CHAMPION_PARAMETER, environ),
            model_package_group=env_str(ENV_MODEL_PACKAGE_GROUP, environ),
            endpoint_name=env_str(ENV_ENDPOINT_NAME, environ),
            rollback_alarms=env_str_list(ENV_ROLLBACK_ALARMS, environ),
            training=training_settings(environ),
            policy=retrain_policy(environ),
        )


# ------------------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Verdict:
    approved: bool
    reason: str
    metric: str
    candidate: float | None
    champion: float | None
    higher_is_better: bool | None


def decide_promotion(
    candidate: artifacts.PrimaryMetric,
    champion: artifacts.PrimaryMetric | None,
    *,
    metric_floor: float,
    tolerance: float,
) -> Verdict:
    """Floor (a ceiling when lower is better), then no worse than the champion by more than `tolerance`."""
    higher = candidate.higher_is_better
    name, value = candidate.name, candidate.value

    def verdict(approved: bool, reason: str) -> Verdict:
        return Verdict(approved, reason, name, value, champion.value if champion else None, higher)

    if higher and value < metric_floor:
        return verdict(False, f"{name} {value:.6g} is below the floor {metric_floor:.6g}")
    if not higher and value > metric_floor:
        return verdict(False, f"{name} {value:.6g} is above the ceiling {metric_floor:.6g} (lower is better)")
    if champion is None:
        return verdict(True, f"{name} {value:.6g} clears the floor; no champion evaluation to compare with")
    if champion.name != name or champion.higher_is_better != higher:
        return verdict(False, f"candidate is measured on {name}, the champion on {champion.name}: not comparable")
    margin = value - champion.value if higher else champion.value - value
    if margin < -tolerance - 1e-12:
        return verdict(
            False,
            f"{name} {value:.6g} is worse than the champion's {champion.value:.6g} by {-margin:.6g} "
            f"(tolerance {tolerance:.6g})",
        )
    return verdict(True, f"{name} {value:.6g} vs champion {champion.value:.6g}: within tolerance or better")


# ------------------------------------------------------------------------------------------- helpers


def client_token(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:32]


def _metadata(values: Mapping[str, Any]) -> dict[str, str]:
    """CustomerMetadataProperties: <= 50 entries, keys <= 128 and values <= 256 tag-safe characters."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None or len(out) >= MAX_METADATA:
            continue
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        out[sanitize_tag_text(f"{METADATA_PREFIX}{key}", 128)] = sanitize_tag_text(text, 256) or "-"
    return out


def _split_metrics(evaluation: Mapping[str, Any] | None, split: str) -> dict[str, float]:
    metrics = ((evaluation or {}).get("splits") or {}).get(split) or {}
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    }


def _put_evaluation(model_data_url: str, evaluation: Mapping[str, Any] | None) -> str | None:
    """evaluation.json next to model.tar.gz, for the package's ModelMetrics; best effort (None if refused)."""
    if evaluation is None:
        return None
    bucket, key = artifacts.parse_s3_url(model_data_url)
    target = f"{key.rsplit('/', 1)[0]}/evaluation.json" if "/" in key else "evaluation.json"
    try:
        client("s3").put_object(
            Bucket=bucket,
            Key=target,
            Body=json.dumps(evaluation, indent=2).encode("utf-8"),
            ContentType="application/json",
        )
    except ClientError as error:
        logger.warning(
            "could not store evaluation.json for ModelMetrics; registering without",
            extra={"target": f"s3://{bucket}/{target}", "error": error_code(error)},
        )
        return None
    return artifacts.s3_url(bucket, target)


def _champion_record(settings: Settings) -> dict[str, Any]:
    return runs.get_item(settings.runs_table, runs.CHAMPION) or {}


# ------------------------------------------------------------------------------------------- candidates

# SageMaker names a tuning job's children `<tuning job>-<NNN>-<8 hex>`; our own training jobs end in 10 hex.
TUNING_CHILD_NAME: Final = re.compile(r"(?P<tuning>[a-zA-Z0-9-]{1,32})-\d{3}-[0-9a-f]{8}")


@dataclass(frozen=True)
class Candidate:
    """A finished model to decide on: a training job's own, or the best training job of a tuning job."""

    run: str  # the run record and the lock owner: the training job, or the tuning job
    job_name: str  # the training job that wrote the model: names its package token, model and endpoint config
    job_arn: str = ""
    model_data_url: str | None = None  # None: DescribeTrainingJob says
    tuning_job: str | None = None

    @classmethod
    def of_training_job(cls, change: TrainingJobChange) -> Candidate:
        return cls(
            run=change.job_name, job_name=change.job_name, job_arn=change.job_arn, model_data_url=change.model_data_url
        )


# Reading the candidate's model.tar.gz: S3's "no such object" answers, and 403, which S3 gives instead of 404
# to a role without s3:ListBucket (and for a key policy that refuses us): no retry would make it readable.
UNREADABLE_MODEL_CODES: Final = artifacts.MISSING_OBJECT_CODES | {"AccessDenied", "403"}
RUN_FAILED: Final = "Failed"


def distrust(run: Mapping[str, Any] | None, job: str, lock: Mapping[str, Any] | None) -> str | None:
    """Why a job with our name prefix may not become a candidate (None: it may).

    Only the start function of this stage records runs, under the training lock; a job without that record, or
    whose record shows no lock, was started by someone else (by hand, another tool, another stage that shares
    the prefix), and its model must never reach the registry or the endpoint.
    """
    if run is None:
        return "no run record: the start function of this stage did not start it"
    if not runs.held_lock(run, lock, job):
        return "its run record shows no training lock, and it does not hold the lock"
    return None


def ignore_untrusted(
    job: str, status: str, reason: str, settings: Settings, now: datetime, *, what: str
) -> dict[str, Any]:
    """Leave a job we did not start alone (no registry, no endpoint, no lock release) and tell the operator once."""
    lock = runs.lock_holder(settings.runs_table) or {}
    context = {"job_name": job, "status": status, "reason": reason, "lock_owner": lock.get("owner")}
    logger.error(f"{what} not started by this stage; ignored", extra=context)
    first = runs.put_item(
        settings.runs_table,
        runs.untrusted_key(job),
        {"status": status, "reason": reason, "at": epoch(now), "expires_at": epoch(now + UNTRUSTED_NOTICE)},
        condition="attribute_not_exists(pk)",
    )
    if first:
        notify(
            settings.operator_topic_arn,
            f"sagecycle {settings.stage}: {what} not started by sagecycle ignored: {job}",
            {"event": "untrusted-job-ignored", "stage": settings.stage, "what": what, **context},
        )
    return {"ignored": f"{job} was not started by this stage: {reason}", "untrusted": True, "notified": first}


def _release_lock(settings: Settings, owner: str) -> None:
    released = runs.release_lock(settings.runs_table, owner=owner)
    logger.info(
        "training lock released" if released else "training lock not held by this job", extra={"job_name": owner}
    )


# ------------------------------------------------------------------------------------ training events


def tuning_parent(change: TrainingJobChange) -> str | None:
    """The tuning job that launched this training job (its ARN), or None for a training job of its own.

    The event rule lets every child's terminal event through (SageMaker sends TuningJobArn set, null or not at
    all, and a pattern cannot tell null from absent), so this is the check: TuningJobArn when the detail has it,
    else a name in the children's pattern is asked of DescribeTrainingJob.
    """
    if change.tuning_job_arn:
        return change.tuning_job_arn
    if not TUNING_CHILD_NAME.fullmatch(change.job_name):
        return None
    described = client("sagemaker").describe_training_job(TrainingJobName=change.job_name)
    return str(described.get("TuningJobArn") or "") or None


def handle_training_job(change: TrainingJobChange, settings: Settings, now: datetime) -> dict[str, Any]:
    """A training job changed state; terminal states are acted on and always release the lock.

    A tuning job's child is never a candidate and never releases the lock: the tuning job's own event does.
    """
    job = change.job_name
    if not job.startswith(f"{settings.training.job_name_prefix}-"):
        logger.info("not one of our training jobs; ignored", extra={"job_name": job})
        return {"ignored": f"{job} is not one of ours"}
    if not change.terminal:
        logger.info("training job not finished; nothing to do", extra={"job_name": job, "status": change.status})
        return {"ignored": f"{job} is {change.status}"}
    parent = tuning_parent(change)
    if parent:
        logger.info("a tuning job's training job; its tuning job decides", extra={"job_name": job, "tuning": parent})
        return {"ignored": f"{job} belongs to tuning job {parent.rsplit('/', 1)[-1]}"}
    run = runs.get_item(settings.runs_table, runs.run_key(job))
    untrusted = distrust(run, job, runs.lock_holder(settings.runs_table))
    if untrusted:
        return ignore_untrusted(job, change.status, untrusted, settings, now, what="training job")
    try:
        if change.status == "Completed":
            return evaluate_candidate(Candidate.of_training_job(change), settings, now)
        return report_failure(change, settings, now)
    except Exception as error:
        _note_error(settings, job, error, now)
        raise
    finally:
        _release_lock(settings, job)


def _note_error(settings: Settings, run: str, error: Exception, now: datetime) -> None:
    """Leave the error on the run record (best effort): after the last retry it says why the run stopped."""
    try:
        runs.update_item(
            settings.runs_table,
            runs.run_key(run),
            set_values={"last_error": f"{type(error).__name__}: {error}"[:1000], "last_error_at": epoch(now)},
            condition="attribute_exists(pk)",
        )
    except Exception:
        logger.exception("could not record the error on the run", extra={"job_name": run})


def _report_end(
    run_name: str,
    status: str,
    reason: str,
    settings: Settings,
    now: datetime,
    *,
    what: str,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """Record a run that ended without a candidate and tell the operator once (`what`: training job, tuning job,
    or candidate: a completed job whose model or evaluation is missing)."""
    table = settings.runs_table
    run = runs.get_item(table, runs.run_key(run_name)) or {}
    runs.update_item(
        table,
        runs.run_key(run_name),
        set_values={"status": status, "failure_reason": reason, "finished_at": epoch(now)},
    )
    if run.get("notified"):
        logger.info("duplicate event for a failure already reported", extra={"job_name": run_name})
        return {"job_name": run_name, "status": status, "duplicate": True}
    logger.error(f"{what} did not complete", extra={"job_name": run_name, "status": status, "reason": reason})
    kebab = what.replace(" ", "-")
    notify(
        settings.operator_topic_arn,
        f"sagecycle {settings.stage}: {what} {status.lower()}: {run_name}",
        {
            "event": f"{kebab}-{status.lower()}",
            "stage": settings.stage,
            **details,
            "status": status,
            "failure_reason": reason,
            "run_reason": run.get("reason"),
            "trigger": run.get("trigger"),
        },
    )
    runs.update_item(table, runs.run_key(run_name), set_values={"notified": True})
    return {"job_name": run_name, "status": status, "failure_reason": reason, "counted": True}


def report_failure(change: TrainingJobChange, settings: Settings, now: datetime) -> dict[str, Any]:
    reason = change.failure_reason or change.secondary_status or change.status
    details = {"training_job": change.job_name, "secondary_status": change.secondary_status}
    return _report_end(change.job_name, change.status, reason, settings, now, what="training job", details=details)


# -------------------------------------------------------------------------------------- tuning events


def handle_tuning_job(change: TuningJobChange, settings: Settings, now: datetime) -> dict[str, Any]:
    """A tuning job changed state: Completed -> its best training job is the candidate; Failed/Stopped ->
    the operator is told. Terminal states always release the lock (the tuning job owns it)."""
    name = change.job_name
    if not name.startswith(f"{settings.training.job_name_prefix}-"):
        logger.info("not one of our tuning jobs; ignored", extra={"job_name": name})
        return {"ignored": f"{name} is not one of ours"}
    if not change.terminal:
        logger.info("tuning job not finished; nothing to do", extra={"job_name": name, "status": change.status})
        return {"ignored": f"{name} is {change.status}"}
    run = runs.get_item(settings.runs_table, runs.run_key(name))
    untrusted = distrust(run, name, runs.lock_holder(settings.runs_table))
    if untrusted:
        return ignore_untrusted(name, change.status, untrusted, settings, now, what="tuning job")
    try:
        if change.status == "Completed":
            return evaluate_tuning_job(change, settings, now)
        return report_tuning_failure(change, settings, now)
    except Exception as error:
        _note_error(settings, name, error, now)
        raise
    finally:
        _release_lock(settings, name)


def describe_tuning_job(name: str) -> dict[str, Any]:
    return dict(client("sagemaker").describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))


def evaluate_tuning_job(change: TuningJobChange, settings: Settings, now: datetime) -> dict[str, Any]:
    """Record the next warm-start parent, then decide on the best training job like any finished job."""
    name = change.job_name
    best, best_arn, ended = change.best_training_job, change.best_training_job_arn, change.end_time
    if best is None:  # AWS's documented event has no BestTrainingJob: the API is the truth
        described = describe_tuning_job(name)
        summary = described.get("BestTrainingJob") or {}
        best, best_arn = summary.get("TrainingJobName") or None, summary.get("TrainingJobArn") or None
        end = described.get("HyperParameterTuningEndTime")
        ended = ended or (end if isinstance(end, datetime) else None)
    if runs.record_tuning_completed(settings.runs_table, job_name=name, completed_at=epoch(ended or change.time)):
        logger.info("tuning job recorded as the next warm-start parent", extra={"job_name": name})
    if best is None:
        reason = "the tuning job completed without a best training job (no child reported the objective metric)"
        return _report_end(name, change.status, reason, settings, now, what="tuning job", details={"tuning_job": name})
    runs.update_item(settings.runs_table, runs.run_key(name), set_values={"best_training_job": best})
    candidate = Candidate(run=name, job_name=best, job_arn=best_arn or "", tuning_job=name)
    return evaluate_candidate(candidate, settings, now)


def report_tuning_failure(change: TuningJobChange, settings: Settings, now: datetime) -> dict[str, Any]:
    reason = change.failure_reason
    if not reason:  # AWS's documented event has no FailureReason: the API is the truth
        reason = str(describe_tuning_job(change.job_name).get("FailureReason") or "")
    reason = reason or f"the tuning job was {change.status.lower()}"
    details = {"tuning_job": change.job_name}
    return _report_end(change.job_name, change.status, reason, settings, now, what="tuning job", details=details)


# --------------------------------------------------------------------------------- candidate decision


def _candidate_model_url(candidate: Candidate) -> Candidate:
    """The candidate with its model URL (DescribeTrainingJob when the event had none)."""
    if candidate.model_data_url:
        return candidate
    described = client("sagemaker").describe_training_job(TrainingJobName=candidate.job_name)
    url = (described.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if not url:
        raise artifacts.ArtifactMissingError(f"training job {candidate.job_name} reports no model artifact")
    arn = candidate.job_arn or str(described.get("TrainingJobArn") or "")
    return replace(candidate, model_data_url=str(url), job_arn=arn)


def _model_evaluation(url: str) -> dict[str, Any]:
    """evaluation.json of a model.tar.gz; ArtifactMissingError when the tarball or the file is not there."""
    try:
        evaluation = artifacts.model_files(url).evaluation
    except ClientError as error:
        if error_code(error) in UNREADABLE_MODEL_CODES:
            raise artifacts.ArtifactMissingError(f"{url} cannot be read: S3 says {error_code(error)}") from None
        raise
    if evaluation is None:
        raise artifacts.ArtifactMissingError(f"{url} has no evaluation.json")
    return evaluation


def _champion_metric(
    champion_url: str | None, candidate: Candidate, settings: Settings
) -> artifacts.PrimaryMetric | None:
    """The champion's primary metric; None (the floor alone decides) when there is no champion or it is unreadable.

    An unreadable champion (no evaluation, NaN, out of its domain, gone) is told to the operator: the candidate is
    judged without the comparison that protects the endpoint from a worse model.
    """
    if not champion_url:
        return None
    try:
        return artifacts.primary_metric(_model_evaluation(champion_url), where=f"{champion_url} evaluation.json")
    except artifacts.ArtifactError as error:
        problem = str(error)
    logger.warning("champion evaluation unreadable; the floor alone decides", extra={"error": problem})
    notify(
        settings.operator_topic_arn,
        f"sagecycle {settings.stage}: champion metric unreadable; {candidate.run} judged on the floor alone",
        {
            "event": "champion-metric-unreadable",
            "stage": settings.stage,
            "champion": champion_url,
            "problem": problem,
            "job_name": candidate.run,
            "training_job": candidate.job_name,
            "metric_floor": settings.policy.metric_floor,
        },
    )
    return None


def evaluate_candidate(candidate: Candidate, settings: Settings, now: datetime) -> dict[str, Any]:
    """Compare with the champion, register (approved or rejected), deploy if approved; recorded on the run.

    A candidate whose model.tar.gz or evaluation.json is missing is no candidate: the run is recorded Failed and
    the operator told (nothing registered). One whose evaluation is malformed, non-finite or outside its metric's
    domain is registered Rejected, with the reason.
    """
    job, table = candidate.job_name, settings.runs_table
    run = runs.get_item(table, runs.run_key(candidate.run)) or {}
    if run.get("decision") or (run.get("status") == RUN_FAILED and run.get("notified")):
        logger.info("duplicate event for a candidate already decided", extra={"job_name": candidate.run})
        return {"job_name": candidate.run, "decision": run.get("decision") or "failed", "duplicate": True}
    candidate_eval: dict[str, Any] | None = None
    try:
        candidate = _candidate_model_url(candidate)
        candidate_eval = _model_evaluation(str(candidate.model_data_url))
        primary = artifacts.primary_metric(candidate_eval, where=f"{candidate.model_data_url} evaluation.json")
    except artifacts.ArtifactMissingError as error:
        details = {"training_job": job, "tuning_job": candidate.tuning_job, "model_data_url": candidate.model_data_url}
        return _report_end(candidate.run, RUN_FAILED, str(error), settings, now, what="candidate", details=details)
    except artifacts.ArtifactError as error:
        verdict = Verdict(False, f"candidate not evaluable: {error}", "", None, None, None)
        champion_url = artifacts.champion_url(settings.champion_parameter)
    else:
        champion_url = artifacts.champion_url(settings.champion_parameter)
        verdict = decide_promotion(
            primary,
            _champion_metric(champion_url, candidate, settings),
            metric_floor=settings.policy.metric_floor,
            tolerance=settings.policy.tolerance,
        )
    model_url = str(candidate.model_data_url)
    logger.info(
        "candidate decided",
        extra={
            "job_name": job,
            "tuning_job": candidate.tuning_job,
            "approved": verdict.approved,
            "reason": verdict.reason,
            "model_data_url": model_url,
        },
    )
    package_arn = register_package(candidate, settings, model_url, candidate_eval, verdict, champion_url, run)
    result: dict[str, Any] = {
        "job_name": candidate.run,
        "decision": "approved" if verdict.approved else "rejected",
        "reason": verdict.reason,
        "model_package_arn": package_arn,
    }
    if candidate.tuning_job:
        result["best_training_job"] = job
    if verdict.approved:
        result["deployment"] = deploy_candidate(candidate, model_url, package_arn, champion_url, settings, now)
    else:
        notify(
            settings.operator_topic_arn,
            f"sagecycle {settings.stage}: candidate rejected: {candidate.run}",
            {"event": "candidate-rejected", "stage": settings.stage, **result, "champion": champion_url},
        )
    runs.update_item(
        table,
        runs.run_key(candidate.run),
        set_values={
            "status": "Completed",
            "decision": result["decision"],
            "decision_reason": verdict.reason,
            "model_data_url": model_url,
            "model_package_arn": package_arn,
            "candidate_value": str(verdict.candidate),
            "champion_value": str(verdict.champion),
            "decided_at": epoch(now),
        },
    )
    return result


def register_package(
    candidate: Candidate,
    settings: Settings,
    model_url: str,
    evaluation: Mapping[str, Any] | None,
    verdict: Verdict,
    champion_url: str | None,
    run: Mapping[str, Any],
) -> str:
    """CreateModelPackage: every candidate is registered, approved or rejected, with the reason."""
    job = candidate.job_name
    model = build_model(settings.training, model_name=job, model_data_url=model_url, run_id=job)
    container = {k: model["PrimaryContainer"][k] for k in ("Image", "ModelDataUrl", "Environment")}
    endpoint = settings.training.endpoint
    inference: dict[str, Any] = {
        "Containers": [container],
        "SupportedContentTypes": CONTENT_TYPES,
        "SupportedResponseMIMETypes": CONTENT_TYPES,
    }
    if not endpoint.serverless:
        inference["SupportedRealtimeInferenceInstanceTypes"] = [endpoint.instance_type]
    inference["SupportedTransformInstanceTypes"] = [settings.training.transform.instance_type]
    metadata = _metadata(
        {
            "training-job": job,
            "tuning-job": candidate.tuning_job,
            "decision": "approved" if verdict.approved else "rejected",
            "reason": verdict.reason,
            "primary-metric": verdict.metric or None,
            "candidate-value": verdict.candidate,
            "champion-value": verdict.champion,
            "champion-model": champion_url,
            "metric-floor": settings.policy.metric_floor,
            "tolerance": settings.policy.tolerance,
            "run-reason": run.get("reason"),
            "trigger": run.get("trigger"),
            **{f"test-{k}": v for k, v in _split_metrics(evaluation, "test").items()},
            **{f"validation-{k}": v for k, v in _split_metrics(evaluation, "validation").items()},
        }
    )
    params: dict[str, Any] = {
        "ModelPackageGroupName": settings.model_package_group,
        "ModelPackageDescription": sanitize_tag_text(f"{job}: {verdict.reason}", 1000),
        "InferenceSpecification": inference,
        "ModelApprovalStatus": "Approved" if verdict.approved else "Rejected",
        "CustomerMetadataProperties": metadata,
        "ClientToken": client_token("package", job),
    }
    if candidate.job_arn:
        params["MetadataProperties"] = {"GeneratedBy": candidate.job_arn}
    statistics = _put_evaluation(model_url, evaluation)
    if statistics:
        params["ModelMetrics"] = {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": statistics}}
        }
    arn = str(client("sagemaker").create_model_package(**params)["ModelPackageArn"])
    logger.info("model package registered", extra={"job_name": job, "model_package_arn": arn})
    return arn


def deploy_candidate(
    candidate: Candidate,
    model_url: str,
    package_arn: str,
    champion_url: str | None,
    settings: Settings,
    now: datetime,
) -> str:
    """CreateModel, CreateEndpointConfig, and the guarded UpdateEndpoint (or a queued one if busy).

    Model and endpoint config are named after the training job that wrote the model (a tuning job's best).
    """
    job = candidate.job_name
    create_model_and_config(settings.training, name=job, model_data_url=model_url, run_id=job)
    champion = _champion_record(settings)
    record: Deployment = {
        "kind": "promotion",
        "endpoint_config_name": job,
        "model_data_url": model_url,
        "model_package_arn": package_arn,
        "previous_model_data_url": champion_url,
        "previous_package_arn": champion.get("package_arn") if champion.get("model_data_url") == champion_url else None,
        "training_job": job,
        "run": candidate.run,
        "started_at": epoch(now),
        "started_at_iso": iso(now),
    }
    if candidate.tuning_job:
        record["tuning_job"] = candidate.tuning_job
    endpoint = describe_endpoint(settings.endpoint_name)
    if endpoint is None:
        # Nothing serves yet: the approved candidate becomes the champion the endpoint will be created from.
        logger.warning("endpoint does not exist; champion set without a deployment", extra={"job_name": job})
        runs.put_item(settings.runs_table, runs.deployment_key(job), {**record, "status": "no-endpoint"})
        set_champion({**record, "status": "no-endpoint"}, settings, now)
        return "no-endpoint"
    pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    if job in (endpoint.get("EndpointConfigName"), pending):
        status = "pending"  # an earlier attempt already started this update
    elif endpoint.get("EndpointStatus") in BUSY_STATES:
        status = "queued"
        logger.warning(
            "endpoint busy; deployment queued", extra={"job_name": job, "endpoint": endpoint.get("EndpointStatus")}
        )
    else:
        start_update(job, settings)
        status = "pending"
    record_started(settings.runs_table, {**record, "status": status})
    return status


def start_update(endpoint_config_name: str, settings: Settings) -> None:
    update_endpoint(
        settings.training,
        endpoint_name=settings.endpoint_name,
        endpoint_config_name=endpoint_config_name,
        alarm_names=settings.rollback_alarms,
    )
    logger.info("endpoint update started", extra={"endpoint_config": endpoint_config_name})


# ------------------------------------------------------------------------------------ endpoint events


def handle_endpoint(change: EndpointChange, settings: Settings, now: datetime) -> dict[str, Any]:
    if change.endpoint_name != settings.endpoint_name:
        return {"ignored": f"endpoint {change.endpoint_name} is not ours"}
    table = settings.runs_table
    pointer = runs.get_item(table, runs.DEPLOYMENT)
    if not pointer:
        return reassert_champion(settings, now)
    config = str(pointer["endpoint_config_name"])
    deployment = runs.get_item(table, runs.deployment_key(config))
    if not deployment:
        logger.error("deployment pointer without a record; clearing it", extra={"endpoint_config": config})
        runs.delete_item(table, runs.DEPLOYMENT)
        return {"ignored": "dangling deployment pointer"}
    endpoint = describe_endpoint(settings.endpoint_name)
    if endpoint is None:
        logger.error("endpoint vanished during a deployment", extra={"endpoint_config": config})
        return finish_deployment(deployment, "failed", "the endpoint no longer exists", settings, now)
    if deployment.get("status") == "queued":
        if endpoint.get("EndpointStatus") == "InService":
            start_update(config, settings)
            runs.update_item(
                table, runs.deployment_key(config), set_values={"status": "pending", "started_at": epoch(now)}
            )
            return {"endpoint_config": config, "deployment": "started"}
        return {"endpoint_config": config, "deployment": "queued"}
    outcome = deployment_outcome(deployment, endpoint)
    if outcome == "in_progress":
        logger.info(
            "deployment in progress", extra={"endpoint_config": config, "status": endpoint.get("EndpointStatus")}
        )
        return {"endpoint_config": config, "deployment": "in_progress"}
    reason = str(endpoint.get("FailureReason") or "")
    if outcome == "rolled_back" and not reason:
        reason = f"deployment rolled back: the endpoint serves {endpoint.get('EndpointConfigName')} again"
    return finish_deployment(deployment, outcome, reason, settings, now)


def reassert_champion(settings: Settings, now: datetime) -> dict[str, Any]:
    """Outside our own deployments, the endpoint must still serve the champion.

    A CloudFormation update that fails rolls the endpoint back to the model CloudFormation made last, which
    may be older than a champion promoted since; a manual UpdateEndpoint can do the same. When the endpoint
    is InService on another model, the champion goes back in through the same guarded update, at most once
    per champion per REASSERT_WINDOW, so a champion that keeps failing cannot make a loop.
    """
    endpoint = describe_endpoint(settings.endpoint_name)
    if endpoint is None or endpoint.get("EndpointStatus") != "InService":
        return {"ignored": "no deployment in flight"}
    champion = artifacts.champion_url(settings.champion_parameter)
    serving = artifacts.serving_model_url(endpoint)
    if champion is None or serving is None or serving == champion:
        return {"ignored": "the endpoint serves the champion"}
    claimed = runs.put_item(
        settings.runs_table,
        runs.reassert_key(champion),
        {"serving_was": serving, "at": epoch(now), "expires_at": epoch(now + REASSERT_WINDOW)},
        condition="attribute_not_exists(pk) OR expires_at < :now",
        values={":now": epoch(now)},
    )
    context = {"endpoint": settings.endpoint_name, "champion": champion, "serving": serving}
    if not claimed:
        logger.error("endpoint still off the champion after a re-deployment; not retrying", extra=context)
        return {"ignored": "champion already re-deployed in this window", **context}
    name = resource_name(f"{settings.training.job_name_prefix}-ch", champion, max_length=63)
    create_model_and_config(settings.training, name=name, model_data_url=champion, run_id=name)
    record: Deployment = {
        "kind": "reassert",
        "endpoint_config_name": name,
        "model_data_url": champion,
        "replaced_model_data_url": serving,
        "status": "pending",
        "started_at": epoch(now),
        "started_at_iso": iso(now),
    }
    record_started(settings.runs_table, record)
    start_update(name, settings)
    logger.warning("endpoint was serving another model; champion re-deployed", extra=context)
    notify(
        settings.operator_topic_arn,
        f"sagecycle {settings.stage}: endpoint was off the champion - re-deploying it",
        {"event": "champion-reasserted", "stage": settings.stage, **context, "endpoint_config": name},
    )
    return {"endpoint_config": name, "deployment": "reassert", **context}


def finish_deployment(
    deployment: Mapping[str, Any], outcome: str, reason: str, settings: Settings, now: datetime
) -> dict[str, Any]:
    table = settings.runs_table
    config = str(deployment["endpoint_config_name"])
    package = deployment.get("model_package_arn")
    if outcome == "succeeded":
        set_champion(deployment, settings, now)
        rejected = deployment.get("rolled_back_package_arn")
        if deployment.get("kind") == "rollback" and rejected:
            client("sagemaker").update_model_package(
                ModelPackageArn=rejected,
                ModelApprovalStatus="Rejected",
                ApprovalDescription=sanitize_tag_text(str(deployment.get("reason") or "rolled back"), 1000),
            )
    else:
        if package and deployment.get("kind") == "promotion":
            client("sagemaker").update_model_package(
                ModelPackageArn=package,
                ModelApprovalStatus="Rejected",
                ApprovalDescription=sanitize_tag_text(reason, 1000) or "deployment failed",
            )
        if not deployment.get("notified"):
            notify(
                settings.operator_topic_arn,
                f"sagecycle {settings.stage}: deployment {outcome.replace('_', ' ')}: {config}",
                {
                    "event": f"deployment-{outcome.replace('_', '-')}",
                    "stage": settings.stage,
                    "endpoint": settings.endpoint_name,
                    "endpoint_config": config,
                    "kind": deployment.get("kind"),
                    "model_data_url": deployment.get("model_data_url"),
                    "model_package_arn": package,
                    "reason": reason,
                },
            )
    runs.update_item(
        table,
        runs.deployment_key(config),
        set_values={
            "status": outcome,
            "finished_at": epoch(now),
            "notified": True,
            **({"reason": reason} if reason else {}),
        },
    )
    run = deployment.get("run") or deployment.get("training_job")  # records before tuning had no "run"
    if run:
        runs.update_item(table, runs.run_key(str(run)), set_values={"deployment": outcome})
    runs.delete_item(
        table,
        runs.DEPLOYMENT,
        condition="endpoint_config_name = :config",
        values={":config": config},
    )
    logger.info("deployment finished", extra={"endpoint_config": config, "outcome": outcome, "reason": reason})
    return {"endpoint_config": config, "deployment": outcome, "reason": reason, "kind": deployment.get("kind")}


def set_champion(deployment: Mapping[str, Any], settings: Settings, now: datetime) -> None:
    """The deployed model becomes the champion.

    A promotion keeps the champion before it as `previous` (parameter and runs table): the rollback target.
    A rollback (to that previous champion) leaves `previous` as it is, so the alarm responder finds the
    endpoint already serving it and never rolls "back" onto the model it just left.
    """
    if deployment.get("kind") == "reassert":
        logger.info("champion back in service", extra={"model_data_url": deployment.get("model_data_url")})
        return  # the champion (and its record) never changed: only the endpoint had strayed
    ssm = client("ssm")
    new_url = str(deployment["model_data_url"])
    current = artifacts.champion_url(settings.champion_parameter)
    record = _champion_record(settings)
    promotion = deployment.get("kind") != "rollback"
    if current != new_url:
        if promotion and current:
            ssm.put_parameter(Name=settings.previous_parameter, Value=current, Type="String", Overwrite=True)
        ssm.put_parameter(Name=settings.champion_parameter, Value=new_url, Type="String", Overwrite=True)
    if promotion:
        package = deployment.get("model_package_arn")
        changed = current != new_url
        previous_url = current if changed else record.get("previous_model_data_url")
        previous_package = deployment.get("previous_package_arn") if changed else record.get("previous_package_arn")
    else:
        same = record.get("previous_model_data_url") == new_url
        package = record.get("previous_package_arn") if same else None
        previous_url, previous_package = record.get("previous_model_data_url"), record.get("previous_package_arn")
    runs.put_item(
        settings.runs_table,
        runs.CHAMPION,
        {
            "model_data_url": new_url,
            "package_arn": package,
            "endpoint_config_name": deployment.get("endpoint_config_name"),
            "previous_model_data_url": previous_url,
            "previous_package_arn": previous_package,
            "since": epoch(now),
            "since_iso": iso(now),
        },
    )
    if package:
        client("sagemaker").update_model_package(
            ModelPackageArn=package,
            CustomerMetadataProperties=_metadata({"champion": "true", "champion-since": iso(now)}),
        )
    logger.info("champion set", extra={"model_data_url": new_url, "previous": current, "kind": deployment.get("kind")})
