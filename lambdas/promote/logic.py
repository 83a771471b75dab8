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

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas.promote.decision import TUNING_CHILD_NAME, Candidate, Verdict, decide_promotion, distrust
from lambdas.promote.registry import register_package
from lambdas.promote.settings import Settings
from lambdas.shared import artifacts, runs
from lambdas.shared.contract import (
    FUNCTIONS,
)
from lambdas.shared.deployments import (
    Deployment,
    champion_record,
    start_promotion,
)
from lambdas.shared.events import TrainingJobChange, TuningJobChange
from lambdas.shared.runtime import client, epoch, error_code, iso
from lambdas.shared.telemetry import notify

logger = Logger(service=FUNCTIONS["promote"], child=True)
UNTRUSTED_NOTICE: Final = timedelta(days=30)  # one operator notice per untrusted job name in this window


# ------------------------------------------------------------------------------------------- candidates

# Reading the candidate's model.tar.gz: S3's "no such object" answers, and 403, which S3 gives instead of 404
# to a role without s3:ListBucket (and for a key policy that refuses us): no retry would make it readable.
UNREADABLE_MODEL_CODES: Final = artifacts.MISSING_OBJECT_CODES | {"AccessDenied", "403"}
RUN_FAILED: Final = "Failed"


def ignore_untrusted(
    job: str, status: str, reason: str, settings: Settings, now: datetime, *, what: str
) -> dict[str, Any]:
    """Leave a job we did not start alone (no registry, no endpoint, no lock release) and tell the operator once."""
    lock = runs.lock_holder(settings.runs_table)
    context = {"job_name": job, "status": status, "reason": reason, "lock_owner": lock["owner"] if lock else None}
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
    run = runs.run(settings.runs_table, job)
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
    run: runs.RunRecord = runs.run(table, run_name) or {}
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
    run = runs.run(settings.runs_table, name)
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
    run: runs.RunRecord = runs.run(table, candidate.run) or {}
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
    if verdict.approved and settings.deploys_candidates:
        result["deployment"] = deploy_candidate(candidate, model_url, package_arn, champion_url, settings, now)
    elif verdict.approved:
        result["deployment"] = "awaiting-approval"
        notify(
            settings.operator_topic_arn,
            f"sagecycle {settings.stage}: candidate awaits approval: {candidate.run}",
            {"event": "candidate-awaits-approval", "stage": settings.stage, **result, "champion": champion_url},
        )
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


def deploy_candidate(
    candidate: Candidate,
    model_url: str,
    package_arn: str,
    champion_url: str | None,
    settings: Settings,
    now: datetime,
) -> str:
    """The guarded blue/green promotion of an approved candidate (or a queued one if the endpoint is busy).

    Model and endpoint config are named after the training job that wrote the model (a tuning job's best).
    """
    job = candidate.job_name
    champion = champion_record(settings)
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
    return start_promotion(settings, record, alarm_names=settings.rollback_alarms, now=now)
