"""The runs table (RUNS_TABLE): the training lock, run and deployment records, counters and watermarks.

One DynamoDB table: partition key `pk` (String), sort key `sk` (String), TTL attribute `expires_at`
(epoch seconds; only lock, object and rollback items carry it). Items, as (pk, sk):

    (lock, training)                 the one-training-at-a-time lock: owner (= training or tuning job
                                     name), trigger_id, acquired_at, expires_at (lock TTL)
    (state, new-data)                last_accepted_at, last_accepted_key, accepted_files (counter)
    (state, training)                last_started_at, last_job, day (UTC YYYY-MM-DD), day_count
    (state, tuning)                  last_completed_job, completed_at: the next tuning job's warm-start parent
    (state, deployment)              the endpoint update in flight: endpoint_config_name
    (state, champion)                model_data_url, package_arn, previous_model_data_url, previous_package_arn
    (state, drift)                   capture watermark: last_modified_ms, last_key
    (object#<bucket>/<key>, <ident>) one ingested upload (ident = versionId, else sequencer, else ETag):
                                     status processing|accepted|quarantined|missing, destination, sha256;
                                     missing: why (version-deleted|object-deleted|object-replaced)
    (run, <training job name>)       the run: kind training|tuning, trigger_id, trigger_kind, reason, trigger
    (run, <tuning job name>)         summary, started_at, status, decision, ... (tuning: warm_start_parent
                                     and the best training job, whose model was the candidate)
                                     (training job names start with <prefix>-<yymmdd-HHMM>: a Query reads
                                     them in order; tuning job names are too short for the time stamp)
                                     Written by the start function under the lock, before the job is created
                                     (status Starting, then InProgress; FailedToStart when the create failed),
                                     with lock_acquired_at / lock_expires_at: the proof promote asks for
                                     before a job may become a candidate.
    (untrusted, <job name>)          a job with our name prefix but no run record: the operator was told once
    (deployment, <endpoint config>)  one endpoint update: kind promotion|rollback, model_data_url, status
    (rollback, <alarm>@<timestamp>)  the alarm responder's at-most-once marker per alarm episode

Times are epoch seconds (int) unless named `*_ms`. Stdlib + boto3 only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NotRequired, TypedDict, cast

from botocore.exceptions import ClientError

from lambdas.shared.runtime import client, epoch, error_code

Key = tuple[str, str]

LOCK: Final[Key] = ("lock", "training")
NEW_DATA: Final[Key] = ("state", "new-data")
TRAINING: Final[Key] = ("state", "training")
DEPLOYMENT: Final[Key] = ("state", "deployment")
CHAMPION: Final[Key] = ("state", "champion")
DRIFT: Final[Key] = ("state", "drift")
TUNING: Final[Key] = ("state", "tuning")


class LockRecord(TypedDict):
    """(lock, training): who holds the one-training-at-a-time lock, for which trigger, until when."""

    owner: str
    trigger_id: str
    acquired_at: int
    expires_at: int


class ChampionRecord(TypedDict, total=False):
    """(state, champion): the model the endpoint serves (or, in a build account, the registry's approved one),
    its package, and the one before it (the rollback target). Written by deployments.set_champion."""

    model_data_url: str
    package_arn: str | None
    source_model_data_url: str | None  # a package approved in another account: where its artifact came from
    endpoint_config_name: str | None
    previous_model_data_url: str | None
    previous_package_arn: str | None
    since: int
    since_iso: str


class RunRecord(TypedDict, total=False):
    """(run, <job>): one training or tuning run, from its start (start-training, under the lock) to the decision
    on its candidate (promote). The start function adds its trigger's fields (kind, trigger_kind, reason, ...)."""

    job_name: str
    trigger_id: str
    status: str  # Starting | InProgress | FailedToStart | Completed | Failed | Stopped
    lock_acquired_at: int
    lock_expires_at: int
    reason: str
    trigger: str
    decision: NotRequired[str]  # approved | rejected
    decision_reason: str
    model_data_url: str
    model_package_arn: str
    deployment: str
    failure_reason: str
    notified: bool
    finished_at: int


def run_key(job_name: str) -> Key:
    return ("run", job_name)


def deployment_key(endpoint_config_name: str) -> Key:
    return ("deployment", endpoint_config_name)


def object_key(bucket: str, key: str, ident: str) -> Key:
    return (f"object#{bucket}/{key}", ident)


def untrusted_key(job_name: str) -> Key:
    return ("untrusted", job_name)


def rollback_key(episode: str) -> Key:
    return ("rollback", episode)


def reassert_key(model_data_url: str) -> Key:
    """One re-deployment of a given champion per window (see promote.reassert_champion)."""
    return ("reassert", model_data_url)


# --------------------------------------------------------------------------------------------- marshal


def to_attr(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def from_attr(attr: Mapping[str, Any]) -> Any:
    ((kind, value),) = attr.items()
    if kind == "S":
        return value
    if kind == "N":
        number = float(value)
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "L":
        return [from_attr(v) for v in value]
    if kind == "M":
        return {k: from_attr(v) for k, v in value.items()}
    if kind == "SS":
        return sorted(value)
    raise TypeError(f"unsupported DynamoDB type {kind}")


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_attr(v) for k, v in values.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: from_attr(v) for k, v in item.items()}


# ----------------------------------------------------------------------------------------- operations


def _conditional_failed(error: ClientError) -> bool:
    return error_code(error) == "ConditionalCheckFailedException"


def _key(key: Key) -> dict[str, Any]:
    return {"pk": {"S": key[0]}, "sk": {"S": key[1]}}


def _write(
    operation: str,
    params: dict[str, Any],
    condition: str | None,
    names: Mapping[str, str] | None,
    values: Mapping[str, Any] | None,
) -> bool:
    """One conditional write (put_item, update_item, delete_item); False when `condition` does not hold."""
    if condition:
        params["ConditionExpression"] = condition
    if names:
        params["ExpressionAttributeNames"] = dict(names)
    if values:
        params["ExpressionAttributeValues"] = to_item(values)
    try:
        getattr(client("dynamodb"), operation)(**params)
    except ClientError as error:
        if condition and _conditional_failed(error):
            return False
        raise
    return True


def get_item(table: str, key: Key) -> dict[str, Any] | None:
    response = client("dynamodb").get_item(TableName=table, Key=_key(key), ConsistentRead=True)
    item = response.get("Item")
    return from_item(item) if item else None


def put_item(
    table: str,
    key: Key,
    item: Mapping[str, Any],
    *,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> bool:
    """PutItem of `item` under `key`; False when `condition` does not hold (nothing written)."""
    params: dict[str, Any] = {"TableName": table, "Item": {**to_item(item), **_key(key)}}
    return _write("put_item", params, condition, names, values)


def update_item(
    table: str,
    key: Key,
    *,
    set_values: Mapping[str, Any] | None = None,
    add_values: Mapping[str, int] | None = None,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> bool:
    """SET and ADD attributes (names aliased, so reserved words are fine); False when `condition` fails."""
    expr_names: dict[str, str] = dict(names or {})
    expr_values: dict[str, Any] = dict(values or {})
    clauses: list[str] = []
    sets = []
    for i, (name, value) in enumerate((set_values or {}).items()):
        expr_names[f"#s{i}"] = name
        expr_values[f":s{i}"] = value
        sets.append(f"#s{i} = :s{i}")
    if sets:
        clauses.append("SET " + ", ".join(sets))
    adds = []
    for i, (name, amount) in enumerate((add_values or {}).items()):
        expr_names[f"#a{i}"] = name
        expr_values[f":a{i}"] = amount
        adds.append(f"#a{i} :a{i}")
    if adds:
        clauses.append("ADD " + ", ".join(adds))
    params: dict[str, Any] = {"TableName": table, "Key": _key(key), "UpdateExpression": " ".join(clauses)}
    return _write("update_item", params, condition, expr_names, expr_values)


def delete_item(
    table: str,
    key: Key,
    *,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> bool:
    params: dict[str, Any] = {"TableName": table, "Key": _key(key)}
    return _write("delete_item", params, condition, names, values)


# ----------------------------------------------------------------------------------------------- lock


def acquire_lock(table: str, *, owner: str, trigger_id: str, now: datetime, ttl_seconds: int) -> bool:
    """Take the training lock unless someone holds an unexpired one (conditional PutItem)."""
    at = epoch(now)
    item = {"owner": owner, "trigger_id": trigger_id, "acquired_at": at, "expires_at": at + ttl_seconds}
    return put_item(
        table,
        LOCK,
        item,
        condition="attribute_not_exists(pk) OR expires_at < :now",
        values={":now": at},
    )


def release_lock(table: str, *, owner: str) -> bool:
    """Free the lock if `owner` still holds it; False when it was free or held by someone else."""
    return delete_item(table, LOCK, condition="#owner = :owner", names={"#owner": "owner"}, values={":owner": owner})


def lock_holder(table: str) -> LockRecord | None:
    return cast(LockRecord | None, get_item(table, LOCK))


def champion(table: str) -> ChampionRecord | None:
    return cast(ChampionRecord | None, get_item(table, CHAMPION))


def run(table: str, job_name: str) -> RunRecord | None:
    return cast(RunRecord | None, get_item(table, run_key(job_name)))


# ------------------------------------------------------------------------------------------------ runs

RUN_STARTING: Final = "Starting"  # recorded, under the lock; the job is being created
RUN_IN_PROGRESS: Final = "InProgress"  # the job exists and runs under the lock
RUN_FAILED_TO_START: Final = "FailedToStart"  # creating the job failed; the lock was given back


def record_run_starting(
    table: str,
    *,
    job_name: str,
    trigger_id: str,
    now: datetime,
    lock_ttl_seconds: int,
    fields: Mapping[str, Any],
) -> bool:
    """The run record, written under the lock before its job is created, with the lock it holds.

    A record that exists already is left alone (a replay of the same trigger: the first start's record, and
    any decision on it, stay), unless its start failed: a retry records its own attempt. False when left alone.
    """
    at = epoch(now)
    item = {
        **fields,
        "job_name": job_name,
        "trigger_id": trigger_id,
        "status": RUN_STARTING,
        "lock_acquired_at": at,
        "lock_expires_at": at + lock_ttl_seconds,
    }
    return put_item(
        table,
        run_key(job_name),
        item,
        condition="attribute_not_exists(pk) OR #status = :failed",
        names={"#status": "status"},
        values={":failed": RUN_FAILED_TO_START},
    )


def mark_run_failed_to_start(table: str, *, job_name: str, reason: str, now: datetime) -> bool:
    """A recorded start whose job could not be created; nothing is written when there is no Starting record."""
    return update_item(
        table,
        run_key(job_name),
        set_values={"status": RUN_FAILED_TO_START, "failure_reason": reason[:1000], "finished_at": epoch(now)},
        condition="#st = :starting",
        names={"#st": "status"},
        values={":starting": RUN_STARTING},
    )


def held_lock(run: Mapping[str, Any], lock: Mapping[str, Any] | None, job_name: str) -> bool:
    """Whether the run's job holds the training lock now, or its record shows it took the lock to start.

    Holding: the lock names the job and the same trigger as the record. Having held: the start function wrote
    the lock it acquired into the record (records older than that must hold the lock now).
    """
    trigger_id = run.get("trigger_id")
    if lock and lock.get("owner") == job_name and trigger_id and lock.get("trigger_id") == trigger_id:
        return True
    return bool(trigger_id) and isinstance(run.get("lock_acquired_at"), int)


# ------------------------------------------------------------------------------------- training state


@dataclass(frozen=True)
class TrainingState:
    """What the start decision needs to know, read from two items."""

    last_accepted_at: int | None = None
    last_started_at: int | None = None
    last_job: str | None = None
    day: str | None = None
    day_count: int = 0

    def started_on(self, day: str) -> int:
        return self.day_count if self.day == day else 0

    @property
    def has_new_data(self) -> bool:
        """Accepted data arrived after the last training started (or no training ever started)."""
        if self.last_accepted_at is None:
            return False
        return self.last_started_at is None or self.last_accepted_at > self.last_started_at


def read_training_state(table: str) -> TrainingState:
    data = get_item(table, NEW_DATA) or {}
    training = get_item(table, TRAINING) or {}
    return TrainingState(
        last_accepted_at=data.get("last_accepted_at"),
        last_started_at=training.get("last_started_at"),
        last_job=training.get("last_job"),
        day=training.get("day"),
        day_count=int(training.get("day_count", 0)),
    )


def record_training_started(table: str, *, job_name: str, now: datetime, state: TrainingState) -> None:
    """Move the interval clock and the daily counter; called under the lock, so read-modify-write is safe."""
    day = now.strftime("%Y-%m-%d")
    update_item(
        table,
        TRAINING,
        set_values={
            "last_started_at": epoch(now),
            "last_job": job_name,
            "day": day,
            "day_count": state.started_on(day) + 1,
        },
    )


def record_accepted(table: str, *, key: str, now: datetime) -> None:
    """Note that new training data arrived (the schedule trains only when it did)."""
    update_item(
        table,
        NEW_DATA,
        set_values={"last_accepted_at": epoch(now), "last_accepted_key": key},
        add_values={"accepted_files": 1},
    )


# --------------------------------------------------------------------------------------- tuning state


def last_completed_tuning_job(table: str) -> str | None:
    """The newest tuning job that completed (the promote function records it): the next warm-start parent."""
    name = (get_item(table, TUNING) or {}).get("last_completed_job")
    return str(name) if name else None


def record_tuning_completed(table: str, *, job_name: str, completed_at: int) -> bool:
    """Remember a completed tuning job; a late duplicate of an older job's event does not replace a newer one."""
    return update_item(
        table,
        TUNING,
        set_values={"last_completed_job": job_name, "completed_at": completed_at},
        condition="attribute_not_exists(#at) OR #at <= :at",
        names={"#at": "completed_at"},
        values={":at": completed_at},
    )
