"""Promote trusts only what this stage started, and only metrics that can be true (issue 14, section 4).

Four tables, each row GIVEN (the state before the event) / WHEN (the job's terminal event) / THEN (what happens):
- TRUST: only a job with the run record the start function writes under the lock becomes a candidate;
- DOMAIN: a primary metric outside its domain (or not finite) is a rejected candidate with the reason;
- MISSING: a missing model.tar.gz or evaluation.json is a recorded failure with a notice, never InProgress;
- CHAMPION: a champion whose metric cannot be read leaves the floor alone to decide, and the operator is told.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from lambdas.promote import decision
from lambdas.promote import handler as promote
from lambdas.shared import artifacts, runs
from tests.lambdas.fixtures import (
    CHAMPION_URL,
    ENDPOINT,
    MODEL_BUCKET,
    RUNS_TABLE,
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
from tests.lambdas.test_promote import CANDIDATE_URL, JOB, packages, training_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

NEWER = "sagecycle-dev-261123-0700-aaaaaaaaaa"
TUNING = "sagecycle-dev-3f2a9c1b"


def lock(owner: str, trigger_id: str = "event:1") -> None:
    assert runs.acquire_lock(RUNS_TABLE, owner=owner, trigger_id=trigger_id, now=datetime.now(UTC), ttl_seconds=7200)


def legacy_record(job: str) -> None:
    """A run record as the start function wrote it before it recorded the lock it took."""
    runs.put_item(
        RUNS_TABLE,
        runs.run_key(job),
        {"trigger_id": "event:1", "reason": "schedule", "trigger": "schedule", "status": "InProgress"},
    )


def events_noticed(resources: Aws) -> list[str]:
    return [n["Message"]["event"] for n in resources.notices()]


def metric_names(output: str) -> list[str]:
    return [name for name, _, _ in emf_metrics(output)]


def endpoint_busy() -> None:
    """DescribeEndpoint says Updating: an approved candidate is queued, and nothing else of the endpoint is touched."""
    CallRecorder(
        "sagemaker", "DescribeEndpoint", lambda p: {"EndpointName": ENDPOINT, "EndpointStatus": "Updating"}
    ).install()
    forbid("sagemaker", "UpdateEndpoint")


# ------------------------------------------------------------------------------------------------ TRUST


@dataclass(frozen=True)
class TrustCase:
    given: Callable[[], None]  # the record and the lock the job left (or not)
    event: str  # WHEN: this terminal event of JOB arrives
    trusted: bool  # THEN: acted on (a decision or a failure report), or ignored with a notice
    lock_after: str | None  # THEN: who holds the lock afterwards


TRUST: dict[str, TrustCase] = {
    "recorded, holds the lock, completed": TrustCase(lambda: record_started_run(JOB), "completed", True, None),
    "recorded, lock since taken by a newer job": TrustCase(
        lambda: (record_started_run(JOB, lock=False), lock(NEWER, "event:2")), "completed", True, NEWER
    ),
    "recorded, lock expired and gone, failed": TrustCase(
        lambda: record_started_run(JOB, lock=False), "failed", True, None
    ),
    "record without lock proof, holds the lock": TrustCase(
        lambda: (legacy_record(JOB), lock(JOB)), "completed", True, None
    ),
    "record without lock proof, no lock": TrustCase(lambda: legacy_record(JOB), "completed", False, None),
    "record without lock proof, a lock of its name for another trigger": TrustCase(
        lambda: (legacy_record(JOB), lock(JOB, "event:other")), "completed", False, JOB
    ),
    "no record, no lock, completed": TrustCase(lambda: None, "completed", False, None),
    "no record, no lock, failed": TrustCase(lambda: None, "failed", False, None),
    "no record, a lock of its name": TrustCase(lambda: lock(JOB), "completed", False, JOB),
    "no record, a newer job holds the lock": TrustCase(lambda: lock(NEWER, "event:2"), "failed", False, NEWER),
}


@pytest.mark.parametrize("name", list(TRUST))
def test_only_a_job_this_stage_started_is_acted_on(
    resources: Aws, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    case = TRUST[name]
    # GIVEN a job with our name prefix, its model written, and the record / lock of the row
    put_model(CANDIDATE_URL, model_tar(evaluation_json=evaluation(0.85)))
    case.given()
    had_record = runs.get_item(RUNS_TABLE, runs.run_key(JOB)) is not None
    # WHEN its terminal event arrives
    result = promote.handler(training_event(f"training_job_{case.event}.json"), FakeContext())
    # THEN a trusted job is decided (or its failure reported) ...
    notices = events_noticed(resources)
    emitted = metric_names(capsys.readouterr().out)
    if case.trusted:
        assert "untrusted" not in result
        assert result.get("decision") == "rejected" or result.get("status") == "Failed"
        assert "untrusted-job-ignored" not in notices
    # ... and any other is ignored: nothing registered, counted or recorded, its lock left alone, the operator told
    else:
        assert result["untrusted"] is True
        assert packages() == [] and notices == ["untrusted-job-ignored"]
        assert not {"CandidatesApproved", "CandidatesRejected", "TrainingJobsFailed"} & set(emitted)
        assert (runs.get_item(RUNS_TABLE, runs.run_key(JOB)) is not None) == had_record
    assert (runs.lock_holder(RUNS_TABLE) or {}).get("owner") == case.lock_after


def test_an_untrusted_job_is_told_to_the_operator_once(resources: Aws) -> None:
    # GIVEN a job with our prefix that this stage never started
    put_model(CANDIDATE_URL, model_tar(evaluation_json=evaluation(0.99)))
    # WHEN its Completed event arrives twice
    first = promote.handler(training_event(), FakeContext())
    second = promote.handler(training_event(), FakeContext())
    # THEN both are ignored, and only the first tells the operator
    assert first["untrusted"] and second["untrusted"]
    assert (first["notified"], second["notified"]) == (True, False)
    assert events_noticed(resources) == ["untrusted-job-ignored"]


@pytest.mark.parametrize("sample", ["tuning_job_completed.json", "tuning_job_failed.json"])
def test_an_untrusted_tuning_job_is_ignored_and_its_best_job_never_read(resources: Aws, sample: str) -> None:
    # GIVEN a tuning job with our prefix that this stage never started, and a newer run holding the lock
    lock(NEWER, "event:2")
    forbid("sagemaker", "DescribeHyperParameterTuningJob", "DescribeTrainingJob", "CreateModelPackage")
    # WHEN its terminal event arrives
    result = promote.handler(load_event(sample), FakeContext())
    # THEN it is ignored, the operator told, no warm-start parent recorded, and the newer run keeps the lock
    assert result["untrusted"] is True
    assert events_noticed(resources) == ["untrusted-job-ignored"]
    assert runs.last_completed_tuning_job(RUNS_TABLE) is None
    assert (runs.lock_holder(RUNS_TABLE) or {})["owner"] == NEWER


@pytest.mark.parametrize(
    ("run", "holder", "trusted"),
    [
        # GIVEN the run record / the lock item -> THEN distrust says None (trusted) or why not
        ({"trigger_id": "t", "lock_acquired_at": 1}, None, True),
        ({"trigger_id": "t", "lock_acquired_at": 1}, {"owner": NEWER, "trigger_id": "u"}, True),
        ({"trigger_id": "t"}, {"owner": JOB, "trigger_id": "t"}, True),
        ({"trigger_id": "t"}, {"owner": JOB, "trigger_id": "u"}, False),
        ({"trigger_id": "t"}, {"owner": NEWER, "trigger_id": "t"}, False),
        ({"trigger_id": "t"}, None, False),
        ({"lock_acquired_at": 1}, None, False),  # no trigger: not written by the start function
        ({"trigger_id": "t", "lock_acquired_at": "1"}, None, False),  # not the start function's number
        (None, {"owner": JOB, "trigger_id": "t"}, False),
        (None, None, False),
    ],
)
def test_distrust_needs_the_record_and_the_lock(
    run: dict[str, Any] | None, holder: dict[str, Any] | None, trusted: bool
) -> None:
    # WHEN the rule is asked about JOB
    reason = decision.distrust(run, JOB, holder)
    # THEN only a record that proves the lock (or a held lock for the record's trigger) passes
    assert (reason is None) == trusted


# ----------------------------------------------------------------------------------------------- DOMAIN

# (metric, value, higher_is_better): values no model can score, or no number at all.
OUT_OF_DOMAIN = [
    ("auc", 1.2, True),
    ("auc", -0.01, True),
    ("auc", math.nan, True),
    ("auc", math.inf, True),
    ("accuracy", 1.0001, True),
    ("accuracy", -0.5, True),
    ("logloss", -0.01, False),
    ("rmse", -1.0, False),
    ("rmse", math.nan, False),
    ("rmse", math.inf, False),
    ("mlogloss", -math.inf, False),
]
IN_DOMAIN = [
    ("auc", 0.0, True),
    ("auc", 1.0, True),
    ("accuracy", 1.0, True),
    ("rmse", 0.0, False),
    ("logloss", 12.5, False),
    ("r2", -3.0, True),
]


def _ident(case: tuple[str, float, bool]) -> str:
    return f"{case[0]}={case[1]}"


@pytest.mark.parametrize("case", OUT_OF_DOMAIN, ids=_ident)
def test_metric_outside_its_domain_is_an_artifact_error(case: tuple[str, float, bool]) -> None:
    # GIVEN an evaluation.json whose primary metric no model can score
    name, value, higher = case
    # WHEN it is read / THEN it is refused as a broken artifact
    with pytest.raises(artifacts.ArtifactError):
        artifacts.primary_metric(evaluation(value, name, higher_is_better=higher))


@pytest.mark.parametrize("case", IN_DOMAIN, ids=_ident)
def test_metric_on_the_edge_of_its_domain_is_read(case: tuple[str, float, bool]) -> None:
    # GIVEN a metric at a bound of its domain / WHEN it is read / THEN it is the value
    name, value, higher = case
    assert artifacts.primary_metric(evaluation(value, name, higher_is_better=higher)).value == value


@pytest.mark.parametrize("case", OUT_OF_DOMAIN, ids=_ident)
def test_candidate_with_a_metric_outside_its_domain_is_rejected_with_the_reason(
    resources: Aws, capsys: pytest.CaptureFixture[str], case: tuple[str, float, bool]
) -> None:
    # GIVEN a champion on the same metric, and a candidate whose value would beat it and the floor if believed
    # (AUC 1.2 > 0.9; RMSE -1 < 0.5 and under the 0.8 ceiling)
    name, value, higher = case
    put_model(
        CHAMPION_URL, model_tar(evaluation_json=evaluation(0.9 if higher else 0.5, name, higher_is_better=higher))
    )
    put_model(CANDIDATE_URL, model_tar(evaluation_json=evaluation(value, name, higher_is_better=higher)))
    record_started_run(JOB)
    forbid("sagemaker", "CreateModel", "CreateEndpointConfig", "UpdateEndpoint", "DescribeEndpoint")
    # WHEN the Completed event arrives
    result = promote.handler(training_event(), FakeContext())
    # THEN it is registered Rejected with a reason, counted, told, recorded; the endpoint untouched
    (package,) = packages()
    assert result["decision"] == "rejected"
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["CustomerMetadataProperties"]["sagecycle:reason"]
    assert "sagecycle:candidate-value" not in package["CustomerMetadataProperties"]
    record = runs.get_item(RUNS_TABLE, runs.run_key(JOB)) or {}
    assert (record["status"], record["decision"]) == ("Completed", "rejected")
    assert "CandidatesRejected" in metric_names(capsys.readouterr().out)
    assert events_noticed(resources) == ["candidate-rejected"]


# ---------------------------------------------------------------------------------------------- MISSING


def _no_model() -> None:
    """The job completed, but its model.tar.gz is not in S3."""


def _no_evaluation() -> None:
    put_model(CANDIDATE_URL, model_tar(evaluation_json=None))


def _refused_read() -> None:
    """S3 answers 403 for the candidate (a missing key, to a role without s3:ListBucket); other reads go through."""
    put_model(CANDIDATE_URL, model_tar(evaluation_json=evaluation(0.95)))
    key = CANDIDATE_URL.removeprefix(f"s3://{MODEL_BUCKET}/")
    CallRecorder(
        "s3", "GetObject", lambda p: error_response("AccessDenied", "denied", 403) if p["Key"] == key else None
    ).install()


def _no_model_reported() -> None:
    """The event carries no model URL, and DescribeTrainingJob reports no ModelArtifacts either."""
    CallRecorder("sagemaker", "DescribeTrainingJob", lambda p: {"TrainingJobName": JOB}).install()


def _event_without_model() -> dict[str, Any]:
    event = training_event()
    event["detail"].pop("ModelArtifacts")
    return event


MISSING: dict[str, tuple[Callable[[], None], Callable[[], dict[str, Any]]]] = {
    "model.tar.gz missing": (_no_model, training_event),
    "evaluation.json missing": (_no_evaluation, training_event),
    "model.tar.gz refused (403)": (_refused_read, training_event),
    "no model reported by the job": (_no_model_reported, _event_without_model),
}


@pytest.mark.parametrize("name", list(MISSING))
def test_missing_model_or_evaluation_is_a_recorded_failure_never_left_in_progress(
    resources: Aws, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # GIVEN a recorded run holding the lock, whose model or evaluation is missing in the row's way
    given, event = MISSING[name]
    record_started_run(JOB)
    given()
    forbid("sagemaker", "CreateModelPackage", "CreateModel", "UpdateEndpoint")
    # WHEN its Completed event arrives, twice (EventBridge delivers at least once)
    first = promote.handler(event(), FakeContext())
    second = promote.handler(event(), FakeContext())
    # THEN the run is recorded Failed with the reason, counted once, the operator told once, the lock free
    record = runs.get_item(RUNS_TABLE, runs.run_key(JOB)) or {}
    assert (first["status"], first["counted"]) == ("Failed", True) and second["duplicate"]
    assert record["status"] == "Failed" and record["failure_reason"] and record["notified"]
    assert metric_names(capsys.readouterr().out).count("TrainingJobsFailed") == 1
    assert events_noticed(resources) == ["candidate-failed"]
    assert packages() == [] and runs.lock_holder(RUNS_TABLE) is None


# --------------------------------------------------------------------------------------------- CHAMPION


def _champion(evaluation_json: dict[str, Any] | None) -> Callable[[], None]:
    return lambda: put_model(CHAMPION_URL, model_tar(evaluation_json=evaluation_json))


def _champion_gone() -> None:
    s3 = aws_client("s3")
    key = CHAMPION_URL.removeprefix(f"s3://{MODEL_BUCKET}/")
    for version in s3.list_object_versions(Bucket=MODEL_BUCKET, Prefix=key).get("Versions", []):
        s3.delete_object(Bucket=MODEL_BUCKET, Key=key, VersionId=version["VersionId"])


@dataclass(frozen=True)
class ChampionCase:
    champion: Callable[[], None]  # GIVEN the champion's model.tar.gz
    candidate: float  # GIVEN the candidate's AUC (floor 0.80; a readable 0.90 champion would reject 0.85)
    decision: str  # THEN
    noticed: bool  # THEN: the operator is told the champion could not be compared


CHAMPION: dict[str, ChampionCase] = {
    "champion auc NaN": ChampionCase(_champion(evaluation(math.nan)), 0.85, "approved", True),
    "champion auc out of domain": ChampionCase(_champion(evaluation(1.5)), 0.85, "approved", True),
    "champion without evaluation.json": ChampionCase(_champion(None), 0.85, "approved", True),
    "champion model.tar.gz gone": ChampionCase(_champion_gone, 0.85, "approved", True),
    "champion NaN, candidate under the floor": ChampionCase(_champion(evaluation(math.nan)), 0.79, "rejected", True),
    "readable champion (control)": ChampionCase(_champion(evaluation(0.80)), 0.85, "approved", False),
}


@pytest.mark.parametrize("name", list(CHAMPION))
def test_unreadable_champion_leaves_the_floor_alone_and_tells_the_operator(resources: Aws, name: str) -> None:
    case = CHAMPION[name]
    # GIVEN the row's champion and a recorded candidate
    case.champion()
    put_model(CANDIDATE_URL, model_tar(evaluation_json=evaluation(case.candidate)))
    record_started_run(JOB)
    endpoint_busy()
    # WHEN the Completed event arrives
    result = promote.handler(training_event(), FakeContext())
    # THEN the floor decides, and the operator hears about an unreadable champion (naming it)
    assert result["decision"] == case.decision
    notices = [n["Message"] for n in resources.notices()]
    unreadable = [n for n in notices if n["event"] == "champion-metric-unreadable"]
    assert len(unreadable) == (1 if case.noticed else 0)
    assert all(n["champion"] == CHAMPION_URL and n["job_name"] == JOB for n in unreadable)


def test_champion_is_read_once_per_decision(resources: Aws) -> None:
    # GIVEN a champion with a NaN metric and a recorded candidate
    _champion(evaluation(math.nan))()
    put_model(CANDIDATE_URL, model_tar(evaluation_json=evaluation(0.85)))
    record_started_run(JOB)
    endpoint_busy()
    reads = CallCounter("s3", "GetObject").install()
    # WHEN the Completed event arrives / THEN each tarball is read once (the notice does not read it again)
    promote.handler(training_event(), FakeContext())
    assert sorted(c["Key"] for c in reads.calls if c["Key"].endswith("model.tar.gz")) == sorted(
        [CHAMPION_URL.removeprefix(f"s3://{MODEL_BUCKET}/"), CANDIDATE_URL.removeprefix(f"s3://{MODEL_BUCKET}/")]
    )
