"""SageMaker script-mode training for the XGBoost framework container 3.2-0.

Reads label-first headerless CSV (or Parquet) channels plus schema.json, trains one booster (on one host
or across all of SM_HOSTS with XGBoost's own collective), and writes into SM_MODEL_DIR the artifacts of
docs/artifacts.md: xgboost-model (JSON), schema.json, evaluation.json, baseline.json.

Imports only what the container has: stdlib, numpy, scikit-learn, pyarrow, xgboost, and the sibling
modules of this directory (which sit flat in /opt/ml/code there, hence the ImportError fallback).

Several hosts (SM_HOSTS has more than one entry):
- rank = index of SM_CURRENT_HOST in SM_HOSTS; rank 0 runs xgboost.tracker.RabitTracker on the first host,
  port SAGECYCLE_TRACKER_PORT (default 9099); every host joins with xgboost.collective.CommunicatorContext.
- Each host trains on the train files in its own channel directory (ShardedByS3Key).
- Validation/test are meant to be FullyReplicated. The hosts compare fingerprints of what they read: if
  all agree, each uses its copy; otherwise the shards are gathered, so rank 0 always evaluates on the
  full sets. XGBoost's per-round metrics are allreduced, so early stopping stops every host at once.
- schema.json may reach only one host when the train channel is sharded; the first host that has it
  sends it to the others. The drift baseline is computed on a sample gathered from every host.
- Only rank 0 writes SM_MODEL_DIR and checkpoints. The other ranks write their copy of the model to
  SM_OUTPUT_DATA_DIR/rank-<r>/xgboost-model (so tests can check that every rank built the same trees)
  and nothing into SM_MODEL_DIR, since SageMaker collects model directories from every host.

Failures: bad input or hyperparameters write a reason whose first line names the file, row and problem to
SM_OUTPUT_DIR/failure (what SageMaker shows as FailureReason), exit 2, and leave no model files behind.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import time
import traceback
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, cast, overload

import numpy as np
import xgboost as xgb

try:
    from training_scripts import data_io, evaluation, hyperparameters
    from training_scripts.metrics_format import format_final, format_round
except ImportError:  # SageMaker container: the scripts sit flat in /opt/ml/code
    import data_io  # type: ignore[no-redef]
    import evaluation  # type: ignore[no-redef]
    import hyperparameters  # type: ignore[no-redef]
    from metrics_format import format_final, format_round  # type: ignore[no-redef]

MODEL_FILE = "xgboost-model"
OUTPUT_FILES = (MODEL_FILE, data_io.SCHEMA_FILE, "evaluation.json", "baseline.json")
# SageMaker packs exactly what the job leaves in /opt/ml/model into model.tar.gz, and the model's container runs
# SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code. So the job itself writes the serving code there: the entry point
# and every local package it imports (the shared contract). Nothing downstream adds files.
SERVING_CODE_DIR = "code"
SERVING_PROGRAM = "inference.py"
SERVING_PACKAGES = ("contract",)
EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 143
DEFAULT_TRACKER_PORT = 9099
CHECKPOINT_PREFIX, CHECKPOINT_SUFFIX, CHECKPOINTS_KEPT = "checkpoint-", ".ubj", 2
FINGERPRINT_ATTR = "sagecycle_job_fingerprint"  # a booster attribute in each checkpoint, never in the model
# Hyperparameters that change how fast or how often, not which trees: a resume may differ in these.
_NOT_SHAPING = frozenset({"nthread", "checkpoint_interval", "eval_train", "threshold_method"})
BASELINE_MAX_ROWS = 200_000
_MAXIMIZE_PREFIXES = ("auc", "aucpr", "map", "ndcg", "pre")


class Interrupted(Exception):
    """SIGTERM (spot interruption, StopTrainingJob): a checkpoint was saved, the job may resume."""


# --- hyperparameters -------------------------------------------------------------------------------
# Names, types, bounds and parsing live in hyperparameters.py, which config/settings.py checks a stage against
# at synth: a value the stage accepts is one this script accepts.
UsageError = hyperparameters.UsageError
Hyperparameter = hyperparameters.Hyperparameter
HYPERPARAMETERS = hyperparameters.HYPERPARAMETERS
ALIASES = hyperparameters.ALIASES
_SCRIPT_ONLY = hyperparameters.SCRIPT_ONLY  # not XGBoost parameters: they steer this script
_parse_value = hyperparameters.parse_value
_canonical = hyperparameters.canonical
resolve_hyperparameters = hyperparameters.resolve_hyperparameters
DEFAULT_EVAL_METRICS = {
    "binary:logistic": ["auc", "logloss"],
    "multi:softprob": ["merror", "mlogloss"],
    "reg:squarederror": ["mae", "rmse"],
}


def xgboost_params(hps: dict[str, Any], num_gpus: int) -> dict[str, Any]:
    """The params dict for xgboost: every set hyperparameter but the script's own, plus the device."""
    params = {k: v for k, v in hps.items() if v is not None and k not in _SCRIPT_ONLY}
    if params.get("objective") != "multi:softprob":
        params.pop("num_class", None)
    if params.get("objective") != "binary:logistic":
        params.pop("scale_pos_weight", None)  # XGBoost warns that it is unused
    params["device"] = device_for(num_gpus)
    return params


def threads(hps: dict[str, Any]) -> int:
    """XGBoost's thread count: the nthread hyperparameter, else the host's cores as SageMaker reports them.

    SM_NUM_CPUS is the instance's core count on SageMaker; the local runner gives each of N hosts on one machine
    its share, so local multi-host training does not oversubscribe the cores.
    """
    if hps.get("nthread"):
        return int(hps["nthread"])
    try:
        return max(1, int(os.environ["SM_NUM_CPUS"]))
    except (KeyError, ValueError):
        return -1  # every core


def device_for(num_gpus: int) -> str:
    """'cuda' when SageMaker gave the host GPUs (SM_NUM_GPUS > 0), else 'cpu'."""
    return "cuda" if num_gpus > 0 else "cpu"


# --- command line and environment ------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _env_json(name: str, default: Any) -> Any:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"environment variable {name} is not valid JSON: {exc}") from exc


def _default_checkpoint_dir(env: Any) -> str:
    """SageMaker syncs /opt/ml/checkpoints (CheckpointConfig.LocalPath) for spot restarts. Outside a training job
    each run gets a directory of its own, so one local run never meets another's checkpoints."""
    if env.get("SM_CHECKPOINT_DIR"):
        return str(env["SM_CHECKPOINT_DIR"])
    if env.get("TRAINING_JOB_NAME") or env.get("SM_TRAINING_ENV"):  # set inside every SageMaker training job
        return "/opt/ml/checkpoints"
    import tempfile

    return str(Path(tempfile.gettempdir()) / f"sagecycle-checkpoints-{os.getpid()}")


def _default_output_dir() -> str:
    if os.environ.get("SM_OUTPUT_DIR"):
        return os.environ["SM_OUTPUT_DIR"]
    if os.environ.get("SM_OUTPUT_DATA_DIR"):
        return str(Path(os.environ["SM_OUTPUT_DATA_DIR"]).parent)
    return "/opt/ml/output"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options and hyperparameters; paths default to the SM_* variables of the script-mode contract.

    `namespace.hyperparameters` holds the resolved hyperparameters (defaults < SM_HPS < flags). Keys that
    SageMaker adds itself (sagemaker_*, _tuning_objective_metric) are ignored, unknown ones are errors.
    """
    env = os.environ
    parser = _Parser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--model-dir", "--model_dir", default=env.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=env.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=env.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--test", default=env.get("SM_CHANNEL_TEST"))
    parser.add_argument("--schema", default=env.get("SM_CHANNEL_SCHEMA"), help="directory holding schema.json")
    parser.add_argument("--output-dir", default=_default_output_dir(), help="where the failure file goes")
    parser.add_argument("--output-data-dir", default=env.get("SM_OUTPUT_DATA_DIR"))
    parser.add_argument("--checkpoint-dir", default=_default_checkpoint_dir(env))
    parser.add_argument("--hosts", default=None, help='JSON list, default SM_HOSTS or ["localhost"]')
    parser.add_argument("--current-host", default=env.get("SM_CURRENT_HOST"))
    parser.add_argument("--num-gpus", type=int, default=int(env.get("SM_NUM_GPUS") or 0))
    parser.add_argument(
        "--tracker-port", type=int, default=int(env.get("SAGECYCLE_TRACKER_PORT") or DEFAULT_TRACKER_PORT)
    )
    for name in [*HYPERPARAMETERS, *ALIASES]:
        spellings = {f"--{name}", f"--{name.replace('_', '-')}"}
        parser.add_argument(*sorted(spellings), dest=f"hp_{name}", default=None, help=argparse.SUPPRESS)
    known, unknown = parser.parse_known_args(_drop_sagemaker_args(list(sys.argv[1:] if argv is None else argv)))
    if unknown:
        raise UsageError(
            f"unknown argument(s) {' '.join(unknown)}; known hyperparameters: {', '.join(HYPERPARAMETERS)}"
        )
    flags = {k[3:]: v for k, v in vars(known).items() if k.startswith("hp_") and v is not None}
    known.hyperparameters = resolve_hyperparameters(_env_json("SM_HPS", {}), flags)
    hosts = json.loads(known.hosts) if known.hosts else _env_json("SM_HOSTS", None)
    known.current_host = known.current_host or (hosts[0] if hosts else "localhost")
    known.hosts = hosts or [known.current_host]
    if not isinstance(known.hosts, list) or known.current_host not in known.hosts:
        raise UsageError(f"current host {known.current_host!r} is not in the host list {known.hosts!r}")
    known.output_data_dir = known.output_data_dir or str(Path(known.output_dir) / "data")
    return known


def _drop_sagemaker_args(argv: list[str]) -> list[str]:
    """Remove `--sagemaker_x V` / `--_tuning_objective_metric V` pairs SageMaker may pass along."""
    kept: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        if item.startswith(("--sagemaker_", "--_")):
            skip = "=" not in item
            continue
        kept.append(item)
    return kept


# --- the group of hosts ----------------------------------------------------------------------------


class Group:
    """The hosts of one job. A single host is a group of one and makes no collective calls.

    Every method is a collective call when world > 1: all ranks must call it, in the same order.
    """

    def __init__(self, rank: int = 0, world: int = 1) -> None:
        self.rank, self.world = rank, world

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, on every rank (pickled broadcasts; fine for KBs to a few MBs)."""
        if self.world == 1:
            return [obj]
        mine = (obj,)  # a tuple, since broadcast refuses None
        # Every rank receives the root's tuple, whatever it passed in.
        return [
            cast(tuple[Any], xgb.collective.broadcast(mine if r == self.rank else None, r))[0]
            for r in range(self.world)
        ]

    def any(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        return bool(xgb.collective.allreduce(np.array([int(flag)], dtype=np.int32), xgb.collective.Op.MAX)[0])

    def sum(self, values: np.ndarray) -> np.ndarray:
        if self.world == 1:
            return values
        return xgb.collective.allreduce(np.asarray(values, dtype=np.float64), xgb.collective.Op.SUM)

    def first_error(self, error: str | None) -> str | None:
        """The first rank's error, identical on all ranks, so they all stop together."""
        if not self.any(error is not None):
            return None
        errors = self.gather(error)
        rank, message = next((r, e) for r, e in enumerate(errors) if e is not None)
        return message if self.world == 1 else f"{message}\n(reported by rank {rank})"


class _Abort(Exception):
    """An error every rank agreed on; carries the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _coordinated(group: Group, step: Any, *args: Any) -> Any:
    """Run `step` on this rank; if it failed on any rank, raise the same _Abort on every rank."""
    result, error, code = None, None, EXIT_BAD_INPUT
    try:
        result = step(*args)
    except (data_io.DataError, UsageError) as exc:
        error = str(exc)
    except Exception as exc:  # a bug must not leave the other hosts waiting on a collective
        traceback.print_exc()
        error, code = f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL
    message = group.first_error(error)
    if message is not None:
        codes = group.gather(code if error is not None else 0)
        raise _Abort(message, max(codes))
    return result


# --- loading ---------------------------------------------------------------------------------------


@dataclass
class Loaded:
    schema: data_io.Schema
    objective: str
    task: str
    classes: list[str]
    hps: dict[str, Any]
    train: data_io.Split
    validation: data_io.Split
    test: data_io.Split | None
    validation_full: data_io.Split  # the whole validation set (gathered if it was sharded)
    test_full: data_io.Split | None
    train_rows: int


class _Splits(TypedDict):
    train: data_io.Split
    validation: data_io.Split
    test: data_io.Split | None


def _local_schema(args: argparse.Namespace) -> Mapping[str, Any] | None:
    path = data_io.find_schema(args.schema, args.train)
    return data_io.load_schema(path).raw if path is not None else None


def _resolve_schema(doc: Mapping[str, Any] | None, args: argparse.Namespace, hps: dict[str, Any]) -> data_io.Schema:
    if doc is None:
        if hps["objective"] is None:
            where = args.schema or args.train
            raise data_io.DataError(
                f"{where}: no schema.json in the train (or schema) channel, and no objective hyperparameter; "
                "run `sagecycle prepare` or pass objective"
            )
        if hps["objective"] == "multi:softprob" and not hps["num_class"]:
            raise UsageError("without a schema.json, multi:softprob needs the num_class hyperparameter")
        width = data_io.first_row_width(args.validation) or data_io.first_row_width(args.train) or 1
        doc = data_io.synthesize_schema(width - 1, hps["objective"], hps["num_class"])
    schema = data_io.schema_from_dict(doc)
    if hps["num_class"] and schema.task == "multiclass" and hps["num_class"] != len(schema.classes):
        raise UsageError(f"num_class={hps['num_class']} but schema.json lists {len(schema.classes)} classes")
    objective = hps["objective"] or schema.objective
    if objective != schema.objective:  # an explicit objective wins; the written schema says so
        k = (hps["num_class"] or len(schema.classes)) if objective == "multi:softprob" else 2
        classes = list(schema.classes) if len(schema.classes) == k else [str(i) for i in range(k)]
        task = data_io.OBJECTIVES[objective]
        doc = {**doc, "objective": objective, "label": {**doc["label"], "task": task, "classes": classes}}
        if task == "regression":
            doc["label"]["classes"] = []
        schema = data_io.schema_from_dict(doc)
    return schema


def _read_local(args: argparse.Namespace, schema: data_io.Schema, hps: dict[str, Any], group: Group) -> _Splits:
    if not args.train:
        raise UsageError("no train channel: set SM_CHANNEL_TRAIN or --train")
    if not args.validation:
        raise UsageError("no validation channel: early stopping and the threshold need SM_CHANNEL_VALIDATION")
    sharded = group.world > 1  # an empty shard on one host is fine as long as the whole set is not empty

    def read(name: str) -> data_io.Split:
        directory = getattr(args, name)
        split = data_io.read_channel(directory, schema.n_columns, channel=name, schema=schema, allow_empty=sharded)
        data_io.check_split(split, schema, schema.objective, hps["num_class"])
        return split

    train = read("train")
    validation = read("validation")
    return _Splits(train=train, validation=validation, test=read("test") if args.test else None)


def _fingerprint(split: data_io.Split | None) -> tuple[int, int] | None:
    if split is None:
        return None
    return split.rows, zlib.crc32(split.X.tobytes(), zlib.crc32(split.y.tobytes()))


@overload
def _whole(group: Group, split: data_io.Split) -> data_io.Split: ...
@overload
def _whole(group: Group, split: data_io.Split | None) -> data_io.Split | None: ...
def _whole(group: Group, split: data_io.Split | None) -> data_io.Split | None:
    """The full split on every rank: the local one if all ranks read the same rows, else all shards."""
    prints = group.gather(_fingerprint(split))
    if split is None or all(p == prints[0] for p in prints):
        return split
    parts = group.gather((split.y, split.X))
    y = np.concatenate([p[0] for p in parts])
    X = np.concatenate([p[1] for p in parts])
    return data_io.Split(y, X, split.files[:1] or [Path("<all hosts>")], [len(y)])


def load(args: argparse.Namespace, group: Group) -> Loaded:
    """Schema and channels, checked; every failure is raised identically on every rank."""
    hps = dict(args.hyperparameters)
    # With a sharded train channel schema.json may reach only one host: take the first rank's copy.
    docs = group.gather(_coordinated(group, _local_schema, args))
    doc = next((d for d in docs if d is not None), None)
    schema = _coordinated(group, _resolve_schema, doc, args, hps)
    task = schema.task
    if task == "multiclass":
        hps["num_class"] = hps["num_class"] or len(schema.classes)
    else:
        hps["num_class"] = None
    hps["objective"] = schema.objective
    hps["eval_metric"] = hps["eval_metric"] or list(DEFAULT_EVAL_METRICS[schema.objective])
    splits: _Splits = _coordinated(group, _read_local, args, schema, hps, group)
    validation_full = _whole(group, splits["validation"])
    test_full = _whole(group, splits["test"])
    train_rows = int(group.sum(np.array([splits["train"].rows]))[0])
    counts = group.sum(np.array([_class_counts(splits["train"].y, task, len(schema.classes))]).reshape(-1))

    def check_whole() -> None:
        if train_rows == 0:
            raise data_io.DataError(f"{args.train}: channel 'train' is empty on every host")
        for name, split in (("validation", validation_full), ("test", test_full)):
            if split is not None and split.rows == 0:
                raise data_io.DataError(f"{getattr(args, name)}: channel '{name}' is empty on every host")
        if task != "regression":
            # AUC (the binary primary metric) and the threshold are undefined on a single class.
            for name, split in (("validation", validation_full), ("test", test_full if task == "binary" else None)):
                if split is None:
                    continue
                present = np.unique(split.y)
                if len(present) < 2:
                    code = int(present[0])
                    label = schema.classes[code] if code < len(schema.classes) else str(code)
                    first = split.files[0] if split.files else getattr(args, name)
                    raise data_io.DataError(
                        f"{first}: rows 1-{split.rows}: every {name} label is class {code} ({label!r}); AUC, "
                        "early stopping and the threshold need at least two classes"
                    )
            if np.count_nonzero(counts) < 2:
                raise data_io.DataError(f"{args.train}: every train label is the same class; nothing to learn")

    _coordinated(group, check_whole)
    return Loaded(
        schema=schema,
        objective=schema.objective,
        task=task,
        classes=list(schema.classes) or ([str(i) for i in range(hps["num_class"])] if hps["num_class"] else []),
        hps=hps,
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        validation_full=validation_full,
        test_full=test_full,
        train_rows=train_rows,
    )


def _class_counts(y: np.ndarray, task: str, k: int) -> list[float]:
    if task == "regression":
        return [0.0]
    return np.bincount(y.astype(np.int64), minlength=max(k, 2))[: max(k, 2)].astype(float).tolist()


# --- checkpoints -----------------------------------------------------------------------------------


class Checkpoints:
    """`checkpoint-<rounds>.ubj` files (XGBoost's own binary JSON, never pickle), written atomically.

    SageMaker syncs the directory to S3 and restores it when a managed-spot job restarts, so the newest
    checkpoint that loads is where training resumes. Early-stopping state rides along as the booster's
    best_iteration/best_score attributes.
    """

    def __init__(self, directory: str | Path, interval: int, fingerprint: str = "") -> None:
        self.directory = Path(directory)
        self.interval = interval
        self.fingerprint = fingerprint  # of this job's data and hyperparameters; see `job_fingerprint`

    def paths(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        found = [
            p
            for p in self.directory.glob(f"{CHECKPOINT_PREFIX}*{CHECKPOINT_SUFFIX}")
            if p.stem[len(CHECKPOINT_PREFIX) :].isdigit()
        ]
        return sorted(found, key=lambda p: int(p.stem[len(CHECKPOINT_PREFIX) :]))

    def latest(self) -> bytes | None:
        """The newest checkpoint of this very job that XGBoost can load.

        A torn file is skipped for an older one. A checkpoint whose fingerprint differs (another run's data or
        hyperparameters left in a shared directory) is never resumed from: the job starts fresh and says why.
        """
        for path in reversed(self.paths()):
            try:
                raw = path.read_bytes()
                booster = xgb.Booster(model_file=bytearray(raw))
            except (OSError, xgb.core.XGBoostError) as exc:
                print(f"checkpoint {path} is unusable ({exc}); trying an older one", flush=True)
                continue
            found = booster.attr(FINGERPRINT_ATTR)
            if found != self.fingerprint:
                print(
                    f"not resuming from {path}: it belongs to another job (data or hyperparameters differ: "
                    f"fingerprint {(found or 'none')[:12]} vs {self.fingerprint[:12]}); training from scratch",
                    flush=True,
                )
                return None
            return raw
        return None

    def save(self, booster: xgb.Booster, rounds: int) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{CHECKPOINT_PREFIX}{rounds:06d}{CHECKPOINT_SUFFIX}"
        booster.set_attr(**{FINGERPRINT_ATTR: self.fingerprint})
        try:
            data_io.write_text_atomic(path, bytes(booster.save_raw("ubj")))
        finally:
            booster.set_attr(**{FINGERPRINT_ATTR: None})  # the model itself never carries it
        for old in self.paths()[:-CHECKPOINTS_KEPT]:
            old.unlink(missing_ok=True)
        return path


def file_fingerprints(files: list[Path]) -> list[tuple[str, int, str]]:
    """(name, size, sha256) of each channel file, streamed: what makes two jobs' data the same."""
    out = []
    for path in files:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        out.append((path.name, path.stat().st_size, digest.hexdigest()))
    return out


def job_fingerprint(channels: dict[str, list[list[tuple[str, int, str]]]], hps: dict[str, Any], schema: Any) -> str:
    """One hash over every host's channel files, the hyperparameters that shape the trees, and the schema."""
    shaping = {k: v for k, v in sorted(hps.items()) if k not in _NOT_SHAPING}
    doc = {"channels": channels, "hyperparameters": shaping, "schema": schema}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


# --- training --------------------------------------------------------------------------------------

_stop_requested = False


def _on_sigterm(signum: int, frame: Any) -> None:
    global _stop_requested
    _stop_requested = True


def _maximize(metric: str) -> bool:
    return metric.startswith(_MAXIMIZE_PREFIXES) and metric != "mape"


def _parse_eval(text: str) -> dict[str, float]:
    """'[3]\\tvalidation-auc:0.91\\t...' -> {'validation-auc': 0.91, ...}."""
    scores = {}
    for item in text.split("\t")[1:]:
        key, _, value = item.rpartition(":")
        scores[key] = float(value)
    return scores


def boost(
    params: dict[str, Any],
    dtrain: xgb.DMatrix,
    evals: list[tuple[xgb.DMatrix, str]],
    *,
    num_round: int,
    early_stopping_rounds: int,
    start_model: bytes | None,
    checkpoints: Checkpoints | None,
    group: Group,
) -> xgb.Booster:
    """The boosting loop: one round, evaluate, print, early stop, checkpoint; resumes from `start_model`.

    Our own loop instead of xgb.train so a resumed run continues the round numbering and the early-stopping
    state (best iteration and score ride in the checkpoint as booster attributes). Without row/column
    sampling, interrupted + resumed gives exactly the trees of an uninterrupted run; with sampling the
    random draws after the resume differ (XGBoost does not checkpoint its RNG), the procedure does not.
    Returns the booster with every round trained; its `best_iteration` attribute is the round to keep.
    """
    booster = xgb.Booster(
        params, [dtrain] + [d for d, _ in evals], model_file=bytearray(start_model) if start_model else None
    )
    booster.set_attr(**{FINGERPRINT_ATTR: None})  # a resumed checkpoint's fingerprint stays out of the model
    start = booster.num_boosted_rounds()
    if start > num_round:
        booster = booster[:num_round]
        start = num_round
    metric = f"validation-{params['eval_metric'][-1]}"
    maximize = _maximize(params["eval_metric"][-1])
    best_iteration = int(attr) if (attr := booster.attr("best_iteration")) is not None else None
    best_score = float(attr) if (attr := booster.attr("best_score")) is not None else None
    if start and group.is_root:
        print(
            f"resuming from a checkpoint after round {start - 1} (best iteration so far: {best_iteration})", flush=True
        )

    def patience_spent(rounds_done: int) -> bool:
        return (
            early_stopping_rounds > 0
            and best_iteration is not None
            and rounds_done - 1 - best_iteration >= early_stopping_rounds
        )

    rounds = start
    while rounds < num_round and not patience_spent(rounds):
        booster.update(dtrain, iteration=rounds)
        scores = _parse_eval(booster.eval_set(evals, rounds))
        if group.is_root:
            print(format_round(rounds, scores), flush=True)
        score = scores[metric]
        if best_score is None or (score > best_score if maximize else score < best_score):
            best_score, best_iteration = score, rounds
            booster.set_attr(best_score=repr(score), best_iteration=str(rounds))
        rounds += 1
        interrupted = group.any(_stop_requested)
        finished = rounds == num_round or patience_spent(rounds)
        if (
            checkpoints is not None
            and group.is_root
            and (rounds % checkpoints.interval == 0 or finished or interrupted)
        ):
            checkpoints.save(booster, rounds)
        if interrupted:
            raise Interrupted(f"stopped by SIGTERM after {rounds} rounds; a checkpoint was saved, restart to resume")
    if early_stopping_rounds == 0 or best_iteration is None:
        best_iteration = rounds - 1  # without early stopping every round is kept, as xgb.train does
    booster.set_attr(best_iteration=str(best_iteration))
    return booster


@dataclass
class Trained:
    loaded: Loaded
    model: xgb.Booster  # sliced to the best iteration
    model_json: bytes
    best_iteration: int
    rounds: int
    baseline_X: np.ndarray


def train(args: argparse.Namespace, loaded: Loaded, group: Group) -> Trained:
    """Build the DMatrices, resume or start, boost, and gather what evaluation needs. Collective."""
    hps = loaded.hps
    schema = loaded.schema
    params = xgboost_params(hps, args.num_gpus)
    params["nthread"] = threads(hps)
    matrix = {
        "feature_names": list(schema.feature_names),
        "feature_types": schema.xgb_feature_types,
        "enable_categorical": True,
        "nthread": threads(hps),
    }
    dtrain = xgb.DMatrix(loaded.train.X, label=loaded.train.y, **matrix)
    dval = xgb.DMatrix(loaded.validation.X, label=loaded.validation.y, **matrix)
    evals = [(dtrain, "train"), (dval, "validation")] if hps["eval_train"] else [(dval, "validation")]
    checkpoints = None
    if args.checkpoint_dir:
        files = {
            name: group.gather(file_fingerprints(split.files))
            for name, split in (("train", loaded.train), ("validation", loaded.validation))
        }
        fingerprint = job_fingerprint(files, hps, schema.raw)
        checkpoints = Checkpoints(args.checkpoint_dir, hps["checkpoint_interval"], fingerprint)
    if checkpoints is not None and group.is_root:
        try:
            checkpoints.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. no /opt/ml outside a container: train anyway, just without resuming
            print(f"checkpoints disabled: cannot create {checkpoints.directory} ({exc})", flush=True)
            checkpoints = None
    start = _coordinated(group, lambda: checkpoints.latest() if checkpoints and group.is_root else None)
    start = group.gather(start)[0]  # rank 0's checkpoint, so every rank resumes from the same trees
    if start is not None and xgb.Booster(model_file=bytearray(start)).num_features() != len(schema.feature_names):
        if group.is_root:
            print("ignoring the checkpoint: it has a different number of features than the data", flush=True)
        start = None
    booster = boost(
        params,
        dtrain,
        evals,
        num_round=hps["num_round"],
        early_stopping_rounds=hps["early_stopping_rounds"],
        start_model=start,
        checkpoints=checkpoints,
        group=group,
    )
    rounds = booster.num_boosted_rounds()
    best = int(cast(str, booster.attr("best_iteration")))  # boost() always sets it
    model = booster[: best + 1] if best + 1 < rounds else booster
    model_json = bytes(model.save_raw("json"))
    digests = group.gather(hashlib.sha256(model_json).hexdigest())
    if group.is_root and len(set(digests)) > 1:
        print(f"WARNING: the ranks built different models: {digests}", file=sys.stderr, flush=True)
    # A bounded sample of every host's train rows for the drift baseline.
    take = min(loaded.train.rows, BASELINE_MAX_ROWS // group.world)
    rng = np.random.default_rng(hps["seed"] + group.rank)
    rows = np.sort(rng.choice(loaded.train.rows, size=take, replace=False)) if take < loaded.train.rows else slice(None)
    samples = group.gather(loaded.train.X[rows])
    baseline_X = samples[0] if len(samples) == 1 else np.concatenate(samples)
    return Trained(loaded, model, model_json, best, rounds, baseline_X)


# --- evaluation and outputs ------------------------------------------------------------------------


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
    """(path under code/, source file) for inference.py and the local packages it imports.

    Found by import, not by a fixed path: in the container they sit beside train.py in /opt/ml/code, here the
    contract package sits at the repository root.
    """
    import importlib.util

    sources = [(SERVING_PROGRAM, Path(__file__).with_name(SERVING_PROGRAM))]
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


def _print_final(evaluation_doc: dict[str, Any]) -> None:
    for name, metrics in evaluation_doc["splits"].items():
        print(format_final(name, evaluation.scalar_metrics(metrics)), flush=True)


# --- main ------------------------------------------------------------------------------------------


def _run_group(args: argparse.Namespace, group: Group) -> Trained:
    loaded = load(args, group)
    if group.is_root:
        print(
            f"training {loaded.objective} on {loaded.train_rows} rows ({group.world} host(s)), validation "
            f"{loaded.validation_full.rows} rows, xgboost {xgb.__version__}, device {device_for(args.num_gpus)}",
            flush=True,
        )
    return train(args, loaded, group)


def _run_distributed(args: argparse.Namespace, rank: int) -> Trained:
    hosts = args.hosts
    master = socket.gethostbyname(hosts[0])
    timeout = int(os.environ.get("SAGECYCLE_COLLECTIVE_TIMEOUT") or 1800)
    tracker = None
    if rank == 0:
        tracker = xgb.tracker.RabitTracker(host_ip=master, n_workers=len(hosts), port=args.tracker_port, sortby="task")
        tracker.start()
    else:
        _wait_for_tracker(master, args.tracker_port, timeout)
    # Zero-padded task ids: the tracker sorts them as strings, and rank must equal the host's index.
    comm = {
        "dmlc_tracker_uri": master,
        "dmlc_tracker_port": args.tracker_port,
        "dmlc_task_id": f"{rank:05d}",
        "dmlc_retry": 30,
        "dmlc_timeout": timeout,
    }
    with xgb.collective.CommunicatorContext(**comm):
        group = Group(xgb.collective.get_rank(), xgb.collective.get_world_size())
        if group.rank != rank:
            raise RuntimeError(f"the tracker gave rank {group.rank}, expected {rank} (index in SM_HOSTS)")
        trained = _run_group(args, group)
    if tracker is not None:
        tracker.wait_for(timeout)
    return trained


def _wait_for_tracker(host: str, port: int, timeout: float) -> None:
    """Poll until the tracker listens. XGBoost's own connect retries back off exponentially (1, 2, 4 s...),
    which costs seconds whenever a worker starts before rank 0; the tracker logs one harmless warning per
    probe ("Failed to initialize worker proxy") and keeps accepting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError:
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate, write the model directory; on failure write the failure file. Returns the exit code."""
    global _stop_requested
    _stop_requested = False
    # Known before parsing, so that even a failure to parse removes an earlier run's model from the right place.
    model_dir = Path(_early_option(argv, "model-dir") or os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    output_dir = Path(_early_option(argv, "output-dir") or _default_output_dir())
    # SIGTERM (spot interruption, StopTrainingJob) ends the round, saves a checkpoint and exits 143.
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if _in_main_thread() else None
    try:
        args = parse_args(argv)
        model_dir, output_dir = Path(args.model_dir), Path(args.output_dir)
        remove_outputs(model_dir)
        rank = args.hosts.index(args.current_host)
        started = time.perf_counter()
        trained = _run_group(args, Group()) if len(args.hosts) == 1 else _run_distributed(args, rank)
        if rank != 0:
            copy = Path(args.output_data_dir) / f"rank-{rank}" / MODEL_FILE
            copy.parent.mkdir(parents=True, exist_ok=True)
            data_io.write_text_atomic(copy, trained.model_json)
            return 0
        evaluation_doc, baseline_doc = evaluate(trained)
        _print_final(evaluation_doc)
        write_outputs(model_dir, trained, evaluation_doc, baseline_doc)
        print(
            f"wrote {model_dir}: best iteration {trained.best_iteration} of {trained.rounds} rounds, primary "
            f"{evaluation_doc['primary_metric']['split']} {evaluation_doc['primary_metric']['name']}="
            f"{evaluation_doc['primary_metric']['value']}, {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        return 0
    except UsageError as exc:
        return _fail(model_dir, output_dir, f"bad hyperparameters or options: {exc}", EXIT_BAD_INPUT)
    except data_io.DataError as exc:
        return _fail(model_dir, output_dir, str(exc), EXIT_BAD_INPUT)
    except _Abort as exc:
        return _fail(model_dir, output_dir, str(exc), exc.code)
    except Interrupted as exc:
        return _fail(model_dir, output_dir, str(exc), EXIT_INTERRUPTED)
    except xgb.core.XGBoostError as exc:
        traceback.print_exc()
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown"
        return _fail(model_dir, output_dir, f"xgboost error: {first}", EXIT_INTERNAL)
    except Exception as exc:
        traceback.print_exc()
        return _fail(model_dir, output_dir, f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _early_option(argv: list[str] | None, name: str) -> str | None:
    """The value of --name / --name_with_underscores in argv (or sys.argv), before argparse runs."""
    args = sys.argv[1:] if argv is None else argv
    spellings = {f"--{name}", f"--{name.replace('-', '_')}"}
    for i, arg in enumerate(args):
        key, sep, value = arg.partition("=")
        if key in spellings:
            if sep:
                return value
            return args[i + 1] if i + 1 < len(args) else None
    return None


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _fail(model_dir: Path, output_dir: Path, reason: str, code: int) -> int:
    remove_outputs(model_dir)
    write_failure(output_dir, reason)
    print(f"training failed: {reason}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
