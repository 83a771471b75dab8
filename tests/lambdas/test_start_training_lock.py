"""The lock outlives no failure: whatever start-training meets while creating a job, the lock is given back
(issue 14, section 9).

One table, FAULTS: each row GIVEN one fault, of any exception type, somewhere between taking the lock and the
job existing; WHEN a trigger arrives; THEN the error surfaces with its own type, the lock is free, no job
exists, the run record (when one was written) says FailedToStart, and the redelivered trigger starts the job.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from lambdas.shared import contract as c
from lambdas.shared import runs
from lambdas.shared.jobspec import SettingsError, build_training_job, build_tuning_job
from lambdas.shared.runtime import reset_caches
from lambdas.start_training import handler as start
from lambdas.start_training import logic
from tests.lambdas.fixtures import (
    RUNS_TABLE,
    TUNING_SETTINGS,
    Aws,
    CallRecorder,
    FakeContext,
    aws_client,
    error_response,
    load_event,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

SAGEMAKER_URL = "https://api.sagemaker.us-east-1.amazonaws.com"


def sagemaker_fails(operation: str, error: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., None]:
    """The SageMaker call answers with `error(params)`: a parsed error response, or raises."""

    def install(patch: pytest.MonkeyPatch) -> None:
        CallRecorder("sagemaker", operation, error).install()

    return install


def refused(code: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda params: error_response(code, f"{code} (test)")


def raising(error: BaseException) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


def patched(target: Any, name: str, replacement: Callable[..., Any]) -> Callable[..., None]:
    def install(patch: pytest.MonkeyPatch) -> None:
        patch.setattr(target, name, replacement)

    return install


def with_unknown_parameter(builder: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Our builder, plus a parameter SageMaker's model does not have: botocore refuses it before sending."""
    return lambda *args, **kwargs: {**builder(*args, **kwargs), "NotAParameter": 1}


def under_the_lock(error: BaseException) -> Callable[..., None]:
    """The second read of the training state (the one under the lock) fails."""

    def install(patch: pytest.MonkeyPatch) -> None:
        real, calls = runs.read_training_state, []

        def read(table: str) -> runs.TrainingState:
            calls.append(table)
            if len(calls) == 2:
                raise error
            return real(table)

        patch.setattr(runs, "read_training_state", read)

    return install


def warm_start_refused_then(error: BaseException) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The warm start is refused (ValidationException), and the cold retry meets `error`."""

    def create(params: dict[str, Any]) -> dict[str, Any]:
        if "WarmStartConfig" in params:
            return error_response("ValidationException", "incompatible parent")
        raise error

    return create


def exists_but_cannot_be_described(patch: pytest.MonkeyPatch) -> None:
    """The job name is taken (a replay), and DescribeTrainingJob times out."""
    sagemaker_fails("CreateTrainingJob", refused("ResourceInUse"))(patch)
    sagemaker_fails("DescribeTrainingJob", raising(ReadTimeoutError(endpoint_url=SAGEMAKER_URL)))(patch)


def dynamodb_error(code: str, operation: str) -> ClientError:
    return ClientError(error_response(code, f"{code} (test)", 400), operation)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Fault:
    install: Callable[[pytest.MonkeyPatch], None]
    raises: type[BaseException]  # THEN: the error surfaces with this type ...
    code: str | None = None  # ... and, for a ClientError, this code
    recorded: bool = True  # THEN: a run record exists (FailedToStart), or the failure came before it
    tuning: bool = False  # GIVEN: TRAINING_SETTINGS with tuning on


FAULTS: dict[str, Fault] = {
    # SageMaker refuses the job (ClientError, not retried by botocore)
    "CreateTrainingJob ResourceLimitExceeded": Fault(
        sagemaker_fails("CreateTrainingJob", refused("ResourceLimitExceeded")), ClientError, "ResourceLimitExceeded"
    ),
    "CreateTrainingJob ValidationException": Fault(
        sagemaker_fails("CreateTrainingJob", refused("ValidationException")), ClientError, "ValidationException"
    ),
    "CreateTrainingJob AccessDeniedException": Fault(
        sagemaker_fails("CreateTrainingJob", refused("AccessDeniedException")), ClientError, "AccessDeniedException"
    ),
    # the network (botocore raises these, not ClientError)
    "CreateTrainingJob EndpointConnectionError": Fault(
        sagemaker_fails("CreateTrainingJob", raising(EndpointConnectionError(endpoint_url=SAGEMAKER_URL))),
        EndpointConnectionError,
    ),
    "CreateTrainingJob ReadTimeoutError": Fault(
        sagemaker_fails("CreateTrainingJob", raising(ReadTimeoutError(endpoint_url=SAGEMAKER_URL))),
        ReadTimeoutError,
    ),
    "CreateTrainingJob ConnectTimeoutError": Fault(
        sagemaker_fails("CreateTrainingJob", raising(ConnectTimeoutError(endpoint_url=SAGEMAKER_URL))),
        ConnectTimeoutError,
    ),
    "CreateTrainingJob ConnectionClosedError": Fault(
        sagemaker_fails("CreateTrainingJob", raising(ConnectionClosedError(endpoint_url=SAGEMAKER_URL))),
        ConnectionClosedError,
    ),
    "CreateTrainingJob NoCredentialsError": Fault(
        sagemaker_fails("CreateTrainingJob", raising(NoCredentialsError())), NoCredentialsError
    ),
    # botocore refuses the request before sending it (a real ParamValidationError, from the service model)
    "CreateTrainingJob ParamValidationError": Fault(
        patched(logic, "build_training_job", with_unknown_parameter(build_training_job)), ParamValidationError
    ),
    # our own code
    "builder KeyError": Fault(patched(logic, "build_training_job", raising(KeyError("channel"))), KeyError),
    "builder TypeError": Fault(patched(logic, "build_training_job", raising(TypeError("None"))), TypeError),
    "builder ValueError": Fault(patched(logic, "build_training_job", raising(ValueError("bad"))), ValueError),
    "builder SettingsError": Fault(patched(logic, "build_training_job", raising(SettingsError("bad"))), SettingsError),
    "builder RuntimeError": Fault(patched(logic, "build_training_job", raising(RuntimeError("bug"))), RuntimeError),
    # before the record: the state read under the lock, the record itself
    "state read under the lock fails": Fault(
        under_the_lock(dynamodb_error("ProvisionedThroughputExceededException", "GetItem")),
        ClientError,
        "ProvisionedThroughputExceededException",
        recorded=False,
    ),
    "recording the run fails": Fault(
        patched(runs, "record_run_starting", raising(dynamodb_error("InternalServerError", "PutItem"))),
        ClientError,
        "InternalServerError",
        recorded=False,
    ),
    # a replay whose job exists, and SageMaker cannot say how it is
    "ResourceInUse, then DescribeTrainingJob ReadTimeoutError": Fault(exists_but_cannot_be_described, ReadTimeoutError),
    # tuning
    "CreateHyperParameterTuningJob ResourceLimitExceeded": Fault(
        sagemaker_fails("CreateHyperParameterTuningJob", refused("ResourceLimitExceeded")),
        ClientError,
        "ResourceLimitExceeded",
        tuning=True,
    ),
    "warm start refused, cold start ReadTimeoutError": Fault(
        sagemaker_fails(
            "CreateHyperParameterTuningJob", warm_start_refused_then(ReadTimeoutError(endpoint_url=SAGEMAKER_URL))
        ),
        ReadTimeoutError,
        tuning=True,
    ),
    "tuning builder TypeError": Fault(
        patched(logic, "build_tuning_job", raising(TypeError("None"))), TypeError, tuning=True
    ),
    "tuning CreateHyperParameterTuningJob ParamValidationError": Fault(
        patched(logic, "build_tuning_job", with_unknown_parameter(build_tuning_job)), ParamValidationError, tuning=True
    ),
    "warm-start parent read fails": Fault(
        patched(runs, "last_completed_tuning_job", raising(dynamodb_error("InternalServerError", "GetItem"))),
        ClientError,
        "InternalServerError",
        tuning=True,
    ),
}


def jobs() -> list[str]:
    sagemaker = aws_client("sagemaker")
    training = [j["TrainingJobName"] for j in sagemaker.list_training_jobs()["TrainingJobSummaries"]]
    tuning = sagemaker.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    return training + [j["HyperParameterTuningJobName"] for j in tuning]


@pytest.mark.parametrize("name", list(FAULTS))
def test_any_failure_before_the_job_exists_releases_the_lock(
    resources: Aws, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    fault = FAULTS[name]
    # GIVEN new data, a warm-start parent (tuning), and the row's fault
    if fault.tuning:
        monkeypatch.setenv(c.ENV_TRAINING_SETTINGS, TUNING_SETTINGS.to_json())
        runs.record_tuning_completed(RUNS_TABLE, job_name="sagecycle-dev-0a1b2c3d", completed_at=1)
    runs.record_accepted(RUNS_TABLE, key="train/a.csv", now=datetime.now(UTC) - timedelta(minutes=1))
    event = load_event("scheduled_event.json")
    with pytest.MonkeyPatch.context() as patch:
        fault.install(patch)
        # WHEN the schedule fires
        with pytest.raises(fault.raises) as raised:
            start.handler(event, FakeContext())
    # THEN the error is the one met, the lock is free, no job exists, and the run record says what happened
    if fault.code:
        assert isinstance(raised.value, ClientError) and raised.value.response["Error"]["Code"] == fault.code
    assert runs.lock_holder(RUNS_TABLE) is None
    assert jobs() == []
    settings = logic.Settings.from_env(os.environ)
    trigger = logic.parse_trigger(event, settings=settings, request_id="r")
    assert isinstance(trigger, logic.Trigger)
    job_name = logic.job_name_for(trigger, settings)
    record = runs.get_item(RUNS_TABLE, runs.run_key(job_name))
    if fault.recorded:
        assert record is not None and record["status"] == runs.RUN_FAILED_TO_START
        assert record["failure_reason"].startswith(type(raised.value).__name__)
    else:
        assert record is None
    # AND the redelivered trigger, the fault gone, starts the job under the lock
    reset_caches()
    result = start.handler(json.loads(json.dumps(event)), FakeContext(aws_request_id="retry"))
    assert result["started"] and result["job_name"] == job_name and jobs() == [job_name]
    assert (runs.lock_holder(RUNS_TABLE) or {})["owner"] == job_name
    assert (runs.get_item(RUNS_TABLE, runs.run_key(job_name)) or {})["status"] == runs.RUN_IN_PROGRESS


class Interrupted(BaseException):
    """Not an Exception at all (what sys.exit or an interrupt raise)."""


def test_even_a_base_exception_releases_the_lock(resources: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a builder that raises something that is not an Exception
    runs.record_accepted(RUNS_TABLE, key="train/a.csv", now=datetime.now(UTC) - timedelta(minutes=1))
    monkeypatch.setattr(logic, "build_training_job", raising(Interrupted()))
    trigger = logic.Trigger(kind="manual", trigger_id="manual:1", reason="manual: x", summary="manual")
    # WHEN the start runs / THEN it surfaces and the lock is free
    with pytest.raises(Interrupted):
        logic.start_training(trigger, logic.Settings.from_env(os.environ), datetime.now(UTC))
    assert runs.lock_holder(RUNS_TABLE) is None


def test_a_failed_release_never_hides_the_error_that_caused_it(resources: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN SageMaker refusing the job, and DynamoDB refusing the release too
    runs.record_accepted(RUNS_TABLE, key="train/a.csv", now=datetime.now(UTC) - timedelta(minutes=1))
    CallRecorder("sagemaker", "CreateTrainingJob", refused("ResourceLimitExceeded")).install()
    monkeypatch.setattr(runs, "release_lock", raising(dynamodb_error("InternalServerError", "DeleteItem")))
    # WHEN the schedule fires / THEN the caller sees SageMaker's error, not the release's
    with pytest.raises(ClientError) as raised:
        start.handler(load_event("scheduled_event.json"), FakeContext())
    assert raised.value.response["Error"]["Code"] == "ResourceLimitExceeded"
