"""The event parsers read what AWS sends: any status casing, and optional fields missing or explicitly null."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas.shared.events import (
    API_STATUSES,
    TERMINAL_TRAINING_STATES,
    EventShapeError,
    normalise_status,
    parse_alarm_event,
    parse_endpoint_event,
    parse_training_job_event,
    parse_tuning_job_event,
    s3_objects_from_message,
)

SAMPLES = Path(__file__).resolve().parents[1] / "events" / "aws"


def sample(name: str, **changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(json.loads((SAMPLES / name).read_text()))
    for path, value in changes.items():
        node = event
        *parents, leaf = path.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return dict(event)


def _snake(status: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", status)


@given(
    status=st.sampled_from(API_STATUSES),
    spelling=st.sampled_from(
        [str, str.upper, str.lower, lambda s: _snake(s).upper(), lambda s: _snake(s).lower(), _snake]
    ),
)
def test_every_casing_of_a_known_status_reads_as_the_api_spelling(status: str, spelling: Any) -> None:
    # GIVEN a status the API knows, spelled the way an event may spell it
    # WHEN it is normalised
    # THEN it reads as the API's spelling
    assert normalise_status(spelling(status)) == status


@pytest.mark.parametrize("status", ["COMPLETED_WITH_WARNINGS", "Completing", "completed2", "FAILED_OVER"])
def test_an_unknown_status_is_never_taken_for_a_terminal_one(status: str) -> None:
    # GIVEN a status no API documents (some close to terminal ones) WHEN it is normalised
    # THEN it is not taken for a terminal state
    assert normalise_status(status) not in TERMINAL_TRAINING_STATES


@pytest.mark.parametrize("status", ["COMPLETED", "completed", "Completed"])
def test_training_job_status_is_read_in_any_casing(status: str) -> None:
    # GIVEN the published training sample with its status in another casing
    # WHEN it is parsed
    change = parse_training_job_event(
        sample("sagemaker/training_job_state_change.json", detail__TrainingJobStatus=status)
    )
    # THEN it reads as the API's terminal Completed
    assert change.status == "Completed" and change.terminal


@pytest.mark.parametrize(
    "field", ["TuningJobArn", "FailureReason", "ModelArtifacts", "SecondaryStatus", "TrainingJobArn"]
)
def test_training_job_optional_fields_may_be_null(field: str) -> None:
    # GIVEN the published sample with one optional field sent as null
    # WHEN it is parsed
    change = parse_training_job_event(sample("sagemaker/training_job_state_change.json", **{f"detail__{field}": None}))
    # THEN it reads as absent
    assert change.tuning_job_arn == "" and change.failure_reason == "" and change.model_data_url is None
    assert change.job_name == "89c96cc8-dded-4739-afcc-6f1dc936701d"


def test_a_tuning_child_with_explicit_nulls_keeps_its_tuning_job() -> None:
    # GIVEN a tuning job's child training job event with explicit nulls
    # WHEN it is parsed
    change = parse_training_job_event(sample("mlspace/training_job_state_change_tuning_child.json"))
    # THEN it keeps its tuning job, and its nulls read as absent
    assert change.tuning_job_arn.endswith(":hyper-parameter-tuning-job/LatestFun-hpoxgb-20231004")
    assert change.status == "InProgress" and not change.terminal and change.failure_reason == ""


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"detail__BestTrainingJob": None},
        {"detail__FailureReason": None},
        {"detail__HyperParameterTuningEndTime": None},
        {"detail__BestTrainingJob": {}},
    ],
)
def test_tuning_job_optional_fields_may_be_missing_empty_or_null(changes: dict[str, Any]) -> None:
    # GIVEN a tuning job event with optional fields missing, empty or null
    event = sample("mlspace/hyperparameter_tuning_job_state_change.json", **changes)
    # WHEN it is parsed
    change = parse_tuning_job_event(event)
    # THEN each reads as absent
    assert change.best_training_job is None and change.end_time is None and change.failure_reason == ""


def test_the_documented_tuning_placeholder_status_is_not_terminal() -> None:
    # GIVEN the documented tuning sample (its status is a placeholder) WHEN it is parsed
    # THEN it is not terminal
    assert not parse_tuning_job_event(sample("sagemaker/hyperparameter_tuning_job_state_change.json")).terminal


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("sagemaker/endpoint_state_change.json", {}),
        ("mlspace/endpoint_state_change.json", {}),  # no EndpointConfigName, FailureReason null
        ("sagemaker/endpoint_state_change.json", {"detail__EndpointConfigName": None}),
        ("sagemaker/endpoint_deployment_state_change_canary.json", {"detail__PendingDeploymentSummary": None}),
    ],
)
def test_endpoint_events_read_with_their_status_in_api_spelling(name: str, changes: dict[str, Any]) -> None:
    # GIVEN an endpoint event sample, some parts null
    # WHEN it is parsed
    change = parse_endpoint_event(sample(name, **changes))
    # THEN its status is in the API's spelling and its pending config, if any, is named
    assert change.status in {"InService", "Updating"}
    assert change.pending_config_name is None or change.pending_config_name == "sample-endpoint-config-2"


@pytest.mark.parametrize(
    "changes",
    [{}, {"detail__configuration": None}, {"detail__state__reasonData": None}, {"detail__previousState": None}],
)
def test_alarm_events_read_with_optional_parts_null(changes: dict[str, Any]) -> None:
    # GIVEN the alarm sample with an optional part null
    # WHEN it is parsed
    alarm = parse_alarm_event(sample("cloudwatch/alarm_state_change_single_metric.json", **changes))
    # THEN the alarm and its state are read
    assert (alarm.alarm_name, alarm.state) == ("ServerCpuTooHigh", "ALARM")


def test_a_null_alarm_name_is_a_shape_error() -> None:
    # GIVEN the alarm sample without its alarm name
    # WHEN it is parsed THEN it is refused as a malformed event
    with pytest.raises(EventShapeError) as refused:
        parse_alarm_event(sample("cloudwatch/alarm_state_change_single_metric.json", detail__alarmName=None))
    assert (refused.value.code, refused.value.field) == ("not-a-string", "detail.alarmName")


@pytest.mark.parametrize(
    "changes",
    [{}, {"detail__object__version-id": None}, {"detail__object__size": None}, {"detail__object__etag": None}],
)
def test_s3_eventbridge_objects_read_with_optional_fields_null(changes: dict[str, Any]) -> None:
    # GIVEN the EventBridge object-created sample with an optional field null
    # WHEN it is read
    (ref,) = s3_objects_from_message(json.dumps(sample("s3/eventbridge_object_created.json", **changes)))
    # THEN the object is named, and told apart from other uploads
    assert (ref.bucket, ref.key) == ("DOC-EXAMPLE-BUCKET1", "example-key")
    assert ref.ident  # a version, a sequencer or an ETag always tells two uploads apart


def test_s3_notification_with_null_version_reads_as_unversioned() -> None:
    # GIVEN an S3 notification whose version id is null ("otherwise null", as S3 documents)
    notification = sample("s3/notification_object_created_put.json")
    notification["Records"][0]["s3"]["object"]["versionId"] = None
    # WHEN it is read
    (ref,) = s3_objects_from_message(json.dumps(notification))
    # THEN the object is unversioned, told apart by its sequencer
    assert ref.version_id is None and ref.sequencer == "0055AED6DCD90281E5"
