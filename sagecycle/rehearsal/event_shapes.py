"""The events AWS sends, in the shapes AWS documents (samples in tests/events/aws/), and what a rule target gets.

- `envelope`: an EventBridge event as delivered to targets;
- `s3_object_created`, `training_state_change`, `alarm_state_change` (with `AlarmState`, `alarm_configuration`),
  `scheduled_event`: the events of S3, SageMaker, CloudWatch and EventBridge's schedules;
- `sqs_record`: one record of the SQS event Lambda's poller delivers;
- `json_path`, `input_transform`: a target's `InputPath` and `InputTransformer`, as EventBridge applies them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sagecycle.rehearsal.stage_model import AlarmDef, QueueDef, RuleDef
from sagecycle.rehearsal.templates import drop_none


def iso_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def millis(value: Any) -> Any:
    """Timestamps as SageMaker's events carry them: epoch milliseconds (in lists and maps too; None stays None)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, list):
        return [millis(v) for v in value]
    if isinstance(value, Mapping):
        return {k: millis(v) for k, v in value.items()}
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
        "time": iso_time(time),
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
    detail = {k: millis(describe_training_job[k]) for k in _TRAINING_FIELDS if describe_training_job.get(k) is not None}
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
        return drop_none(
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
    return drop_none({"description": spec.get("AlarmDescription"), "metrics": metrics})


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


def sqs_record(
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


def json_path(event: Mapping[str, Any], path: str) -> Any:
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


def input_transform(transformer: Mapping[str, Any], event: Mapping[str, Any], rule: RuleDef) -> Any:
    """An InputTransformer: variables from InputPathsMap put into InputTemplate (quoted in place: as text)."""
    variables = {name: json_path(event, path) for name, path in transformer.get("InputPathsMap", {}).items()}
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
