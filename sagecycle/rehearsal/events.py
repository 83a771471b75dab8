"""EventBridge for the rehearsal: the synthesized rules, matched and delivered as AWS routes events.

- `EventBus.put(event)` matches the event against every enabled pattern rule of the stage with moto's own
  event-pattern engine (`moto.events.models.EventPattern`, the one moto's PutEvents uses) and delivers it to
  each rule's targets, after the target's `Input` / `InputPath` / `InputTransformer`:
  - a Lambda target is invoked asynchronously (Lambda's async semantics, `Functions.invoke_async`): a failure
    is retried and dead-lettered by Lambda's rules, never raised to whoever put the event. EventBridge needs a
    resource policy allowing it (AWS::Lambda::Permission for events.amazonaws.com and the rule); without one
    the delivery fails and goes to the target's dead-letter queue, as EventBridge does;
  - an SQS target gets the event as a message in the real local queue; the queue's event source mapping
    delivers it to its function by the Lambda poller's rules (`flush`);
  - an SNS target gets the event published to the local topic (whose subscribers include the operators'
    inbox).
- `flush()` does what is due on the simulated clock: the SQS pollers deliver batches (a batch goes when it
  holds `BatchSize` messages or when `MaximumBatchingWindowInSeconds` has passed since its first message),
  delete what succeeded (with `ReportBatchItemFailures`, all but the reported failures) and leave the rest
  invisible for the queue's visibility timeout, so redrive to the dead-letter queue happens after
  `maxReceiveCount` receives; and queued asynchronous invocations run (with their retries).
  `drain()` sleeps the clock through batching windows and retry delays until nothing is left.
- `run_schedules(until)` fires every occurrence of the schedule rules (`rate(...)`, `cron(...)` in UTC, as
  EventBridge evaluates them) between the last run and `until`, as "Scheduled Event"s to their targets.
- Event builders for the shapes AWS documents (samples in tests/events/aws/): `s3_object_created`,
  `training_state_change`, `alarm_state_change`, `scheduled_event`.

Timeline kinds: "event", "rule.match", "rule.delivery_failed", "sqs.batch", "sns.notice", "schedule".
"""

from __future__ import annotations

import calendar
import contextlib
import json
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.functions import Functions
from sagecycle.rehearsal.stage import AlarmDef, LocalStage, MappingDef, QueueDef, RuleDef, TargetDef
from sagecycle.rehearsal.timeline import Timeline

LAMBDA_PAYLOAD_LIMIT: Final = 6 * 1024 * 1024  # a poller's batch never exceeds Lambda's invocation payload
EVENTS_PRINCIPAL: Final = "events.amazonaws.com"


class ScheduleError(ValueError):
    """A schedule expression EventBridge would refuse (or one this rehearsal does not evaluate)."""


# -------------------------------------------------------------------------------------------- event shapes


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _millis(value: Any) -> Any:
    """Timestamps as SageMaker's events carry them: epoch milliseconds."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, list):
        return [_millis(v) for v in value]
    if isinstance(value, dict):
        return {k: _millis(v) for k, v in value.items()}
    return value


def envelope(
    source: str, detail_type: str, detail: Mapping[str, Any], *, account: str, region: str, time: datetime,
    resources: Sequence[str] = (),
) -> dict[str, Any]:  # fmt: skip
    """An EventBridge event as delivered to targets."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": _iso(time),
        "region": region,
        "resources": list(resources),
        "detail": dict(detail),
    }


def s3_object_created(
    bucket: str,
    key: str,
    size: int,
    etag: str,
    version_id: str | None,
    *,
    account: str,
    region: str,
    time: datetime,
    sequencer: str,
    reason: str = "PutObject",
    requester: str | None = None,
    request_id: str | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """S3's "Object Created" event (Amazon S3 User Guide, EventBridge event message structure).

    The key is not URL-encoded (EventBridge events carry it as stored); `version-id` only for versioned buckets.
    """
    obj: dict[str, Any] = {"key": key, "size": int(size), "etag": etag.strip('"')}
    if version_id and version_id != "null":
        obj["version-id"] = version_id
    obj["sequencer"] = sequencer
    detail = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": obj,
        "request-id": request_id or uuid.uuid4().hex[:16].upper(),
        "requester": requester or account,
        "source-ip-address": source_ip,
        "reason": reason,
    }
    return envelope(
        "aws.s3",
        "Object Created",
        detail,
        account=account,
        region=region,
        time=time,
        resources=[f"arn:aws:s3:::{bucket}"],
    )


_TRAINING_FIELDS: Final = (
    "TrainingJobName",
    "TrainingJobArn",
    "TuningJobArn",
    "LabelingJobArn",
    "AutoMLJobArn",
    "ModelArtifacts",
    "TrainingJobStatus",
    "SecondaryStatus",
    "FailureReason",
    "HyperParameters",
    "AlgorithmSpecification",
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "VpcConfig",
    "StoppingCondition",
    "CreationTime",
    "TrainingStartTime",
    "TrainingEndTime",
    "LastModifiedTime",
    "SecondaryStatusTransitions",
    "FinalMetricDataList",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "CheckpointConfig",
    "TrainingTimeInSeconds",
    "BillableTimeInSeconds",
)


def training_state_change(
    describe_training_job: Mapping[str, Any],
    *,
    account: str,
    region: str,
    time: datetime,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """ "SageMaker Training Job State Change": the detail mirrors DescribeTrainingJob (timestamps in epoch
    milliseconds, tags as a map), as the SageMaker Developer Guide's sample shows."""
    detail = {
        k: _millis(describe_training_job[k]) for k in _TRAINING_FIELDS if describe_training_job.get(k) is not None
    }
    if "AlgorithmSpecification" in detail:  # the sample carries the image, algorithm and input mode only
        spec = detail["AlgorithmSpecification"]
        keep = ("TrainingImage", "AlgorithmName", "TrainingInputMode")
        detail["AlgorithmSpecification"] = {k: spec[k] for k in keep if k in spec}
    if detail.get("TrainingJobStatus") != "Failed":
        detail.pop("FailureReason", None)
    if detail.get("TrainingJobStatus") != "Completed":
        detail.pop("ModelArtifacts", None)  # a failed or stopped job has no artifact to announce
    detail["Tags"] = dict(tags or {})
    return envelope(
        "aws.sagemaker",
        "SageMaker Training Job State Change",
        detail,
        account=account,
        region=region,
        time=time,
        resources=[str(describe_training_job["TrainingJobArn"])],
    )


@dataclass(frozen=True)
class AlarmState:
    """One side of an alarm state change: value, reason, reason data (JSON text) and when."""

    value: str
    reason: str
    timestamp: datetime
    reason_data: str | None = None

    def to_event(self) -> dict[str, Any]:
        state: dict[str, Any] = {"value": self.value, "reason": self.reason}
        if self.reason_data is not None:
            state["reasonData"] = self.reason_data
        stamp = self.timestamp.astimezone(UTC)
        state["timestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"
        return state


def alarm_configuration(alarm: AlarmDef) -> dict[str, Any]:
    """The `configuration` of an alarm state-change event (CloudWatch User Guide, alarm events)."""
    spec = alarm.definition
    if alarm.kind == "composite":
        return _drop_none(
            {
                "alarmRule": spec["AlarmRule"],
                "description": spec.get("AlarmDescription"),
                "actionsSuppressor": spec.get("ActionsSuppressor"),
            }
        )
    metrics: list[dict[str, Any]] = []
    if "Metrics" in spec:
        for query in spec["Metrics"]:
            entry: dict[str, Any] = {"id": query["Id"]}
            if "Expression" in query:
                entry["expression"] = query["Expression"]
            if "Label" in query:
                entry["label"] = query["Label"]
            if "MetricStat" in query:
                stat = query["MetricStat"]
                entry["metricStat"] = {
                    "metric": {
                        "dimensions": {d["Name"]: d["Value"] for d in stat["Metric"].get("Dimensions", [])},
                        "name": stat["Metric"]["MetricName"],
                        "namespace": stat["Metric"]["Namespace"],
                    },
                    "period": int(stat["Period"]),
                    "stat": stat["Stat"],
                }
            entry["returnData"] = bool(query.get("ReturnData", True))
            metrics.append(entry)
    else:
        metrics.append(
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.arn)),
                "metricStat": {
                    "metric": {
                        "dimensions": {d["Name"]: d["Value"] for d in spec.get("Dimensions", [])},
                        "name": spec["MetricName"],
                        "namespace": spec["Namespace"],
                    },
                    "period": int(spec["Period"]),
                    "stat": spec.get("ExtendedStatistic") or spec.get("Statistic"),
                },
                "returnData": True,
            }
        )
    return _drop_none({"description": spec.get("AlarmDescription"), "metrics": metrics})


def alarm_state_change(
    alarm: AlarmDef, old: AlarmState, new: AlarmState, *, account: str, region: str
) -> dict[str, Any]:
    """ "CloudWatch Alarm State Change" for a metric, metric-math or composite alarm, at `new.timestamp`."""
    detail = {
        "alarmName": alarm.name,
        "state": new.to_event(),
        "previousState": old.to_event(),
        "configuration": alarm_configuration(alarm),
    }
    return envelope(
        "aws.cloudwatch",
        "CloudWatch Alarm State Change",
        detail,
        account=account,
        region=region,
        time=new.timestamp,
        resources=[alarm.arn],
    )


def scheduled_event(rule: RuleDef, time: datetime, *, account: str, region: str) -> dict[str, Any]:
    """ "Scheduled Event" (EventBridge User Guide): the rule's ARN in `resources`, an empty detail."""
    return envelope(
        "aws.events", "Scheduled Event", {}, account=account, region=region, time=time, resources=[rule.arn]
    )


def _drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


# ------------------------------------------------------------------------------------------- schedules

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_MONTHS: Final = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_WEEKDAYS: Final = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


@dataclass(frozen=True)
class Schedule:
    """A schedule expression: `next_after(moment)` is its first occurrence strictly after `moment` (UTC)."""

    expression: str
    origin: datetime  # when the rule was created: rate() counts from here
    rate: timedelta | None = None
    fields: tuple[Any, ...] = ()

    @classmethod
    def parse(cls, expression: str, origin: datetime) -> Schedule:
        rate = _RATE.match(expression.strip())
        if rate:
            value, unit = int(rate.group(1)), rate.group(2)
            if value <= 0:
                raise ScheduleError(f"{expression}: the rate must be a positive number")
            if (value == 1) != (not unit.endswith("s")):
                raise ScheduleError(f"{expression}: EventBridge wants the singular unit for 1 and the plural otherwise")
            seconds = {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]
            return cls(expression, origin, rate=timedelta(seconds=value * seconds))
        cron = _CRON.match(expression.strip())
        if not cron:
            raise ScheduleError(f"{expression}: not a rate(...) or cron(...) expression")
        parts = cron.group(1).split()
        if len(parts) != 6:
            raise ScheduleError(
                f"{expression}: cron takes six fields (minutes hours day-of-month month day-of-week year)"
            )
        minutes, hours, dom, month, dow, year = parts
        if (dom == "?") == (dow == "?"):
            raise ScheduleError(f"{expression}: exactly one of day-of-month and day-of-week must be '?'")
        return cls(
            expression,
            origin,
            fields=(
                _cron_set(minutes, 0, 59, {}, expression),
                _cron_set(hours, 0, 23, {}, expression),
                None if dom == "?" else _cron_days(dom, expression),
                _cron_set(month, 1, 12, _MONTHS, expression),
                None if dow == "?" else _cron_set(dow, 1, 7, _WEEKDAYS, expression),
                _cron_set(year, 1970, 2199, {}, expression),
            ),
        )

    def next_after(self, moment: datetime) -> datetime:
        moment = moment.astimezone(UTC)
        if self.rate is not None:
            if moment < self.origin:
                return self.origin + self.rate
            periods = int((moment - self.origin) / self.rate) + 1
            return self.origin + periods * self.rate
        minutes, hours, dom, months, dow, years = self.fields
        day = moment.date()
        for _ in range(366 * 30):
            if day.year in years and day.month in months and _day_matches(day, dom, dow):
                for hour in sorted(hours):
                    for minute in sorted(minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if candidate > moment:
                            return candidate
            day += timedelta(days=1)
        raise ScheduleError(f"{self.expression}: no occurrence within 30 years of {moment.isoformat()}")


def _cron_set(text: str, low: int, high: int, names: Mapping[str, int], expression: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-", 1)
            start, end = _cron_value(first, names, expression), _cron_value(last, names, expression)
        else:
            start = _cron_value(part, names, expression)
            end = high if step != 1 else start
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"{expression}: {text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _cron_value(text: str, names: Mapping[str, int], expression: str) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(
            f"{expression}: {text!r} is not evaluated by this rehearsal (only numbers, names, * , - /, L)"
        )
    return int(text)


def _cron_days(text: str, expression: str) -> frozenset[int] | str:
    return "L" if text == "L" else _cron_set(text, 1, 31, {}, expression)


def _day_matches(day: Any, dom: Any, dow: Any) -> bool:
    if dom is not None:
        if dom == "L":
            return bool(day.day == calendar.monthrange(day.year, day.month)[1])
        return bool(day.day in dom)
    weekday = (day.weekday() + 1) % 7 + 1  # Python: Monday 0; EventBridge: Sunday 1
    return bool(weekday in dow)


# ------------------------------------------------------------------------------------------------- the bus


@dataclass
class _Invisible:
    queue_url: str
    receipt_handle: str
    visible_at: datetime


@dataclass
class EventBus:
    """The default event bus of the stage. See the module docstring for what each method does."""

    stage: LocalStage
    functions: Functions
    clock: Clock
    timeline: Timeline
    inbox: list[dict[str, Any]] = field(default_factory=list)  # every operators' notice read so far

    def __post_init__(self) -> None:
        from moto.events.models import EventPattern

        self._patterns = {
            rule.name: EventPattern.load(json.dumps(rule.pattern))
            for rule in self.stage.rules
            if rule.pattern is not None
        }
        origin = self.clock.now()
        self._schedules = {
            rule.name: Schedule.parse(rule.schedule, origin) for rule in self.stage.rules if rule.schedule is not None
        }
        self._schedules_ran_until = origin
        self._windows: dict[str, datetime] = {}  # queue ARN -> when its poller's batching window opened
        self._invisible: list[_Invisible] = []
        # SQS stamps messages with its own (wall) clock; in the rehearsal, time is the simulated clock's.
        self._sent_at: dict[str, datetime] = {}  # message id -> simulated send time
        self._first_received_at: dict[str, datetime] = {}
        self._sequencer = 0
        self._clients: dict[str, Any] = {}
        # put() may come from the hosting's threads (endpoint events) while the scenario flushes: one at a time.
        self._lock = threading.RLock()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(service, endpoint_url=self.stage.url, region_name=self.stage.region)
        return self._clients[service]

    # ---------------------------------------------------------------------------------------- putting

    def put(self, event: Mapping[str, Any]) -> list[str]:
        """Route one event; returns the names of the rules it matched (and was delivered by)."""
        with self._lock:
            return self._put(event)

    def _put(self, event: Mapping[str, Any]) -> list[str]:
        event = self._complete(event)
        self.timeline.record(
            "event", f"{event['source']} {event['detail-type']}", id=event["id"], detail_type=event["detail-type"]
        )
        matched = []
        for rule in self.stage.rules:
            pattern = self._patterns.get(rule.name)
            if rule.state != "ENABLED" or pattern is None or not pattern.matches_event(cast(Any, event)):
                continue
            matched.append(rule.name)
            self.timeline.record(
                "rule.match",
                f"{rule.logical_id} <- {event['detail-type']}",
                rule=rule.name,
                event_id=event["id"],
                targets=[t.function or t.arn for t in rule.targets],
            )
            for target in rule.targets:
                self._deliver(rule, target, event)
        return matched

    def _complete(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """What PutEvents adds: an id, the account, region and time, empty resources."""
        for key in ("source", "detail-type", "detail"):
            if key not in event:
                raise ValueError(f"an event needs {key!r}")
        complete = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "account": self.stage.account,
            "time": _iso(self.clock.now()),
            "region": self.stage.region,
            "resources": [],
        }
        complete.update(event)
        return complete

    def object_created(self, bucket: str, key: str, *, version_id: str | None = None) -> dict[str, Any] | None:
        """S3's "Object Created" for an object now in the local bucket, routed; None when the bucket does not
        send its events to EventBridge (S3 then sends nothing)."""
        definition = self.stage.buckets.get(bucket)
        if definition is None or not definition.eventbridge:
            return None
        request = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
        head = self.client("s3").head_object(**request)
        self._sequencer += 1
        event = s3_object_created(
            bucket,
            key,
            head["ContentLength"],
            head["ETag"],
            head.get("VersionId") if definition.versioned else None,
            account=self.stage.account,
            region=self.stage.region,
            time=self.clock.now(),
            sequencer=f"{self._sequencer:016X}",
        )
        self.put(event)
        return event

    def training_state_change(self, describe_training_job: Mapping[str, Any]) -> dict[str, Any]:
        """The state-change event of a training job in the local SageMaker, routed."""
        sagemaker = self.client("sagemaker")
        arn = describe_training_job["TrainingJobArn"]
        tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn).get("Tags", [])}
        event = training_state_change(
            describe_training_job,
            account=self.stage.account,
            region=self.stage.region,
            time=self.clock.now(),
            tags=tags,
        )
        self.put(event)
        return event

    # ------------------------------------------------------------------------------------------ delivery

    def _input(self, target: TargetDef, event: dict[str, Any], rule: RuleDef) -> Any:
        if target.input is not None:
            return json.loads(target.input)
        if target.input_path is not None:
            return _json_path(event, target.input_path)
        if target.input_transformer is not None:
            return _transform(target.input_transformer, event, rule)
        return event

    def _deliver(self, rule: RuleDef, target: TargetDef, event: dict[str, Any]) -> None:
        payload = self._input(target, event, rule)
        if target.kind == "lambda":
            assert target.function is not None
            if not self._allowed(target.function, rule):
                self._delivery_failed(rule, target, payload, "AccessDeniedException", "no resource policy allows it")
                return
            self.functions.invoke_async(target.function, payload, source=f"rule {rule.logical_id}")
        elif target.kind == "sqs":
            queue = self.stage.queues.get(target.arn)
            if queue is None:
                self._delivery_failed(rule, target, payload, "ResourceNotFoundException", "queue not in the stage")
                return
            body = payload if isinstance(payload, str) else json.dumps(payload)
            sent = self.client("sqs").send_message(QueueUrl=queue.url, MessageBody=body)
            self._sent_at[sent["MessageId"]] = self.clock.now()
            self._windows.setdefault(queue.arn, self.clock.now())
        elif target.kind == "sns":
            body = payload if isinstance(payload, str) else json.dumps(payload)
            self.client("sns").publish(TopicArn=target.arn, Message=body)
            self.timeline.record(
                "sns.notice", f"{rule.logical_id} -> {target.arn.rsplit(':', 1)[-1]}", topic=target.arn
            )

    def _allowed(self, function: str, rule: RuleDef) -> bool:
        """EventBridge may invoke the function only if its resource policy allows the rule."""
        for permission in self.stage.permissions:
            if permission.function != function or permission.principal != EVENTS_PRINCIPAL:
                continue
            if permission.action not in ("lambda:InvokeFunction", "lambda:*"):
                continue
            if permission.source_arn in (None, rule.arn):
                return True
        return False

    def _delivery_failed(self, rule: RuleDef, target: TargetDef, payload: Any, code: str, message: str) -> None:
        self.timeline.record(
            "rule.delivery_failed", f"{rule.logical_id} -> {target.arn}: {code}", rule=rule.name, error=message
        )
        queue = self.stage.queues.get(target.dead_letter_arn or "")
        if queue is None:
            return
        self.client("sqs").send_message(
            QueueUrl=queue.url,
            MessageBody=payload if isinstance(payload, str) else json.dumps(payload),
            MessageAttributes={
                "RULE_ARN": {"DataType": "String", "StringValue": rule.arn},
                "TARGET_ARN": {"DataType": "String", "StringValue": target.arn},
                "ERROR_CODE": {"DataType": "String", "StringValue": code},
                "ERROR_MESSAGE": {"DataType": "String", "StringValue": message},
            },
        )

    # -------------------------------------------------------------------------------------------- pollers

    def flush(self) -> int:
        """Everything due now: SQS batches and asynchronous invocations (and what they cause); returns how many
        function invocations ran."""
        with self._lock:
            return self._flush()

    def _flush(self) -> int:
        ran = 0
        while True:
            step = self.functions.run_pending() + self._poll()
            ran += step
            if step == 0:
                self.collect_notices()
                return ran

    def drain(self, max_seconds: float = 6 * 3600) -> int:
        """`flush`, sleeping the clock through batching windows, retry delays and visibility timeouts until
        nothing is left to deliver (or `max_seconds` of simulated time have passed)."""
        ran = self.flush()
        waited = 0.0
        while True:
            due = self.next_due()
            if due is None:
                return ran
            wait = max(0.0, (due - self.clock.now()).total_seconds())
            if waited + wait > max_seconds:
                return ran
            self.clock.sleep(wait)
            waited += wait
            ran += self.flush()

    def next_due(self) -> datetime | None:
        """When the next delivery would happen if nothing else arrived."""
        candidates = [self.functions.next_due()]
        candidates += [i.visible_at for i in self._invisible]
        for mapping in self.stage.event_source_mappings:
            opened = self._windows.get(mapping.queue_arn)
            if opened is not None and mapping.enabled:
                candidates.append(opened + timedelta(seconds=mapping.max_batching_window_s))
        found = [c for c in candidates if c is not None]
        return min(found) if found else None

    def _poll(self) -> int:
        now = self.clock.now()
        sqs = self.client("sqs")
        for item in [i for i in self._invisible if i.visible_at <= now]:
            self._invisible.remove(item)
            # The visibility timeout ran out on the simulated clock: the message is back in the queue (unless it
            # was moved to the dead-letter queue or deleted meanwhile).
            with contextlib.suppress(sqs.exceptions.ClientError):
                sqs.change_message_visibility(
                    QueueUrl=item.queue_url, ReceiptHandle=item.receipt_handle, VisibilityTimeout=0
                )
        ran = 0
        for mapping in self.stage.event_source_mappings:
            if mapping.enabled:
                ran += self._poll_mapping(mapping)
        return ran

    def _visible(self, queue: QueueDef) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def _poll_mapping(self, mapping: MappingDef) -> int:
        queue = self.stage.queues[mapping.queue_arn]
        ran = 0
        while True:
            visible = self._visible(queue)
            if visible == 0:
                self._windows.pop(queue.arn, None)
                return ran
            now = self.clock.now()
            opened = self._windows.setdefault(queue.arn, now)
            window_over = (now - opened).total_seconds() >= mapping.max_batching_window_s
            if visible < mapping.batch_size and not window_over:
                return ran
            self._deliver_batch(mapping, queue)
            ran += 1
            self._windows[queue.arn] = self.clock.now()  # the next batch's window starts now

    def _receive(self, queue: QueueDef, count: int) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        messages: list[dict[str, Any]] = []
        size = 0
        while len(messages) < count:
            batch = sqs.receive_message(
                QueueUrl=queue.url,
                MaxNumberOfMessages=min(10, count - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                size += len(message["Body"]) + 1024
                if size > LAMBDA_PAYLOAD_LIMIT and messages:
                    sqs.change_message_visibility(
                        QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                    continue
                messages.append(message)
        return messages

    def _deliver_batch(self, mapping: MappingDef, queue: QueueDef) -> None:
        messages = self._receive(queue, mapping.batch_size)
        if not messages:
            return
        now = self.clock.now()
        records = []
        for message in messages:
            first = self._first_received_at.setdefault(message["MessageId"], now)
            sent = self._sent_at.get(message["MessageId"], first)
            records.append(_sqs_record(message, queue, self.stage.region, sent=sent, first_received=first))
        event = {"Records": records}
        ok, result = self.functions.invoke(
            mapping.function, event, source=f"sqs {queue.name}", invocation_type="RequestResponse"
        )
        failed: set[str] = set()
        if not ok:
            failed = {m["MessageId"] for m in messages}
        elif mapping.report_batch_item_failures and isinstance(result, Mapping):
            failed = {str(f.get("itemIdentifier")) for f in result.get("batchItemFailures") or []}
        done = [m for m in messages if m["MessageId"] not in failed]
        sqs = self.client("sqs")
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=queue.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        visible_at = self.clock.now() + timedelta(seconds=queue.visibility_timeout_s)
        for message in messages:
            if message["MessageId"] in failed:
                self._invisible.append(_Invisible(queue.url, message["ReceiptHandle"], visible_at))
        self.timeline.record(
            "sqs.batch",
            f"{queue.name} -> {mapping.function}: {len(messages)} message(s), {len(failed)} left for retry",
            queue=queue.name,
            function=mapping.function,
            size=len(messages),
            failed=len(failed),
            batch_size=mapping.batch_size,
        )

    # ------------------------------------------------------------------------------------------- schedules

    def run_schedules(self, until: datetime) -> int:
        """Fire every schedule occurrence in (last run, until]; returns how many fired."""
        with self._lock:
            return self._run_schedules(until)

    def _run_schedules(self, until: datetime) -> int:
        fired: list[tuple[datetime, RuleDef]] = []
        for rule in self.stage.rules:
            schedule = self._schedules.get(rule.name)
            if schedule is None or rule.state != "ENABLED":
                continue
            moment = schedule.next_after(self._schedules_ran_until)
            while moment <= until:
                fired.append((moment, rule))
                moment = schedule.next_after(moment)
        self._schedules_ran_until = max(self._schedules_ran_until, until)
        for moment, rule in sorted(fired, key=lambda f: (f[0], f[1].name)):
            event = scheduled_event(rule, moment, account=self.stage.account, region=self.stage.region)
            self.timeline.record("schedule", f"{rule.logical_id} ({rule.schedule}) at {_iso(moment)}", rule=rule.name)
            for target in rule.targets:
                self._deliver(rule, target, event)
        return len(fired)

    # --------------------------------------------------------------------------------------------- notices

    def collect_notices(self) -> list[dict[str, Any]]:
        """New messages in the operators' inbox (every topic's notices), recorded and kept in `inbox`."""
        sqs = self.client("sqs")
        url = self.stage.inbox_queue_url
        found: list[dict[str, Any]] = []
        while url:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                break
            for message in batch:
                body = json.loads(message["Body"])
                notice = {
                    "t": self.clock.now().isoformat(),
                    "topic": body.get("TopicArn", ""),
                    "subject": body.get("Subject") or "",
                    "message": body.get("Message", ""),
                }
                found.append(notice)
                self.timeline.record("sns.notice", notice["subject"] or notice["message"][:80], topic=notice["topic"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        self.inbox.extend(found)
        return found


def _sqs_record(
    message: Mapping[str, Any], queue: QueueDef, region: str, *, sent: datetime, first_received: datetime
) -> dict[str, Any]:
    """One record of the SQS event Lambda's poller delivers (Powertools' sqsEvent.json shape), its timestamps
    (epoch milliseconds) on the simulated clock."""
    attributes = {
        k: v
        for k, v in message.get("Attributes", {}).items()
        if k
        in (
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
            "SequenceNumber",
            "MessageGroupId",
            "MessageDeduplicationId",
            "AWSTraceHeader",
        )
    }
    attributes["SentTimestamp"] = str(int(sent.timestamp() * 1000))
    attributes["ApproximateFirstReceiveTimestamp"] = str(int(first_received.timestamp() * 1000))
    message_attributes = {}
    for name, value in message.get("MessageAttributes", {}).items():
        entry: dict[str, Any] = {"dataType": value["DataType"], "stringListValues": [], "binaryListValues": []}
        if "StringValue" in value:
            entry["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            entry["binaryValue"] = value["BinaryValue"]
        message_attributes[name] = entry
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.arn,
        "awsRegion": region,
    }


def _json_path(event: Mapping[str, Any], path: str) -> Any:
    """The JSONPath subset EventBridge's InputPath uses: `$` and `$.a.b`."""
    if path == "$":
        return event
    if not path.startswith("$."):
        raise ValueError(f"InputPath {path!r} is not a simple $.field path")
    value: Any = event
    for part in path[2:].split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _transform(transformer: Mapping[str, Any], event: Mapping[str, Any], rule: RuleDef) -> Any:
    """An InputTransformer: variables from InputPathsMap put into InputTemplate (quoted in place: as text)."""
    variables = {name: _json_path(event, path) for name, path in transformer.get("InputPathsMap", {}).items()}
    variables.update(
        {
            "aws.events.rule-arn": rule.arn,
            "aws.events.rule-name": rule.name,
            "aws.events.event.ingestion-time": event.get("time"),
            "aws.events.event": event,
            "aws.events.event.json": event,
        }
    )
    template = str(transformer["InputTemplate"])

    def replace(match: re.Match[str]) -> str:
        quoted, name = match.group(1), match.group(2)
        if name not in variables:
            return match.group(0)
        value = variables[name]
        if quoted:
            text = value if isinstance(value, str) else json.dumps(value)
            return '"' + json.dumps(text)[1:-1] + '"'
        return json.dumps(value)

    text = re.sub(r'("?)<([A-Za-z0-9_.\-]+)>\1', replace, template)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
