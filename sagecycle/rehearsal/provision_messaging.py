"""Provisioning the messaging: SQS queues, SNS topics (with the operators' inbox subscribed to every one) and
EventBridge rules with their targets, created with the properties their template gives.

Each creator takes the provisioner (`sagecycle.rehearsal.stage`), the stack, the logical id and the resource, and
returns what Ref and Fn::GetAtt give for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sagecycle.rehearsal.stage_model import INBOX_QUEUE, NOT_REHEARSED, Physical, QueueDef, RuleDef, TargetDef, TopicDef
from sagecycle.rehearsal.templates import drop_none, generated_name, tagged, tags

if TYPE_CHECKING:
    from sagecycle.rehearsal.stage import Provisioner


def _name(props: Mapping[str, Any], name_key: str, fifo_key: str, stack: str, logical_id: str, max_len: int) -> str:
    """The name the template gives, or the one CloudFormation generates; a FIFO one ends in `.fifo`, within max_len."""
    if props.get(name_key):
        return str(props[name_key])
    if props.get(fifo_key):
        return generated_name(stack, logical_id, max_len - len(".fifo")) + ".fifo"
    return generated_name(stack, logical_id, max_len)


def sqs_queue(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    sqs = p.client("sqs")
    name = _name(props, "QueueName", "FifoQueue", stack, logical_id, 80)
    attributes: dict[str, str] = {}
    for key in (
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "FifoQueue",
        "ContentBasedDeduplication",
        "SqsManagedSseEnabled",
        "DeduplicationScope",
        "FifoThroughputLimit",
    ):
        if key in props:
            value = props[key]
            attributes[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):
        if key in props:
            attributes[key] = json.dumps(props[key])
    request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if tags(props):
        request["tags"] = {t["Key"]: t["Value"] for t in tags(props)}
    url = sqs.create_queue(**request)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    p.stage.queues[arn] = QueueDef(
        name=name,
        url=url,
        arn=arn,
        visibility_timeout_s=int(props.get("VisibilityTimeout", 30)),
        redrive=props.get("RedrivePolicy"),
        stack=stack,
        logical_id=logical_id,
    )
    return Physical(resource["Type"], url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def sns_topic(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    sns = p.client("sns")
    name = _name(props, "TopicName", "FifoTopic", stack, logical_id, 256)
    attributes = {key: str(props[key]) for key in ("DisplayName", "KmsMasterKeyId", "FifoTopic") if key in props}
    request: dict[str, Any] = {"Name": name, "Attributes": attributes, **tagged(props)}
    arn = sns.create_topic(**request)["TopicArn"]
    for subscription in props.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    p.stage.topics[arn] = TopicDef(name, arn, stack, logical_id)
    return Physical(resource["Type"], arn, {"TopicArn": arn, "TopicName": name})


def subscribe_inbox(p: Provisioner) -> None:
    """The operators' inbox: one queue subscribed to every topic, so every notice can be read back."""
    sqs, sns = p.client("sqs"), p.client("sns")
    url = sqs.create_queue(QueueName=INBOX_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for topic in p.stage.topics:
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    p.stage.inbox_queue_url, p.stage.inbox_queue_arn = url, arn


def events_rule(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    events = p.client("events")
    name = props.get("Name") or generated_name(stack, logical_id, 64)
    request = drop_none(
        {
            "Name": name,
            "Description": props.get("Description"),
            "State": props.get("State", "ENABLED"),
            "ScheduleExpression": props.get("ScheduleExpression"),
            "EventBusName": props.get("EventBusName"),
            "EventPattern": json.dumps(props["EventPattern"]) if "EventPattern" in props else None,
        }
    ) | tagged(props)
    arn = events.put_rule(**request)["RuleArn"]
    targets = []
    for target in props.get("Targets", []):
        targets.append(rule_target(p, target))
        api_target = drop_none(
            {
                "Id": target["Id"],
                "Arn": target["Arn"],
                "Input": target.get("Input"),
                "InputPath": target.get("InputPath"),
                "InputTransformer": target.get("InputTransformer"),
                "RetryPolicy": target.get("RetryPolicy"),
                "DeadLetterConfig": target.get("DeadLetterConfig"),
            }
        )
        events.put_targets(Rule=name, EventBusName=props.get("EventBusName", "default"), Targets=[api_target])
    p.stage.rules.append(
        RuleDef(
            name=name,
            arn=arn,
            stack=stack,
            logical_id=logical_id,
            state=request["State"],
            pattern=props.get("EventPattern"),
            schedule=props.get("ScheduleExpression"),
            targets=tuple(targets),
            description=props.get("Description", ""),
        )
    )
    return Physical(resource["Type"], name, {"Arn": arn})


def rule_target(p: Provisioner, target: Mapping[str, Any]) -> TargetDef:
    """A rule target as the bus delivers to it; only Lambda, SQS and SNS targets are rehearsed."""
    arn = str(target["Arn"])
    service = arn.split(":")[2] if arn.startswith("arn:") else ""
    kinds = {"lambda": "lambda", "sqs": "sqs", "sns": "sns"}
    if service not in kinds:
        raise p.resolver.fail(f"rule target {arn} ({service or 'not an ARN'}) is not rehearsed", NOT_REHEARSED)
    retry = target.get("RetryPolicy", {})
    return TargetDef(
        id=str(target["Id"]),
        arn=arn,
        kind=kinds[service],
        function=None,  # filled in once every function is known
        input=target.get("Input"),
        input_path=target.get("InputPath"),
        input_transformer=target.get("InputTransformer"),
        dead_letter_arn=target.get("DeadLetterConfig", {}).get("Arn"),
        max_retry_attempts=retry.get("MaximumRetryAttempts"),
        max_event_age_s=retry.get("MaximumEventAgeInSeconds"),
    )
