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
- The events themselves are built in `event_shapes` (the shapes AWS documents, samples in tests/events/aws/), and
  schedule expressions are read in `schedules`; their builders stay importable from here.

Timeline kinds: "event", "rule.match", "rule.delivery_failed", "sqs.batch", "sns.notice", "schedule".
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.event_shapes import (
    AlarmState,
    alarm_configuration,
    alarm_state_change,
    envelope,
    input_transform,
    iso_time,
    json_path,
    s3_object_created,
    scheduled_event,
    sqs_record,
    training_state_change,
)
from sagecycle.rehearsal.functions import Functions
from sagecycle.rehearsal.schedules import Schedule, ScheduleError
from sagecycle.rehearsal.stage_model import LocalStage, MappingDef, QueueDef, RuleDef, TargetDef
from sagecycle.rehearsal.timeline import Timeline

__all__ = [  # the bus; the builders (event_shapes) and schedules are importable from here as before
    "EVENTS_PRINCIPAL",
    "LAMBDA_PAYLOAD_LIMIT",
    "AlarmState",
    "EventBus",
    "Schedule",
    "ScheduleError",
    "alarm_configuration",
    "alarm_state_change",
    "envelope",
    "s3_object_created",
    "scheduled_event",
    "training_state_change",
]

LAMBDA_PAYLOAD_LIMIT: Final = 6 * 1024 * 1024  # a poller's batch never exceeds Lambda's invocation payload
EVENTS_PRINCIPAL: Final = "events.amazonaws.com"


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
            "time": iso_time(self.clock.now()),
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
            return json_path(event, target.input_path)
        if target.input_transformer is not None:
            return input_transform(target.input_transformer, event, rule)
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
            records.append(sqs_record(message, queue, self.stage.region, sent=sent, first_received=first))
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
            self.timeline.record(
                "schedule", f"{rule.logical_id} ({rule.schedule}) at {iso_time(moment)}", rule=rule.name
            )
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
