"""The tuning path: one tuning job at a time, warm-started from the last one; its best job is the candidate."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lambdas.promote import handler as promote
from lambdas.promote.logic import TUNING_CHILD_NAME
from lambdas.shared import contract as c
from lambdas.shared import runs
from lambdas.shared.events import parse_training_job_event, parse_tuning_job_event
from lambdas.shared.jobspec import (
    build_endpoint_config,
    build_model,
    build_tuning_job,
    build_update_endpoint,
    training_job_name,
    tuning_job_name,
)
from lambdas.shared.runtime import ConfigError, client, epoch
from lambdas.start_training import handler as start
from lambdas.start_training import logic as start_logic
from tests.lambdas.fixtures import (
    ACCOUNT,
    CHAMPION_URL,
    ENDPOINT,
    ENV,
    GROUP,
    MODEL_BUCKET,
    PREFIX,
    REGION,
    ROLLBACK_ALARMS,
    RUNS_TABLE,
    TUNING_SETTINGS,
    Aws,
    CallCounter,
    CallRecorder,
    FakeContext,
    aws_client,
    emf_metrics,
    error_response,
    evaluation,
    forbid,
    load_event,
    model_tar,
    put_model,
    record_started_run,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

# The names of tests/events/functions/tuning_job_*.json: SageMaker names children <tuning>-<NNN>-<8 hex>.
TUNING = "sagecycle-dev-3f2a9c1b"
TUNING_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/{TUNING}"
BEST = f"{TUNING}-014-7c1d2e9a"
BEST_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{BEST}"
BEST_URL = f"s3://{MODEL_BUCKET}/training-output/{BEST}/output/model.tar.gz"
CHILD = f"{TUNING}-007-a41c9e02"

SCHEDULE_RUN = "event:53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"  # tests/events/functions/scheduled_event.json
SCHEDULE_SUMMARY = "schedule sagecycle-dev-retraining-Schedule83A77FD1-1ABCDEF23456 at 2026-11-23T03:00:00Z"
SCHEDULE_TIME = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def tuning_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """TRAINING_SETTINGS with tuning on, for both functions (caches are fresh: settings load on first use)."""
    monkeypatch.setenv(c.ENV_TRAINING_SETTINGS, TUNING_SETTINGS.to_json())


def new_data(at: datetime | None = None) -> None:
    runs.record_accepted(RUNS_TABLE, key="train/a.csv", now=at or datetime.now(UTC) - timedelta(minutes=1))


def tuning_jobs() -> list[str]:
    summaries = aws_client("sagemaker").list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    return [s["HyperParameterTuningJobName"] for s in summaries]


def training_jobs() -> list[str]:
    return [j["TrainingJobName"] for j in aws_client("sagemaker").list_training_jobs()["TrainingJobSummaries"]]


def plain(value: Any) -> Any:
    """What CallRecorder records: the parameters as JSON would carry them."""
    return json.loads(json.dumps(value))


# --------------------------------------------------------------------------------------- start: tuning


def test_tuning_enabled_starts_exactly_the_built_tuning_job_cold_on_the_first_run(
    resources: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN tuning on, new data, no tuning job ever completed, and SageMaker expecting exactly the builder's request
    new_data()
    expected = build_tuning_job(
        TUNING_SETTINGS,
        run_id=SCHEDULE_RUN,
        reason="schedule",
        trigger=SCHEDULE_SUMMARY,
        event_time=SCHEDULE_TIME,
    )
    assert "WarmStartConfig" not in expected
    with Stubber(client("sagemaker")) as stub:  # any other SageMaker call (CreateTrainingJob) fails the test
        stub.add_response("create_hyper_parameter_tuning_job", {"HyperParameterTuningJobArn": TUNING_ARN}, expected)
        # WHEN the schedule fires
        result = start.handler(load_event("scheduled_event.json"), FakeContext())
        stub.assert_no_pending_responses()
    # THEN that one tuning job started: it holds the lock, its run record says tuning, the start is counted
    name = expected["HyperParameterTuningJobName"]
    assert (result["started"], result["kind"], result["job_name"]) == (True, "tuning", name)
    assert name.startswith(f"{PREFIX}-") and len(name) <= 32
    assert (runs.lock_holder(RUNS_TABLE) or {})["owner"] == name
    record = runs.get_item(RUNS_TABLE, runs.run_key(name)) or {}
    assert (record["kind"], record["trigger_kind"], record["status"]) == ("tuning", "schedule", "InProgress")
    assert record["reason"] == "schedule" and record["warm_start_parent"] is None
    assert {"Key": "sagecycle:reason", "Value": "schedule"} in expected["Tags"]
    assert ("TrainingJobsStarted", 1.0, {"Stage": "dev"}) in emf_metrics(capsys.readouterr().out)


def test_next_tuning_job_warm_starts_from_the_one_promote_recorded_as_completed(resources: Aws) -> None:
    # GIVEN a tuning job whose Completed event promote handled (its best candidate rejected: 0.85 < 0.90)
    started_tuning(0.85)
    CallRecorder("sagemaker", "DescribeTrainingJob", lambda p: best_training_job()).install()
    promote.handler(load_event("tuning_job_completed.json"), FakeContext())
    assert runs.last_completed_tuning_job(RUNS_TABLE) == TUNING
    # AND the drift alarm fires, with SageMaker expecting the builder's request with that job as parent
    alarm = load_event("alarm_drift.json")
    trigger = start_logic.parse_trigger(alarm, settings=start.settings(), request_id="r")
    assert isinstance(trigger, start_logic.Trigger)
    expected = build_tuning_job(
        TUNING_SETTINGS,
        run_id=trigger.trigger_id,
        reason=trigger.reason,
        trigger=trigger.summary,
        event_time=trigger.event_time,
        warm_start_parent=TUNING,
    )
    assert expected["WarmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": TUNING}],
        "WarmStartType": "TransferLearning",
    }
    with Stubber(client("sagemaker")) as stub:
        stub.add_response("create_hyper_parameter_tuning_job", {"HyperParameterTuningJobArn": "arn"}, expected)
        # WHEN the start function handles the alarm
        result = start.handler(alarm, FakeContext())
        stub.assert_no_pending_responses()
    # THEN the new run records its parent
    record = runs.get_item(RUNS_TABLE, runs.run_key(result["job_name"])) or {}
    assert record["warm_start_parent"] == TUNING


def test_storm_of_duplicate_triggers_with_tuning_enabled_starts_exactly_one_tuning_job(resources: Aws) -> None:
    # GIVEN tuning on, new data, and every trigger there is, each delivered more than once, shuffled
    new_data()
    creates = CallCounter("sagemaker", "CreateHyperParameterTuningJob").install()
    forbid("sagemaker", "CreateTrainingJob")
    batches = [
        {"source": "sagecycle.ingest", "trigger": "new-data", "keys": [f"train/{i}.csv"], "batch_id": f"{i:032x}"}
        for i in range(12)
    ]
    manual = {"source": "sagecycle.manual", "reason": "new features", "request_id": "notebook-1"}
    events = [*batches * 2, *[load_event("scheduled_event.json")] * 3, *[load_event("alarm_drift.json")] * 3]
    events += [manual] * 2
    random.Random(7).shuffle(events)
    # WHEN every delivery reaches the start function
    results = [
        start.handler(json.loads(json.dumps(e)), FakeContext(aws_request_id=f"r{i}")) for i, e in enumerate(events)
    ]
    # THEN exactly one tuning job (and no training job) started; the rest were replays or skips
    assert len(creates.calls) == 1 and len(tuning_jobs()) == 1 and training_jobs() == []
    assert sum(1 for r in results if r.get("started") and not r.get("replayed")) == 1
    skipped = {r["skip_reason"] for r in results if r.get("skip_reason")}
    assert skipped and skipped <= {"no-new-data", "interval", "locked"}
    assert (runs.lock_holder(RUNS_TABLE) or {})["owner"] == tuning_jobs()[0]


@pytest.mark.parametrize(("status", "lock_kept"), [("InProgress", True), ("Completed", False)])
def test_replay_after_the_idempotency_record_expired_starts_no_second_tuning_job(
    resources: Aws, status: str, lock_kept: bool
) -> None:
    # GIVEN this trigger's tuning job exists already (SageMaker answers ResourceInUse) and is `status`
    new_data()
    name = tuning_job_name(PREFIX, SCHEDULE_RUN, event_time=SCHEDULE_TIME)
    CallRecorder(
        "sagemaker", "CreateHyperParameterTuningJob", lambda p: error_response("ResourceInUse", "already exists")
    ).install()
    describe = CallRecorder(
        "sagemaker",
        "DescribeHyperParameterTuningJob",
        lambda p: {"HyperParameterTuningJobName": name, "HyperParameterTuningJobStatus": status},
    ).install()
    # WHEN the schedule event is delivered again
    result = start.handler(load_event("scheduled_event.json"), FakeContext())
    # THEN nothing new starts; a running job keeps the lock (and its run is on record), a finished one frees it
    assert result["duplicate"] and result["job_name"] == name
    assert describe.calls == [{"HyperParameterTuningJobName": name}]
    assert ((runs.lock_holder(RUNS_TABLE) or {}).get("owner") == name) is lock_kept
    if lock_kept:
        assert (runs.get_item(RUNS_TABLE, runs.run_key(name)) or {})["kind"] == "tuning"


def test_refused_create_tuning_job_releases_the_lock(resources: Aws) -> None:
    # GIVEN SageMaker refusing the tuning job
    new_data()
    CallRecorder(
        "sagemaker",
        "CreateHyperParameterTuningJob",
        lambda p: error_response("ResourceLimitExceeded", "no instances"),
    ).install()
    # WHEN the schedule fires
    with pytest.raises(ClientError) as refused:
        start.handler(load_event("scheduled_event.json"), FakeContext())
    # THEN SageMaker's error surfaces (the event is retried) and the lock is free again
    assert refused.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert runs.lock_holder(RUNS_TABLE) is None


def test_refused_warm_start_falls_back_to_a_cold_tuning_job(resources: Aws) -> None:
    # GIVEN a recorded parent whose search space SageMaker no longer accepts for a warm start
    runs.record_tuning_completed(RUNS_TABLE, job_name=TUNING, completed_at=1)

    def create(params: dict[str, Any]) -> dict[str, Any]:
        if "WarmStartConfig" in params:
            return error_response("ValidationException", "The parent tuning job's ranges are incompatible")
        return {"HyperParameterTuningJobArn": "arn"}

    creates = CallRecorder("sagemaker", "CreateHyperParameterTuningJob", create).install()
    # WHEN someone starts a run by hand
    result = start.handler({"source": "sagecycle.manual", "reason": "new ranges", "request_id": "n-1"}, FakeContext())
    # THEN the second request is the builder's cold one, and the run record says why
    cold = build_tuning_job(
        TUNING_SETTINGS, run_id="manual:n-1", reason="manual: new ranges", trigger="manual request n-1"
    )
    assert creates.calls == [plain({**cold, "WarmStartConfig": creates.calls[0]["WarmStartConfig"]}), plain(cold)]
    assert creates.calls[0]["WarmStartConfig"]["ParentHyperParameterTuningJobs"] == [
        {"HyperParameterTuningJobName": TUNING}
    ]
    record = runs.get_item(RUNS_TABLE, runs.run_key(result["job_name"])) or {}
    assert record["warm_start_parent"] is None and TUNING in record["warm_start_refused"]


def test_lock_shorter_than_the_longest_tuning_job_is_refused() -> None:
    # GIVEN 20 children, 2 at a time, each up to 3600 s: ten waves, longer than the 7200 s lock
    long = TUNING_SETTINGS.to_json().replace('"max_jobs":4', '"max_jobs":20')
    # WHEN the start function's settings load
    with pytest.raises(ConfigError) as refused:
        start_logic.Settings.from_env({**ENV, c.ENV_TRAINING_SETTINGS: long})
    # THEN the lock is refused as shorter than the run, and the message gives the tuning job's 36000 s
    assert refused.value.code == "lock-shorter-than-run"
    assert "(36000 s)" in str(refused.value)


def test_tuning_runtime_limit_bounds_the_lock_check() -> None:
    # GIVEN the same 20 children but a tuning job limited to 7200 s
    limited = TUNING_SETTINGS.to_json().replace('"max_jobs":4', '"max_jobs":20,"max_runtime_seconds":7200')
    # WHEN the start function's settings load / THEN the 7200 s lock is long enough
    assert start_logic.Settings.from_env({**ENV, c.ENV_TRAINING_SETTINGS: limited}).job_kind == "tuning"


# ------------------------------------------------------------------------------------- promote: events


def test_tuning_event_samples_parse_to_the_documented_fields() -> None:
    # GIVEN the Completed and Failed samples / WHEN parsed / THEN name, status, best job, reason and end time
    completed = parse_tuning_job_event(load_event("tuning_job_completed.json"))
    failed = parse_tuning_job_event(load_event("tuning_job_failed.json"))
    assert (completed.job_name, completed.status, completed.best_training_job) == (TUNING, "Completed", BEST)
    assert completed.best_training_job_arn == BEST_ARN
    assert completed.end_time == datetime.fromtimestamp(1795420361, UTC)
    assert (failed.status, failed.best_training_job) == ("Failed", None)
    assert failed.failure_reason.startswith("No training job succeeded")


def test_documented_event_without_best_job_or_reason_still_parses() -> None:
    # GIVEN AWS's documented detail: no BestTrainingJob, FailureReason or end time
    event = load_event("tuning_job_completed.json")
    for key in ("BestTrainingJob", "HyperParameterTuningEndTime", "HyperParameterTuningJobConfig"):
        del event["detail"][key]
    # WHEN it is parsed
    change = parse_tuning_job_event(event)
    # THEN it parses, the missing fields empty
    assert (change.best_training_job, change.failure_reason, change.end_time) == (None, "", None)


def test_child_training_job_event_carries_its_tuning_job() -> None:
    # GIVEN the state change of a training job a tuning job started
    # WHEN it is parsed
    change = parse_training_job_event(load_event("training_job_tuning_child_completed.json"))
    # THEN it names the job and its tuning job
    assert (change.job_name, change.tuning_job_arn) == (CHILD, TUNING_ARN)


# ------------------------------------------------------------------------------------ promote: tuning


def started_tuning(candidate_auc: float | None = 0.93, *, lock: bool = True) -> None:
    """What start_training leaves behind for a tuning run, and what its best child wrote."""
    if candidate_auc is not None:
        put_model(BEST_URL, model_tar(evaluation_json=evaluation(candidate_auc)))
    record_started_run(TUNING, lock=lock, kind="tuning")


def best_training_job(**changes: Any) -> dict[str, Any]:
    """DescribeTrainingJob of the best child (all the members the API requires, and its TuningJobArn)."""
    return {
        "TrainingJobName": BEST,
        "TrainingJobArn": BEST_ARN,
        "TuningJobArn": TUNING_ARN,
        "ModelArtifacts": {"S3ModelArtifacts": BEST_URL},
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": datetime(2026, 11, 23, 7, 6, 1, tzinfo=UTC),
        **changes,
    }


def described_tuning_job(status: str, **changes: Any) -> dict[str, Any]:
    """DescribeHyperParameterTuningJob (the members the API requires)."""
    return {
        "HyperParameterTuningJobName": TUNING,
        "HyperParameterTuningJobArn": TUNING_ARN,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 20, "MaxParallelTrainingJobs": 2},
        },
        "HyperParameterTuningJobStatus": status,
        "CreationTime": datetime(2026, 11, 23, 6, 6, 1, tzinfo=UTC),
        "TrainingJobStatusCounters": {"Completed": 3, "Stopped": 2},
        "ObjectiveStatusCounters": {"Succeeded": 3, "Pending": 0, "Failed": 0},
        **changes,
    }


def packages() -> list[dict[str, Any]]:
    sagemaker = aws_client("sagemaker")
    summaries = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    return [sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]


def expected_package(reason: str) -> dict[str, Any]:
    """The exact CreateModelPackage request for the approved best job: named after it, tagged with the tuning job."""
    model = build_model(TUNING_SETTINGS, model_name=BEST, model_data_url=BEST_URL, run_id=BEST)
    return {
        "ModelPackageGroupName": GROUP,
        "ModelPackageDescription": f"{BEST}: {reason}",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": TUNING_SETTINGS.image_uri,
                    "ModelDataUrl": BEST_URL,
                    "Environment": model["PrimaryContainer"]["Environment"],
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["text/csv", "application/json"],
            "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large"],
            "SupportedTransformInstanceTypes": ["ml.m5.xlarge"],
        },
        "ModelApprovalStatus": "Approved",
        "CustomerMetadataProperties": {
            "sagecycle:training-job": BEST,
            "sagecycle:tuning-job": TUNING,
            "sagecycle:decision": "approved",
            "sagecycle:reason": reason,
            "sagecycle:primary-metric": "auc",
            "sagecycle:candidate-value": "0.93",
            "sagecycle:champion-value": "0.9",
            "sagecycle:champion-model": CHAMPION_URL,
            "sagecycle:metric-floor": "0.8",
            "sagecycle:tolerance": "0.002",
            "sagecycle:run-reason": "schedule",
            "sagecycle:trigger": "schedule at 2026-11-23T05:00:00Z",
            "sagecycle:test-auc": "0.93",
            "sagecycle:test-accuracy": "0.85",
            "sagecycle:test-logloss": "0.31",
        },
        "ClientToken": hashlib.sha256(f"package|{BEST}".encode()).hexdigest()[:32],
        "MetadataProperties": {"GeneratedBy": BEST_ARN},
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{MODEL_BUCKET}/training-output/{BEST}/output/evaluation.json",
                }
            }
        },
    }


def test_completed_tuning_job_with_a_better_best_job_is_promoted_blue_green(
    resources: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a tuning job holding the lock whose best job (0.93) beats the champion (0.90), and SageMaker expecting
    # exactly: the best job's description, its package, model, endpoint config and the guarded update
    started_tuning(0.93)
    reason = "auc 0.93 vs champion 0.9: within tolerance or better"
    endpoint = {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}",
        "EndpointConfigName": "sagecycle-dev-baseline",
        "EndpointStatus": "InService",
        "CreationTime": datetime(2026, 11, 1, tzinfo=UTC),
        "LastModifiedTime": datetime(2026, 11, 1, tzinfo=UTC),
    }
    with Stubber(client("sagemaker")) as stub:
        stub.add_response("describe_training_job", best_training_job(), {"TrainingJobName": BEST})
        stub.add_response(
            "create_model_package",
            {"ModelPackageArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/2"},
            expected_package(reason),
        )
        stub.add_response(
            "create_model",
            {"ModelArn": "arn:aws:sagemaker:x:1:model/m"},
            build_model(TUNING_SETTINGS, model_name=BEST, model_data_url=BEST_URL, run_id=BEST),
        )
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:x:1:endpoint-config/c"},
            build_endpoint_config(TUNING_SETTINGS, endpoint_config_name=BEST, model_name=BEST, run_id=BEST),
        )
        stub.add_response("describe_endpoint", endpoint, {"EndpointName": ENDPOINT})
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": endpoint["EndpointArn"]},
            build_update_endpoint(
                TUNING_SETTINGS, endpoint_name=ENDPOINT, endpoint_config_name=BEST, alarm_names=ROLLBACK_ALARMS
            ),
        )
        # WHEN the tuning job's Completed event arrives
        result = promote.handler(load_event("tuning_job_completed.json"), FakeContext())
        stub.assert_no_pending_responses()
    # THEN the best job's model is deploying, the decision sits on the tuning run, the lock is free,
    # the tuning job is the next warm-start parent, and the approval is counted
    assert (result["decision"], result["deployment"], result["best_training_job"]) == ("approved", "pending", BEST)
    run = runs.get_item(RUNS_TABLE, runs.run_key(TUNING)) or {}
    assert (run["decision"], run["best_training_job"], run["model_data_url"]) == ("approved", BEST, BEST_URL)
    deployment = runs.get_item(RUNS_TABLE, runs.deployment_key(BEST)) or {}
    assert (deployment["status"], deployment["run"], deployment["tuning_job"]) == ("pending", TUNING, TUNING)
    assert runs.lock_holder(RUNS_TABLE) is None
    assert runs.last_completed_tuning_job(RUNS_TABLE) == TUNING
    assert ("CandidatesApproved", 1.0, {"Stage": "dev"}) in emf_metrics(capsys.readouterr().out)


def test_completed_tuning_job_with_a_worse_best_job_is_rejected_and_the_endpoint_left_alone(resources: Aws) -> None:
    # GIVEN a best job worse than the champion (0.85 vs 0.90), and any endpoint change failing the test
    started_tuning(0.85)
    describe = CallRecorder("sagemaker", "DescribeTrainingJob", lambda p: best_training_job()).install()
    forbid("sagemaker", "UpdateEndpoint", "CreateModel", "CreateEndpointConfig", "DescribeEndpoint")
    # WHEN the tuning job's Completed event arrives
    result = promote.handler(load_event("tuning_job_completed.json"), FakeContext())
    # THEN the best job's package is Rejected with the reason, the operator told, the lock free, the parent recorded
    (package,) = packages()
    assert result["decision"] == "rejected" and describe.calls == [{"TrainingJobName": BEST}]
    assert package["ModelApprovalStatus"] == "Rejected"
    metadata = package["CustomerMetadataProperties"]
    assert (metadata["sagecycle:training-job"], metadata["sagecycle:tuning-job"]) == (BEST, TUNING)
    assert "worse than the champion" in metadata["sagecycle:reason"]
    assert [n["Message"]["event"] for n in resources.notices()] == ["candidate-rejected"]
    assert (runs.get_item(RUNS_TABLE, runs.run_key(TUNING)) or {})["decision"] == "rejected"
    assert runs.lock_holder(RUNS_TABLE) is None
    assert runs.last_completed_tuning_job(RUNS_TABLE) == TUNING


def test_documented_event_shape_is_completed_from_describe_hyper_parameter_tuning_job(resources: Aws) -> None:
    # GIVEN the Completed event as AWS documents it (no BestTrainingJob, no end time): the API knows the best job
    started_tuning(0.85)
    event = load_event("tuning_job_completed.json")
    for key in ("BestTrainingJob", "HyperParameterTuningEndTime"):
        del event["detail"][key]
    ended = datetime(2026, 11, 23, 8, 12, 30, tzinfo=UTC)
    summary = {
        "TrainingJobName": BEST,
        "TrainingJobArn": BEST_ARN,
        "CreationTime": ended - timedelta(hours=1),
        "TrainingJobStatus": "Completed",
        "TunedHyperParameters": {"eta": "0.07"},
    }
    tuning = CallRecorder(
        "sagemaker",
        "DescribeHyperParameterTuningJob",
        lambda p: described_tuning_job("Completed", BestTrainingJob=summary, HyperParameterTuningEndTime=ended),
    ).install()
    CallRecorder("sagemaker", "DescribeTrainingJob", lambda p: best_training_job()).install()
    # WHEN it arrives
    result = promote.handler(event, FakeContext())
    # THEN the best job the API names is decided on, and the parent is recorded with the API's end time
    assert tuning.calls == [{"HyperParameterTuningJobName": TUNING}]
    assert result["best_training_job"] == BEST and result["decision"] == "rejected"
    assert (runs.get_item(RUNS_TABLE, runs.TUNING) or {})["completed_at"] == epoch(ended)
    assert runs.lock_holder(RUNS_TABLE) is None


def test_completed_tuning_job_without_a_best_job_notifies_and_releases_the_lock(resources: Aws) -> None:
    # GIVEN a tuning job that completed but whose children never reported the objective metric
    started_tuning(None)
    event = load_event("tuning_job_completed.json")
    del event["detail"]["BestTrainingJob"]
    CallRecorder("sagemaker", "DescribeHyperParameterTuningJob", lambda p: described_tuning_job("Completed")).install()
    forbid("sagemaker", "DescribeTrainingJob", "CreateModelPackage")
    # WHEN the Completed event arrives / THEN the operator is told, nothing is registered, the lock is free
    promote.handler(event, FakeContext())
    (notice,) = resources.notices()
    assert notice["Message"]["event"] == "tuning-job-completed"
    assert "without a best training job" in notice["Message"]["failure_reason"]
    assert runs.lock_holder(RUNS_TABLE) is None


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_failed_or_stopped_tuning_job_notifies_with_the_reason_and_releases_the_lock(
    resources: Aws, capsys: pytest.CaptureFixture[str], status: str
) -> None:
    # GIVEN a running tuning job holding the lock, that fails (the event says why) or is stopped (it does not)
    started_tuning(None)
    event = load_event("tuning_job_failed.json")
    event["detail"]["HyperParameterTuningJobStatus"] = status
    expected_reason = event["detail"]["FailureReason"]
    with Stubber(client("sagemaker")) as stub:
        if status == "Stopped":
            del event["detail"]["FailureReason"]
            expected_reason = "the tuning job was stopped"
            stub.add_response(
                "describe_hyper_parameter_tuning_job",
                described_tuning_job("Stopped"),
                {"HyperParameterTuningJobName": TUNING},
            )
        # WHEN the event arrives
        result = promote.handler(event, FakeContext())
        stub.assert_no_pending_responses()
    # THEN the operator gets the reason, the run says so, the lock is free, the failure is counted
    (notice,) = resources.notices()
    assert notice["Message"]["event"] == f"tuning-job-{status.lower()}"
    assert notice["Message"]["tuning_job"] == TUNING
    assert notice["Message"]["failure_reason"] == expected_reason == result["failure_reason"]
    assert (runs.get_item(RUNS_TABLE, runs.run_key(TUNING)) or {})["status"] == status
    assert runs.lock_holder(RUNS_TABLE) is None
    assert runs.last_completed_tuning_job(RUNS_TABLE) is None  # only a Completed job is a warm-start parent
    assert ("TrainingJobsFailed", 1.0, {"Stage": "dev"}) in emf_metrics(capsys.readouterr().out)


def test_unfinished_tuning_job_event_changes_nothing(resources: Aws) -> None:
    # GIVEN a running tuning job / WHEN an InProgress event arrives / THEN it keeps the lock
    started_tuning(None)
    event = load_event("tuning_job_completed.json")
    event["detail"]["HyperParameterTuningJobStatus"] = "InProgress"
    assert "ignored" in promote.handler(event, FakeContext())
    assert (runs.lock_holder(RUNS_TABLE) or {})["owner"] == TUNING


def test_best_job_without_a_model_is_a_recorded_failure_and_releases_the_lock(resources: Aws) -> None:
    # GIVEN a Completed tuning job whose best model.tar.gz does not exist (S3 says NoSuchKey)
    started_tuning(None)
    CallRecorder("sagemaker", "DescribeTrainingJob", lambda p: best_training_job()).install()
    # WHEN promote handles the event
    result = promote.handler(load_event("tuning_job_completed.json"), FakeContext())
    # THEN the tuning run is recorded Failed, the operator told, nothing registered, and the lock is free
    assert result["status"] == "Failed" and result["counted"]
    assert (runs.get_item(RUNS_TABLE, runs.run_key(TUNING)) or {})["status"] == "Failed"
    assert [n["Message"]["event"] for n in resources.notices()] == ["candidate-failed"]
    assert packages() == [] and runs.lock_holder(RUNS_TABLE) is None


def test_exception_while_deciding_on_the_best_job_still_releases_the_lock(resources: Aws) -> None:
    # GIVEN a Completed tuning job whose best job SageMaker cannot describe right now
    started_tuning(0.93)
    CallRecorder("sagemaker", "DescribeTrainingJob", lambda p: error_response("ValidationException", "no")).install()
    # WHEN promote handles the event
    with pytest.raises(ClientError) as raised:
        promote.handler(load_event("tuning_job_completed.json"), FakeContext())
    # THEN SageMaker's error surfaces (the event is retried) and the lock is free
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert runs.lock_holder(RUNS_TABLE) is None


def test_duplicate_completed_tuning_event_registers_nothing_twice(resources: Aws) -> None:
    # GIVEN a tuning job's best candidate already decided
    started_tuning(0.85)
    CallRecorder("sagemaker", "DescribeTrainingJob", lambda p: best_training_job()).install()
    promote.handler(load_event("tuning_job_completed.json"), FakeContext())
    creates = CallCounter("sagemaker", "CreateModelPackage").install()
    # WHEN SageMaker sends the Completed event again / THEN nothing new is registered
    result = promote.handler(load_event("tuning_job_completed.json"), FakeContext())
    assert result["duplicate"] and creates.calls == [] and len(packages()) == 1


def test_older_tuning_job_never_replaces_a_newer_warm_start_parent(resources: Aws) -> None:
    # GIVEN a newer tuning job on record / WHEN an older one's late event is recorded / THEN the newer one stays
    assert runs.record_tuning_completed(RUNS_TABLE, job_name="sagecycle-dev-newer", completed_at=200)
    assert not runs.record_tuning_completed(RUNS_TABLE, job_name=TUNING, completed_at=100)
    assert runs.last_completed_tuning_job(RUNS_TABLE) == "sagecycle-dev-newer"


def test_deployment_outcome_is_recorded_on_the_tuning_run(resources: Aws) -> None:
    # GIVEN the best job's deployment pending for the tuning run, and the endpoint now InService on it
    started_tuning(None, lock=False)
    record = {
        "kind": "promotion",
        "endpoint_config_name": BEST,
        "model_data_url": BEST_URL,
        "previous_model_data_url": CHAMPION_URL,
        "training_job": BEST,
        "run": TUNING,
        "status": "pending",
        "started_at": 0,
    }
    runs.put_item(RUNS_TABLE, runs.deployment_key(BEST), record)
    runs.put_item(RUNS_TABLE, runs.DEPLOYMENT, {"endpoint_config_name": BEST, "kind": "promotion"})
    sagemaker = aws_client("sagemaker")
    sagemaker.create_model(**build_model(TUNING_SETTINGS, model_name=BEST, model_data_url=BEST_URL, run_id=BEST))
    sagemaker.create_endpoint_config(
        **build_endpoint_config(TUNING_SETTINGS, endpoint_config_name=BEST, model_name=BEST, run_id=BEST)
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=BEST)
    event = load_event("endpoint_in_service.json")
    event["detail"]["EndpointConfigName"] = BEST
    # WHEN the endpoint state change arrives / THEN the tuning run records the deployment's outcome
    assert promote.handler(event, FakeContext())["deployment"] == "succeeded"
    assert (runs.get_item(RUNS_TABLE, runs.run_key(TUNING)) or {})["deployment"] == "succeeded"


# ----------------------------------------------------------------------------- promote: child jobs


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped"])
def test_child_training_job_event_is_ignored_and_the_tuning_job_keeps_the_lock(resources: Aws, status: str) -> None:
    # GIVEN a running tuning job holding the lock, and one of its children finishing (detail has TuningJobArn)
    started_tuning(0.99)
    event = load_event("training_job_tuning_child_completed.json")
    event["detail"]["TrainingJobStatus"] = status
    forbid("sagemaker", "DescribeTrainingJob", "CreateModelPackage", "UpdateEndpoint")
    # WHEN the child's training job event reaches promote
    result = promote.handler(event, FakeContext())
    # THEN it is no candidate and no failure: nothing registered or told, the run untouched, the lock still held
    assert result == {"ignored": f"{CHILD} belongs to tuning job {TUNING}"}
    assert packages() == [] and resources.notices() == []
    assert (runs.get_item(RUNS_TABLE, runs.run_key(TUNING)) or {})["status"] == "InProgress"
    assert (runs.lock_holder(RUNS_TABLE) or {})["owner"] == TUNING


def test_child_event_without_tuning_job_arn_is_recognised_by_describe_training_job(resources: Aws) -> None:
    # GIVEN a child's Completed event whose detail lacks TuningJobArn; DescribeTrainingJob has it
    started_tuning(0.99)
    event = load_event("training_job_tuning_child_completed.json")
    del event["detail"]["TuningJobArn"]
    describe = CallRecorder(
        "sagemaker", "DescribeTrainingJob", lambda p: best_training_job(TrainingJobName=CHILD)
    ).install()
    forbid("sagemaker", "CreateModelPackage", "UpdateEndpoint")
    # WHEN it reaches promote / THEN promote asked once, and ignored it: the tuning job keeps the lock
    result = promote.handler(event, FakeContext())
    assert describe.calls == [{"TrainingJobName": CHILD}]
    assert result == {"ignored": f"{CHILD} belongs to tuning job {TUNING}"} and packages() == []
    assert (runs.lock_holder(RUNS_TABLE) or {})["owner"] == TUNING


def test_our_own_training_job_names_never_look_like_children(resources: Aws) -> None:
    # GIVEN the single-job path's names (10 hex digits last)
    names = [training_job_name(PREFIX, f"event:{i}", event_time=SCHEDULE_TIME) for i in range(50)]
    names += [training_job_name(PREFIX, f"manual:{i}") for i in range(50)]
    # WHEN they are matched against the tuning-child pattern
    # THEN none is taken for a child (no DescribeTrainingJob is spent on them), and real children are
    assert not any(TUNING_CHILD_NAME.fullmatch(n) for n in names)
    assert TUNING_CHILD_NAME.fullmatch(CHILD) and TUNING_CHILD_NAME.fullmatch(BEST)
