"""One deployment path: every function that points the endpoint at a model goes through these steps.

A deployment is CreateModel + CreateEndpointConfig (idempotent, deterministic names), a record in the runs
table (`deployment#<config>`, with the `state#deployment` pointer naming the one in flight), and a blue/green
UpdateEndpoint. Promote starts promotions and champion re-assertions, the alarm responder starts rollbacks;
promote judges every outcome from DescribeEndpoint and finishes it. Each caller keeps its own order of the
steps (what a failure half-way leaves behind is part of its contract); the steps themselves live here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal, NotRequired, TypedDict

from botocore.exceptions import ClientError

from lambdas.shared import runs
from lambdas.shared.jobspec import TrainingSpecSettings, build_endpoint_config, build_model, build_update_endpoint
from lambdas.shared.runtime import client, create_if_absent, epoch, error_code

DeploymentKind = Literal["promotion", "rollback", "reassert"]
Outcome = Literal["succeeded", "rolled_back", "failed", "in_progress"]

FAILED_STATES: Final = frozenset({"Failed", "UpdateRollbackFailed", "OutOfService"})


class Deployment(TypedDict):
    """A `deployment#<config>` record as the starting function writes it (promote adds status and finish times)."""

    kind: DeploymentKind
    endpoint_config_name: str
    model_data_url: str
    started_at: int
    started_at_iso: str
    status: NotRequired[str]
    # promotion
    model_package_arn: NotRequired[str]
    previous_model_data_url: NotRequired[str | None]
    previous_package_arn: NotRequired[str | None]
    training_job: NotRequired[str]
    run: NotRequired[str]
    tuning_job: NotRequired[str]
    # rollback
    from_model_data_url: NotRequired[str | None]
    from_endpoint_config_name: NotRequired[str | None]
    rolled_back_package_arn: NotRequired[str | None]
    alarm_episode: NotRequired[str]
    reason: NotRequired[str]
    # reassert
    replaced_model_data_url: NotRequired[str]


def describe_endpoint(name: str) -> dict[str, Any] | None:
    """DescribeEndpoint; None when the endpoint does not exist."""
    try:
        return dict(client("sagemaker").describe_endpoint(EndpointName=name))
    except ClientError as error:
        if error_code(error) == "ValidationException" and "could not find" in str(error).lower():
            return None
        raise


def create_model_and_config(training: TrainingSpecSettings, *, name: str, model_data_url: str, run_id: str) -> None:
    """CreateModel and CreateEndpointConfig, both called `name`; a retry finds them made and goes on."""
    sagemaker = client("sagemaker")
    create_if_absent(
        sagemaker.create_model,
        **build_model(training, model_name=name, model_data_url=model_data_url, run_id=run_id),
    )
    create_if_absent(
        sagemaker.create_endpoint_config,
        **build_endpoint_config(training, endpoint_config_name=name, model_name=name, run_id=run_id),
    )


def update_endpoint(
    training: TrainingSpecSettings, *, endpoint_name: str, endpoint_config_name: str, alarm_names: Sequence[str]
) -> None:
    """The blue/green UpdateEndpoint onto `endpoint_config_name`, rolling back on `alarm_names`."""
    client("sagemaker").update_endpoint(
        **build_update_endpoint(
            training,
            endpoint_name=endpoint_name,
            endpoint_config_name=endpoint_config_name,
            alarm_names=list(alarm_names),
        )
    )


def record_started(table: str, deployment: Deployment) -> None:
    """The deployment's record, then the pointer that makes it the one in flight."""
    config = deployment["endpoint_config_name"]
    runs.put_item(table, runs.deployment_key(config), dict(deployment))
    runs.put_item(table, runs.DEPLOYMENT, {"endpoint_config_name": config, "kind": deployment["kind"]})


def deployment_outcome(deployment: Mapping[str, Any], endpoint: Mapping[str, Any]) -> Outcome:
    """What DescribeEndpoint says about the deployment of `deployment["endpoint_config_name"]`."""
    status = str(endpoint.get("EndpointStatus", ""))
    current = endpoint.get("EndpointConfigName")
    pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    if status in FAILED_STATES:
        return "failed"
    if status != "InService" or pending:
        return "in_progress"
    if current == deployment["endpoint_config_name"]:
        return "succeeded"
    modified = endpoint.get("LastModifiedTime")
    if isinstance(modified, datetime) and epoch(modified) < int(deployment.get("started_at", 0)):
        return "in_progress"  # a description older than our update: not an answer yet
    return "rolled_back"
