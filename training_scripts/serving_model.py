"""The loaded model: booster, schema.json under the data contract, the decision threshold from evaluation.json,
and the per-column lookups that make request parsing fast.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import xgboost as xgb

from contract import data

NAN = float("nan")


@dataclass(frozen=True, slots=True)
class Model:
    """The loaded model: booster, schema and the per-column lookups that make parsing fast."""

    booster: xgb.Booster  # all cores: large requests
    small_booster: xgb.Booster  # one thread: small requests (see _SINGLE_THREAD_MAX_ROWS)
    schema: dict[str, Any]
    task: str  # binary | multiclass | regression
    classes: tuple[str, ...]
    threshold: float | None  # binary only
    iteration_range: tuple[int, int]
    feature_names: tuple[str, ...]
    feature_index: dict[str, int]
    categories: tuple[tuple[str, ...] | None, ...]  # None for a numeric column
    csv_maps: tuple[dict[str, float] | None, ...]  # CSV cell -> value for categorical columns (codes win)
    name_maps: tuple[dict[str, float] | None, ...]  # category name -> code
    missing_tokens: frozenset[str]
    spec: data.Schema  # schema.json under the data contract: the authority on every cell

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


def load_model(model_dir: str) -> Model:
    """Loads the booster, schema.json and the threshold from evaluation.json, once per process.

    Args:
        model_dir: directory holding `xgboost-model`, `schema.json` and (optionally) `evaluation.json`.

    Returns:
        The `Model` the other entry points use.
    """
    with open(os.path.join(model_dir, "schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    evaluation: dict[str, Any] = {}
    evaluation_path = os.path.join(model_dir, "evaluation.json")
    if os.path.exists(evaluation_path):
        with open(evaluation_path, encoding="utf-8") as f:
            evaluation = json.load(f)

    booster = xgb.Booster()
    with open(os.path.join(model_dir, "xgboost-model"), "rb") as f:
        # From a buffer XGBoost reads JSON or UBJSON by content; from a path it guesses by file extension.
        booster.load_model(bytearray(f.read()))

    try:  # the same schema rules as training and ingest (contract/data.py)
        spec = data.parse_schema(schema)
    except data.SchemaError as e:
        raise ValueError(f"schema.json: {e}") from None
    if booster.num_features() != len(spec.features):
        raise ValueError(
            f"the booster has {booster.num_features()} features but schema.json lists {len(spec.features)}"
        )
    task, classes = spec.task, spec.classes

    threshold = None
    if task == "binary":
        chosen = (evaluation.get("threshold") or {}).get("value")
        threshold = float(chosen) if chosen is not None else 0.5
    # An early-stopped booster keeps every tree; predict with the best ones, as evaluation did.
    best = booster.attr("best_iteration")
    iteration_range = (0, int(best) + 1) if best is not None else (0, 0)

    # Exact-token shortcuts for the contract's request rules (contract.data.request_csv_cell decides the rest):
    # a missing token, then a valid code, then a category name.
    missing = spec.missing_set | {data.REQUEST_NAN_WORD, "NaN", "NAN"}
    names: list[str] = []
    categories: list[tuple[str, ...] | None] = []
    csv_maps: list[dict[str, float] | None] = []
    name_maps: list[dict[str, float] | None] = []
    for feature in spec.features:
        names.append(feature.name)
        if feature.categorical:
            cats = feature.categories
            by_name = {c: float(i) for i, c in enumerate(cats)}
            csv_map: dict[str, float] = dict(by_name)
            csv_map.update({str(i): float(i) for i in range(len(cats))})
            csv_map.update({f"{i}.0": float(i) for i in range(len(cats))})  # numpy float arrays serialise as 3.0
            csv_map.update(dict.fromkeys(missing, NAN))
            categories.append(cats)
            csv_maps.append(csv_map)
            name_maps.append(by_name)
        else:
            categories.append(None)
            csv_maps.append(None)
            name_maps.append(None)
    small_booster = booster.copy()
    small_booster.set_param({"nthread": 1})
    return Model(
        booster=booster,
        small_booster=small_booster,
        schema=schema,
        task=task,
        classes=classes,
        threshold=threshold,
        iteration_range=iteration_range,
        feature_names=tuple(names),
        feature_index={n: i for i, n in enumerate(names)},
        categories=tuple(categories),
        csv_maps=tuple(csv_maps),
        name_maps=tuple(name_maps),
        missing_tokens=missing,
        spec=spec,
    )
