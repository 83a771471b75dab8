"""Promote's endpoint events: judge the deployment in flight from DescribeEndpoint, start a queued one, or
put the champion back when the endpoint strayed from it outside our deployments."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from aws_lambda_powertools import Logger

from lambdas.promote.settings import Settings
from lambdas.shared import artifacts, runs
from lambdas.shared.contract import FUNCTIONS
from lambdas.shared.deployments import (
    Deployment,
    create_model_and_config,
    deployment_outcome,
    describe_endpoint,
    finish_deployment,
    record_started,
    start_update,
)
from lambdas.shared.events import EndpointChange
from lambdas.shared.jobspec import resource_name
from lambdas.shared.runtime import epoch, iso
from lambdas.shared.telemetry import notify

logger = Logger(service=FUNCTIONS["promote"], child=True)
# A champion the endpoint strayed from is re-deployed at most once in this window (no loops).
REASSERT_WINDOW: Final = timedelta(hours=24)


def handle_endpoint(change: EndpointChange, settings: Settings, now: datetime) -> dict[str, Any]:
    if change.endpoint_name != settings.endpoint_name:
        return {"ignored": f"endpoint {change.endpoint_name} is not ours"}
    table = settings.runs_table
    pointer = runs.get_item(table, runs.DEPLOYMENT)
    if not pointer:
        return reassert_champion(settings, now)
    config = str(pointer["endpoint_config_name"])
    deployment = runs.get_item(table, runs.deployment_key(config))
    if not deployment:
        logger.error("deployment pointer without a record; clearing it", extra={"endpoint_config": config})
        runs.delete_item(table, runs.DEPLOYMENT)
        return {"ignored": "dangling deployment pointer"}
    endpoint = describe_endpoint(settings.endpoint_name)
    if endpoint is None:
        logger.error("endpoint vanished during a deployment", extra={"endpoint_config": config})
        return finish_deployment(deployment, "failed", "the endpoint no longer exists", settings, now)
    if deployment.get("status") == "queued":
        if endpoint.get("EndpointStatus") == "InService":
            start_update(config, settings, settings.rollback_alarms)
            runs.update_item(
                table, runs.deployment_key(config), set_values={"status": "pending", "started_at": epoch(now)}
            )
            return {"endpoint_config": config, "deployment": "started"}
        return {"endpoint_config": config, "deployment": "queued"}
    outcome = deployment_outcome(deployment, endpoint)
    if outcome == "in_progress":
        logger.info(
            "deployment in progress", extra={"endpoint_config": config, "status": endpoint.get("EndpointStatus")}
        )
        return {"endpoint_config": config, "deployment": "in_progress"}
    reason = str(endpoint.get("FailureReason") or "")
    if outcome == "rolled_back" and not reason:
        reason = f"deployment rolled back: the endpoint serves {endpoint.get('EndpointConfigName')} again"
    return finish_deployment(deployment, outcome, reason, settings, now)


def reassert_champion(settings: Settings, now: datetime) -> dict[str, Any]:
    """Outside our own deployments, the endpoint must still serve the champion.

    A CloudFormation update that fails rolls the endpoint back to the model CloudFormation made last, which
    may be older than a champion promoted since; a manual UpdateEndpoint can do the same. When the endpoint
    is InService on another model, the champion goes back in through the same guarded update, at most once
    per champion per REASSERT_WINDOW, so a champion that keeps failing cannot make a loop.
    """
    endpoint = describe_endpoint(settings.endpoint_name)
    if endpoint is None or endpoint.get("EndpointStatus") != "InService":
        return {"ignored": "no deployment in flight"}
    champion = artifacts.champion_url(settings.champion_parameter)
    serving = artifacts.serving_model_url(endpoint)
    if champion is None or serving is None or serving == champion:
        return {"ignored": "the endpoint serves the champion"}
    claimed = runs.put_item(
        settings.runs_table,
        runs.reassert_key(champion),
        {"serving_was": serving, "at": epoch(now), "expires_at": epoch(now + REASSERT_WINDOW)},
        condition="attribute_not_exists(pk) OR expires_at < :now",
        values={":now": epoch(now)},
    )
    context = {"endpoint": settings.endpoint_name, "champion": champion, "serving": serving}
    if not claimed:
        logger.error("endpoint still off the champion after a re-deployment; not retrying", extra=context)
        return {"ignored": "champion already re-deployed in this window", **context}
    name = resource_name(f"{settings.training.job_name_prefix}-ch", champion, max_length=63)
    create_model_and_config(settings.training, name=name, model_data_url=champion, run_id=name)
    record: Deployment = {
        "kind": "reassert",
        "endpoint_config_name": name,
        "model_data_url": champion,
        "replaced_model_data_url": serving,
        "status": "pending",
        "started_at": epoch(now),
        "started_at_iso": iso(now),
    }
    record_started(settings.runs_table, record)
    start_update(name, settings, settings.rollback_alarms)
    logger.warning("endpoint was serving another model; champion re-deployed", extra=context)
    notify(
        settings.operator_topic_arn,
        f"sagecycle {settings.stage}: endpoint was off the champion - re-deploying it",
        {"event": "champion-reasserted", "stage": settings.stage, **context, "endpoint_config": name},
    )
    return {"endpoint_config": name, "deployment": "reassert", **context}
