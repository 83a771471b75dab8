"""One deployment path: every function that points the endpoint at a model goes through these steps.

A deployment is CreateModel + CreateEndpointConfig (idempotent, deterministic names), a record in the runs
table (`deployment#<config>`, with the `state#deployment` pointer naming the one in flight), and a blue/green
UpdateEndpoint. Promote starts promotions (a candidate it approved, or a package approved in the build
account) and champion re-assertions, the alarm responder starts rollbacks (on an alarm, or an operator's
request); promote judges every outcome from DescribeEndpoint and finishes it: the champion moves only at
InService. Each caller keeps its own order of the steps (what a failure half-way leaves behind is part of its
contract); the steps themselves live here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal, NotRequired, Protocol, TypedDict

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas.shared import artifacts, packages, runs
from lambdas.shared.jobspec import TrainingSpecSettings, build_endpoint_config, build_model, build_update_endpoint
from lambdas.shared.runtime import client, create_if_absent, epoch, error_code, iso
from lambdas.shared.telemetry import notify

logger = Logger(child=True)

DeploymentKind = Literal["promotion", "rollback", "reassert"]
Outcome = Literal["succeeded", "rolled_back", "failed", "in_progress"]

FAILED_STATES: Final = frozenset({"Failed", "UpdateRollbackFailed", "OutOfService"})
# The endpoint is changing: a new update would be refused, so a promotion queues and a rollback waits.
BUSY_STATES: Final = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
PREVIOUS_SUFFIX: Final = "/previous"


class DeploymentSettings(Protocol):
    """What a function that deploys must know (promote's and the alarm responder's settings both have it)."""

    @property
    def stage(self) -> str: ...
    @property
    def runs_table(self) -> str: ...
    @property
    def operator_topic_arn(self) -> str: ...
    @property
    def champion_parameter(self) -> str: ...
    @property
    def endpoint_name(self) -> str: ...
    @property
    def training(self) -> TrainingSpecSettings: ...
    @property
    def writes_packages(self) -> bool:
        """False in a serving account: the packages are the build account's, and it holds read grants only."""
        ...


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
    # a package approved in another account: where its artifact was copied from
    source_model_data_url: NotRequired[str]


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


def deployment_in_flight(endpoint: Mapping[str, Any] | None) -> bool:
    """The endpoint is changing (or has an update pending): the guardrails own it until it settles."""
    return endpoint is not None and (
        endpoint.get("EndpointStatus") in BUSY_STATES or bool(endpoint.get("PendingDeploymentSummary"))
    )


def previous_parameter(champion_parameter: str) -> str:
    """Where the champion before the current one is kept: the rollback target."""
    return f"{champion_parameter}{PREVIOUS_SUFFIX}"


def champion_record(settings: DeploymentSettings) -> runs.ChampionRecord:
    """The champion record, empty when there is none yet."""
    return runs.champion(settings.runs_table) or {}


def start_update(endpoint_config_name: str, settings: DeploymentSettings, alarm_names: Sequence[str]) -> None:
    update_endpoint(
        settings.training,
        endpoint_name=settings.endpoint_name,
        endpoint_config_name=endpoint_config_name,
        alarm_names=alarm_names,
    )
    logger.info("endpoint update started", extra={"endpoint_config": endpoint_config_name})


def start_promotion(
    settings: DeploymentSettings,
    record: Deployment,
    *,
    alarm_names: Sequence[str],
    now: datetime,
) -> str:
    """A promotion of `record["model_data_url"]` under `record["endpoint_config_name"]`: "pending" (update
    started, or an earlier attempt started it), "queued" (the endpoint is busy: promote starts it once
    InService), or "no-endpoint" (nothing serves yet: the model becomes the champion the endpoint is created from).
    """
    name = record["endpoint_config_name"]
    create_model_and_config(settings.training, name=name, model_data_url=record["model_data_url"], run_id=name)
    endpoint = describe_endpoint(settings.endpoint_name)
    if endpoint is None:
        logger.warning("endpoint does not exist; champion set without a deployment", extra={"endpoint_config": name})
        landed: Deployment = {**record, "status": "no-endpoint"}
        runs.put_item(settings.runs_table, runs.deployment_key(name), dict(landed))
        set_champion(landed, settings, now)
        return "no-endpoint"
    pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    if name in (endpoint.get("EndpointConfigName"), pending):
        status = "pending"  # an earlier attempt already started this update
    elif endpoint.get("EndpointStatus") in BUSY_STATES:
        status = "queued"
        logger.warning(
            "endpoint busy; deployment queued",
            extra={"endpoint_config": name, "endpoint": endpoint.get("EndpointStatus")},
        )
    else:
        start_update(name, settings, alarm_names)
        status = "pending"
    record_started(settings.runs_table, {**record, "status": status})
    return status


def finish_deployment(
    deployment: Mapping[str, Any], outcome: str, reason: str, settings: DeploymentSettings, now: datetime
) -> dict[str, Any]:
    """Close a deployment: the champion moves on success; a failed promotion's package is Rejected (when this
    account owns it) and the operators are told; the run and the pointer are updated."""
    table = settings.runs_table
    config = str(deployment["endpoint_config_name"])
    package = deployment.get("model_package_arn")
    if outcome == "succeeded":
        set_champion(deployment, settings, now)
        rejected = deployment.get("rolled_back_package_arn")
        if deployment.get("kind") == "rollback" and rejected and settings.writes_packages:
            packages.set_approval(rejected, "Rejected", str(deployment.get("reason") or "rolled back"))
    else:
        if package and deployment.get("kind") == "promotion" and settings.writes_packages:
            packages.set_approval(package, "Rejected", reason or "deployment failed")
        if not deployment.get("notified"):
            notify(
                settings.operator_topic_arn,
                f"sagecycle {settings.stage}: deployment {outcome.replace('_', ' ')}: {config}",
                {
                    "event": f"deployment-{outcome.replace('_', '-')}",
                    "stage": settings.stage,
                    "endpoint": settings.endpoint_name,
                    "endpoint_config": config,
                    "kind": deployment.get("kind"),
                    "model_data_url": deployment.get("model_data_url"),
                    "model_package_arn": package,
                    "reason": reason,
                },
            )
    runs.update_item(
        table,
        runs.deployment_key(config),
        set_values={
            "status": outcome,
            "finished_at": epoch(now),
            "notified": True,
            **({"reason": reason} if reason else {}),
        },
    )
    run = deployment.get("run") or deployment.get("training_job")  # records before tuning had no "run"
    if run:
        runs.update_item(table, runs.run_key(str(run)), set_values={"deployment": outcome})
    runs.delete_item(
        table,
        runs.DEPLOYMENT,
        condition="endpoint_config_name = :config",
        values={":config": config},
    )
    logger.info("deployment finished", extra={"endpoint_config": config, "outcome": outcome, "reason": reason})
    return {"endpoint_config": config, "deployment": outcome, "reason": reason, "kind": deployment.get("kind")}


def set_champion(deployment: Mapping[str, Any], settings: DeploymentSettings, now: datetime) -> None:
    """The deployed model becomes the champion.

    A promotion keeps the champion before it as `previous` (parameter and runs table): the rollback target.
    A rollback (to that previous champion) leaves `previous` as it is, so the alarm responder finds the
    endpoint already serving it and never rolls "back" onto the model it just left.
    """
    if deployment.get("kind") == "reassert":
        logger.info("champion back in service", extra={"model_data_url": deployment.get("model_data_url")})
        return  # the champion (and its record) never changed: only the endpoint had strayed
    ssm = client("ssm")
    new_url = str(deployment["model_data_url"])
    current = artifacts.champion_url(settings.champion_parameter)
    record = champion_record(settings)
    promotion = deployment.get("kind") != "rollback"
    if current != new_url:
        if promotion and current:
            previous = previous_parameter(settings.champion_parameter)
            ssm.put_parameter(Name=previous, Value=current, Type="String", Overwrite=True)
        ssm.put_parameter(Name=settings.champion_parameter, Value=new_url, Type="String", Overwrite=True)
    if promotion:
        package = deployment.get("model_package_arn")
        changed = current != new_url
        previous_url = current if changed else record.get("previous_model_data_url")
        previous_package = deployment.get("previous_package_arn") if changed else record.get("previous_package_arn")
    else:
        same = record.get("previous_model_data_url") == new_url
        package = record.get("previous_package_arn") if same else None
        previous_url, previous_package = record.get("previous_model_data_url"), record.get("previous_package_arn")
    champion: runs.ChampionRecord = {
        "model_data_url": new_url,
        "package_arn": package,
        "source_model_data_url": deployment.get("source_model_data_url"),
        "endpoint_config_name": deployment.get("endpoint_config_name"),
        "previous_model_data_url": previous_url,
        "previous_package_arn": previous_package,
        "since": epoch(now),
        "since_iso": iso(now),
    }
    runs.put_item(settings.runs_table, runs.CHAMPION, dict(champion))
    if package and settings.writes_packages:
        packages.mark_champion(str(package), now)
    logger.info("champion set", extra={"model_data_url": new_url, "previous": current, "kind": deployment.get("kind")})
