"""The one start function: every trigger ends here, and at most one training (or tuning) job runs at a time.

What starts: one CreateTrainingJob, or, when TRAINING_SETTINGS has `tuning.enabled`, one
CreateHyperParameterTuningJob (`build_tuning_job`) instead, warm-started from the last tuning job that
completed (the promote function records it in the runs table; none on the first run). If SageMaker refuses
that warm start (ValidationException: search space changed too much, parent deleted), the tuning job starts
cold. Everything below applies to both kinds alike; "job" is whichever one runs.

Triggers (parse_trigger):
- new-data: `{"source": "sagecycle.ingest", "trigger": "new-data", "keys": [...], "batch_id": ...}` from ingest;
- schedule: EventBridge "Scheduled Event" (source aws.events);
- alarm: EventBridge "CloudWatch Alarm State Change" of the drift or model-quality alarm, state ALARM only;
- manual: `{"source": "sagecycle.manual", "reason": "...", "request_id": optional}` (the notebook).

Decision (decide, a plain function of trigger, state, policy and time), in this order:
1. new-data and schedule need accepted data newer than the last training start (skip: no-new-data);
   alarm and manual retrain on the data there is.
2. automatic triggers wait `min_interval_minutes` after the last start (skip: interval); manual does not.
3. at most `daily_cap` starts per UTC day, manual included (skip: daily-cap).
4. the lock: a conditional PutItem on `lock#training` (`attribute_not_exists(pk) OR expires_at < :now`),
   owned by the job name, expiring after `lock_ttl_seconds` (skip: locked). The promote function releases
   it when the job ends (a tuning job: its own end, never a child training job's). Under the lock the state
   is read and decided again, and the run is recorded (with the lock it holds) before the job is created:
   promote only trusts a job whose record says so. Any failure before the job exists, of any exception
   type, releases the lock and marks the record FailedToStart (LockGuard).
Duplicates: the whole start runs as a Powertools idempotent function keyed on the trigger id (ingest:
batch_id, EventBridge: event id, alarm: name + state-change timestamp), and the job name is derived from
the same id (`training_job_name` / `tuning_job_name`), so even a replay after the idempotency record expired
fails fast with ResourceInUse instead of starting a second job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas.shared import runs
from lambdas.shared.contract import (
    DRIFT_ALARM_SUFFIX,
    ENV_IDEMPOTENCY_TABLE,
    ENV_RUNS_TABLE,
    ENV_STAGE,
    FUNCTIONS,
    QUALITY_ALARM_SUFFIX,
    alarm_name,
)
from lambdas.shared.events import (
    DETAIL_ALARM,
    DETAIL_SCHEDULED,
    SOURCE_CLOUDWATCH,
    SOURCE_MANUAL,
    SOURCE_SCHEDULE,
    EventShapeError,
    detail_type,
    parse_alarm_event,
    parse_scheduled_event,
)
from lambdas.shared.function_settings import (
    app_from_prefix,
    check_lock_outlives_run,
    retrain_policy,
    training_settings,
)
from lambdas.shared.jobspec import (
    TrainingSpecSettings,
    build_training_job,
    build_tuning_job,
    training_job_name,
    tuning_job_name,
)
from lambdas.shared.policy import RetrainPolicy
from lambdas.shared.runtime import client, env_str, epoch, error_code, iso, parse_time

logger = Logger(service=FUNCTIONS["start_training"], child=True)

SOURCE_INGEST: Final = "sagecycle.ingest"
SKIP_LOCKED: Final = "locked"
SKIP_INTERVAL: Final = "interval"
SKIP_DAILY_CAP: Final = "daily-cap"
SKIP_NO_NEW_DATA: Final = "no-new-data"
RUN_RECORD_KEYS: Final = 20

Kind = Literal["new-data", "schedule", "alarm", "manual"]
JobKind = Literal["training", "tuning"]
RUNNING_STATES: Final = frozenset({"InProgress", "Stopping"})


@dataclass(frozen=True)
class Settings:
    stage: str
    app: str
    runs_table: str
    idempotency_table: str
    training: TrainingSpecSettings
    policy: RetrainPolicy

    @property
    def job_kind(self) -> JobKind:
        return "tuning" if self.training.tuning.enabled else "training"

    @property
    def retrain_alarms(self) -> frozenset[str]:
        return frozenset(alarm_name(self.app, self.stage, s) for s in (DRIFT_ALARM_SUFFIX, QUALITY_ALARM_SUFFIX))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        stage = env_str(ENV_STAGE, environ)
        training = training_settings(environ)
        policy = retrain_policy(environ)
        check_lock_outlives_run(training, policy)
        return cls(
            stage=stage,
            app=app_from_prefix(training.job_name_prefix, stage),
            runs_table=env_str(ENV_RUNS_TABLE, environ),
            idempotency_table=env_str(ENV_IDEMPOTENCY_TABLE, environ),
            training=training,
            policy=policy,
        )


# --------------------------------------------------------------------------------------------- triggers


@dataclass(frozen=True)
class Trigger:
    kind: Kind
    trigger_id: str  # the idempotency key and the run id
    reason: str
    summary: str
    time: str | None = None  # ISO-8601 UTC of the triggering event; names the job's minute
    keys: tuple[str, ...] = ()

    @property
    def event_time(self) -> datetime | None:
        return parse_time(self.time) if self.time else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["keys"] = list(self.keys)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trigger:
        return cls(**{**data, "keys": tuple(data.get("keys", ()))})


@dataclass(frozen=True)
class Ignore:
    """An event this function does not act on (wrong alarm, alarm back to OK, unknown source)."""

    reason: str


def parse_trigger(event: Mapping[str, Any], *, settings: Settings, request_id: str) -> Trigger | Ignore:
    source, kind = detail_type(event)
    if source == SOURCE_INGEST:
        batch = event.get("batch_id")
        if not isinstance(batch, str) or not batch:
            raise EventShapeError("ingest payload needs a batch_id", code="missing-field", field="batch_id")
        keys = tuple(str(k) for k in event.get("keys", []) if isinstance(k, str))
        count = int(event.get("key_count", len(keys)))
        time = event.get("time")
        return Trigger(
            kind="new-data",
            trigger_id=f"ingest:{batch}",
            reason="new-data",
            summary=f"new-data batch {batch[:12]} ({count} file(s))",
            time=iso(parse_time(time)) if isinstance(time, str) and time else None,
            keys=keys[:RUN_RECORD_KEYS],
        )
    if source == SOURCE_SCHEDULE and kind == DETAIL_SCHEDULED:
        tick = parse_scheduled_event(event)
        rule = tick.rule.rsplit("/", 1)[-1] or "schedule"
        return Trigger(
            kind="schedule",
            trigger_id=f"event:{tick.event_id}",
            reason="schedule",
            summary=f"schedule {rule} at {iso(tick.time)}",
            time=iso(tick.time),
        )
    if source == SOURCE_CLOUDWATCH and kind == DETAIL_ALARM:
        alarm = parse_alarm_event(event)
        if alarm.alarm_name not in settings.retrain_alarms:
            return Ignore(f"alarm {alarm.alarm_name} does not trigger retraining")
        if alarm.state != "ALARM":
            return Ignore(f"alarm {alarm.alarm_name} is {alarm.state}; only ALARM retrains")
        return Trigger(
            kind="alarm",
            trigger_id=f"alarm:{alarm.episode}",
            reason=f"alarm:{alarm.alarm_name}",
            summary=f"alarm {alarm.alarm_name} ALARM at {iso(alarm.timestamp)}",
            time=iso(alarm.timestamp),
        )
    if source == SOURCE_MANUAL:
        reason = event.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise EventShapeError("a manual start needs a non-empty reason", code="missing-field", field="reason")
        request = str(event.get("request_id") or request_id)
        return Trigger(
            kind="manual",
            trigger_id=f"manual:{request}",
            reason=f"manual: {reason.strip()}"[:200],
            summary=f"manual request {request}",
        )
    return Ignore(f"unsupported event (source {source!r}, detail-type {kind!r})")


# --------------------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Decision:
    start: bool
    skip_reason: str | None = None  # locked | interval | daily-cap | no-new-data
    detail: str = ""


def decide(trigger: Trigger, state: runs.TrainingState, policy: RetrainPolicy, now: datetime) -> Decision:
    """Whether this trigger may start a training job now (the lock is checked separately)."""
    if trigger.kind in ("new-data", "schedule") and not state.has_new_data:
        return Decision(False, SKIP_NO_NEW_DATA, "no accepted data since the last training started")
    if trigger.kind != "manual" and state.last_started_at is not None:
        elapsed = epoch(now) - state.last_started_at
        wait = policy.min_interval_minutes * 60
        if elapsed < wait:
            return Decision(False, SKIP_INTERVAL, f"last training started {elapsed} s ago; minimum is {wait} s")
    today = now.strftime("%Y-%m-%d")
    started = state.started_on(today)
    if started >= policy.daily_cap:
        return Decision(
            False, SKIP_DAILY_CAP, f"{started} training job(s) started on {today}; cap is {policy.daily_cap}"
        )
    return Decision(True, detail=f"{trigger.kind} trigger accepted")


def job_name_for(trigger: Trigger, settings: Settings) -> str:
    """The training job's name, or the tuning job's (<= 32 characters) when tuning is on."""
    name = tuning_job_name if settings.job_kind == "tuning" else training_job_name
    return name(settings.training.job_name_prefix, trigger.trigger_id, event_time=trigger.event_time)


# ------------------------------------------------------------------------------------------------ start


def _skipped(trigger: Trigger, decision: Decision) -> dict[str, Any]:
    logger.info(
        "trigger skipped",
        extra={"trigger_id": trigger.trigger_id, "skip_reason": decision.skip_reason, "detail": decision.detail},
    )
    return {
        "started": False,
        "skip_reason": decision.skip_reason,
        "detail": decision.detail,
        "trigger": trigger.trigger_id,
    }


def _run_fields(settings: Settings, trigger: Trigger, now: datetime) -> dict[str, Any]:
    return {
        "kind": settings.job_kind,
        "trigger_kind": trigger.kind,
        "reason": trigger.reason,
        "trigger": trigger.summary,
        "keys": list(trigger.keys),
        "started_at": epoch(now),
        "started_at_iso": iso(now),
    }


def _record_run(settings: Settings, trigger: Trigger, job_name: str, now: datetime) -> bool:
    """The run record, with the lock this start holds (promote trusts only jobs recorded so)."""
    return runs.record_run_starting(
        settings.runs_table,
        job_name=job_name,
        trigger_id=trigger.trigger_id,
        now=now,
        lock_ttl_seconds=settings.policy.lock_ttl_seconds,
        fields=_run_fields(settings, trigger, now),
    )


class LockGuard:
    """Gives the training lock back when anything fails before the job is known to run under it.

    Any exception, of any type (ClientError, a botocore connection or timeout error, a parameter validation
    error, a bug of ours), leaves the `with` block through `__exit__`, which releases the lock and marks a
    recorded start FailedToStart, unless `keep()` was called (the job exists and owns the lock now). A failure
    of the release itself is logged, never raised over the error that caused it (the lock then expires).
    """

    def __init__(self, settings: Settings, job_name: str, now: datetime) -> None:
        self.settings, self.job_name, self.now = settings, job_name, now
        self.kept = False

    def keep(self) -> None:
        self.kept = True

    def __enter__(self) -> LockGuard:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: object) -> None:
        if kind is None or self.kept:
            return
        table, job = self.settings.runs_table, self.job_name
        reason = f"{kind.__name__}: {error}"
        try:
            runs.mark_run_failed_to_start(table, job_name=job, reason=reason, now=self.now)
        except Exception:
            logger.exception("could not mark the run FailedToStart", extra={"job_name": job})
        try:
            released = runs.release_lock(table, owner=job)
        except Exception:
            expires = epoch(self.now) + self.settings.policy.lock_ttl_seconds
            logger.exception(
                "starting the job failed and the lock could not be released; it expires on its own",
                extra={"job_name": job, "lock_expires_at": expires},
            )
            return
        logger.error(
            f"starting the {self.settings.job_kind} job failed; lock released",
            extra={"job_name": job, "error_type": kind.__name__, "error": str(error), "released": released},
        )


def _create_job(trigger: Trigger, settings: Settings) -> dict[str, Any]:
    """CreateTrainingJob, or CreateHyperParameterTuningJob when tuning is on; returns what the run record adds."""
    common: dict[str, Any] = {
        "run_id": trigger.trigger_id,
        "reason": trigger.reason,
        "trigger": trigger.summary,
        "event_time": trigger.event_time,
    }
    sagemaker = client("sagemaker")
    if settings.job_kind == "training":
        sagemaker.create_training_job(**build_training_job(settings.training, **common))
        return {}
    parent = runs.last_completed_tuning_job(settings.runs_table)
    try:
        sagemaker.create_hyper_parameter_tuning_job(
            **build_tuning_job(settings.training, **common, warm_start_parent=parent)
        )
    except ClientError as error:
        if parent is None or error_code(error) != "ValidationException":
            raise
        # A parent whose search space no longer fits (or that was deleted) must not wedge retraining.
        logger.warning(
            "warm start refused; starting the tuning job cold", extra={"parent": parent, "error": str(error)}
        )
        sagemaker.create_hyper_parameter_tuning_job(**build_tuning_job(settings.training, **common))
        return {"warm_start_parent": None, "warm_start_refused": f"{parent}: {error}"[:1000]}
    return {"warm_start_parent": parent}


def start_training(trigger: Trigger, settings: Settings, now: datetime) -> dict[str, Any]:
    """Decide, lock, record, start the job (training or tuning). Returns what happened (also the idempotent
    response). From the lock on, every failure until the job exists gives the lock back (LockGuard)."""
    table = settings.runs_table
    decision = decide(trigger, runs.read_training_state(table), settings.policy, now)
    if not decision.start:
        return _skipped(trigger, decision)
    job_name = job_name_for(trigger, settings)
    if not runs.acquire_lock(
        table, owner=job_name, trigger_id=trigger.trigger_id, now=now, ttl_seconds=settings.policy.lock_ttl_seconds
    ):
        holder = runs.lock_holder(table)
        owner = holder["owner"] if holder else "?"
        return _skipped(trigger, Decision(False, SKIP_LOCKED, f"job {owner} holds the lock"))
    kind = settings.job_kind
    with LockGuard(settings, job_name, now) as guard:
        state = runs.read_training_state(table)  # again, under the lock: another start may have just finished
        decision = decide(trigger, state, settings.policy, now)
        if not decision.start:
            runs.release_lock(table, owner=job_name)
            guard.keep()  # released on purpose
            return _skipped(trigger, decision)
        recorded = _record_run(settings, trigger, job_name, now)
        try:
            extra = _create_job(trigger, settings)
        except ClientError as error:
            if error_code(error) != "ResourceInUse":
                raise
            return _already_started(trigger, settings, job_name, state, now, guard, recorded=recorded)
        guard.keep()  # the job exists: the lock is its own until promote releases it
    runs.record_training_started(table, job_name=job_name, now=now, state=state)
    runs.update_item(table, runs.run_key(job_name), set_values={"status": runs.RUN_IN_PROGRESS, **extra})
    logger.info(
        f"{kind} job started",
        extra={"job_name": job_name, "reason": trigger.reason, "trigger": trigger.summary, **extra},
    )
    return {
        "started": True,
        "job_name": job_name,
        "kind": kind,
        "reason": trigger.reason,
        "trigger": trigger.trigger_id,
    }


def _job_status(settings: Settings, job_name: str) -> str:
    sagemaker = client("sagemaker")
    if settings.job_kind == "tuning":
        described = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=job_name)
        return str(described["HyperParameterTuningJobStatus"])
    return str(sagemaker.describe_training_job(TrainingJobName=job_name)["TrainingJobStatus"])


def _already_started(
    trigger: Trigger,
    settings: Settings,
    job_name: str,
    state: runs.TrainingState,
    now: datetime,
    guard: LockGuard,
    *,
    recorded: bool,
) -> dict[str, Any]:
    """This trigger's job exists already (a replay after the idempotency record expired).

    A failure while asking SageMaker about it leaves through the guard, which gives the lock back.
    """
    status = _job_status(settings, job_name)
    table = settings.runs_table
    if status in RUNNING_STATES:
        # The lock we hold names this very job: keep it, and make sure the run is on record.
        guard.keep()
        if recorded:
            runs.record_training_started(table, job_name=job_name, now=now, state=state)
            runs.update_item(table, runs.run_key(job_name), set_values={"status": runs.RUN_IN_PROGRESS})
    else:
        if recorded:  # no record was left from the first start: this one says how the job ended
            runs.update_item(table, runs.run_key(job_name), set_values={"status": status})
        runs.release_lock(table, owner=job_name)
        guard.keep()  # released on purpose
    logger.info(
        f"{settings.job_kind} job for this trigger exists already", extra={"job_name": job_name, "status": status}
    )
    return {"started": False, "duplicate": True, "job_name": job_name, "trigger": trigger.trigger_id}
