"""The rules across a stage's values: regions and images, instance types, networks, schedules, hyperparameters
and tuning ranges train.py accepts, and what prod requires. `validate` runs them all, then the functions' own
parsers (config/function_inputs.py)."""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import botocore.session

from config.field_checks import allowed_text, check_fields
from config.fields import ConfigError, check, show
from config.function_inputs import check_with_function_parsers
from config.overrides import hyperparameter_text
from config.schedules import SCHEDULE_ALLOWED, schedule_problem
from config.sections import (
    INGEST_CHECK_SECONDS,
    INGEST_MIB_PER_VCPU_SECOND,
    INGEST_ONE_VCPU_MB,
    INGEST_TIMEOUT_S,
    INSTANCE_FAMILIES,
    INSTANCE_SIZES,
    INTERFACE_ENDPOINTS,
    STAGES,
    XGBOOST_FRAMEWORK_VERSIONS,
    StageConfig,
    TrainingConfig,
    TuningConfig,
)
from lambdas.shared.job_settings import INTEGER_HYPERPARAMETERS
from lambdas.shared.metrics import tuning_objective
from training_scripts import hyperparameters as hp

# One address: no list, no display name, no second address after a comma or semicolon.
_EMAIL = re.compile(r"[^@\s,;<>\"'()\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# <= 16 characters, so "<app>-prod-<hash>" fits a tuning job's 32-character name with the prefix whole.
_APP_NAME = re.compile(r"[a-z][a-z0-9-]{1,15}")
_ACCOUNT = re.compile(r"\d{12}")


@functools.cache
def _sagemaker_regions() -> frozenset[str]:
    """botocore's model of where SageMaker runs (parsing it takes a tenth of a second: read once)."""
    return frozenset(botocore.session.get_session().get_available_regions("sagemaker"))


def _known_regions() -> list[str]:
    """Regions where SageMaker runs (botocore's model) and the XGBoost framework image exists (the SDK's table)."""
    regions = _sagemaker_regions()
    image_regions = _xgboost_image_regions()
    return sorted(regions & image_regions if image_regions is not None else regions)


@functools.cache
def _xgboost_image_config() -> dict[str, Any] | None:
    """sagemaker-core's image table for the XGBoost framework, read as data (importing the SDK takes seconds)."""
    spec = find_spec("sagemaker")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "core" / "image_uri_config" / "xgboost.json"
        if path.is_file():
            table: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["training"]["versions"]
            return table
    return None


def _xgboost_image_regions(version: str = XGBOOST_FRAMEWORK_VERSIONS[0]) -> set[str] | None:
    table = _xgboost_image_config()
    if table is None:
        return None
    return set(table.get(version, {}).get("registries", {}))


@functools.cache
def _notebook_platforms() -> tuple[str, ...]:
    """Amazon Linux 2023 platform identifiers the SageMaker API model knows (AL1/AL2 are deprecated)."""
    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("PlatformIdentifier")
    return tuple(
        sorted(p for p in re.findall(r"notebook-[a-z0-9-]+", shape.metadata.get("pattern", "")) if "al2023" in p)
    )


def _check_instance(key: str, instance_type: str) -> None:
    family, _, size = instance_type.rpartition(".")
    check(
        family in INSTANCE_FAMILIES and size in INSTANCE_SIZES,
        key,
        f"{instance_type!r} is not a known instance type",
        f"families {', '.join(INSTANCE_FAMILIES)} with sizes {', '.join(INSTANCE_SIZES)}",
    )


def _check_cidr(cidr: str) -> None:
    try:
        network = ipaddress.ip_network(cidr)
    except ValueError:
        network = None
    check(
        network is not None and network.version == 4 and network.is_private and 16 <= network.prefixlen <= 24,
        "network.vpc_cidr",
        f"{show(cidr)} is not a private IPv4 network from /16 to /24",
        "e.g. 10.40.0.0/16",
    )


def _check_hyperparameters(t: TrainingConfig) -> None:
    names = ", ".join(sorted(hp.HYPERPARAMETERS))
    for name, raw in t.hyperparameters.items():
        key = f"training.hyperparameters.{name}"
        _check_hyperparameter_name(key, name, names)
        spec = hp.HYPERPARAMETERS[name]
        try:
            value = hp.parse_value(name, raw)
        except hp.UsageError as error:
            raise ConfigError(
                key, f"{show(raw)} is refused by train.py: {error}", spec.allowed(), "refused-by-train"
            ) from None
        check(
            name != "objective" or value in (None, t.objective),
            key,
            f"{value!r} contradicts training.objective {t.objective!r}",
            f"training.objective's value, {t.objective}",
        )


def _check_hyperparameter_name(key: str, name: str, names: str) -> None:
    alias = f"is train.py's alias of {hp.ALIASES.get(name)!r}; use that name"
    check(name not in hp.ALIASES, key, alias, names, "unknown-key")
    check(name in hp.HYPERPARAMETERS, key, "is not a hyperparameter train.py accepts", names, "unknown-key")


def _tunable() -> list[str]:
    """Numeric names whose tuning range SageMaker sends in a form train.py reads (integers as integers)."""
    return sorted(
        name
        for name, spec in hp.HYPERPARAMETERS.items()
        if spec.kind == "float" or (spec.kind == "int" and name in INTEGER_HYPERPARAMETERS)
    )


def _check_tuning_ranges(tu: TuningConfig) -> None:
    tunable = _tunable()
    for name, (low, high) in tu.ranges.items():
        key = f"training.tuning.ranges.{name}"
        _check_hyperparameter_name(key, name, ", ".join(tunable))
        spec = hp.HYPERPARAMETERS[name]
        check(
            name in tunable,
            key,
            f"train.py reads {name} as an integer, but a tuning job would send it fractions"
            if spec.kind == "int"
            else f"{name} is a {spec.kind} hyperparameter, not a number to tune",
            ", ".join(tunable),
        )
        check(low < high, key, f"[{low:g}, {high:g}] is not [min, max] with min < max", spec.allowed())
        if spec.kind == "int":
            whole = float(low).is_integer() and float(high).is_integer()
            check(whole, key, f"[{low:g}, {high:g}] has a fractional bound", f"whole numbers, {spec.allowed()}")
        for bound in (low, high):
            try:
                hp.parse_value(name, hyperparameter_text(bound))
            except hp.UsageError as error:
                raise ConfigError(
                    key, f"bound {bound:g} is refused by train.py: {error}", spec.allowed(), "refused-by-train"
                ) from None


def _check_metric_domain(cfg: StageConfig) -> None:
    """The floor and tolerance are on the primary metric's scale: AUC lies in [0, 1], log loss and RMSE >= 0."""
    r, objective = cfg.retraining, cfg.training.objective
    metric, direction = tuning_objective(objective)
    if direction == "Maximize":  # AUC
        for name in ("metric_floor", "tolerance"):
            value = getattr(r, name)
            check(
                value <= 1,
                f"retraining.{name}",
                f"{value!r} is outside the scale of {metric}, the metric {objective} promotes on",
                "0..1",
            )


def validate(cfg: StageConfig) -> StageConfig:
    """Every rule a human could get wrong; the first broken one raises with the key and the allowed values."""
    if not isinstance(cfg, StageConfig):
        raise ConfigError("config", f"{show(cfg)} is not a StageConfig", "load_config's result", "wrong-type")
    check_fields(cfg, "")
    check(cfg.stage in STAGES, "stage", f"{cfg.stage!r} is not a stage", ", ".join(STAGES), "not-a-choice")
    check(
        bool(_APP_NAME.fullmatch(cfg.app_name)),
        "app_name",
        f"{show(cfg.app_name)} is not a short lower-case name",
        "2..16 of a-z, 0-9, -, starting with a letter",
    )
    regions = _known_regions()
    if cfg.region in _sagemaker_regions() and cfg.region not in regions:
        problem = f"SageMaker runs in {cfg.region}, but the XGBoost framework container is not published there"
    else:
        problem = f"{show(cfg.region)} is not a SageMaker region"
    check(cfg.region in regions, "region", problem, ", ".join(regions))
    zones, zone = cfg.availability_zones, re.compile(re.escape(cfg.region) + "[a-z]")
    check(
        len(zones) == 2 and len(set(zones)) == 2 and all(zone.fullmatch(z) for z in zones),
        "availability_zones",
        f"{show(list(zones))} are not two distinct zones of {cfg.region}",
        f'two of {cfg.region}a, {cfg.region}b, ...; -c availability_zones=\'["{cfg.region}a", "{cfg.region}b"]\'',
    )
    check(
        cfg.account is None or bool(_ACCOUNT.fullmatch(cfg.account)),
        "account",
        f"{show(cfg.account)} is not an AWS account id",
        "12 digits",
    )
    if cfg.is_prod:
        check(
            cfg.operator_email is not None,
            "operator_email",
            "missing: operator_email is required in prod (alarms must reach a person)",
            "one e-mail address; pass -c operator_email=you@example.com",
            "missing",
        )
    check(
        cfg.operator_email is None or (len(cfg.operator_email) <= 254 and bool(_EMAIL.fullmatch(cfg.operator_email))),
        "operator_email",
        f"{show(cfg.operator_email)} is not one e-mail address",
        "one address such as ops@example.com",
    )

    t = cfg.training
    _check_instance("training.instance_type", t.instance_type)
    image_regions = _xgboost_image_regions(t.xgboost_framework_version)
    check(
        image_regions is None or cfg.region in image_regions,
        "training.xgboost_framework_version",
        f"the {t.xgboost_framework_version} container is not published in {cfg.region}",
        ", ".join(sorted(image_regions or ())),
    )
    if t.use_spot:
        check(
            t.max_wait_s >= t.max_runtime_s,
            "training.max_wait_s",
            f"{t.max_wait_s} is shorter than training.max_runtime_s ({t.max_runtime_s}) with spot",
            f">= training.max_runtime_s, {allowed_text('training.max_wait_s')}",
        )
    _check_hyperparameters(t)
    tu = t.tuning
    check(
        tu.max_parallel_jobs <= tu.max_jobs,
        "training.tuning.max_parallel_jobs",
        f"{tu.max_parallel_jobs} is more than training.tuning.max_jobs ({tu.max_jobs})",
        f"1..max_jobs ({tu.max_jobs})",
    )
    _check_tuning_ranges(tu)

    e = cfg.endpoint
    _check_instance("endpoint.instance_type", e.instance_type)
    check(
        e.min_capacity <= e.max_capacity,
        "endpoint.min_capacity",
        f"{e.min_capacity} is more than endpoint.max_capacity ({e.max_capacity})",
        f"1..max_capacity ({e.max_capacity})",
    )
    check(
        e.min_capacity <= e.initial_instance_count <= e.max_capacity,
        "endpoint.initial_instance_count",
        f"{e.initial_instance_count} is outside [min_capacity, max_capacity]",
        f"{e.min_capacity}..{e.max_capacity}",
    )
    if cfg.is_prod:
        check(e.min_capacity >= 2, "endpoint.min_capacity", f"{e.min_capacity} in prod (two AZs)", ">= 2 in prod")
        check(not e.serverless, "endpoint.serverless", "true is a dev option", "false in prod")
    check(
        e.deployment_timeout_s > e.canary_wait_s + e.termination_wait_s,
        "endpoint.deployment_timeout_s",
        f"{e.deployment_timeout_s} does not cover canary_wait_s + termination_wait_s "
        f"({e.canary_wait_s + e.termination_wait_s})",
        f"> {e.canary_wait_s + e.termination_wait_s}, {allowed_text('endpoint.deployment_timeout_s')}",
    )
    check(
        e.no_invocations_alarm_minutes % 5 == 0,
        "endpoint.no_invocations_alarm_minutes",
        f"{e.no_invocations_alarm_minutes} is not a whole number of the alarm's 5-minute periods",
        "a multiple of 5 in 5..1440",
    )

    r = cfg.retraining
    for name in ("schedule", "drift_schedule"):
        issue = schedule_problem(getattr(r, name))
        check(issue is None, f"retraining.{name}", f"{show(getattr(r, name))} {issue}", SCHEDULE_ALLOWED)
    _check_metric_domain(cfg)
    fits = INGEST_MIB_PER_VCPU_SECOND * INGEST_CHECK_SECONDS
    check(
        r.ingest_memory_mb <= INGEST_ONE_VCPU_MB,
        "retraining.max_file_mb",
        f"{r.max_file_mb} MB cannot be checked within the ingest function's {INGEST_TIMEOUT_S} s timeout "
        f"(one vCPU checks {INGEST_MIB_PER_VCPU_SECOND} MiB/s)",
        f"1..{fits}",
    )

    n = cfg.network
    unknown = sorted(set(n.interface_endpoints) - set(INTERFACE_ENDPOINTS))
    check(not unknown, "network.interface_endpoints", f"unknown {unknown}", ", ".join(INTERFACE_ENDPOINTS))
    # An override replaces the whole mapping, so a partial one would silently switch the rest off.
    missing = [name for name in INTERFACE_ENDPOINTS if name not in n.interface_endpoints]
    check(
        not missing,
        "network.interface_endpoints",
        f"is missing {missing}",
        f"every one of {', '.join(INTERFACE_ENDPOINTS)} as true or false",
    )
    _check_cidr(n.vpc_cidr)
    check(
        n.enabled or not n.restrict_buckets_to_vpce,
        "network.restrict_buckets_to_vpce",
        "needs network.enabled (no VPC endpoint would be left to reach the buckets)",
        "false while network.enabled is false",
    )

    nb = cfg.notebook
    _check_instance("notebook.instance_type", nb.instance_type)
    platforms = _notebook_platforms()
    check(
        nb.platform_identifier in platforms,
        "notebook.platform_identifier",
        f"{show(nb.platform_identifier)} is not an Amazon Linux 2023 platform",
        ", ".join(platforms),
    )
    check(
        not nb.enabled or n.enabled,
        "notebook.enabled",
        "needs network.enabled (the notebook runs in a private subnet without internet access)",
        "false while network.enabled is false",
    )
    _check_accounts(cfg)
    check_with_function_parsers(cfg)
    return cfg


def _check_accounts(cfg: StageConfig) -> None:
    """A two-account stage names its own account and its peer's, and they differ."""
    a = cfg.accounts
    for key in ("build_account", "serving_account"):
        value = getattr(a, key)
        check(
            value is None or bool(_ACCOUNT.fullmatch(value)),
            f"accounts.{key}",
            f"{show(value)} is not an AWS account id",
            "12 digits",
        )
    if a.role == "single":
        check(
            a.build_account is None and a.serving_account is None,
            "accounts.role",
            "single names no peer account",
            "build (with accounts.serving_account) or serving (with accounts.build_account)",
        )
        return
    check(cfg.account is not None, "account", f"a {a.role} stage must name its own account", "12 digits", "missing")
    peer_key = "serving_account" if a.role == "build" else "build_account"
    other_key = "build_account" if a.role == "build" else "serving_account"
    peer = getattr(a, peer_key)
    check(peer is not None, f"accounts.{peer_key}", f"a {a.role} stage must name it", "12 digits", "missing")
    check(peer != cfg.account, f"accounts.{peer_key}", f"{peer} is this stage's own account", "another account")
    check(
        getattr(a, other_key) is None,
        f"accounts.{other_key}",
        f"a {a.role} stage names only its peer ({peer_key})",
        "absent",
        "not-overridable",
    )
    check(
        a.role == "build" or a.approval in (None, "manual"),
        "accounts.approval",
        "a serving stage deploys only packages approved in the build account's registry",
        "manual (or absent)",
    )
