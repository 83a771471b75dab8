"""Build small model directories in the artifact contract (docs/artifacts.md), for any test that serves a model.

`build_model_dir(path, task)` trains a real XGBoost Booster with native categorical features on synthetic data
and writes `xgboost-model` (JSON), `schema.json`, `evaluation.json` and train.py's code/; `make_model_tar` packs one
the way SageMaker ships it. Training takes a fraction of a second, so session-scoped fixtures can call it freely.

Import it as `model_factory` from tests under tests/serving, or by path from elsewhere.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from training_scripts.train import write_serving_code

TASKS = ("binary", "multiclass", "regression")
WORKCLASS = ["Federal-gov", "Local-gov", "Private", "Self-emp"]
SEX = ["Female", "Male"]
FEATURES: list[dict[str, Any]] = [
    {"name": "age", "type": "numeric"},
    {"name": "workclass", "type": "categorical", "categories": WORKCLASS},
    {"name": "hours_per_week", "type": "numeric"},
    {"name": "sex", "type": "categorical", "categories": SEX},
]
FEATURE_TYPES = ["q" if f["type"] == "numeric" else "c" for f in FEATURES]
OBJECTIVES = {"binary": "binary:logistic", "multiclass": "multi:softprob", "regression": "reg:squarederror"}
CLASSES = {"binary": ["<=50K", ">50K"], "multiclass": ["low", "mid", "high"], "regression": []}
THRESHOLD = 0.54


def synthetic_features(n: int, seed: int = 0, missing_fraction: float = 0.0) -> np.ndarray:
    """Returns an (n, 4) float matrix in schema order: categorical columns hold codes, NaN marks missing."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.integers(17, 90, n).astype(float),
            rng.integers(0, len(WORKCLASS), n).astype(float),
            rng.integers(1, 99, n).astype(float),
            rng.integers(0, len(SEX), n).astype(float),
        ]
    )
    if missing_fraction:
        x[rng.random(x.shape) < missing_fraction] = np.nan
    return x


def _labels(x: np.ndarray, task: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    # The label depends on a categorical column too, so the trees hold categorical splits.
    x = np.nan_to_num(x, nan=40.0)
    signal = (x[:, 0] - 40) / 12 + np.where(x[:, 1] == 2, 1.0, -0.5) + 0.02 * x[:, 2]
    signal = signal + rng.normal(0, 0.5, len(x))
    if task == "binary":
        return (signal > 1.0).astype(float)
    if task == "multiclass":
        return np.digitize(signal, [0.5, 1.5]).astype(float)
    return signal


def schema_for(task: str) -> dict[str, Any]:
    """Returns the schema.json content for a task (binary, multiclass or regression)."""
    return {
        "format_version": 1,
        "objective": OBJECTIVES[task],
        "label": {"name": "income" if task != "regression" else "score", "task": task, "classes": CLASSES[task]},
        "features": FEATURES,
        "missing_tokens": ["", "?"],
    }


def train_booster(
    task: str, *, n_rows: int = 600, n_rounds: int = 20, max_depth: int = 4, seed: int = 0
) -> xgb.Booster:
    """Trains a small Booster with native categorical support on synthetic data."""
    x = synthetic_features(n_rows, seed, missing_fraction=0.02)
    dtrain = xgb.DMatrix(x, label=_labels(x, task, seed), feature_types=FEATURE_TYPES, enable_categorical=True)
    params: dict[str, Any] = {
        "objective": OBJECTIVES[task],
        "max_depth": max_depth,
        "eta": 0.3,
        "tree_method": "hist",
        "max_cat_to_onehot": 1,  # partition-based categorical splits, as train.py uses
        "nthread": 1,
        "seed": seed,
    }
    if task == "multiclass":
        params["num_class"] = len(CLASSES["multiclass"])
    return xgb.train(params, dtrain, num_boost_round=n_rounds)


def build_model_dir(
    path: Path,
    task: str = "binary",
    *,
    n_rows: int = 600,
    n_rounds: int = 20,
    threshold: float = THRESHOLD,
    with_code: bool = True,
) -> Path:
    """Writes xgboost-model, schema.json, evaluation.json and (as train.py does) code/ into `path`; returns it."""
    path.mkdir(parents=True, exist_ok=True)
    booster = train_booster(task, n_rows=n_rows, n_rounds=n_rounds)
    (path / "xgboost-model").write_bytes(bytes(booster.save_raw("json")))
    (path / "schema.json").write_text(json.dumps(schema_for(task), indent=2))
    primary = {"binary": ("auc", True), "multiclass": ("mlogloss", False), "regression": ("rmse", False)}[task]
    evaluation = {
        "format_version": 1,
        "objective": OBJECTIVES[task],
        "primary_metric": {"name": primary[0], "split": "validation", "value": 0.9, "higher_is_better": primary[1]},
        "threshold": {"value": threshold, "method": "max_accuracy"} if task == "binary" else None,
        "splits": {"validation": {}},
        "dataset_sizes": {"train": n_rows, "validation": 0},
        "hyperparameters": {"num_round": n_rounds, "max_depth": 4},
        "best_iteration": n_rounds - 1,
        "xgboost_version": xgb.__version__,
    }
    (path / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
    if with_code:
        write_serving_code(path)  # what train.py leaves in a real job's model directory
    return path


def make_model_tar(model_dir: Path, tar_path: Path) -> Path:
    """Packs a model directory the way SageMaker ships it: the files at the archive's top level, code/ included."""
    with tarfile.open(tar_path, "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)
    return tar_path


def reference_scores(model_dir: Path, x: np.ndarray) -> np.ndarray:
    """Scores `x` (codes, NaN = missing) through a categorical DMatrix: the answer serving must reproduce."""
    booster = xgb.Booster()
    booster.load_model(bytearray((model_dir / "xgboost-model").read_bytes()))
    return booster.predict(xgb.DMatrix(x, feature_types=FEATURE_TYPES, enable_categorical=True))
