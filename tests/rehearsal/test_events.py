"""Events routed as EventBridge routes them: the synthesized rules, their targets, queues, schedules."""

from __future__ import annotations

import csv
import importlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from lambdas.shared.events import parse_scheduled_event, parse_training_job_event
from sagecycle.rehearsal import LocalAws
from sagecycle.rehearsal.stage import RuleDef
from tests.lambdas.fixtures import evaluation, model_tar, sample_rows
from tests.rehearsal.conftest_stage import *  # noqa: F403 - the fixtures
from tests.rehearsal.conftest_stage import START, Rig, make_rig


def _champion(rig: Rig) -> None:
    """The champion model the functions read its schema from, where the champion parameter points."""
    url = rig.client("ssm").get_parameter(Name=rig.stage.names.champion_parameter)["Parameter"]["Value"]
    bucket, _, key = url.removeprefix("s3://").partition("/")
    rig.client("s3").put_object(Bucket=bucket, Key=key, Body=model_tar(evaluation_json=evaluation(0.9)))


def _upload(rig: Rig, key: str, seed: int) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([[1 if seed % 2 else 0, *row] for row in sample_rows(40, seed=seed)])
    rig.client("s3").put_object(Bucket=rig.stage.names.data_bucket, Key=key, Body=buffer.getvalue().encode())
    assert rig.bus.object_created(rig.stage.names.data_bucket, key) is not None


def _rule(rig: Rig, text: str) -> RuleDef:
    """The pattern rule whose pattern mentions `text` (found in the synthesized rules, not named)."""
    return next(r for r in rig.stage.rules if r.pattern and text in json.dumps(r.pattern))


def _batches(rig: Rig) -> list[int]:
    return [e["data"]["size"] for e in rig.timeline.of_kind("sqs.batch")]


def test_new_data_goes_through_the_rule_and_the_queue_to_ingest_in_one_batch(rig: Rig) -> None:
    # GIVEN the champion and three files uploaded under incoming/ (S3 sends them to EventBridge)
    _champion(rig)
    mapping = rig.stage.event_source_mappings[0]
    for n in range(3):
        _upload(rig, f"incoming/part-{n}.csv", seed=n)
    # WHEN the poller looks before its batching window has passed
    rig.bus.flush()
    # THEN nothing is delivered yet: 3 messages wait in the synthesized new-data queue
    assert _batches(rig) == []
    new_data = _rule(rig, "incoming/")
    assert [t.arn for t in new_data.targets] == [mapping.queue_arn]
    # WHEN the window (MaximumBatchingWindowInSeconds) has passed
    rig.clock.advance(mapping.max_batching_window_s)
    rig.bus.flush()
    # THEN the real ingest function got the three in one batch and promoted each file to train/,
    # then queued start-training by Lambda's Invoke, which ran
    assert _batches(rig) == [3]
    ingest = [i for i in rig.functions.invocations if i["function"] == "ingest"]
    assert [(i["ok"], i["source"]) for i in ingest] == [(True, f"sqs {rig.stage.queues[mapping.queue_arn].name}")]
    listed = rig.client("s3").list_objects_v2(Bucket=rig.stage.names.data_bucket, Prefix="train/").get("Contents", [])
    assert len(listed) == 3
    assert any(i["function"] == "start_training" for i in rig.functions.invocations)
    assert len(rig.timeline.of_kind("rule.match")) == 3
    # ... and exactly one job started, named from the batch's (simulated) SQS timestamps
    jobs = [j["TrainingJobName"] for j in rig.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]]
    assert len(jobs) == 1
    assert START.strftime("%y%m%d-%H%M") in jobs[0]


def test_the_batch_size_is_the_mappings(
    local_aws: LocalAws,
    templates: dict[str, dict[str, Any]],
    cdk_out: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the event source mapping's BatchSize set to 2 in the template, and 5 files
    for template in templates.values():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::Lambda::EventSourceMapping":
                resource["Properties"]["BatchSize"] = 2
    rig = make_rig(local_aws, templates, cdk_out, tmp_path / "log")
    try:
        module = importlib.import_module(rig.stage.functions["ingest"].handler.rsplit(".", 1)[0])
        monkeypatch.setattr(module, "handler", lambda event, context: {"batchItemFailures": []})
        for n in range(5):
            _upload(rig, f"incoming/part-{n}.csv", seed=n)
        # WHEN the poller looks at once, then after the window
        rig.bus.flush()
        full = _batches(rig)
        rig.clock.advance(rig.stage.event_source_mappings[0].max_batching_window_s)
        rig.bus.flush()
        # THEN full batches go at once, the remainder when the window has passed
        assert full == [2, 2]
        assert _batches(rig) == [2, 2, 1]
    finally:
        rig.functions.close()


def test_failed_batch_items_are_redelivered_then_redriven_to_the_dead_letter_queue(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN ingest reporting every item failed (ReportBatchItemFailures), one file uploaded
    module = importlib.import_module(rig.stage.functions["ingest"].handler.rsplit(".", 1)[0])
    monkeypatch.setattr(
        module,
        "handler",
        lambda event, context: {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]},
    )
    _upload(rig, "incoming/poison.csv", seed=1)
    mapping = rig.stage.event_source_mappings[0]
    queue = rig.stage.queues[mapping.queue_arn]
    assert queue.redrive is not None
    # WHEN the bus drains (visibility timeouts and windows pass on the simulated clock)
    rig.bus.drain(max_seconds=24 * 3600)
    # THEN the message was delivered maxReceiveCount times, then moved to the queue's dead-letter queue
    assert _batches(rig) == [1] * int(queue.redrive["maxReceiveCount"])
    dead = rig.stage.queues[queue.redrive["deadLetterTargetArn"]]
    messages = rig.client("sqs").receive_message(QueueUrl=dead.url).get("Messages", [])
    assert json.loads(messages[0]["Body"])["detail"]["object"]["key"] == "incoming/poison.csv"


def test_objects_outside_incoming_match_no_rule(rig: Rig) -> None:
    # GIVEN an object under train/ / WHEN S3's event is routed / THEN no rule matches and nothing is queued
    key = "train/direct.csv"
    rig.client("s3").put_object(Bucket=rig.stage.names.data_bucket, Key=key, Body=b"1,2\n")
    event = rig.bus.object_created(rig.stage.names.data_bucket, key)
    assert event is not None
    assert rig.timeline.of_kind("rule.match") == []
    # ... and a bucket that does not send to EventBridge sends nothing
    assert rig.bus.object_created(rig.stage.names.model_bucket, "anything") is None


def _training_job(rig: Rig, name: str) -> dict[str, Any]:
    settings = json.loads(rig.stage.function_environments["start_training"]["TRAINING_SETTINGS"])
    sagemaker = rig.client("sagemaker")
    sagemaker.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": settings["image_uri"], "TrainingInputMode": "File"},
        RoleArn=settings["role_arn"],
        OutputDataConfig={"S3OutputPath": f"s3://{settings['model_bucket']}/{settings['model_output_prefix']}"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Tags=[{"Key": "stage", "Value": "dev"}],
    )
    return dict(sagemaker.describe_training_job(TrainingJobName=name))


def test_a_training_job_state_change_reaches_promote(rig: Rig) -> None:
    # GIVEN a finished training job of ours in the local SageMaker
    prefix = json.loads(rig.stage.function_environments["start_training"]["TRAINING_SETTINGS"])["job_name_prefix"]
    job = _training_job(rig, f"{prefix}-261123-0300-abc")
    # WHEN its state-change event is put on the bus and delivered
    event = rig.bus.training_state_change(job)
    rig.bus.flush()
    # THEN the function's own parser reads it, the synthesized rule matched and promote was invoked by it
    change = parse_training_job_event(event)
    assert (change.job_name, change.status) == (job["TrainingJobName"], job["TrainingJobStatus"])
    assert isinstance(event["detail"]["CreationTime"], int)
    assert event["detail"]["Tags"] == {"stage": "dev"}
    rule = _rule(rig, "TrainingJobName")
    assert [e["data"]["rule"] for e in rig.timeline.of_kind("rule.match")] == [rule.name]
    promoted = next(i for i in rig.functions.invocations if i["function"] == "promote")
    assert promoted["source"] == f"rule {rule.logical_id}"


def test_someone_elses_training_job_is_not_routed(rig: Rig) -> None:
    # GIVEN a job without our prefix / WHEN its event is put / THEN no rule matches, promote does not run
    rig.bus.training_state_change(_training_job(rig, "someone-else-job"))
    rig.bus.flush()
    assert rig.timeline.of_kind("rule.match") == []
    assert rig.functions.invocations == []


def test_a_lambda_target_without_permission_goes_to_the_rules_dead_letter_queue(
    local_aws: LocalAws, templates: dict[str, dict[str, Any]], cdk_out: Path, tmp_path: Path
) -> None:
    # GIVEN the templates without the Lambda permissions that let EventBridge invoke the functions
    for template in templates.values():
        for logical_id in [k for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Permission"]:
            del template["Resources"][logical_id]
    rig = make_rig(local_aws, templates, cdk_out, tmp_path / "log")
    try:
        prefix = json.loads(rig.stage.function_environments["start_training"]["TRAINING_SETTINGS"])["job_name_prefix"]
        # WHEN a training event is routed
        rig.bus.training_state_change(_training_job(rig, f"{prefix}-denied"))
        rig.bus.flush()
        # THEN promote is not invoked, and the event lands in the target's dead-letter queue with the error
        assert rig.functions.invocations == []
        target = _rule(rig, "TrainingJobName").targets[0]
        dead = rig.stage.queues[target.dead_letter_arn or ""]
        message = rig.client("sqs").receive_message(QueueUrl=dead.url, MessageAttributeNames=["All"])["Messages"][0]
        assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "AccessDeniedException"
    finally:
        rig.functions.close()


def test_schedules_fire_on_the_compressed_clock(rig: Rig) -> None:
    # GIVEN the synthesized schedules (a rate and a daily cron), the clock at 02:30 UTC
    schedules = {r.schedule: r for r in rig.stage.rules if r.schedule}
    assert START.hour == 2
    # WHEN three simulated hours pass (in a fraction of a second) and the schedules run
    rig.clock.sleep(3 * 3600)
    fired = rig.bus.run_schedules(rig.clock.now())
    rig.bus.flush()
    # THEN rate(1 hour) fired three times, the 03:00 cron once, each to its synthesized target
    by_rule = [e["data"]["rule"] for e in rig.timeline.of_kind("schedule")]
    rate = next(r for s, r in schedules.items() if s and s.startswith("rate("))
    cron = next(r for s, r in schedules.items() if s and s.startswith("cron("))
    assert (by_rule.count(rate.name), by_rule.count(cron.name), fired) == (3, 1, 4)
    invoked = [i["function"] for i in rig.functions.invocations]
    assert invoked.count(rate.targets[0].function) == 3
    assert invoked.count(cron.targets[0].function) == 1
    # ... and running them again up to the same moment fires nothing twice
    assert rig.bus.run_schedules(rig.clock.now()) == 0


def test_scheduled_events_are_the_documented_shape(rig: Rig) -> None:
    # GIVEN the functions' asynchronous invocations recorded
    seen: list[dict[str, Any]] = []
    original = rig.functions.invoke_async

    def recording(key: str, event: Any, *, source: str) -> str:
        seen.append(event)
        return original(key, event, source=source)

    rig.functions.invoke_async = recording  # type: ignore[method-assign]
    # WHEN an hour passes and the schedules run
    rig.clock.sleep(3600)
    rig.bus.run_schedules(rig.clock.now())
    # THEN the functions' parser reads the scheduled event, and it names its rule
    tick = parse_scheduled_event(seen[0])
    assert seen[0]["detail-type"] == "Scheduled Event"
    assert seen[0]["resources"][0].startswith("arn:aws:events:")
    assert tick is not None
