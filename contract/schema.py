"""schema.json (docs/artifacts.md): its checked form `Schema`, the parser that names the wrong field, and the
one regex of a well-formed prepared row. Stdlib only."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from contract.numbers import PLAIN_DECIMAL, REQUEST_NAN_WORD, is_decimal

SCHEMA_FILE: Final = "schema.json"
FORMAT_VERSION: Final = 1
# objective -> task: the three objectives train.py, the endpoint and validation know.
OBJECTIVES: Final[Mapping[str, str]] = {
    "binary:logistic": "binary",
    "multi:softprob": "multiclass",
    "reg:squarederror": "regression",
}
TASKS: Final = ("binary", "multiclass", "regression")
Task = Literal["binary", "multiclass", "regression"]


class SchemaError(ValueError):
    """schema.json is not a valid schema (docs/artifacts.md); the message names the field, and so does `field`
    (its path, e.g. `label.classes` or `features[2].type`; empty for the document as a whole)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Feature:
    name: str
    type: Literal["numeric", "categorical"]
    categories: tuple[str, ...] = ()

    @property
    def categorical(self) -> bool:
        return self.type == "categorical"


@dataclass(frozen=True)
class Schema:
    """schema.json, checked. `raw` is the document as read (train.py writes it back unchanged)."""

    raw: Mapping[str, Any] = field(compare=False, repr=False)
    objective: str
    task: Task
    label_name: str
    classes: tuple[str, ...]
    features: tuple[Feature, ...]
    missing_tokens: tuple[str, ...]
    fingerprint: str
    line_pattern: re.Pattern[str] = field(compare=False, repr=False)
    # Request-time lookups, built once.
    missing_set: frozenset[str] = field(compare=False, repr=False)
    category_codes: tuple[Mapping[str, int] | None, ...] = field(compare=False, repr=False)

    @property
    def column_count(self) -> int:
        """Columns of a prepared row: the label, then the features."""
        return 1 + len(self.features)

    n_columns = column_count

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def feature_kinds(self) -> tuple[str, ...]:
        return tuple(f.type for f in self.features)

    @property
    def categories(self) -> dict[str, tuple[str, ...]]:
        """Category lists of the categorical features, by name."""
        return {f.name: f.categories for f in self.features if f.categorical}

    @property
    def xgb_feature_types(self) -> list[str]:
        """XGBoost's feature_types: 'c' makes the integer codes native categorical splits."""
        return ["c" if f.categorical else "q" for f in self.features]

    def column_name(self, index: int) -> str:
        """Prepared column `index` (0 = the label)."""
        return self.label_name if index == 0 else self.features[index - 1].name


def schema_fingerprint(schema: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the canonical JSON of schema.json (key order and spacing do not matter)."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def parse_schema(doc: Any) -> Schema:
    """Check a parsed schema.json and keep what the readers need; raises SchemaError naming the field.

    Variants accepted everywhere: `label.task` may be left out (the objective implies it); `missing_tokens`
    may be left out (none besides the empty cell); `label.classes` may be left out for regression.
    """
    if not isinstance(doc, Mapping):
        raise SchemaError("schema must be a JSON object", field="")
    version = doc.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise SchemaError(f"schema format_version must be {FORMAT_VERSION}, got {version!r}", field="format_version")
    objective = doc.get("objective")
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise SchemaError(f"schema objective {objective!r} is not one of {', '.join(OBJECTIVES)}", field="objective")
    label = doc.get("label")
    if not isinstance(label, Mapping):
        raise SchemaError("schema label must be an object with name, task and classes", field="label")
    task = label.get("task", OBJECTIVES[objective])
    if task not in TASKS:
        raise SchemaError(
            f"schema label.task must be binary, multiclass or regression, got {task!r}", field="label.task"
        )
    if task != OBJECTIVES[objective]:
        raise SchemaError(f"schema objective {objective!r} does not fit label.task {task!r}", field="label.task")
    label_name = label.get("name")
    if not isinstance(label_name, str) or not label_name:
        raise SchemaError("schema label.name must be a non-empty string", field="label.name")
    classes = label.get("classes", [])
    if not _strings(classes):
        raise SchemaError("schema label.classes must be a list of strings", field="label.classes")
    if len(set(classes)) != len(classes):
        raise SchemaError("schema label.classes must be unique", field="label.classes")
    wanted = {"binary": len(classes) == 2, "multiclass": len(classes) >= 2, "regression": not classes}[task]
    if not wanted:
        raise SchemaError(
            f"schema label.classes has {len(classes)} entries, which does not fit task {task!r}", field="label.classes"
        )
    tokens = doc.get("missing_tokens", [])
    if not _strings(tokens):
        raise SchemaError("schema missing_tokens must be a list of strings", field="missing_tokens")
    missing = frozenset(t.strip() for t in tokens) | {""}
    for token in missing:
        # A token that reads as a number would mean two things: prepare.py's missing value and the number.
        if is_decimal(token):
            raise SchemaError(
                f"schema missing_tokens: {token!r} reads as a number; a missing token must not", field="missing_tokens"
            )
    raw_features = doc.get("features")
    if not isinstance(raw_features, list) or not raw_features:
        raise SchemaError("schema features must be a non-empty list", field="features")
    features: list[Feature] = []
    for i, item in enumerate(raw_features):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            raise SchemaError(f"schema features[{i}] needs a non-empty name", field=f"features[{i}].name")
        name = item["name"]
        if item.get("type") == "numeric":
            features.append(Feature(name, "numeric"))
        elif item.get("type") == "categorical":
            categories = item.get("categories")
            if not _strings(categories) or not categories:
                raise SchemaError(
                    f"schema features[{i}] ({name}) needs a non-empty categories list of strings",
                    field=f"features[{i}].categories",
                )
            if len(set(categories)) != len(categories):
                raise SchemaError(
                    f"schema features[{i}] ({name}) categories must be unique", field=f"features[{i}].categories"
                )
            clash = sorted(c for c in categories if c.strip() in missing or c.strip().lower() == REQUEST_NAN_WORD)
            if clash:
                raise SchemaError(
                    f"schema features[{i}] ({name}) category {clash[0]!r} is also a missing token",
                    field=f"features[{i}].categories",
                )
            features.append(Feature(name, "categorical", tuple(categories)))
        else:
            raise SchemaError(
                f"schema features[{i}].type must be numeric or categorical, got {item.get('type')!r}",
                field=f"features[{i}].type",
            )
    names = [label_name, *(f.name for f in features)]
    if len(set(names)) != len(names):
        raise SchemaError("schema label and feature names must be unique", field="features")
    return Schema(
        raw=doc,
        objective=objective,
        task=task,
        label_name=label_name,
        classes=tuple(classes),
        features=tuple(features),
        missing_tokens=tuple(tokens),
        fingerprint=schema_fingerprint(doc),
        line_pattern=_line_pattern(task, len(classes), features),
        missing_set=missing,
        category_codes=tuple(
            {c: code for code, c in enumerate(f.categories)} if f.categorical else None for f in features
        ),
    )


def int_range_pattern(count: int) -> str:
    """A regex matching exactly the canonical decimal integers 0..count-1 (count >= 1)."""
    if count < 1:
        raise ValueError("count must be >= 1")
    top = str(count - 1)
    alternatives = ["[0-9]" if width == 1 else f"[1-9][0-9]{{{width - 1}}}" for width in range(1, len(top))]
    alternatives += _up_to(top, leading=True)
    return "(?:" + "|".join(alternatives) + ")"


def _up_to(digits: str, *, leading: bool) -> list[str]:
    """Patterns for strings of len(digits) digits that are <= digits (no leading zero when `leading`)."""
    low = 1 if leading and len(digits) > 1 else 0
    first = int(digits[0])
    if len(digits) == 1:
        return [f"[{low}-{first}]"]
    parts = [f"[{low}-{first - 1}][0-9]{{{len(digits) - 1}}}"] if first > low else []
    parts.append(f"{first}(?:{'|'.join(_up_to(digits[1:], leading=False))})")
    return parts


def _line_pattern(task: str, n_classes: int, features: Sequence[Feature]) -> re.Pattern[str]:
    """One regex for a whole well-formed prepared row; a match needs no further checks."""
    label = PLAIN_DECIMAL if task == "regression" else int_range_pattern(n_classes)
    cells = [label]
    for feature in features:
        inner = int_range_pattern(len(feature.categories)) if feature.categorical else PLAIN_DECIMAL
        cells.append(f"(?:{inner})?")
    return re.compile(",".join(cells))
