"""Nested overrides (`-c config_overrides=...`) applied to the stage's defaults: unknown keys are refused by name,
JSON shapes become the fields' shapes. Types and bounds are checked afterwards (config/field_checks.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from config.fields import ConfigError, show

T = TypeVar("T")


def merge_overrides(obj: T, overrides: Any, path: str) -> T:
    """Apply nested overrides to a frozen dataclass, rejecting unknown keys by name. Types are checked later."""
    assert is_dataclass(obj) and not isinstance(obj, type)
    names = [f.name for f in fields(obj)]
    if not isinstance(overrides, Mapping):
        where = path.rstrip(".") or "config_overrides"
        raise ConfigError(
            where, f"{show(overrides)} is not a JSON object", f"an object of {', '.join(names)}", "not-an-object"
        )
    hints = get_type_hints(type(obj))
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        where = f"{path}{key}"
        if key not in names:
            raise ConfigError(where, "is not a configuration key", ", ".join(names), "unknown-key")
        if not path and key == "stage":
            raise ConfigError(
                "config_overrides.stage",
                "the stage cannot be changed from inside config_overrides",
                "-c stage=dev|prod",
                "not-overridable",
            )
        current = getattr(obj, key)
        if is_dataclass(current) and not isinstance(current, type):
            changes[key] = merge_overrides(current, value, f"{where}.")
        else:
            changes[key] = _normalise(value, hints[key], where)
    return replace(obj, **changes)


def _normalise(value: Any, hint: Any, where: str) -> Any:
    """JSON shapes into the field's shape (lists into tuples, numbers into hyperparameter strings); no coercion
    of kinds: a string stays a string, so "false" for a boolean is an error at validation."""
    if get_origin(hint) is tuple and isinstance(value, list):
        return tuple(value)
    if get_origin(hint) is Mapping and isinstance(value, Mapping):
        inner = get_args(hint)[1]
        if get_origin(inner) is tuple:
            return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        if where == "training.hyperparameters":
            return {k: hyperparameter_text(v) for k, v in value.items()}
        return dict(value)
    return value


def hyperparameter_text(value: Any) -> Any:
    """A JSON hyperparameter value as the string SageMaker passes to train.py (anything else is left to fail)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return value
