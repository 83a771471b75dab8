"""Alarm responder: an endpoint health alarm fired; tell the operator what is going on, maybe roll back.

- Only the ALARM state of the endpoint's alarms (contract.ENDPOINT_ALARMS, the composite included) acts.
- A deployment in flight (DescribeEndpoint: Updating, RollingBack, SystemUpdating, Creating) is left to the
  deployment guardrails, which watch the same alarms and roll back on their own: the responder only logs.
- Otherwise: one SNS notice per alarm episode (alarm name + state-change timestamp) with the context an
  operator needs: endpoint, variant, metric, the alarm's reason, the champion and the deployment the
  endpoint serves (runs table), DescribeEndpoint's LastDeploymentConfig and PendingDeploymentSummary.
- RETRAIN_POLICY.rollback_on_alarm: also roll back to the previous champion (`<CHAMPION_PARAMETER>/previous`):
  CreateModel + CreateEndpointConfig from its model data URL and an all-at-once blue/green UpdateEndpoint
  without alarm-driven auto-rollback (those alarms are the ones firing). At most once per episode (a
  conditional PutItem claims it), and never onto the model the endpoint already serves. The promote function
  finishes the rollback when the endpoint is InService again (champion parameter, package Rejected).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from aws_lambda_powertools import Logger

from lambdas.shared import artifacts, runs
from lambdas.shared.contract import (
    ENDPOINT_ALARMS,
    ENV_CHAMPION_PARAMETER,
    ENV_ENDPOINT_NAME,
    ENV_OPERATOR_TOPIC_ARN,
    ENV_RUNS_TABLE,
    ENV_STAGE,
    FUNCTIONS,
    alarm_name,
)
from lambdas.shared.deployments import (
    Deployment,
    create_model_and_config,
    deployment_in_flight,
    describe_endpoint,
    previous_parameter,
    record_started,
    update_endpoint,
)
from lambdas.shared.events import AlarmChange, EventShapeError
from lambdas.shared.function_settings import app_from_prefix, retrain_policy, training_settings
from lambdas.shared.jobspec import TrainingSpecSettings, resource_name
from lambdas.shared.policy import RetrainPolicy
from lambdas.shared.runtime import env_arn, env_str, epoch, iso
from lambdas.shared.telemetry import notify

logger = Logger(service=FUNCTIONS["alarm_responder"], child=True)

EPISODE_RECORD_DAYS: Final = 30
ACTION_ROLLBACK: Final = "rollback"


@dataclass(frozen=True)
class Settings:
    stage: str
    app: str
    endpoint_name: str
    operator_topic_arn: str
    runs_table: str
    champion_parameter: str
    training: TrainingSpecSettings
    policy: RetrainPolicy

    @property
    def endpoint_alarms(self) -> frozenset[str]:
        return frozenset(alarm_name(self.app, self.stage, suffix) for suffix in ENDPOINT_ALARMS.values())

    @property
    def previous_parameter(self) -> str:
        return previous_parameter(self.champion_parameter)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        stage = env_str(ENV_STAGE, environ)
        training = training_settings(environ)
        return cls(
            stage=stage,
            app=app_from_prefix(training.job_name_prefix, stage),
            endpoint_name=env_str(ENV_ENDPOINT_NAME, environ),
            operator_topic_arn=env_arn(ENV_OPERATOR_TOPIC_ARN, "sns", environ),
            runs_table=env_str(ENV_RUNS_TABLE, environ),
            champion_parameter=env_str(ENV_CHAMPION_PARAMETER, environ),
            training=training,
            policy=retrain_policy(environ),
        )


# ------------------------------------------------------------------------------------------ decisions


def rollback_target(previous_url: str | None, serving_url: str | None) -> tuple[str | None, str]:
    """(model data URL to roll back to, or None; why)."""
    if not previous_url:
        return None, "no previous champion is recorded"
    if serving_url == previous_url:
        return None, "the endpoint already serves the previous champion"
    return previous_url, f"roll back to the previous champion {previous_url}"


def emergency_settings(settings: TrainingSpecSettings) -> TrainingSpecSettings:
    """All traffic at once: the alarms that would guard a canary are the ones firing."""
    return dataclasses.replace(settings, endpoint=dataclasses.replace(settings.endpoint, traffic_routing="ALL_AT_ONCE"))


def rollback_config_name(settings: TrainingSpecSettings, model_data_url: str) -> str:
    """Deterministic per target model: rolling back to the same model twice reuses model and config."""
    return resource_name(f"{settings.job_name_prefix}-rb", model_data_url)


# ---------------------------------------------------------------------------------------------- AWS


def serving_model_url(endpoint: Mapping[str, Any]) -> str | None:
    url = artifacts.serving_model_url(dict(endpoint))
    if url is None:
        logger.warning("cannot tell which model the endpoint serves", extra={"endpoint": endpoint.get("EndpointName")})
    return url


def roll_back(
    endpoint: Mapping[str, Any], settings: Settings, now: datetime, *, episode: str, reason: str
) -> dict[str, Any]:
    """The guarded rollback onto the previous champion; `episode` names what asked for it (alarm or request)."""
    serving = serving_model_url(endpoint)
    target, why = rollback_target(artifacts.champion_url(settings.previous_parameter), serving)
    if target is None:
        logger.warning("no rollback", extra={"reason": why, "episode": episode})
        return {"action": "none", "reason": why}
    name = rollback_config_name(settings.training, target)
    create_model_and_config(settings.training, name=name, model_data_url=target, run_id=episode)
    # Without alarm-driven auto-rollback: those alarms are the ones firing.
    update_endpoint(
        emergency_settings(settings.training),
        endpoint_name=settings.endpoint_name,
        endpoint_config_name=name,
        alarm_names=[],
    )
    champion: runs.ChampionRecord = runs.champion(settings.runs_table) or {}
    deployment: Deployment = {
        "kind": "rollback",
        "endpoint_config_name": name,
        "model_data_url": target,
        "from_model_data_url": serving,
        "from_endpoint_config_name": endpoint.get("EndpointConfigName"),
        "rolled_back_package_arn": champion.get("package_arn") if champion.get("model_data_url") == serving else None,
        "alarm_episode": episode,
        "reason": reason[:900],
        "status": "pending",
        "started_at": epoch(now),
        "started_at_iso": iso(now),
    }
    record_started(settings.runs_table, deployment)
    logger.warning("rollback started", extra={"endpoint_config": name, "to": target, "from": serving})
    return {"action": "rollback", "endpoint_config": name, "to": target, "from": serving}


# ---------------------------------------------------------------------------------------------- context


def incident_context(alarm: AlarmChange, endpoint: Mapping[str, Any] | None, settings: Settings) -> dict[str, Any]:
    champion: runs.ChampionRecord = runs.champion(settings.runs_table) or {}
    serving_config = (endpoint or {}).get("EndpointConfigName")
    deployment = (
        runs.get_item(settings.runs_table, runs.deployment_key(str(serving_config))) if serving_config else None
    )
    keep = ("kind", "status", "model_data_url", "model_package_arn", "training_job", "started_at_iso", "reason")
    return {
        "endpoint": settings.endpoint_name,
        "endpoint_status": (endpoint or {}).get("EndpointStatus", "not found"),
        "endpoint_config": serving_config,
        "variant": alarm.dimensions.get("VariantName") or settings.training.endpoint.variant_name,
        "alarm": alarm.alarm_name,
        "alarm_reason": alarm.reason,
        "alarm_time": iso(alarm.timestamp),
        "metrics": list(alarm.metrics),
        "triggering_alarms": list(alarm.triggering_alarms),
        "alarm_rule": alarm.alarm_rule or None,
        "champion": {k: champion.get(k) for k in ("model_data_url", "package_arn", "since_iso")} if champion else None,
        "deployment_serving": {k: deployment.get(k) for k in keep} if deployment else None,
        "last_deployment_config": (endpoint or {}).get("LastDeploymentConfig"),
        "pending_deployment": (endpoint or {}).get("PendingDeploymentSummary"),
    }


def model_caused(alarm: AlarmChange, rollback_alarms: tuple[str, ...]) -> bool:
    """Whether the model is to blame: the alarm, or a child that fired it, is one a deployment rolls back on.

    The composite "unhealthy" alarm also fires when traffic stops (no invocations); a rollback cannot fix
    that, so only server errors and model latency (the deployment's own rollback alarms) justify one.
    """
    return bool({alarm.alarm_name, *alarm.triggering_alarms} & set(rollback_alarms))


# ------------------------------------------------------------------------------------------------- run


def respond(alarm: AlarmChange, settings: Settings, now: datetime) -> dict[str, Any]:
    if alarm.alarm_name not in settings.endpoint_alarms:
        return {"action": "ignored", "reason": f"{alarm.alarm_name} is not an endpoint health alarm"}
    if alarm.state != "ALARM":
        logger.info("alarm left ALARM; nothing to do", extra={"alarm": alarm.alarm_name, "state": alarm.state})
        return {"action": "ignored", "reason": f"{alarm.alarm_name} is {alarm.state}"}
    endpoint = describe_endpoint(settings.endpoint_name)
    if deployment_in_flight(endpoint):
        logger.info(
            "alarm during a deployment: the guardrails decide, nothing done",
            extra={"alarm": alarm.alarm_name, "endpoint_status": (endpoint or {}).get("EndpointStatus")},
        )
        return {"action": "none", "reason": "deployment in flight"}
    key = runs.rollback_key(alarm.episode)
    claimed = runs.put_item(
        settings.runs_table,
        key,
        {
            "alarm": alarm.alarm_name,
            "claimed_at": epoch(now),
            "expires_at": epoch(now + timedelta(days=EPISODE_RECORD_DAYS)),
        },
        condition="attribute_not_exists(pk)",
    )
    marker = {} if claimed else (runs.get_item(settings.runs_table, key) or {})
    if marker.get("notified"):
        logger.info("duplicate delivery of an alarm episode already handled", extra={"episode": alarm.episode})
        return {"action": "duplicate", "episode": alarm.episode}
    context = incident_context(alarm, endpoint, settings)
    if "rollback" in marker:
        rollback = marker["rollback"]  # an earlier delivery rolled back, then failed before notifying
    elif not settings.policy.rollback_on_alarm:
        rollback = {"action": "none", "reason": "rollback_on_alarm is off"}
    elif endpoint is None:
        rollback = {"action": "none", "reason": "the endpoint does not exist"}
    elif not model_caused(alarm, settings.training.endpoint.rollback_alarm_names):
        rollback = {
            "action": "none",
            "reason": "none of the firing alarms is one a rollback can fix (server errors or model latency)",
        }
    else:
        reason = f"rolled back after alarm {alarm.alarm_name} at {iso(alarm.timestamp)}: {alarm.reason}"
        rollback = roll_back(endpoint, settings, now, episode=alarm.episode, reason=reason)
        runs.update_item(settings.runs_table, key, set_values={"rollback": rollback})
    notify(
        settings.operator_topic_arn,
        f"sagecycle {settings.stage}: {alarm.alarm_name} in ALARM"
        + (" - rolling back" if rollback.get("action") == "rollback" else ""),
        {"event": "endpoint-alarm", "stage": settings.stage, **context, "rollback": rollback},
    )
    runs.update_item(settings.runs_table, key, set_values={"notified": True})
    return {"action": "notified", "rollback": rollback, "episode": alarm.episode}


# ------------------------------------------------------------------------------------- manual rollback


@dataclass(frozen=True)
class RollbackRequest:
    """An operator's `{"source": "sagecycle.manual", "action": "rollback", "reason": ..., "request_id": ...}`."""

    reason: str
    request_id: str

    @property
    def episode(self) -> str:
        return f"manual:{self.request_id}"

    @classmethod
    def from_event(cls, event: Mapping[str, Any], default_request_id: str) -> RollbackRequest:
        if event.get("action") != ACTION_ROLLBACK:
            raise EventShapeError(
                f"a manual request to the alarm responder needs action {ACTION_ROLLBACK!r}",
                code="missing-field",
                field="action",
            )
        reason = event.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise EventShapeError("a manual rollback needs a non-empty reason", code="missing-field", field="reason")
        return cls(reason=reason.strip()[:500], request_id=str(event.get("request_id") or default_request_id))


def manual_rollback(request: RollbackRequest, settings: Settings, now: datetime) -> dict[str, Any]:
    """An operator asked to return to the previous champion: the alarm path's guards, once per request.

    Refused while a deployment is in flight (the guardrails own the endpoint then), when the endpoint does not
    exist, and onto the model the endpoint already serves. `rollback_on_alarm` does not apply: a person asked.
    """
    endpoint = describe_endpoint(settings.endpoint_name)
    if endpoint is None:
        return {"action": "refused", "reason": "the endpoint does not exist"}
    if deployment_in_flight(endpoint):
        return {"action": "refused", "reason": f"a deployment is in flight ({endpoint.get('EndpointStatus')})"}
    key = runs.rollback_key(request.episode)
    claimed = runs.put_item(
        settings.runs_table,
        key,
        {
            "requested_by": "operator",
            "claimed_at": epoch(now),
            "expires_at": epoch(now + timedelta(days=EPISODE_RECORD_DAYS)),
        },
        condition="attribute_not_exists(pk)",
    )
    if not claimed:
        marker = runs.get_item(settings.runs_table, key) or {}
        return {
            **(marker.get("rollback") or {"action": "refused", "reason": "request already handled"}),
            "duplicate": True,
        }
    rollback = roll_back(
        endpoint, settings, now, episode=request.episode, reason=f"operator rollback: {request.reason}"
    )
    if rollback["action"] == "none":
        rollback = {"action": "refused", "reason": rollback["reason"]}
    runs.update_item(settings.runs_table, key, set_values={"rollback": rollback})
    notify(
        settings.operator_topic_arn,
        f"sagecycle {settings.stage}: operator rollback "
        + ("started" if rollback["action"] == "rollback" else "refused"),
        {"event": "operator-rollback", "stage": settings.stage, "reason": request.reason, "rollback": rollback},
    )
    return rollback
