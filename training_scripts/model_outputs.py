"""What a finished job leaves: evaluation.json and baseline.json, the model directory with its serving code, and
the failure file when it fails (docs/artifacts.md).

SageMaker packs exactly what the job leaves in /opt/ml/model into model.tar.gz, and the model's container runs
SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code. So the job itself writes the serving code there: the entry point,
the serving_*.py modules beside it that it imports, and every local package it imports (the shared contract).
Nothing downstream adds files.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

# Imported as training_scripts.* (tests, the CLI), or run as the entry point from /opt/ml/code, where the
# scripts sit flat: there the flat copies beside it are the ones to use, even where the repository's package
# is importable too (the local runner), so a job runs exactly the scripts of its source tarball.
if __package__:
    from training_scripts import data_io, evaluation
    from training_scripts.channels import Loaded
    from training_scripts.job_options import threads
    from training_scripts.metrics_format import format_final
else:
    import data_io  # type: ignore[no-redef]
    import evaluation  # type: ignore[no-redef]
    from channels import Loaded  # type: ignore[no-redef]
    from job_options import threads  # type: ignore[no-redef]
    from metrics_format import format_final  # type: ignore[no-redef]

MODEL_FILE = "xgboost-model"
OUTPUT_FILES = (MODEL_FILE, data_io.SCHEMA_FILE, "evaluation.json", "baseline.json")
SERVING_CODE_DIR = "code"
SERVING_PROGRAM = "inference.py"
SERVING_MODULES = "serving_*.py"  # the modules inference.py imports from its own directory
SERVING_PACKAGES = ("contract",)


@dataclass
class Trained:
    """What training made: the model and a sample of the train rows; evaluation and the outputs start here."""

    loaded: Loaded
    model: xgb.Booster  # sliced to the best iteration
    model_json: bytes
    best_iteration: int
    rounds: int
    baseline_X: np.ndarray


def _predict(model: xgb.Booster, split: data_io.Split, schema: data_io.Schema, nthread: int | None) -> np.ndarray:
    matrix = xgb.DMatrix(
        split.X,
        feature_names=list(schema.feature_names),
        feature_types=schema.xgb_feature_types,
        enable_categorical=True,
        nthread=nthread or -1,
    )
    return model.predict(matrix)


def evaluate(trained: Trained) -> tuple[dict[str, Any], dict[str, Any]]:
    """evaluation.json and baseline.json documents. Local, no collective calls (run after the group ends)."""
    loaded = trained.loaded
    schema, task, hps = loaded.schema, loaded.task, loaded.hps
    nthread = threads(hps)
    threshold = None
    splits: dict[str, Any] = {}
    predictions = {"validation": _predict(trained.model, loaded.validation_full, schema, nthread)}
    if loaded.test_full is not None:
        predictions["test"] = _predict(trained.model, loaded.test_full, schema, nthread)
    if task == "binary":
        threshold = evaluation.choose_threshold(
            loaded.validation_full.y, predictions["validation"], hps["threshold_method"]
        )
    for name, predicted in predictions.items():
        split = loaded.validation_full if name == "validation" else loaded.test_full
        assert split is not None
        splits[name] = evaluation.split_metrics(task, split.y, predicted, loaded.classes, threshold)
    doc = {
        "format_version": 1,
        "objective": loaded.objective,
        "primary_metric": evaluation.primary_metric(task, splits),
        "threshold": {"value": threshold, "method": hps["threshold_method"]} if threshold is not None else None,
        "splits": splits,
        "dataset_sizes": {
            "train": loaded.train_rows,
            "validation": loaded.validation_full.rows,
            **({"test": loaded.test_full.rows} if loaded.test_full is not None else {}),
        },
        "hyperparameters": hps,
        "best_iteration": trained.best_iteration,
        "xgboost_version": xgb.__version__,
    }
    base = evaluation.baseline(
        trained.baseline_X,
        list(schema.feature_names),
        list(schema.feature_kinds),
        {name: list(cats) for name, cats in schema.categories.items()},
    )
    if loaded.train_rows == trained.baseline_X.shape[0]:
        base["sample_size"] = loaded.train_rows
    return doc, base


def write_outputs(
    model_dir: Path, trained: Trained, evaluation_doc: dict[str, Any], baseline_doc: dict[str, Any]
) -> None:
    """The four model-directory files, each written atomically, the model last."""
    model_dir.mkdir(parents=True, exist_ok=True)
    data_io.write_text_atomic(model_dir / data_io.SCHEMA_FILE, data_io.to_json(trained.loaded.schema.raw))
    data_io.write_text_atomic(model_dir / "evaluation.json", data_io.to_json(evaluation_doc))
    data_io.write_text_atomic(model_dir / "baseline.json", data_io.to_json(baseline_doc))
    write_serving_code(model_dir)
    data_io.write_text_atomic(model_dir / MODEL_FILE, trained.model_json)


def serving_sources() -> list[tuple[str, Path]]:
    """(path under code/, source file) for inference.py, the serving_*.py modules beside it, and the local packages
    it imports.

    Found by import, not by a fixed path: in the container they sit beside train.py in /opt/ml/code, here the
    contract package sits at the repository root.
    """
    import importlib.util

    here = Path(__file__).parent
    sources = [(SERVING_PROGRAM, here / SERVING_PROGRAM)]
    sources += [(p.name, p) for p in sorted(here.glob(SERVING_MODULES))]
    for package in SERVING_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue  # not in this source tree (yet): inference.py then does not import it either
        root = Path(next(iter(spec.submodule_search_locations)))
        sources += [
            (f"{package}/{p.relative_to(root).as_posix()}", p)
            for p in sorted(root.rglob("*.py"))
            if "__pycache__" not in p.parts
        ]
    return sources


def write_serving_code(model_dir: Path) -> None:
    """Copies the serving code into model_dir/code, so the artifact serves on its own (see SERVING_CODE_DIR)."""
    target = model_dir / SERVING_CODE_DIR
    for rel, source in serving_sources():
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        data_io.write_text_atomic(dest, source.read_bytes())


def remove_outputs(model_dir: Path) -> None:
    """No half-written model must survive a failed job."""
    for name in OUTPUT_FILES:
        (model_dir / name).unlink(missing_ok=True)
        (model_dir / f".{name}.tmp").unlink(missing_ok=True)
    shutil.rmtree(model_dir / SERVING_CODE_DIR, ignore_errors=True)


def write_failure(output_dir: Path, reason: str) -> None:
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "failure").write_text(reason.rstrip() + "\n", encoding="utf-8")
    except OSError as exc:  # the reason still reaches the log
        print(f"cannot write {output_dir / 'failure'}: {exc}", file=sys.stderr)


def print_final(evaluation_doc: dict[str, Any]) -> None:
    for name, metrics in evaluation_doc["splits"].items():
        print(format_final(name, evaluation.scalar_metrics(metrics)), flush=True)
