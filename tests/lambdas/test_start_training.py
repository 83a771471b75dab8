"""The one start function: what starts a training job, what does not, and that duplicates start nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lambdas.shared import runs
from lambdas.shared.events import EventShapeError
from lambdas.shared.jobspec import build_training_job
from lambdas.shared.policy import RetrainPolicy
from lambdas.shared.runtime import ConfigError, client, epoch
from lambdas.start_training import handler as start
from lambdas.start_training import logic
from tests.lambdas.fixtures import (
    ENV,
    POLICY,
    PREFIX,
    RUNS_TABLE,
    SETTINGS,
    Aws,
    CallCounter,
    CallRecorder,
    FakeContext,
    aws_client,
    emf_metrics,
    error_response,
    load_event,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

NOW = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
POLICY_OBJ = RetrainPolicy.from_dict(POLICY)


def trigger(kind: str = "schedule") -> logic.Trigger:
    return logic.Trigger(kind=kind, trigger_id=f"{kind}:1", reason=kind, summary=kind)  # type: ignore[arg-type]


def state(**values: Any) -> runs.TrainingState:
    return runs.TrainingState(**values)


def settings() -> logic.Settings:
    return logic.Settings.from_env(ENV)


def jobs() -> list[str]:
    return [j["TrainingJobName"] for j in aws_client("sagemaker").list_training_jobs()["TrainingJobSummaries"]]


def new_data(at: datetime) -> None:
    runs.record_accepted(RUNS_TABLE, key="train/a.csv", now=at)


# --------------------------------------------------------------------------------------------- decide


def test_schedule_without_new_data_is_skipped() -> None:
    # GIVEN data accepted before the last training started
    seen = state(last_accepted_at=epoch(NOW) - 3600 * 5, last_started_at=epoch(NOW) - 3600 * 4)
    # WHEN the schedule fires / THEN nothing starts: no-new-data
    decision = logic.decide(trigger("schedule"), seen, POLICY_OBJ, NOW)
    assert (decision.start, decision.skip_reason) == (False, "no-new-data")


def test_schedule_with_new_data_starts() -> None:
    # GIVEN data accepted after the last training started, long ago
    seen = state(last_accepted_at=epoch(NOW) - 60, last_started_at=epoch(NOW) - 3600 * 5)
    # WHEN the schedule fires / THEN training starts
    assert logic.decide(trigger("schedule"), seen, POLICY_OBJ, NOW).start


def test_first_schedule_with_data_starts() -> None:
    # GIVEN accepted data and no training ever / WHEN the schedule fires / THEN training starts
    assert logic.decide(trigger("schedule"), state(last_accepted_at=epoch(NOW) - 60), POLICY_OBJ, NOW).start


def test_trigger_within_the_minimum_interval_is_skipped() -> None:
    # GIVEN new data, but the last training started 59 minutes ago (minimum 60)
    seen = state(last_accepted_at=epoch(NOW) - 10, last_started_at=epoch(NOW) - 59 * 60)
    # WHEN new data arrives / THEN it waits: interval
    decision = logic.decide(trigger("new-data"), seen, POLICY_OBJ, NOW)
    assert (decision.start, decision.skip_reason) == (False, "interval")


def test_trigger_after_the_minimum_interval_starts() -> None:
    # GIVEN the last training started exactly 60 minutes ago
    # WHEN new data arrives / THEN it starts one
    seen = state(last_accepted_at=epoch(NOW) - 10, last_started_at=epoch(NOW) - 60 * 60)
    assert logic.decide(trigger("new-data"), seen, POLICY_OBJ, NOW).start


def test_daily_cap_stops_the_fifth_start_of_the_day() -> None:
    # GIVEN four trainings started today (cap 4), the last long enough ago
    seen = state(last_accepted_at=epoch(NOW), last_started_at=epoch(NOW) - 7200, day="2026-11-23", day_count=4)
    # WHEN a drift alarm fires / THEN it is capped
    decision = logic.decide(trigger("alarm"), seen, POLICY_OBJ, NOW)
    assert (decision.start, decision.skip_reason) == (False, "daily-cap")


def test_daily_cap_resets_on_the_next_utc_day() -> None:
    # GIVEN four trainings yesterday / WHEN an alarm fires today / THEN it starts
    seen = state(last_started_at=epoch(NOW) - 7200, day="2026-11-22", day_count=4)
    assert logic.decide(trigger("alarm"), seen, POLICY_OBJ, NOW).start


def test_alarm_retrains_without_new_data() -> None:
    # GIVEN no data since the last training (long ago) / WHEN the drift alarm fires / THEN it starts
    seen = state(last_accepted_at=epoch(NOW) - 9000, last_started_at=epoch(NOW) - 7200)
    assert logic.decide(trigger("alarm"), seen, POLICY_OBJ, NOW).start


def test_manual_start_ignores_the_interval_but_not_the_cap() -> None:
    # GIVEN a training started a minute ago
    recent = state(last_started_at=epoch(NOW) - 60, day="2026-11-23", day_count=1)
    capped = state(last_started_at=epoch(NOW) - 60, day="2026-11-23", day_count=4)
    # WHEN someone starts one by hand / THEN the interval does not apply, the cap does
    assert logic.decide(trigger("manual"), recent, POLICY_OBJ, NOW).start
    assert logic.decide(trigger("manual"), capped, POLICY_OBJ, NOW).skip_reason == "daily-cap"


# --------------------------------------------------------------------------------------------- parse


def test_scheduled_event_is_keyed_on_its_event_id() -> None:
    # GIVEN EventBridge's scheduled event / WHEN parsed / THEN the trigger id is the event id
    parsed = logic.parse_trigger(load_event("scheduled_event.json"), settings=settings(), request_id="r")
    assert isinstance(parsed, logic.Trigger)
    assert (parsed.kind, parsed.trigger_id) == ("schedule", "event:53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa")


def test_drift_alarm_is_keyed_on_name_and_state_timestamp_and_names_the_reason() -> None:
    # GIVEN the drift alarm entering ALARM / WHEN parsed
    parsed = logic.parse_trigger(load_event("alarm_drift.json"), settings=settings(), request_id="r")
    # THEN its id is the episode and the alarm name is the reason
    assert isinstance(parsed, logic.Trigger)
    assert parsed.trigger_id == "alarm:sagecycle-dev-drift@2026-11-23T05:00:40.989+0000"
    assert parsed.reason == "alarm:sagecycle-dev-drift"


def test_model_quality_alarm_also_retrains() -> None:
    # GIVEN the model-quality alarm in ALARM
    # WHEN its event is parsed / THEN it is a retraining trigger
    event = load_event("alarm_drift.json")
    event["detail"]["alarmName"] = "sagecycle-dev-model-quality"
    parsed = logic.parse_trigger(event, settings=settings(), request_id="r")
    assert isinstance(parsed, logic.Trigger) and parsed.reason == "alarm:sagecycle-dev-model-quality"


@pytest.mark.parametrize(
    ("name", "state_value"), [("sagecycle-dev-drift", "OK"), ("sagecycle-dev-endpoint-cpu", "ALARM")]
)
def test_alarm_leaving_alarm_or_another_alarm_starts_nothing(name: str, state_value: str) -> None:
    # GIVEN an alarm back to OK, or an alarm that is not a retraining alarm
    event = load_event("alarm_drift.json")
    event["detail"].update(alarmName=name, state={**event["detail"]["state"], "value": state_value})
    # WHEN parsed / THEN it is ignored
    assert isinstance(logic.parse_trigger(event, settings=settings(), request_id="r"), logic.Ignore)


def test_manual_start_needs_a_reason() -> None:
    # GIVEN a manual request without reason
    # WHEN it is parsed
    with pytest.raises(EventShapeError) as refused:
        logic.parse_trigger({"source": "sagecycle.manual"}, settings=settings(), request_id="r")
    # THEN it is refused as a malformed event, naming the missing field
    assert (refused.value.code, refused.value.field) == ("missing-field", "reason")


# ---------------------------------------------------------------------------------------------- handler


def test_scheduled_run_with_new_data_starts_exactly_the_built_training_job(resources: Aws) -> None:
    # GIVEN new accepted data and SageMaker expecting exactly the builder's request
    new_data(datetime.now(UTC) - timedelta(minutes=1))
    event = load_event("scheduled_event.json")
    expected = build_training_job(
        SETTINGS,
        run_id="event:53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        reason="schedule",
        trigger="schedule sagecycle-dev-retraining-Schedule83A77FD1-1ABCDEF23456 at 2026-11-23T03:00:00Z",
        event_time=datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
    )
    with Stubber(client("sagemaker")) as stub:
        stub.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:x"}, expected)
        # WHEN the schedule fires
        result = start.handler(event, FakeContext())
        stub.assert_no_pending_responses()
    # THEN that job started, named from the event, with the reason in its tags
    assert result["started"] and result["job_name"] == expected["TrainingJobName"]
    assert {"Key": "sagecycle:reason", "Value": "schedule"} in expected["Tags"]


def test_started_run_is_recorded_locked_and_counted(resources: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN new data
    new_data(datetime.now(UTC) - timedelta(minutes=1))
    # WHEN the drift alarm fires
    result = start.handler(load_event("alarm_drift.json"), FakeContext())
    # THEN the run record, the lock and the metric name the job
    job = result["job_name"]
    record = runs.get_item(RUNS_TABLE, runs.run_key(job)) or {}
    assert record["reason"] == "alarm:sagecycle-dev-drift" and record["status"] == "InProgress"
    assert "sagecycle-dev-drift" in record["trigger"] and record["started_at"] > 0
    assert (runs.lock_holder(RUNS_TABLE) or {})["owner"] == job
    assert ("TrainingJobsStarted", 1.0, {"Stage": "dev"}) in emf_metrics(capsys.readouterr().out)
    assert jobs() == [job] and job.startswith(f"{PREFIX}-261123-0500-")


def test_scheduled_run_without_new_data_starts_nothing(resources: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN no accepted data at all
    # WHEN the schedule fires
    result = start.handler(load_event("scheduled_event.json"), FakeContext())
    # THEN no job, and the skip is counted with its reason
    assert result["skip_reason"] == "no-new-data" and jobs() == []
    metric = ("TriggersSkipped", 1.0, {"Stage": "dev", "Reason": "no-new-data"})
    assert metric in emf_metrics(capsys.readouterr().out)


def test_duplicate_delivery_of_one_eventbridge_event_starts_one_job(
    resources: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN new data and the same scheduled event delivered twice
    new_data(datetime.now(UTC) - timedelta(minutes=1))
    creates = CallCounter("sagemaker", "CreateTrainingJob").install()
    event = load_event("scheduled_event.json")
    # WHEN both deliveries arrive
    first = start.handler(event, FakeContext())
    second = start.handler(json.loads(json.dumps(event)), FakeContext(aws_request_id="another-request"))
    # THEN one job; the second answer is the first one replayed, and counted once
    assert len(creates.calls) == 1 and len(jobs()) == 1
    assert second["replayed"] and second["job_name"] == first["job_name"]
    started = [m for m in emf_metrics(capsys.readouterr().out) if m[0] == "TrainingJobsStarted"]
    assert len(started) == 1


def test_held_lock_skips_the_trigger(resources: Aws) -> None:
    # GIVEN new data and a lock held by a running job
    new_data(datetime.now(UTC) - timedelta(minutes=1))
    runs.acquire_lock(RUNS_TABLE, owner="sagecycle-dev-other", trigger_id="x", now=datetime.now(UTC), ttl_seconds=3600)
    # WHEN the schedule fires / THEN nothing starts: locked
    result = start.handler(load_event("scheduled_event.json"), FakeContext())
    assert result["skip_reason"] == "locked" and jobs() == []


def test_expired_lock_is_taken_over(resources: Aws) -> None:
    # GIVEN new data and a lock whose TTL passed (its job's end was never reported)
    new_data(datetime.now(UTC) - timedelta(minutes=1))
    old = datetime.now(UTC) - timedelta(hours=3)
    runs.acquire_lock(RUNS_TABLE, owner="sagecycle-dev-lost", trigger_id="x", now=old, ttl_seconds=3600)
    # WHEN the schedule fires / THEN a job starts and holds the lock
    result = start.handler(load_event("scheduled_event.json"), FakeContext())
    assert result["started"] and (runs.lock_holder(RUNS_TABLE) or {})["owner"] == result["job_name"]


def test_failed_create_training_job_releases_the_lock(resources: Aws) -> None:
    # GIVEN new data and SageMaker refusing the job
    new_data(datetime.now(UTC) - timedelta(minutes=1))
    CallRecorder(
        "sagemaker", "CreateTrainingJob", lambda p: error_response("ResourceLimitExceeded", "no instances")
    ).install()
    # WHEN the schedule fires
    with pytest.raises(ClientError) as refused:
        start.handler(load_event("scheduled_event.json"), FakeContext())
    # THEN SageMaker's error surfaces, and the lock is free again (and the next delivery may retry)
    assert refused.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert runs.lock_holder(RUNS_TABLE) is None


def test_ingest_payload_starts_training(resources: Aws) -> None:
    # GIVEN accepted data and the payload ingest sends
    new_data(datetime.now(UTC) - timedelta(seconds=5))
    payload = {"source": "sagecycle.ingest", "trigger": "new-data", "keys": ["train/a.csv"], "batch_id": "b" * 32}
    # WHEN it arrives / THEN a job starts, keyed on the batch
    result = start.handler(payload, FakeContext())
    assert result["started"] and result["trigger"] == f"ingest:{'b' * 32}"


def test_manual_request_starts_training_without_new_data(resources: Aws) -> None:
    # GIVEN no new data / WHEN the notebook asks for a run / THEN it starts with the given reason
    result = start.handler({"source": "sagecycle.manual", "reason": "new features"}, FakeContext())
    assert result["started"] and result["reason"] == "manual: new features"


# --------------------------------------------------------------------------------------------- settings


def test_missing_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN no IDEMPOTENCY_TABLE
    monkeypatch.delenv("IDEMPOTENCY_TABLE")
    # WHEN the settings load
    with pytest.raises(ConfigError) as refused:
        start.settings()
    # THEN the error is a missing variable, and the message names it for the operator
    assert refused.value.code == "missing"
    assert "IDEMPOTENCY_TABLE" in str(refused.value).split()


def test_lock_shorter_than_the_longest_job_is_refused() -> None:
    # GIVEN a lock TTL shorter than the job's MaxRuntimeInSeconds
    env = {**ENV, "RETRAIN_POLICY": json.dumps({**POLICY, "lock_ttl_seconds": 600})}
    # WHEN the settings load
    with pytest.raises(ConfigError) as refused:
        logic.Settings.from_env(env)
    # THEN the error says the lock is shorter than a run
    assert refused.value.code == "lock-shorter-than-run"
