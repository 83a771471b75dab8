"""Promotion by approval: a model package's approval in the registry moves a model.

"SageMaker Model Package State Change" for this stage's model package group:
- serving account (config accounts.role "serving"): the build account's registry sends its approvals to this
  account's approvals bus. An Approved package from exactly that account and group is described (the event
  is a hint, DescribeModelPackage the truth), its model.tar.gz copied from the build account's granted prefix
  into this account's model bucket (`models/approved/<group>/<version>/`), re-encrypted under this account's
  key, and deployed through the same guarded blue/green update as any promotion: the champion moves only at
  InService. The package itself is never written to (the serving side holds read grants only).
- single account with manual approval: an operator approved a candidate that was registered
  PendingManualApproval; it is deployed the same way, from where it lies.
- build account: no endpoint here; the approved package becomes the registry's champion, the model the next
  candidates must beat.
A Rejected package deploys nothing and the operators are told; a package from another account or group is
refused and the operators are told. Every step is idempotent (deterministic names; a second delivery finds
the deployment record and stops).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from aws_lambda_powertools import Logger

from lambdas.promote.settings import Settings
from lambdas.shared import artifacts, packages, runs
from lambdas.shared.contract import CROSS_ACCOUNT_READ_PREFIX, FUNCTIONS, PREFIX_APPROVED, bucket_name
from lambdas.shared.deployments import Deployment, champion_record, set_champion, start_promotion
from lambdas.shared.events import PackageChange
from lambdas.shared.function_settings import app_from_prefix
from lambdas.shared.jobspec import resource_name
from lambdas.shared.runtime import cached, client, epoch, iso
from lambdas.shared.telemetry import notify

logger = Logger(service=FUNCTIONS["promote"], child=True)
PACKAGE_CONFIG_PREFIX: Final = "pkg"  # endpoint configs of approved packages: `<job prefix>-pkg-<hash>`


class PackageRefused(Exception):
    """The package may not be deployed here; `code` says why (for callers and tests), the text for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@cached
def own_account() -> str:
    """This function's account (GetCallerIdentity needs no permission)."""
    return str(client("sts").get_caller_identity()["Account"])


def trusted_account(settings: Settings) -> str:
    """Whose registry this stage acts on: the build account's when serving, its own otherwise."""
    return settings.peer_account if settings.role == "serving" and settings.peer_account else own_account()


def check_origin(change: PackageChange, settings: Settings) -> None:
    """The package comes from the trusted account's registry, this stage's group, and says so consistently."""
    expected = trusted_account(settings)
    if change.account != expected:
        raise PackageRefused("foreign-account", f"the event came from account {change.account}, not {expected}")
    if packages.account_of(change.package_arn) != expected:
        raise PackageRefused("foreign-account", f"{change.package_arn} is not a package of account {expected}")
    group = packages.group_of(change.package_arn)
    if change.group != settings.model_package_group or group != settings.model_package_group:
        raise PackageRefused(
            "foreign-group", f"{change.package_arn} is not in the model package group {settings.model_package_group}"
        )


def build_models_bucket(settings: Settings) -> str:
    app = app_from_prefix(settings.training.job_name_prefix, settings.stage)
    return bucket_name(app, settings.stage, "models", str(settings.peer_account), settings.training.region)


def copy_into_serving_account(source_url: str, package_arn: str, settings: Settings) -> str:
    """model.tar.gz (and evaluation.json beside it, when there) into this account's model bucket, under its key.

    Only the build account's granted prefix is read: a package pointing anywhere else is refused before any
    read, as the grants would refuse it anyway.
    """
    bucket, key = artifacts.parse_s3_url(source_url)
    granted = build_models_bucket(settings)
    if bucket != granted or not key.startswith(CROSS_ACCOUNT_READ_PREFIX):
        raise PackageRefused(
            "outside-grant", f"{source_url} is outside s3://{granted}/{CROSS_ACCOUNT_READ_PREFIX} (the granted prefix)"
        )
    group, version = package_arn.rsplit("/", 2)[-2:]
    target_dir = f"{PREFIX_APPROVED}{group}/{version}/"
    encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.training.kms_key_arn}
    s3 = client("s3")
    s3.copy(
        {"Bucket": bucket, "Key": key},
        settings.training.model_bucket,
        f"{target_dir}model.tar.gz",
        ExtraArgs=encryption,
    )
    evaluation = f"{key.rsplit('/', 1)[0]}/evaluation.json"
    try:
        s3.copy(
            {"Bucket": bucket, "Key": evaluation},
            settings.training.model_bucket,
            f"{target_dir}evaluation.json",
            ExtraArgs=encryption,
        )
    except Exception as error:  # best effort: the model serves without it; status shows no metrics
        logger.warning("no evaluation.json copied", extra={"source": evaluation, "error": type(error).__name__})
    copied = artifacts.s3_url(settings.training.model_bucket, f"{target_dir}model.tar.gz")
    logger.info("approved artifact copied", extra={"from": source_url, "to": copied})
    return copied


def described_model_url(package_arn: str) -> tuple[str, str]:
    """(approval status now, model data URL) from DescribeModelPackage."""
    described = client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    containers = (described.get("InferenceSpecification") or {}).get("Containers") or []
    url = containers[0].get("ModelDataUrl") if containers else None
    if not url:
        raise PackageRefused("no-model", f"{package_arn} names no model data URL")
    return str(described.get("ModelApprovalStatus") or ""), str(url)


def _tell(settings: Settings, subject: str, event: str, change: PackageChange, **extra: Any) -> None:
    notify(
        settings.operator_topic_arn,
        f"sagecycle {settings.stage}: {subject}",
        {
            "event": event,
            "stage": settings.stage,
            "model_package_arn": change.package_arn,
            "account": change.account,
            "status": change.status,
            **extra,
        },
    )


def handle_package(change: PackageChange, settings: Settings, now: datetime) -> dict[str, Any]:
    if change.status == "PendingManualApproval":
        return {"ignored": f"{change.package_arn} awaits approval"}
    try:
        return _act_on_package(change, settings, now)
    except PackageRefused as refused:
        logger.error("model package refused", extra={"code": refused.code, "reason": str(refused)})
        _tell(settings, "model package refused", "package-refused", change, code=refused.code, reason=str(refused))
        return {"refused": refused.code, "reason": str(refused)}


def _act_on_package(change: PackageChange, settings: Settings, now: datetime) -> dict[str, Any]:
    """From the trusted registry only; Rejected tells the operators, Approved (still, per the registry) moves."""
    check_origin(change, settings)
    if change.status == "Rejected":
        _tell(settings, f"model package rejected: {change.package_arn}", "package-rejected", change)
        return {"model_package_arn": change.package_arn, "deployment": "none", "reason": "rejected"}
    if change.status != "Approved":
        return {"ignored": f"{change.package_arn} is {change.status}"}
    status, source_url = described_model_url(change.package_arn)
    if status != "Approved":
        return {"ignored": f"{change.package_arn} is {status} now"}
    if settings.role == "build":
        return _registry_champion(change, source_url, settings, now)
    return _deploy_package(change, source_url, settings, now)


def _registry_champion(change: PackageChange, url: str, settings: Settings, now: datetime) -> dict[str, Any]:
    """Build account: the approved package is the model later candidates are compared with."""
    champion = champion_record(settings)
    if champion.get("package_arn") == change.package_arn:
        return {"model_package_arn": change.package_arn, "champion": url, "duplicate": True}
    record: Deployment = {
        "kind": "promotion",
        "endpoint_config_name": "",
        "model_data_url": url,
        "model_package_arn": change.package_arn,
        "previous_model_data_url": champion.get("model_data_url"),
        "previous_package_arn": champion.get("package_arn"),
        "started_at": epoch(now),
        "started_at_iso": iso(now),
    }
    set_champion(record, settings, now)
    return {"model_package_arn": change.package_arn, "champion": url}


def _deploy_package(change: PackageChange, source_url: str, settings: Settings, now: datetime) -> dict[str, Any]:
    name = resource_name(f"{settings.training.job_name_prefix}-{PACKAGE_CONFIG_PREFIX}", change.package_arn)
    existing = runs.get_item(settings.runs_table, runs.deployment_key(name))
    if existing:
        return {"model_package_arn": change.package_arn, "endpoint_config": name, "duplicate": True}
    model_url = (
        copy_into_serving_account(source_url, change.package_arn, settings)
        if settings.role == "serving"
        else source_url
    )
    champion = champion_record(settings)
    current = artifacts.champion_url(settings.champion_parameter)
    record: Deployment = {
        "kind": "promotion",
        "endpoint_config_name": name,
        "model_data_url": model_url,
        "model_package_arn": change.package_arn,
        "previous_model_data_url": current,
        "previous_package_arn": champion.get("package_arn") if champion.get("model_data_url") == current else None,
        "started_at": epoch(now),
        "started_at_iso": iso(now),
    }
    if model_url != source_url:
        record["source_model_data_url"] = source_url
    status = start_promotion(settings, record, alarm_names=settings.rollback_alarms, now=now)
    _tell(
        settings,
        f"approved package deploying: {change.package_arn}",
        "package-deploying",
        change,
        endpoint_config=name,
        model_data_url=model_url,
        deployment=status,
    )
    return {"model_package_arn": change.package_arn, "endpoint_config": name, "deployment": status}
