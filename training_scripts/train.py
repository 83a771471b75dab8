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

Where things live: the group of hosts and XGBoost's collective in host_group.py; reading and checking the
channels in channels.py; checkpoints in checkpoints.py; the command line and environment in job_options.py (the
hyperparameters' table in hyperparameters.py); evaluation.json, baseline.json and the model directory in
model_outputs.py. This module is the entry point and the boosting loop.

Failures: bad input or hyperparameters write a reason whose first line names the file, row and problem to
SM_OUTPUT_DIR/failure (what SageMaker shows as FailureReason), exit 2, and leave no model files behind.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, cast

import numpy as np
import xgboost as xgb

# Imported as training_scripts.* (tests, the CLI), or run as the entry point from /opt/ml/code, where the
# scripts sit flat: there the flat copies beside it are the ones to use, even where the repository's package
# is importable too (the local runner), so a job runs exactly the scripts of its source tarball.
if __package__:
    from training_scripts import (
        channels,
        checkpoints,
        data_io,
        host_group,
        hyperparameters,
        job_options,
        metrics_format,
        model_outputs,
    )
else:
    import channels  # type: ignore[no-redef]
    import checkpoints  # type: ignore[no-redef]
    import data_io  # type: ignore[no-redef]
    import host_group  # type: ignore[no-redef]
    import hyperparameters  # type: ignore[no-redef]
    import job_options  # type: ignore[no-redef]
    import metrics_format  # type: ignore[no-redef]
    import model_outputs  # type: ignore[no-redef]

Loaded = channels.Loaded
Group = host_group.Group
Trained = model_outputs.Trained
Checkpoints = checkpoints.Checkpoints
load, FINGERPRINT_ATTR = channels.load, checkpoints.FINGERPRINT_ATTR
file_fingerprints, job_fingerprint = checkpoints.file_fingerprints, checkpoints.job_fingerprint
Abort, coordinated, run_distributed = host_group.Abort, host_group.coordinated, host_group.run_distributed
EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_INTERRUPTED = (
    job_options.EXIT_INTERNAL,
    job_options.EXIT_BAD_INPUT,
    job_options.EXIT_INTERRUPTED,
)
UsageError, DEFAULT_EVAL_METRICS = job_options.UsageError, job_options.DEFAULT_EVAL_METRICS
parse_args, early_option = job_options.parse_args, job_options.early_option
default_output_dir, default_checkpoint_dir = job_options.default_output_dir, job_options.default_checkpoint_dir
xgboost_params, threads, device_for = job_options.xgboost_params, job_options.threads, job_options.device_for
format_round = metrics_format.format_round
MODEL_FILE, SERVING_CODE_DIR = model_outputs.MODEL_FILE, model_outputs.SERVING_CODE_DIR
evaluate, print_final, write_outputs = model_outputs.evaluate, model_outputs.print_final, model_outputs.write_outputs
remove_outputs, write_failure = model_outputs.remove_outputs, model_outputs.write_failure
write_serving_code = model_outputs.write_serving_code

# Names other modules and tests read from train (the hyperparameters' table lives in hyperparameters.py).
HYPERPARAMETERS = hyperparameters.HYPERPARAMETERS
ALIASES = hyperparameters.ALIASES
_SCRIPT_ONLY = hyperparameters.SCRIPT_ONLY
_parse_value = hyperparameters.parse_value
_canonical = hyperparameters.canonical
resolve_hyperparameters = hyperparameters.resolve_hyperparameters
BASELINE_MAX_ROWS = 200_000
_MAXIMIZE_PREFIXES = ("auc", "aucpr", "map", "ndcg", "pre")


class Interrupted(Exception):
    """SIGTERM (spot interruption, StopTrainingJob): a checkpoint was saved, the job may resume."""


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


def quantile_train_matrix(params: dict[str, Any]) -> bool:
    """Whether the train rows are built as a QuantileDMatrix (only their bin indices) rather than a DMatrix.

    Only for hist (and auto, which is hist) on the CPU: there its cuts are the ones a DMatrix gets (max_bin is the
    booster's), so the trees are byte-identical, and the raw values are never copied into XGBoost: training adds
    about 110 MB less at 1M rows, for about a CPU second more to build it (bench/quantile_dmatrix.py). approx
    re-sketches every round and cannot use one; on a GPU its cuts would come from the CPU's sketch, not the
    device's: not checked to be the same.
    """
    return params.get("tree_method", "hist") in ("hist", "auto") and params.get("device", "cpu") == "cpu"


def training_matrices(loaded: Loaded, params: dict[str, Any]) -> tuple[xgb.DMatrix, xgb.DMatrix]:
    """The train and validation matrices boosting reads. Collective: every rank builds both, in this order.

    Validation stays a DMatrix: it is a tenth of the rows, and XGBoost predicts each round's tree on a
    QuantileDMatrix at about half the speed (1.7x the evaluation time at 100k validation rows).
    """
    schema = loaded.schema
    matrix: dict[str, Any] = {
        "feature_names": list(schema.feature_names),
        "feature_types": schema.xgb_feature_types,
        "enable_categorical": True,
        "nthread": params["nthread"],
    }
    if quantile_train_matrix(params):  # max_bin must equal the booster's, or XGBoost refuses the matrix
        dtrain: xgb.DMatrix = xgb.QuantileDMatrix(
            loaded.train.X, label=loaded.train.y, max_bin=params.get("max_bin"), **matrix
        )
    else:
        dtrain = xgb.DMatrix(loaded.train.X, label=loaded.train.y, **matrix)
    return dtrain, xgb.DMatrix(loaded.validation.X, label=loaded.validation.y, **matrix)


def train(args: argparse.Namespace, loaded: Loaded, group: Group) -> Trained:
    """Build the matrices, resume or start, boost, and gather what evaluation needs. Collective."""
    hps = loaded.hps
    schema = loaded.schema
    params = xgboost_params(hps, args.num_gpus)
    params["nthread"] = threads(hps)
    dtrain, dval = training_matrices(loaded, params)
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
    start = coordinated(group, lambda: checkpoints.latest() if checkpoints and group.is_root else None)
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


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate, write the model directory; on failure write the failure file. Returns the exit code."""
    global _stop_requested
    _stop_requested = False
    # Known before parsing, so that even a failure to parse removes an earlier run's model from the right place.
    model_dir = Path(early_option(argv, "model-dir") or os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    output_dir = Path(early_option(argv, "output-dir") or default_output_dir())
    # SIGTERM (spot interruption, StopTrainingJob) ends the round, saves a checkpoint and exits 143.
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if _in_main_thread() else None
    try:
        args = parse_args(argv)
        model_dir, output_dir = Path(args.model_dir), Path(args.output_dir)
        remove_outputs(model_dir)
        rank = args.hosts.index(args.current_host)
        started = time.perf_counter()
        trained = _run_group(args, Group()) if len(args.hosts) == 1 else run_distributed(args, rank, _run_group)
        if rank != 0:
            copy = Path(args.output_data_dir) / f"rank-{rank}" / MODEL_FILE
            copy.parent.mkdir(parents=True, exist_ok=True)
            data_io.write_text_atomic(copy, trained.model_json)
            return 0
        evaluation_doc, baseline_doc = evaluate(trained)
        print_final(evaluation_doc)
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
    except Abort as exc:
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
