"""Typed views of the events the functions receive, parsed once at the edge of each handler.

Shapes (samples in tests/events/):
- S3 object created, as an SQS message body: an S3 event notification (`{"Records": [...]}`, keys
  URL-encoded), the `s3:TestEvent` S3 sends when notifications are configured, an EventBridge
  "Object Created" event (S3 -> EventBridge -> SQS; keys not encoded), or either inside an SNS envelope.
- EventBridge: "Scheduled Event" (aws.events), "CloudWatch Alarm State Change" (aws.cloudwatch),
  "SageMaker Training Job State Change", "SageMaker HyperParameter Tuning Job State Change",
  "SageMaker Endpoint Deployment State Change" and "SageMaker Endpoint State Change" (aws.sagemaker).
  SageMaker's endpoint events spell statuses `IN_SERVICE`, the API `InService`: `normalise_status` maps
  every casing of a status the API knows (`COMPLETED`, `completed`, `Completed`) to the API spelling, for
  training, tuning and endpoint events alike, and the EventBridge rules match statuses ignoring case.
- Optional fields may be missing or present with an explicit `null` (SageMaker's events carry
  `"FailureReason": null`, `"TuningJobArn": null`, `"TrainingEndTime": null`): both read as absent.
- The tuning job event's detail mirrors DescribeHyperParameterTuningJob, but AWS's documented sample and
  schema carry only name, ARN, status, counters, definition and tags: `BestTrainingJob`, `FailureReason`
  and `HyperParameterTuningEndTime` are optional here, and the reader asks DescribeHyperParameterTuningJob
  for what is missing. A tuning job's child training jobs send training job events too, with
  `TuningJobArn` in the detail when SageMaker includes it (DescribeTrainingJob always has it).

A malformed event raises EventShapeError naming the missing field. Stdlib only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import unquote_plus

from lambdas.shared.runtime import parse_time

SOURCE_SCHEDULE: Final = "aws.events"
SOURCE_CLOUDWATCH: Final = "aws.cloudwatch"
SOURCE_SAGEMAKER: Final = "aws.sagemaker"
SOURCE_MANUAL: Final = "sagecycle.manual"  # an operator (sagecycle retrain / rollback, the notebook)
DETAIL_SCHEDULED: Final = "Scheduled Event"
DETAIL_ALARM: Final = "CloudWatch Alarm State Change"
DETAIL_TRAINING_JOB: Final = "SageMaker Training Job State Change"
DETAIL_TUNING_JOB: Final = "SageMaker HyperParameter Tuning Job State Change"
DETAIL_ENDPOINT_DEPLOYMENT: Final = "SageMaker Endpoint Deployment State Change"
DETAIL_ENDPOINT: Final = "SageMaker Endpoint State Change"
DETAIL_MODEL_PACKAGE: Final = "SageMaker Model Package State Change"
TERMINAL_TRAINING_STATES: Final = frozenset({"Completed", "Failed", "Stopped"})
TERMINAL_TUNING_STATES: Final = frozenset({"Completed", "Failed", "Stopped"})


EventShapeCode = Literal["missing-field", "not-a-string", "not-a-timestamp", "not-json", "unsupported-body"]


class EventShapeError(ValueError):
    """The event is not in the shape AWS documents (or an operator's request lacks a field); the message names
    what is missing, `code` says what kind of problem, `field` which field (when there is one)."""

    def __init__(self, message: str, *, code: EventShapeCode, field: str = "") -> None:
        super().__init__(message)
        self.code: EventShapeCode = code
        self.field = field


def _get(mapping: Any, *path: str) -> Any:
    value = mapping
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            raise EventShapeError(f"event has no {'.'.join(path)}", code="missing-field", field=".".join(path))
        value = value[part]
    return value


def _opt(mapping: Any, *path: str) -> Any:
    try:
        return _get(mapping, *path)
    except EventShapeError:
        return None


def _str(mapping: Any, *path: str) -> str:
    value = _get(mapping, *path)
    if not isinstance(value, str) or not value:
        raise EventShapeError(
            f"event field {'.'.join(path)} must be a non-empty string", code="not-a-string", field=".".join(path)
        )
    return value


def _time(mapping: Any, *path: str) -> datetime:
    raw = _get(mapping, *path)
    try:
        return parse_time(str(raw))
    except ValueError:
        raise EventShapeError(
            f"event field {'.'.join(path)} is not a timestamp: {raw!r}", code="not-a-timestamp", field=".".join(path)
        ) from None


def detail_type(event: Mapping[str, Any]) -> tuple[str, str]:
    """(source, detail-type) of an EventBridge event; ("", "") for anything else."""
    return str(event.get("source", "")), str(event.get("detail-type", ""))


# -------------------------------------------------------------------------------------------- S3 objects


@dataclass(frozen=True)
class S3ObjectRef:
    """One created object, as the notification describes it."""

    bucket: str
    key: str  # decoded
    event_time: datetime
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None

    @property
    def ident(self) -> str:
        """What tells two uploads of one key apart, and two deliveries of one upload not."""
        return self.version_id or self.sequencer or (self.etag or "").strip('"') or "unversioned"


def _object_from_record(record: Mapping[str, Any]) -> S3ObjectRef | None:
    if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
        return None
    obj = _get(record, "s3", "object")
    size = obj.get("size")
    return S3ObjectRef(
        bucket=_str(record, "s3", "bucket", "name"),
        key=unquote_plus(_str(record, "s3", "object", "key")),
        event_time=_time(record, "eventTime"),
        size=int(size) if isinstance(size, int) else None,
        etag=obj.get("eTag") or None,
        version_id=obj.get("versionId") or None,
        sequencer=obj.get("sequencer") or None,
    )


def _object_from_eventbridge(event: Mapping[str, Any]) -> S3ObjectRef | None:
    if event.get("detail-type") != "Object Created":
        return None
    obj = _get(event, "detail", "object")
    size = obj.get("size")
    return S3ObjectRef(
        bucket=_str(event, "detail", "bucket", "name"),
        key=_str(event, "detail", "object", "key"),
        event_time=_time(event, "time"),
        size=int(size) if isinstance(size, int) else None,
        etag=obj.get("etag") or None,
        version_id=obj.get("version-id") or None,
        sequencer=obj.get("sequencer") or None,
    )


def s3_objects_from_message(body: str) -> list[S3ObjectRef]:
    """The created objects one SQS message announces; [] for S3's test event and non-create records."""
    try:
        message = json.loads(body)
    except json.JSONDecodeError as error:
        raise EventShapeError(f"SQS body is not JSON: {error}", code="not-json") from None
    if not isinstance(message, Mapping):
        raise EventShapeError("SQS body is not a JSON object", code="not-json")
    if message.get("Type") == "Notification" and isinstance(message.get("Message"), str):
        return s3_objects_from_message(message["Message"])  # S3 -> SNS -> SQS
    if message.get("Event") == "s3:TestEvent":
        return []
    if "Records" in message:
        records = message["Records"]
        if not isinstance(records, list):
            raise EventShapeError("event Records must be a list", code="unsupported-body", field="Records")
        refs = [_object_from_record(r) for r in records if isinstance(r, Mapping)]
        return [r for r in refs if r is not None]
    if message.get("source") == "aws.s3":
        ref = _object_from_eventbridge(message)
        return [ref] if ref else []
    raise EventShapeError(
        "SQS body is neither an S3 notification, an S3 test event nor an EventBridge S3 event", code="unsupported-body"
    )


# ---------------------------------------------------------------------------------------------- alarms


@dataclass(frozen=True)
class AlarmChange:
    event_id: str
    alarm_name: str
    state: str  # ALARM | OK | INSUFFICIENT_DATA
    previous_state: str
    reason: str
    timestamp: datetime
    timestamp_raw: str  # as sent: part of the episode key
    time: datetime
    metrics: tuple[str, ...] = ()  # "Namespace/MetricName" of each metric the alarm watches
    dimensions: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    alarm_rule: str = ""  # composite alarms
    triggering_alarms: tuple[str, ...] = ()  # composite alarms: the children that fired

    @property
    def episode(self) -> str:
        """One ALARM episode: duplicate deliveries of its state change share this, a later episode does not."""
        return f"{self.alarm_name}@{self.timestamp_raw}"


def parse_alarm_event(event: Mapping[str, Any]) -> AlarmChange:
    metrics: list[str] = []
    dimensions: dict[str, str] = {}
    for item in _opt(event, "detail", "configuration", "metrics") or []:
        metric = _opt(item, "metricStat", "metric")
        if isinstance(metric, Mapping):
            metrics.append(f"{metric.get('namespace', '')}/{metric.get('name', '')}")
            dims = metric.get("dimensions")
            if isinstance(dims, Mapping):
                dimensions.update({str(k): str(v) for k, v in dims.items()})
    triggering: list[str] = []
    reason_data = _opt(event, "detail", "state", "reasonData")
    if isinstance(reason_data, str):
        try:
            parsed = json.loads(reason_data)
        except json.JSONDecodeError:
            parsed = {}
        for item in parsed.get("triggeringAlarms", []) if isinstance(parsed, Mapping) else []:
            arn = item.get("arn") if isinstance(item, Mapping) else None
            if isinstance(arn, str):
                triggering.append(arn.rsplit(":alarm:", 1)[-1])
    return AlarmChange(
        event_id=_str(event, "id"),
        alarm_name=_str(event, "detail", "alarmName"),
        state=_str(event, "detail", "state", "value"),
        previous_state=str(_opt(event, "detail", "previousState", "value") or ""),
        reason=str(_opt(event, "detail", "state", "reason") or ""),
        timestamp=_time(event, "detail", "state", "timestamp"),
        timestamp_raw=_str(event, "detail", "state", "timestamp"),
        time=_time(event, "time"),
        metrics=tuple(metrics),
        dimensions=dimensions,
        description=str(_opt(event, "detail", "configuration", "description") or ""),
        alarm_rule=str(_opt(event, "detail", "configuration", "alarmRule") or ""),
        triggering_alarms=tuple(triggering),
    )


# --------------------------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class ScheduledTick:
    event_id: str
    time: datetime
    rule: str


def parse_scheduled_event(event: Mapping[str, Any]) -> ScheduledTick:
    resources = event.get("resources") or [""]
    return ScheduledTick(event_id=_str(event, "id"), time=_time(event, "time"), rule=str(resources[0]))


# ------------------------------------------------------------------------------------------- SageMaker


@dataclass(frozen=True)
class TrainingJobChange:
    event_id: str
    time: datetime
    job_name: str
    job_arn: str
    status: str  # InProgress | Completed | Failed | Stopping | Stopped
    secondary_status: str
    failure_reason: str
    model_data_url: str | None
    tuning_job_arn: str = ""  # set for a tuning job's child (when the event carries it)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_TRAINING_STATES


def parse_training_job_event(event: Mapping[str, Any]) -> TrainingJobChange:
    artifacts = _opt(event, "detail", "ModelArtifacts", "S3ModelArtifacts")
    return TrainingJobChange(
        event_id=_str(event, "id"),
        time=_time(event, "time"),
        job_name=_str(event, "detail", "TrainingJobName"),
        job_arn=str(_opt(event, "detail", "TrainingJobArn") or ""),
        status=normalise_status(_str(event, "detail", "TrainingJobStatus")),
        secondary_status=str(_opt(event, "detail", "SecondaryStatus") or ""),
        failure_reason=str(_opt(event, "detail", "FailureReason") or ""),
        model_data_url=artifacts if isinstance(artifacts, str) and artifacts.startswith("s3://") else None,
        tuning_job_arn=str(_opt(event, "detail", "TuningJobArn") or ""),
    )


@dataclass(frozen=True)
class TuningJobChange:
    event_id: str
    time: datetime
    job_name: str
    job_arn: str
    status: str  # InProgress | Completed | Failed | Stopping | Stopped (API spelling)
    failure_reason: str  # "" when the event does not carry it
    best_training_job: str | None  # BestTrainingJob.TrainingJobName, when the event carries it
    best_training_job_arn: str | None
    end_time: datetime | None  # HyperParameterTuningEndTime, when the event carries it

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_TUNING_STATES


def _optional_time(mapping: Any, *path: str) -> datetime | None:
    """A timestamp that may be absent: epoch milliseconds (number or digits) or ISO-8601."""
    raw = _opt(mapping, *path)
    if isinstance(raw, bool) or raw is None or raw == "":
        return None
    try:
        if isinstance(raw, int | float):
            return datetime.fromtimestamp(raw / 1000, UTC)
        return parse_time(str(raw))
    except (ValueError, OverflowError, OSError):
        raise EventShapeError(
            f"event field {'.'.join(path)} is not a timestamp: {raw!r}", code="not-a-timestamp", field=".".join(path)
        ) from None


def parse_tuning_job_event(event: Mapping[str, Any]) -> TuningJobChange:
    best = _opt(event, "detail", "BestTrainingJob", "TrainingJobName")
    best_arn = _opt(event, "detail", "BestTrainingJob", "TrainingJobArn")
    return TuningJobChange(
        event_id=_str(event, "id"),
        time=_time(event, "time"),
        job_name=_str(event, "detail", "HyperParameterTuningJobName"),
        job_arn=str(_opt(event, "detail", "HyperParameterTuningJobArn") or ""),
        status=normalise_status(_str(event, "detail", "HyperParameterTuningJobStatus")),
        failure_reason=str(_opt(event, "detail", "FailureReason") or ""),
        best_training_job=best if isinstance(best, str) and best else None,
        best_training_job_arn=best_arn if isinstance(best_arn, str) and best_arn else None,
        end_time=_optional_time(event, "detail", "HyperParameterTuningEndTime"),
    )


# Every status DescribeTrainingJob, DescribeHyperParameterTuningJob and DescribeEndpoint can answer.
API_STATUSES: Final = (
    "InProgress",
    "Completed",
    "Failed",
    "Stopping",
    "Stopped",
    "Deleting",
    "DeleteFailed",
    "OutOfService",
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
    "InService",
    "UpdateRollbackFailed",
)
_API_STATUS_BY_FOLDED: Final = {s.lower(): s for s in API_STATUSES}


def normalise_status(status: str) -> str:
    """Any casing of a known status -> the API spelling: `IN_SERVICE`, `in_service`, `InService` -> `InService`.

    An unknown status keeps its words, CamelCased (`SOME_NEW_STATE` -> `SomeNewState`), so it is never taken for
    a terminal state by accident.
    """
    known = _API_STATUS_BY_FOLDED.get(status.replace("_", "").lower())
    if known is not None:
        return known
    if "_" in status or status.isupper() or status.islower():
        return "".join(part.capitalize() for part in status.split("_"))
    return status


@dataclass(frozen=True)
class EndpointChange:
    event_id: str
    detail_type: str
    endpoint_name: str
    endpoint_config_name: str
    status: str  # API spelling
    pending_config_name: str | None


def parse_endpoint_event(event: Mapping[str, Any]) -> EndpointChange:
    return EndpointChange(
        event_id=_str(event, "id"),
        detail_type=_str(event, "detail-type"),
        endpoint_name=_str(event, "detail", "EndpointName"),
        endpoint_config_name=str(_opt(event, "detail", "EndpointConfigName") or ""),
        status=normalise_status(_str(event, "detail", "EndpointStatus")),
        pending_config_name=_opt(event, "detail", "PendingDeploymentSummary", "EndpointConfigName"),
    )


@dataclass(frozen=True)
class PackageChange:
    """A model package's approval changed (published sample: tests/events/aws/sagemaker/). The event is a hint:
    who sent it (`account`) is EventBridge's word; the package's status is DescribeModelPackage's."""

    event_id: str
    account: str  # the account whose registry sent it (EventBridge sets it; a sender cannot choose it)
    package_arn: str
    group: str
    status: str  # Approved | Rejected | PendingManualApproval
    model_data_url: str | None


def parse_model_package_event(event: Mapping[str, Any]) -> PackageChange:
    containers = _opt(event, "detail", "InferenceSpecification", "Containers") or []
    first = containers[0] if isinstance(containers, list) and containers and isinstance(containers[0], dict) else {}
    url = first.get("ModelDataUrl")
    return PackageChange(
        event_id=_str(event, "id"),
        account=_str(event, "account"),
        package_arn=_str(event, "detail", "ModelPackageArn"),
        group=_str(event, "detail", "ModelPackageGroupName"),
        status=_str(event, "detail", "ModelApprovalStatus"),
        model_data_url=url if isinstance(url, str) and url else None,
    )
