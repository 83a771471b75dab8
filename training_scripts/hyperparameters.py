"""The hyperparameters train.py accepts: names, types, bounds, aliases and the one parser of their values.

Stdlib only. train.py imports it (flat as `hyperparameters` inside the SageMaker container, where the scripts
sit in /opt/ml/code), and the CDK app's configuration checks the stage's hyperparameters and tuning ranges
against the same table at synth, so a value train.py would refuse never reaches a training job.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final, Literal

# The objectives the data contract knows (data_io.OBJECTIVES maps each to its task) and the decision-threshold
# methods of evaluation.py; both modules need numpy, so the names live here for stdlib-only readers.
OBJECTIVES: Final[tuple[str, ...]] = ("binary:logistic", "multi:softprob", "reg:squarederror")
THRESHOLD_METHODS: Final[tuple[str, ...]] = ("max_accuracy", "max_f1")


# What kind of mistake a UsageError reports, for code and tests that branch on it (the text is for people).
UsageErrorCode = Literal[
    "unknown-hyperparameter",  # a key the table does not know (nor its aliases)
    "invalid-value",  # a value that does not parse as its hyperparameter's kind
    "not-a-choice",  # a value outside its hyperparameter's choices
    "out-of-bounds",  # a number outside its hyperparameter's bounds
    "bad-argument",  # a command-line option argparse refuses
    "unknown-argument",  # a command-line argument that is no option nor hyperparameter
    "invalid-json",  # an SM_* variable that must hold JSON does not parse
    "unknown-host",  # the current host is not in the host list
    "missing-channel",  # the train or validation channel is not given
    "num-class",  # num_class is missing for multi:softprob, or disagrees with schema.json's classes
]


class UsageError(ValueError):
    """A hyperparameter or option the script cannot use.

    `code` (a UsageErrorCode: unknown-hyperparameter, invalid-value, not-a-choice, out-of-bounds, bad-argument,
    unknown-argument, invalid-json, unknown-host, missing-channel, num-class) says what kind of mistake; every
    raise site sets it. `hyperparameter` names the hyperparameter at fault as given ("" when none is).
    """

    def __init__(self, message: str, *, code: UsageErrorCode, hyperparameter: str = "") -> None:
        super().__init__(message)
        self.code: UsageErrorCode = code
        self.hyperparameter = hyperparameter


@dataclass(frozen=True)
class Hyperparameter:
    kind: str  # int | float | str | list | bool
    default: Any
    low: float | None = None  # inclusive lower bound
    high: float | None = None  # inclusive upper bound
    low_open: bool = False  # the lower bound itself is not allowed
    choices: tuple[str, ...] | None = None
    help: str = ""

    def allowed(self) -> str:
        """What a value may be, in words (for error messages)."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        if self.kind not in ("int", "float"):
            return {"bool": "true or false", "list": "a comma-separated list"}.get(self.kind, "a string")
        what = "an integer" if self.kind == "int" else "a finite number"
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            bounds.append(f"<= {self.high:g}")
        return f"{what} {' and '.join(bounds)}" if bounds else what


# Names of SageMaker's built-in XGBoost algorithm. None = decided later (from the schema) or XGBoost's own.
# The defaults were chosen by 3-fold cross-validation on the training rows of Adult's seed split, never its test
# rows (bench/defaults.py records the procedure and its results): a small eta with many rounds and a patience
# of 5/eta rounds, shallow trees, no row sampling, half the columns per tree. `make bench` measures them on 10
# seeded splits (bench/train_adult.py).
HYPERPARAMETERS: Final[dict[str, Hyperparameter]] = {
    "num_round": Hyperparameter("int", 5000, 1, help="boosting rounds (an upper bound with early stopping)"),
    "max_depth": Hyperparameter("int", 4, 0),
    "eta": Hyperparameter("float", 0.02, 0, 1, low_open=True),
    "gamma": Hyperparameter("float", 0.0, 0),
    "min_child_weight": Hyperparameter("float", 1.0, 0),
    "subsample": Hyperparameter("float", 1.0, 0, 1, low_open=True),
    "colsample_bytree": Hyperparameter("float", 0.5, 0, 1, low_open=True),
    "colsample_bylevel": Hyperparameter("float", 1.0, 0, 1, low_open=True),
    "colsample_bynode": Hyperparameter("float", 1.0, 0, 1, low_open=True),
    "lambda": Hyperparameter("float", 1.0, 0),
    "alpha": Hyperparameter("float", 0.0, 0),
    "max_bin": Hyperparameter("int", 256, 2),
    "max_delta_step": Hyperparameter("float", 0.0, 0),
    "max_leaves": Hyperparameter("int", 0, 0),
    "grow_policy": Hyperparameter("str", "depthwise", choices=("depthwise", "lossguide")),
    "tree_method": Hyperparameter("str", "hist", choices=("hist", "approx", "auto")),
    "objective": Hyperparameter("str", None, choices=OBJECTIVES),
    "eval_metric": Hyperparameter("list", None, help="comma list; early stopping watches the last one"),
    "num_class": Hyperparameter("int", None, 2),
    "early_stopping_rounds": Hyperparameter("int", 250, 0, help="0 disables early stopping"),
    "scale_pos_weight": Hyperparameter("float", None, 0, low_open=True, help="binary only"),
    "max_cat_to_onehot": Hyperparameter("int", None, 1),
    "seed": Hyperparameter("int", 0),
    "nthread": Hyperparameter("int", None, 1, help="default: every core"),
    "threshold_method": Hyperparameter("str", "max_accuracy", choices=THRESHOLD_METHODS),
    "checkpoint_interval": Hyperparameter("int", 50, 1, help="rounds between checkpoints"),
    "eval_train": Hyperparameter("bool", False, help="also evaluate (and print) train metrics each round"),
}
ALIASES: Final[dict[str, str]] = {
    "reg_lambda": "lambda",
    "reg_alpha": "alpha",
    "learning_rate": "eta",
    "min_split_loss": "gamma",
}
# Not XGBoost parameters: they steer this script.
SCRIPT_ONLY: Final[frozenset[str]] = frozenset(
    {"num_round", "early_stopping_rounds", "threshold_method", "checkpoint_interval", "eval_train"}
)


def parse_value(name: str, raw: Any) -> Any:
    """A hyperparameter value from its string (SageMaker sends strings) or JSON form, range-checked."""
    spec = HYPERPARAMETERS[name]
    text = str(raw).strip()
    if raw is None or text.lower() in ("", "none", "null"):
        return None
    try:
        if spec.kind == "int":
            number = float(text)
            if not number.is_integer():
                raise ValueError
            value: Any = int(number)
        elif spec.kind == "float":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
        elif spec.kind == "bool":
            if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            value = text.lower() in ("1", "true", "yes")
        elif spec.kind == "list":
            items = raw if isinstance(raw, list) else json.loads(text) if text.startswith("[") else text.split(",")
            value = [str(item).strip() for item in items if str(item).strip()]
        else:
            value = text
    except (ValueError, json.JSONDecodeError):
        raise UsageError(
            f"hyperparameter {name}={raw!r} is not a valid {spec.kind}", code="invalid-value", hyperparameter=name
        ) from None
    if spec.choices is not None and value not in spec.choices:
        raise UsageError(
            f"hyperparameter {name}={value!r} must be one of {', '.join(spec.choices)}",
            code="not-a-choice",
            hyperparameter=name,
        )
    if spec.kind in ("int", "float"):
        if spec.low is not None and (value < spec.low or (spec.low_open and value == spec.low)):
            sign = ">" if spec.low_open else ">="
            raise UsageError(
                f"hyperparameter {name}={value} must be {sign} {spec.low:g}", code="out-of-bounds", hyperparameter=name
            )
        if spec.high is not None and value > spec.high:
            raise UsageError(
                f"hyperparameter {name}={value} must be <= {spec.high:g}", code="out-of-bounds", hyperparameter=name
            )
    return value


def canonical(name: str) -> str | None:
    """The table name for a user-given key (aliases and dashes accepted); None for SageMaker's own keys."""
    key = name.strip().lstrip("-").replace("-", "_")
    if key.startswith(("sagemaker_", "_")):
        return None  # e.g. sagemaker_program, _tuning_objective_metric: set by SageMaker, not for us
    key = ALIASES.get(key, key)
    if key not in HYPERPARAMETERS:
        raise UsageError(
            f"unknown hyperparameter {name!r}; known: {', '.join(sorted(HYPERPARAMETERS))}",
            code="unknown-hyperparameter",
            hyperparameter=name,
        )
    return key


def resolve_hyperparameters(sm_hps: dict[str, Any] | None, flags: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults, then SM_HPS (JSON), then command-line flags; every value parsed and range-checked."""
    resolved = {name: spec.default for name, spec in HYPERPARAMETERS.items()}
    for source in (sm_hps or {}, flags or {}):
        for key, raw in source.items():
            name = canonical(key)
            if name is not None:
                resolved[name] = parse_value(name, raw)
    if resolved["num_round"] is None:
        resolved["num_round"] = HYPERPARAMETERS["num_round"].default
    return resolved
