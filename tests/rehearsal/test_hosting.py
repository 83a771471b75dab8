"""Local SageMaker hosting: endpoints served by real processes, InvokeEndpoint through boto3, capture and metrics.

Each serving process takes about two seconds to start, so every test starts as few as it can.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from sagecycle.rehearsal.hosting import ACCOUNT, HEALTH_CHECK_FAILURE
from sagecycle.rehearsal.moto_sagemaker import register_endpoint_manager, unregister_endpoint_manager

pytest.register_assert_rewrite("tests.rehearsal.conftest_hosting")  # before the import below: it is a plugin too

from tests.rehearsal.conftest_hosting import DATA_BUCKET, REGION, ROW, HostingStage, metric  # noqa: E402

pytest_plugins = ["tests.rehearsal.conftest_hosting"]


def test_create_endpoint_serves_captures_and_meters_then_stops(hosting_stage: HostingStage) -> None:
    stage = hosting_stage
    # GIVEN a model and an endpoint config with data capture, as promote creates them
    stage.config("cfg-blue", {"AllTraffic": (stage.model("m-blue", "blue"), 1.0)})
    # WHEN the endpoint is created through boto3
    stage.sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-blue")
    # THEN it is Creating until the hosting has started its variant, then InService
    assert stage.status("ep") == "Creating"
    stage.hosting.reconcile()
    assert stage.status("ep") == "InService"
    assert [p.variant for p in stage.hosting.processes()] == ["AllTraffic"]
    assert stage.detail_types() == [
        ("SageMaker Endpoint State Change", "CREATING"),
        ("SageMaker Endpoint State Change", "IN_SERVICE"),
    ]
    # WHEN sagemaker-runtime invokes it
    answers = stage.invoke("ep", 4)
    # THEN the variant's process answers, as the runtime API does
    assert answers[0]["InvokedProductionVariant"] == "AllTraffic"
    assert answers[0]["ContentType"] == "text/csv"
    assert 0.0 <= float(answers[0]["Body"].read()) <= 1.0
    stage.hosting.flush()
    # AND capture lands in S3 in SageMaker's layout, at the simulated hour, one JSON Lines record per request
    objects = stage.aws.client("s3").list_objects_v2(Bucket=DATA_BUCKET)["Contents"]
    assert len(objects) == 1
    key = objects[0]["Key"]
    assert key.startswith("capture/ep/AllTraffic/2026/11/23/06/") and key.endswith(".jsonl")
    lines = stage.aws.client("s3").get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 4
    assert records[0]["captureData"]["endpointInput"]["data"] == ROW.decode()
    assert records[0]["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert records[0]["eventMetadata"]["inferenceTime"] == "2026-11-23T06:00:00Z"
    # AND the variant's metrics are in the local CloudWatch at the simulated time, latency in microseconds
    assert metric(stage, "Invocations", "Sum")[0]["Sum"] == 4
    assert metric(stage, "Invocation5XXErrors", "Sum")[0]["Sum"] == 0
    latency = metric(stage, "ModelLatency", "Average")[0]
    recorded_ms = [i["model_latency_ms"] for i in stage.hosting.invocations]
    assert latency["Average"] == pytest.approx(1000 * sum(recorded_ms) / 4, rel=1e-3)
    assert latency["Unit"] == "Microseconds"
    # WHEN the hosting closes
    processes = stage.hosting.processes()
    stage.hosting.close()
    # THEN no serving process is left
    assert all(p.process.poll() is not None for p in processes)
    assert stage.hosting.processes() == []


def test_a_model_without_code_fails_to_come_up(hosting_stage: HostingStage) -> None:
    stage = hosting_stage
    # GIVEN an artifact without code/ (no inference.py for the container to import)
    stage.config("cfg-bad", {"AllTraffic": (stage.model("m-bad", "no-code"), 1.0)})
    # WHEN an endpoint is created on it
    stage.sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-bad")
    stage.hosting.reconcile()
    # THEN the endpoint is Failed with SageMaker's reason, and says so in its event
    described = stage.sagemaker.describe_endpoint(EndpointName="ep")
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"] == HEALTH_CHECK_FAILURE.format(variant="AllTraffic")
    assert stage.detail_types()[-1] == ("SageMaker Endpoint State Change", "FAILED")
    assert stage.events[-1]["detail"]["FailureReason"] == described["FailureReason"]
    assert "endpoint.failed" in stage.kinds()
    assert stage.hosting.processes() == []
    # AND the runtime does not know it
    with pytest.raises(ClientError) as error:
        stage.invoke("ep", 1)
    assert error.value.response["Error"]["Code"] == "ValidationError"


def test_variants_share_the_traffic_by_weight_and_target_variant_picks_one(hosting_stage: HostingStage) -> None:
    stage = hosting_stage
    # GIVEN one endpoint config with two variants weighted 3:1
    blue, green = stage.model("m-blue", "blue"), stage.model("m-green", "green")
    stage.config("cfg-ab", {"A": (blue, 3.0), "B": (green, 1.0)}, capture=False)
    stage.sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-ab")
    stage.hosting.reconcile()
    # WHEN 200 requests arrive
    answers = stage.invoke("ep", 200)
    # THEN each variant gets about its weight's share, and says it answered
    served = Counter(a["InvokedProductionVariant"] for a in answers)
    assert 120 <= served["A"] <= 180 and served["A"] + served["B"] == 200
    # AND a request naming its variant reaches that variant only
    assert {a["InvokedProductionVariant"] for a in stage.invoke("ep", 5, TargetVariant="B")} == {"B"}


def test_an_endpoint_made_before_the_hosting_is_adopted_and_served(hosting_stage: HostingStage) -> None:
    stage = hosting_stage
    # GIVEN an endpoint created while no hosting was registered (plain moto: InService at once, nothing serving)
    stage.config("cfg-blue", {"AllTraffic": (stage.model("m-blue", "blue"), 1.0)})
    unregister_endpoint_manager(ACCOUNT, REGION, stage.hosting)
    try:
        stage.sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="cfg-blue")
    finally:
        register_endpoint_manager(ACCOUNT, REGION, stage.hosting)
    assert stage.status("ep") == "InService" and stage.hosting.processes() == []
    # WHEN the hosting reconciles
    stage.hosting.reconcile()
    # THEN its variant runs and answers
    assert [p.config for p in stage.hosting.processes()] == ["cfg-blue"]
    assert stage.invoke("ep", 1)[0]["InvokedProductionVariant"] == "AllTraffic"
