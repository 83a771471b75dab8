"""EventBridge routing for the tests: the synthesized rules of the Retraining stack, and a bus that applies them.

moto's TestEventPattern API is a stub that answers nothing, so the honest way to ask "does this rule fire for
this event?" is to route: a rule with the pattern, a queue target, PutEvents, and what arrives.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_cdk import CfnResource, Stack

from tests.infrastructure.conftest import Synthesized

ACCOUNT = "123456789012"

# The Retraining stack's event-pattern rules (schedules have no pattern): the new-data rule and the routes' ids.
PATTERN_RULES = (
    "NewData",
    "RetrainAlarms",
    "TrainingFinished",
    "TuningFinished",
    "EndpointChanged",
    "EndpointUnhealthy",
)


def resolve(value: Any, outputs: dict[str, str] | None = None) -> Any:
    """Enough of CloudFormation to read our own templates: Ref AWS::AccountId, Fn::Join, GetStackOutput."""
    if isinstance(value, dict):
        if value == {"Ref": "AWS::AccountId"}:
            return ACCOUNT
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(str(resolve(p, outputs)) for p in parts)
        if "Fn::GetStackOutput" in value:
            return (outputs or {}).get(value["Fn::GetStackOutput"]["OutputName"], "unresolved")
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs) for v in value]
    return value


def rule_logical_id(s: Synthesized, rule: str) -> str:
    """The logical id of a rule of the Retraining stack: the new-data rule, or a route by its construct id."""
    stack = s.stage.retraining
    construct = stack.new_data.rule if rule == "NewData" else stack.routes.rules[rule]
    cfn = construct.node.default_child
    assert isinstance(cfn, CfnResource)
    return Stack.of(cfn).resolve(cfn.logical_id)


def synthesized_patterns(s: Synthesized) -> dict[str, dict[str, Any]]:
    """Each event-pattern rule's pattern as deployed (account resolved), by construct id."""
    resources = s.raw[s.config.stack_name("Retraining")]["Resources"]
    patterns = {}
    for construct_id in PATTERN_RULES:
        props = resources[rule_logical_id(s, construct_id)]["Properties"]
        patterns[construct_id] = resolve(props["EventPattern"])
    return patterns


class RuleEngine:
    """EventBridge routing as moto implements it: a rule, a queue target, PutEvents, and what arrives."""

    def __init__(self) -> None:
        creds = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.events = boto3.client("events", **creds)
        self.sqs = boto3.client("sqs", **creds)
        self.count = 0

    def routes(self, pattern: dict[str, Any], event: dict[str, Any]) -> bool:
        self.count += 1
        name = f"probe-{self.count}"
        queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
        self.events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": attrs["QueueArn"]}])
        entry = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "Resources": event.get("resources", []),
        }
        assert self.events.put_events(Entries=[entry])["FailedEntryCount"] == 0
        messages = self.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages", [])
        self.events.remove_targets(Rule=name, Ids=["q"])
        self.events.delete_rule(Name=name)
        self.sqs.delete_queue(QueueUrl=queue_url)
        return bool(messages)

    def firing(self, patterns: dict[str, dict[str, Any]], event: dict[str, Any]) -> set[str]:
        """The rules (by construct id) that fire for this event."""
        return {name for name, pattern in patterns.items() if self.routes(pattern, event)}
