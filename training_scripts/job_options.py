"""What a training job was asked to do: its command line, the SM_* environment of the script-mode contract, and
the params dict the resolved hyperparameters become for XGBoost.

Names, types, bounds and parsing of the hyperparameters live in hyperparameters.py, which config/settings.py checks
a stage against at synth: a value the stage accepts is one this script accepts. Flat in /opt/ml/code inside the
SageMaker container, hence the ImportError fallback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

# Imported as training_scripts.* (tests, the CLI), or run as the entry point from /opt/ml/code, where the
# scripts sit flat: there the flat copies beside it are the ones to use, even where the repository's package
# is importable too (the local runner), so a job runs exactly the scripts of its source tarball.
if __package__:
    from training_scripts import hyperparameters
else:
    import hyperparameters  # type: ignore[no-redef]

EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 143
DEFAULT_TRACKER_PORT = 9099
DESCRIPTION = "SageMaker script-mode training for the XGBoost framework container 3.2-0."
UsageError = hyperparameters.UsageError
HYPERPARAMETERS = hyperparameters.HYPERPARAMETERS
ALIASES = hyperparameters.ALIASES
resolve_hyperparameters = hyperparameters.resolve_hyperparameters
_SCRIPT_ONLY = hyperparameters.SCRIPT_ONLY  # not XGBoost parameters: they steer this script
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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, code="bad-argument")


def _env_json(name: str, default: Any) -> Any:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"environment variable {name} is not valid JSON: {exc}", code="invalid-json") from exc


def default_checkpoint_dir(env: Any) -> str:
    """SageMaker syncs /opt/ml/checkpoints (CheckpointConfig.LocalPath) for spot restarts. Outside a training job
    each run gets a directory of its own, so one local run never meets another's checkpoints."""
    if env.get("SM_CHECKPOINT_DIR"):
        return str(env["SM_CHECKPOINT_DIR"])
    if env.get("TRAINING_JOB_NAME") or env.get("SM_TRAINING_ENV"):  # set inside every SageMaker training job
        return "/opt/ml/checkpoints"
    import tempfile

    return str(Path(tempfile.gettempdir()) / f"sagecycle-checkpoints-{os.getpid()}")


def default_output_dir() -> str:
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
    parser = _Parser(description=DESCRIPTION, allow_abbrev=False)
    parser.add_argument("--model-dir", "--model_dir", default=env.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=env.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=env.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--test", default=env.get("SM_CHANNEL_TEST"))
    parser.add_argument("--schema", default=env.get("SM_CHANNEL_SCHEMA"), help="directory holding schema.json")
    parser.add_argument("--output-dir", default=default_output_dir(), help="where the failure file goes")
    parser.add_argument("--output-data-dir", default=env.get("SM_OUTPUT_DATA_DIR"))
    parser.add_argument("--checkpoint-dir", default=default_checkpoint_dir(env))
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
            f"unknown argument(s) {' '.join(unknown)}; known hyperparameters: {', '.join(HYPERPARAMETERS)}",
            code="unknown-argument",
        )
    flags = {k[3:]: v for k, v in vars(known).items() if k.startswith("hp_") and v is not None}
    known.hyperparameters = resolve_hyperparameters(_env_json("SM_HPS", {}), flags)
    hosts = json.loads(known.hosts) if known.hosts else _env_json("SM_HOSTS", None)
    known.current_host = known.current_host or (hosts[0] if hosts else "localhost")
    known.hosts = hosts or [known.current_host]
    if not isinstance(known.hosts, list) or known.current_host not in known.hosts:
        raise UsageError(
            f"current host {known.current_host!r} is not in the host list {known.hosts!r}", code="unknown-host"
        )
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


def early_option(argv: list[str] | None, name: str) -> str | None:
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
