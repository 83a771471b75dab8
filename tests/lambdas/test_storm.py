"""The whole start path under load: a storm of uploads plus duplicate alarms starts exactly one job."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from lambdas.ingest import handler as ingest
from lambdas.start_training import handler as start
from tests.lambdas.fixtures import (
    DATA_BUCKET,
    GOOD_CSV,
    Aws,
    CallCounter,
    CallRecorder,
    FakeContext,
    aws_client,
    load_event,
    sqs_event,
    upload,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

OBJECTS = 125
DELIVERIES = 4  # S3 delivers at least once: every object's notification arrives four times
BATCH = 50


def test_storm_of_500_s3_events_and_duplicate_alarms_starts_exactly_one_training_job(resources: Aws) -> None:
    # GIVEN 125 uploads whose notifications arrive 4 times each, shuffled: 500 S3 events in SQS batches of 50
    payloads: list[dict[str, Any]] = []

    def invoke(params: dict[str, Any]) -> dict[str, Any]:
        payloads.append(json.loads(params["Payload"]))
        return {"StatusCode": 202}

    CallRecorder("lambda", "Invoke", invoke).install()
    creates = CallCounter("sagemaker", "CreateTrainingJob").install()
    notices = [upload(f"incoming/storm/part-{i:03d}.csv", GOOD_CSV) for i in range(OBJECTS)]
    events = [n for n in notices for _ in range(DELIVERIES)]
    random.Random(42).shuffle(events)
    assert len(events) == 500
    # WHEN ingest works through the batches, every start invocation it makes is delivered (twice, as async
    # invokes may be), and the drift alarm's state change arrives three times
    for first in range(0, len(events), BATCH):
        assert ingest.handler(sqs_event(events[first : first + BATCH], first_id=first), FakeContext()) == {
            "batchItemFailures": []
        }
    results = [start.handler(p, FakeContext()) for p in payloads for _ in range(2)]
    alarm = load_event("alarm_drift.json")
    results += [start.handler(json.loads(json.dumps(alarm)), FakeContext()) for _ in range(3)]
    # THEN every object was promoted once, and exactly one training job exists
    trained = aws_client("s3").list_objects_v2(Bucket=DATA_BUCKET, Prefix="train/storm/")["KeyCount"]
    assert trained == OBJECTS
    assert len(payloads) == len(events) // BATCH
    assert len(creates.calls) == 1
    assert len(aws_client("sagemaker").list_training_jobs()["TrainingJobSummaries"]) == 1
    assert sum(1 for r in results if r.get("started") and not r.get("replayed")) == 1
