"""Typed, validated stage configuration: the one place that says what `dev` and `prod` mean.

`app.py` builds a `StageConfig` with `load_from_context(...)` (or `load_config(stage, ...)`) and hands typed
fields down; nothing below it reads the environment or raw CDK context.

Every key is type-checked and bounded before any construct is built: booleans are JSON booleans, numbers are
finite and in range, lists have the right length and unique members, hyperparameters and tuning ranges are
what train.py accepts (training_scripts/hyperparameters.py), schedules are EventBridge expressions. Then the
values the stacks hand to the functions (TRAINING_SETTINGS, RETRAIN_POLICY) go through the functions' own
parsers, so nothing a function would refuse at run time deploys. Every failure is one `ConfigError` whose
text is one line: `configuration error: <key>: <problem> (allowed: ...)`, with a `code` for the kind of mistake.

This module holds what `dev` and `prod` mean and the loading (context, explicit values, overrides), and
re-exports what importers use. The rest lives by concern:
- config/sections.py: the per-section dataclasses with their defaults and bounds, and `StageConfig`;
- config/fields.py: `ConfigError`, its codes, and the field declarations (`num`, `choice`);
- config/overrides.py: nested overrides merged onto the defaults;
- config/field_checks.py: every field's type and bounds;
- config/rules.py: the rules across fields, and `validate`;
- config/schedules.py: EventBridge schedule expressions;
- config/function_inputs.py: TRAINING_SETTINGS and RETRAIN_POLICY from the stage, through the functions' parsers.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from config.fields import ConfigError, check, show
from config.function_inputs import retrain_policy_document, training_spec_fields
from config.overrides import merge_overrides
from config.rules import validate
from config.schedules import SCHEDULE_ALLOWED, schedule_problem
from config.sections import (
    CONTEXT_KEYS,
    INGEST_TIMEOUT_S,
    INTERFACE_ENDPOINTS,
    STAGES,
    DataConfig,
    EndpointConfig,
    NetworkConfig,
    NotebookConfig,
    RetrainingConfig,
    StageConfig,
    TrainingConfig,
    TuningConfig,
    ingest_memory_mb,
)

# What importers take from config.settings; each lives in the module named above it.
__all__ = [
    "CONTEXT_KEYS",
    "INGEST_TIMEOUT_S",
    "INTERFACE_ENDPOINTS",
    "SCHEDULE_ALLOWED",
    "STAGES",
    "ConfigError",
    "DataConfig",
    "EndpointConfig",
    "NetworkConfig",
    "NotebookConfig",
    "RetrainingConfig",
    "StageConfig",
    "TrainingConfig",
    "TuningConfig",
    "as_dict",
    "ingest_memory_mb",
    "load_config",
    "load_from_context",
    "parse_json",
    "retrain_policy_document",
    "schedule_problem",
    "training_spec_fields",
    "validate",
]


def _defaults(stage: str, region: str) -> StageConfig:
    azs = (f"{region}a", f"{region}b")
    if stage == "dev":
        return StageConfig(
            stage="dev",
            region=region,
            availability_zones=azs,
            data=DataConfig(capture_expiry_days=14, quarantine_expiry_days=30, log_retention_days=90),
            endpoint=EndpointConfig(serverless=False, min_capacity=1, max_capacity=2, scheduled_scale_down=True),
            network=NetworkConfig(
                interface_endpoints={name: name not in {"sagemaker_notebook"} for name in INTERFACE_ENDPOINTS}
            ),
        )
    return StageConfig(
        stage="prod",
        region=region,
        availability_zones=azs,
        training=TrainingConfig(use_spot=False),
        endpoint=EndpointConfig(initial_instance_count=2, min_capacity=2, max_capacity=6, canary_wait_s=900),
        retraining=RetrainingConfig(rollback_on_alarm=True),
        notebook=NotebookConfig(enabled=False),
    )


# ------------------------------------------------------------------------------------------- loading


def load_config(
    stage: Any,
    *,
    region: Any = "us-east-1",
    account: Any = None,
    availability_zones: Any = None,
    operator_email: Any = None,
    overrides: Any = None,
) -> StageConfig:
    """The stage's defaults, then explicit values, then nested overrides; validated as a whole."""
    check(
        isinstance(stage, str) and stage in STAGES,
        "stage",
        f"{show(stage)} is not a stage",
        ", ".join(STAGES),
        "not-a-choice",
    )
    check(
        isinstance(region, str),
        "region",
        f"{show(region)} is not one string",
        "a region name such as us-east-1",
        "wrong-type",
    )
    cfg = _defaults(stage, region)
    if availability_zones is not None:
        check(
            isinstance(availability_zones, list | tuple),
            "availability_zones",
            f"{show(availability_zones)} is not a list",
            f'a JSON list of two zones of {region}, e.g. ["{region}a", "{region}b"]',
            "wrong-type",
        )
        cfg = replace(cfg, availability_zones=tuple(availability_zones))
    cfg = replace(cfg, account=account, operator_email=operator_email)
    if overrides is not None:
        cfg = merge_overrides(cfg, overrides, "")
    return validate(cfg)


def load_from_context(context: Callable[[str], Any], environ: Mapping[str, str]) -> StageConfig:
    """The config from CDK context (`-c key=value` gives strings, cdk.json any JSON) and CDK's environment."""

    def given(key: str, fallback: Any = None) -> Any:
        value = context(key)
        return fallback if value is None else value

    return load_config(
        given("stage", "dev"),
        region=given("region", environ.get("CDK_DEFAULT_REGION") or "us-east-1"),
        account=given("account", environ.get("CDK_DEFAULT_ACCOUNT") or None),
        availability_zones=_json_context("availability_zones", context("availability_zones"), list),
        operator_email=context("operator_email"),
        overrides=_json_context("config_overrides", context("config_overrides"), dict),
    )


_JSON_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _json_context(key: str, value: Any, kind: type) -> Any:
    """A context value that holds JSON: as given in cdk.json, or parsed from the string `-c` passes."""
    want = "a JSON object" if kind is dict else "a JSON list"
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_json(key, value)
        if isinstance(value, str):
            raise ConfigError(key, f"is a JSON string, not {want} (encoded twice?)", want, "wrong-type")
    if not isinstance(value, kind):
        got = _JSON_KINDS.get(type(value), "a number")
        raise ConfigError(key, f"is {got}, not {want}", want, "wrong-type")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"key {twice[0]!r} appears twice")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(key: str, text: str) -> Any:
    """Strict JSON: no NaN/Infinity, no repeated keys; any failure is one ConfigError naming the key."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except RecursionError:
        raise ConfigError(key, "nests too deeply to be a configuration", "valid JSON", "invalid-json") from None
    except ValueError as error:  # JSONDecodeError, our hooks, and integers past Python's digit limit
        raise ConfigError(key, f"is not valid JSON: {error}", "valid JSON", "invalid-json") from None


def as_dict(cfg: StageConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
