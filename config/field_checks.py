"""Every field has its declared type and lies within its declared bounds or choices; what a key allows, in words."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from config.fields import ConfigError, show
from config.sections import StageConfig
from lambdas.shared.policy import RULES as POLICY_RULES


def allowed_text(key: str, f: dataclasses.Field[Any] | None = None) -> str | None:
    """What a key's bounds and choices allow, in words; the RETRAIN_POLICY parser's own side included."""
    f = f or field_at(key)
    if f is None:
        return None
    if "choices" in f.metadata:
        return ", ".join(str(v) for v in f.metadata["choices"])
    parts = []
    if f.metadata.get("policy"):
        parts.append(POLICY_RULES[f.metadata["policy"]][1])
    if "bound" in f.metadata and f.metadata["bound"].text():
        parts.append(f.metadata["bound"].text())
    return " and ".join(parts) or None


def field_at(key: str) -> dataclasses.Field[Any] | None:
    cls: Any = StageConfig
    found = None
    for name in key.split("."):
        if not (isinstance(cls, type) and is_dataclass(cls)):
            return None
        found = {f.name: f for f in fields(cls)}.get(name)
        if found is None:
            return None
        cls = get_type_hints(cls)[name]
    return found


def value_at(cfg: StageConfig, key: str) -> Any:
    value: Any = cfg
    for name in key.split("."):
        value = value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)
    return value


def check_fields(obj: Any, path: str) -> None:
    """Every field of a (nested) config dataclass has its declared type and lies within its bounds."""
    hints = get_type_hints(type(obj))
    for f in fields(obj):
        key, value, hint = f"{path}{f.name}", getattr(obj, f.name), hints[f.name]
        if isinstance(hint, type) and is_dataclass(hint):
            if not isinstance(value, hint):
                raise ConfigError(
                    key, f"{show(value)} is not a JSON object", ", ".join(x.name for x in fields(hint)), "not-an-object"
                )
            check_fields(value, f"{key}.")
            continue
        _check_value(key, value, hint, allowed_text(key, f) or _TEXT_ALLOWED.get(key))
        if "choices" in f.metadata and value not in f.metadata["choices"]:
            raise ConfigError(
                key, f"{show(value)} is not one of the choices", allowed_text(key, f) or "", "not-a-choice"
            )
        bound = f.metadata.get("bound")
        if bound is not None and not bound.holds(value):
            raise ConfigError(
                key, f"{show(value)} is out of range", allowed_text(key, f) or bound.text(), "out-of-range"
            )


# What a field without bounds or choices holds, in words (its own rule comes later in validate()).
_TEXT_ALLOWED = {
    "account": "12 digits, as a string",
    "operator_email": "one e-mail address, as a string",
    "app_name": "a short lower-case name, as a string",
    "availability_zones": "a JSON list of two zones of the region",
    "training.hyperparameters": "an object of train.py's names and string values",
    "training.tuning.ranges": "an object of hyperparameter names and [min, max]",
    "network.interface_endpoints": "an object of endpoint names and true or false",
}


def _check_value(key: str, value: Any, hint: Any, allowed: str | None) -> None:
    origin, args = get_origin(hint), get_args(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(
                key, f"{show(value)} is not a boolean (a JSON true or false, not a string)", "true, false", "wrong-type"
            )
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"{show(value)} is not an integer", allowed or "an integer", "wrong-type")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"{show(value)} is not a number", allowed or "a finite number", "wrong-type")
        if not math.isfinite(value):
            raise ConfigError(key, f"{show(value)} is not a finite number", allowed or "a finite number", "wrong-type")
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"{show(value)} is not one string", allowed or "a string", "wrong-type")
    elif origin in (Union, UnionType):  # `str | None`
        if value is not None:
            (inner,) = [a for a in args if a is not type(None)]
            _check_value(key, value, inner, allowed)
    elif origin is tuple:
        if not isinstance(value, tuple):
            raise ConfigError(key, f"{show(value)} is not a list", allowed or "a list", "wrong-type")
        if args and args[-1] is not Ellipsis and len(value) != len(args):
            raise ConfigError(
                key, f"{show(list(value))} has {len(value)} items, needs {len(args)}", allowed or "", "wrong-type"
            )
        for i, item in enumerate(value):
            _check_value(f"{key}[{i}]", item, args[0] if args[-1] is Ellipsis else args[i], allowed)
    elif origin is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"{show(value)} is not a JSON object", allowed or "an object", "not-an-object")
        for name, item in value.items():
            if not isinstance(name, str):
                raise ConfigError(key, f"key {show(name)} is not a string", "string keys", "wrong-type")
            inner = "[min, max]: two finite numbers" if get_origin(args[1]) is tuple else None
            _check_value(f"{key}.{name}", item, args[1], inner)
    else:  # pragma: no cover - a field type this walk does not know is a bug here, not a bad value
        raise TypeError(f"{key}: no check for {hint!r}")
