"""The stage's functions run in-process as Lambda runs them: their own environment, metrics, async retries, Invoke."""

from __future__ import annotations

import importlib
import json
import os
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sagecycle.rehearsal.functions import RUNTIME_VARIABLES, FunctionError, embedded_metrics
from tests.rehearsal.conftest_stage import *  # noqa: F403 - the fixtures
from tests.rehearsal.conftest_stage import Rig


def _probe(monkeypatch: pytest.MonkeyPatch, rig: Rig, key: str, body: Any) -> None:
    """Replace the function's handler (the attribute its template's Handler names) with `body`."""
    module_path, attribute = rig.stage.functions[key].handler.rsplit(".", 1)
    monkeypatch.setattr(importlib.import_module(module_path), attribute, body)


def test_each_function_sees_exactly_its_synthesized_environment(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN every function's handler replaced by a probe that reads the process environment
    seen: dict[str, dict[str, str]] = {}
    every_variable = {name for env in rig.stage.function_environments.values() for name in env}
    for key in rig.stage.functions:
        _probe(monkeypatch, rig, key, lambda event, context, key=key: seen.__setitem__(key, dict(os.environ)))
    # (other test modules may have set some of these names in the process before: only changes count)
    before = {name: os.environ.get(name) for name in every_variable}
    # WHEN each function is invoked
    for key in rig.stage.functions:
        rig.functions.call(key, {})
    for key, synthesized in rig.stage.function_environments.items():
        environment = seen[key]
        # THEN its own variables are there with their synthesized values, no other function's are,
        assert {name: environment.get(name) for name in synthesized} == synthesized, key
        assert not (every_variable - set(synthesized)) & set(environment), key
        # ... and Lambda's runtime variables name this function
        assert environment["AWS_LAMBDA_FUNCTION_NAME"] == rig.stage.functions[key].name
        assert set(RUNTIME_VARIABLES) <= set(environment)
    # ... and nothing of theirs is left in (or changed in) the process afterwards
    assert {name: os.environ.get(name) for name in every_variable} == before


def test_the_context_carries_the_functions_definition(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a probe reading the Lambda context
    seen: dict[str, Any] = {}

    def probe(event: Any, context: Any) -> None:
        seen.update(
            name=context.function_name,
            arn=context.invoked_function_arn,
            memory=context.memory_limit_in_mb,
            remaining=context.get_remaining_time_in_millis(),
        )

    _probe(monkeypatch, rig, "drift_monitor", probe)
    # WHEN invoked
    rig.functions.call("drift_monitor", {})
    # THEN name, ARN, memory and the time left come from the template (Timeout, MemorySize)
    function = rig.stage.functions["drift_monitor"]
    assert (seen["name"], seen["arn"], seen["memory"]) == (function.name, function.arn, function.memory_mb)
    assert function.timeout_s * 1000 - 5000 < seen["remaining"] <= function.timeout_s * 1000


def test_handlers_read_the_simulated_clock(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the simulated clock a day ahead / WHEN a handler asks its module's utcnow
    rig.clock.advance(86400)
    module = importlib.import_module(rig.stage.functions["promote"].handler.rsplit(".", 1)[0])
    _probe(monkeypatch, rig, "promote", lambda event, context: module.utcnow().isoformat())
    # THEN it is the simulated time
    assert rig.functions.call("promote", {}) == rig.clock.now().isoformat()


def test_embedded_metrics_reach_the_local_cloudwatch_at_the_simulated_time(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a handler publishing a metric with Powertools, as the functions do (embedded metric format)
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    def probe(event: Any, context: Any) -> None:
        metrics = Metrics(namespace="sagecycle", service="")
        metrics.set_default_dimensions(Stage="dev")
        metrics.add_metric(name="ProbeCount", unit=MetricUnit.Count, value=3)
        metrics.flush_metrics()

    _probe(monkeypatch, rig, "ingest", probe)
    rig.clock.advance(3600)
    # WHEN invoked
    rig.functions.call("ingest", {})
    # THEN CloudWatch has the datapoint, with its dimension, at the simulated time of the call
    statistics = rig.client("cloudwatch").get_metric_statistics(
        Namespace="sagecycle",
        MetricName="ProbeCount",
        Dimensions=[{"Name": "Stage", "Value": "dev"}],
        StartTime=rig.clock.now() - timedelta(minutes=1),
        EndTime=rig.clock.now() + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )
    assert [d["Sum"] for d in statistics["Datapoints"]] == [3.0]


def test_embedded_metric_lines_are_read_as_cloudwatch_logs_reads_them() -> None:
    # GIVEN an EMF line with two dimension sets and a list of values, among plain log lines
    line = {
        "_aws": {
            "Timestamp": 0,
            "CloudWatchMetrics": [
                {
                    "Namespace": "ns",
                    "Dimensions": [["Stage"], ["Stage", "Feature"]],
                    "Metrics": [{"Name": "PSI", "Unit": "None"}],
                }
            ],
        },
        "Stage": "dev",
        "Feature": "age",
        "PSI": [0.1, 0.3],
    }
    output = "not json\n" + json.dumps(line) + '\n{"level": "INFO"}\n'
    # WHEN read / THEN one datum per dimension set, with every value
    assert embedded_metrics(output) == [
        ("ns", {"MetricName": "PSI", "Dimensions": [{"Name": "Stage", "Value": "dev"}], "Values": [0.1, 0.3]}),
        (
            "ns",
            {
                "MetricName": "PSI",
                "Dimensions": [{"Name": "Stage", "Value": "dev"}, {"Name": "Feature", "Value": "age"}],
                "Values": [0.1, 0.3],
            },
        ),
    ]


def test_a_failing_async_invocation_is_retried_on_the_clock_then_dead_lettered(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN promote failing every time, and its synthesized retry policy and dead-letter queue
    function = rig.stage.functions["promote"]
    attempts: list[str] = []

    def failing(event: Any, context: Any) -> None:
        attempts.append(rig.clock.now().isoformat())
        raise RuntimeError("boom")

    _probe(monkeypatch, rig, "promote", failing)
    # WHEN an event is queued and the clock moves on
    rig.functions.invoke_async("promote", {"n": 1}, source="test")
    assert rig.functions.run_pending() == 1
    rig.clock.advance(59)
    assert rig.functions.run_pending() == 0  # Lambda waits a minute before the first retry
    rig.clock.advance(1)
    assert rig.functions.run_pending() == 1
    rig.clock.advance(120)
    assert rig.functions.run_pending() == 1
    rig.clock.advance(3600)
    assert rig.functions.run_pending() == 0
    # THEN 1 + MaximumRetryAttempts attempts ran, and the event is in the dead-letter queue with Lambda's attributes
    assert len(attempts) == 1 + function.max_retry_attempts
    queue = rig.stage.queues[function.dead_letter_arn or ""]
    message = rig.client("sqs").receive_message(QueueUrl=queue.url, MessageAttributeNames=["All"])["Messages"][0]
    assert json.loads(message["Body"]) == {"n": 1}
    assert message["MessageAttributes"]["ErrorMessage"]["StringValue"] == "RuntimeError: boom"
    assert set(message["MessageAttributes"]) == {"RequestID", "ErrorCode", "ErrorMessage"}


def test_a_synchronous_failure_is_raised_and_recorded(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a failing handler / WHEN called synchronously / THEN FunctionError, and the invocation is recorded
    _probe(monkeypatch, rig, "ingest", lambda event, context: 1 / 0)
    with pytest.raises(FunctionError) as raised:
        rig.functions.call("ingest", {})
    assert raised.value.error_type == "ZeroDivisionError"
    assert rig.functions.invocations[-1]["ok"] is False
    assert rig.timeline.of_kind("lambda.invoke")[-1]["data"]["error"].startswith("ZeroDivisionError")


def test_invoke_between_functions_is_answered_in_process(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN ingest calling Lambda's Invoke on start-training (the name from its synthesized environment)
    from lambdas.shared.runtime import client

    answers: dict[str, Any] = {}

    def caller(event: Any, context: Any) -> None:
        target = os.environ["START_FUNCTION_NAME"]
        lambda_client = client("lambda")
        answers["event"] = lambda_client.invoke(FunctionName=target, InvocationType="Event", Payload=b'{"a": 1}')
        answers["sync"] = lambda_client.invoke(FunctionName=target, Payload=b'{"b": 2}')
        try:
            lambda_client.invoke(FunctionName="nobody", Payload=b"{}")
        except ClientError as error:
            answers["missing"] = error.response["Error"]["Code"]

    received: list[Any] = []

    def echo(event: Any, context: Any) -> dict[str, Any]:
        received.append(event)
        return {"echo": event}

    _probe(monkeypatch, rig, "ingest", caller)
    _probe(monkeypatch, rig, "start_training", echo)
    # WHEN ingest runs
    rig.functions.call("ingest", {})
    # THEN the Event invoke is queued (202, not run yet), the synchronous one ran and answered, and an unknown
    # function is ResourceNotFoundException
    assert answers["event"]["StatusCode"] == 202
    assert json.loads(answers["sync"]["Payload"].read()) == {"echo": {"b": 2}}
    assert answers["missing"] == "ResourceNotFoundException"
    assert received == [{"b": 2}]
    rig.functions.run_pending()
    assert received == [{"b": 2}, {"a": 1}]
    sources = [i["source"] for i in rig.functions.invocations if i["function"] == "start_training"]
    assert sources == [f"lambda:Invoke from {rig.stage.functions['ingest'].name}"] * 2
