"""What `sagecycle status` reads from a stage: plain, JSON-ready data; rendering lives in `render`.

- champion: the SSM parameter (what the endpoint deploys from) and the runs table's `state#champion` record,
  with the primary metric of the evaluation.json inside the model (lambdas.shared.artifacts);
- endpoint: DescribeEndpoint, each production variant with its weights and the model it serves;
- deployment: the one in flight (`state#deployment` names it), else the newest `deployment#<config>` record;
- training: the lock's holder (`lock#training`) and the newest runs (`run#<job>`);
- alarms: the stage's alarms in ALARM (metric and composite, by the stage's name prefix);
- quarantine: files moved to the data bucket's quarantine prefix in the last N days (sidecar reports apart).

Keys are the runs table's own (lambdas.shared.runs); names are contract.names' (target.StageNames).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from contract import names as cn
from lambdas.ingest.logic import SIDECAR_SUFFIX
from lambdas.shared import artifacts, runs
from lambdas.shared.deployments import deployment_outcome, describe_endpoint
from lambdas.shared.runtime import client, error_code, iso
from sagecycle.operate.options import UsageError
from sagecycle.operate.target import StageNames

HEALTHY_ENDPOINT = "InService"


def _partition(key: runs.Key) -> str:
    return key[0]


def query_partition(table: str, partition: str) -> list[dict[str, Any]]:
    """Every item of one partition of the runs table, unmarshalled."""
    dynamodb = client("dynamodb")
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": partition}},
    }
    while True:
        page = dynamodb.query(**params)
        items += [runs.from_item(item) for item in page.get("Items", [])]
        if not page.get("LastEvaluatedKey"):
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def check_deployed(names: StageNames) -> None:
    """The stage exists here: its runs table does (every stage has one). UsageError otherwise."""
    try:
        client("dynamodb").describe_table(TableName=names.runs_table)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            where = names.endpoint_url or f"account {names.account}, {names.region}"
            raise UsageError(
                "not-deployed", f"stage {names.stage} of {names.app} is not deployed in {where} (no {names.runs_table})"
            ) from None
        raise


def _time(epoch_s: Any) -> str | None:
    return iso(datetime.fromtimestamp(int(epoch_s), UTC)) if isinstance(epoch_s, int | float) else None


def champion(names: StageNames) -> dict[str, Any] | None:
    url = artifacts.champion_url(names.champion_parameter)
    record = runs.get_item(names.runs_table, runs.CHAMPION) or {}
    if url is None and not record:
        return None
    metric: dict[str, Any] | None = None
    problem = None
    if url:
        try:
            primary = artifacts.primary_metric(artifacts.model_files(url).evaluation, where=f"{url} evaluation.json")
            metric = {"name": primary.name, "split": primary.split, "value": primary.value,
                      "higher_is_better": primary.higher_is_better}  # fmt: skip
        except (artifacts.ArtifactError, ClientError) as error:
            problem = str(error)
    return {
        "model_data_url": url,
        "package_arn": record.get("package_arn"),
        "since": record.get("since_iso"),
        "record_model_data_url": record.get("model_data_url"),
        "previous_model_data_url": record.get("previous_model_data_url"),
        "metric": metric,
        "metric_problem": problem,
    }


def _variant_model_url(model_name: str | None) -> str | None:
    if not model_name:
        return None
    try:
        model = client("sagemaker").describe_model(ModelName=model_name)
    except ClientError:
        return None
    return (model.get("PrimaryContainer") or {}).get("ModelDataUrl")


def endpoint(names: StageNames) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the endpoint as status shows it, DescribeEndpoint's raw answer); (None, None) when there is none."""
    described = describe_endpoint(names.endpoint)
    if described is None:
        return None, None
    models: dict[str, str] = {}
    config_name = described.get("EndpointConfigName")
    try:
        config = client("sagemaker").describe_endpoint_config(EndpointConfigName=config_name)
        models = {v["VariantName"]: v.get("ModelName", "") for v in config.get("ProductionVariants", [])}
    except ClientError:
        pass
    variants = [
        {
            "name": v.get("VariantName"),
            "current_weight": v.get("CurrentWeight"),
            "desired_weight": v.get("DesiredWeight"),
            "instances": v.get("CurrentInstanceCount"),
            "model": models.get(str(v.get("VariantName"))),
            "model_data_url": _variant_model_url(models.get(str(v.get("VariantName")))),
        }
        for v in described.get("ProductionVariants", [])
    ]
    pending = described.get("PendingDeploymentSummary") or {}
    shown = {
        "name": names.endpoint,
        "status": described.get("EndpointStatus"),
        "config": config_name,
        "pending_config": pending.get("EndpointConfigName"),
        "failure_reason": described.get("FailureReason"),
        "variants": variants,
    }
    return shown, described


def last_deployment(names: StageNames, described: dict[str, Any] | None) -> dict[str, Any] | None:
    pointer = runs.get_item(names.runs_table, runs.DEPLOYMENT)
    record = (
        runs.get_item(names.runs_table, runs.deployment_key(str(pointer["endpoint_config_name"]))) if pointer else None
    )
    if record is None:
        records = query_partition(names.runs_table, _partition(runs.deployment_key("")))
        record = max(records, key=lambda r: int(r.get("started_at") or 0), default=None)
    if record is None:
        return None
    status = record.get("status")
    outcome = status if status in ("succeeded", "rolled_back", "failed") else None
    if outcome is None and described is not None and "endpoint_config_name" in record:
        outcome = deployment_outcome(record, described)
    return {
        "endpoint_config": record.get("endpoint_config_name"),
        "kind": record.get("kind"),
        "model_data_url": record.get("model_data_url"),
        "package_arn": record.get("model_package_arn"),
        "status": status,
        "outcome": outcome,
        "in_flight": bool(pointer),
        "started": record.get("started_at_iso") or _time(record.get("started_at")),
        "finished": _time(record.get("finished_at")),
        "reason": record.get("reason"),
    }


def training(names: StageNames, last: int, now: datetime) -> dict[str, Any]:
    lock = runs.lock_holder(names.runs_table)
    held = lock is not None and int(lock["expires_at"]) >= int(now.timestamp())
    records = query_partition(names.runs_table, _partition(runs.run_key("")))
    records.sort(key=lambda r: int(r.get("started_at") or 0), reverse=True)
    return {
        "lock": {
            "holder": lock.get("owner"),
            "trigger": lock.get("trigger_id"),
            "acquired": _time(lock.get("acquired_at")),
            "expires": _time(lock.get("expires_at")),
            "expired": not held,
        }
        if lock
        else None,
        "runs": [
            {
                "job": r.get("job_name") or r.get("sk"),
                "kind": r.get("kind"),
                "trigger": r.get("trigger_kind"),
                "reason": r.get("reason"),
                "status": r.get("status"),
                "decision": r.get("decision"),
                "deployment": r.get("deployment"),
                "started": r.get("started_at_iso") or _time(r.get("started_at")),
            }
            for r in records[:last]
        ],
        "runs_total": len(records),
    }


def alarms_in_alarm(names: StageNames) -> list[dict[str, Any]]:
    cloudwatch = client("cloudwatch")
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {
        "AlarmNamePrefix": names.alarm_prefix,
        "StateValue": "ALARM",
        "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
    }
    while True:
        page = cloudwatch.describe_alarms(**params)
        for kind, key in (("metric", "MetricAlarms"), ("composite", "CompositeAlarms")):
            for alarm in page.get(key, []):
                if alarm.get("StateValue") != "ALARM":
                    continue  # AWS applies both filters; moto's server only the name prefix
                since = alarm.get("StateUpdatedTimestamp")
                found.append(
                    {
                        "name": alarm["AlarmName"],
                        "kind": kind,
                        "contract": alarm["AlarmName"] in names.alarm_names,
                        "reason": alarm.get("StateReason"),
                        "since": iso(since) if isinstance(since, datetime) else since,
                    }
                )
        if not page.get("NextToken"):
            return sorted(found, key=lambda a: str(a["name"]))
        params["NextToken"] = page["NextToken"]


def quarantined(names: StageNames, days: int, now: datetime) -> dict[str, Any]:
    s3 = client("s3")
    since = now - timedelta(days=days)
    files: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=names.data_bucket, Prefix=cn.PREFIX_QUARANTINE):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(SIDECAR_SUFFIX) or obj["LastModified"] < since:
                continue
            files.append(
                {
                    "key": obj["Key"],
                    "bytes": obj["Size"],
                    "at": iso(obj["LastModified"]),
                    "report": f"s3://{names.data_bucket}/{obj['Key']}{SIDECAR_SUFFIX}",
                }
            )
    files.sort(key=lambda f: str(f["at"]), reverse=True)
    return {"days": days, "count": len(files), "files": files}


def read_status(
    names: StageNames, *, last_runs: int, quarantine_days: int, now: datetime, role: str = "single"
) -> dict[str, Any]:
    """Everything status shows, and whether the stage is healthy (InService, no alarm in ALARM).

    A build account (docs/two-accounts.md) has no endpoint: its champion is the registry's, and its health is
    its alarms alone.
    """
    check_deployed(names)
    shown_endpoint, described = endpoint(names) if role != "build" else (None, None)
    alarms = alarms_in_alarm(names)
    problems = [f"alarm {a['name']} is in ALARM" for a in alarms]
    if role == "build":
        pass
    elif shown_endpoint is None:
        problems.insert(0, f"endpoint {names.endpoint} does not exist")
    elif shown_endpoint["status"] != HEALTHY_ENDPOINT:
        problems.insert(0, f"endpoint {names.endpoint} is {shown_endpoint['status']}")
    return {
        "stage": names.stage,
        "app": names.app,
        "account": names.account,
        "region": names.region,
        "role": role,
        "at": iso(now),
        "healthy": not problems,
        "problems": problems,
        "champion": champion(names),
        "endpoint": shown_endpoint,
        "deployment": last_deployment(names, described),
        "training": training(names, last_runs, now),
        "alarms": alarms,
        "quarantine": quarantined(names, quarantine_days, now),
    }
