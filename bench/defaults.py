"""How train.py's defaults were chosen: cross-validation on the seed split's training rows, never on test rows.

    python -m bench.defaults               # the whole search, ~20 minutes on 2 busy cores; prints the ranking
    python -m bench.defaults --draws 4     # a smaller search (the anchors and the first 4 draws)
    python -m bench.defaults --tuning      # the tuning ranges against the defaults, ~7 minutes
    python -m bench.defaults --thresholds  # what choosing the cut-off on validation costs, ~2 minutes

The procedure (reproducible: every split, fold and draw is seeded):
1. Rows: `prepare()`'s split with its own seed (42): the train and validation channels, 26,048 rows. The
   test channel (6,513 rows) is never read.
2. Folds: 3 stratified folds (seed FOLD_SEEDS[0]). Each fold runs what train.py runs on a real split: its
   two thirds are split 90/10 (stratified, as prepare splits validation off) into train and validation;
   XGBoost boosts with early stopping on the validation log loss; the cut-off is chosen on validation
   (evaluation.choose_threshold, max_accuracy); the held-out third is scored: log loss, AUC and accuracy
   at that cut-off. The parameters go through train.py's own resolve_hyperparameters and xgboost_params.
3. Candidates: two anchors (the former defaults, and XGBoost's own defaults) and DRAWS draws from SPACE
   (seeded). Early-stopping patience scales with the learning rate (PATIENCE / eta rounds), so a smaller
   eta is not stopped by noise it has had no time to climb out of.
4. Rank by mean CV log loss (smooth; accuracy at a cut-off chosen on 1,700 rows is too noisy to rank on).
   Then refine: from the best draw, change one hyperparameter at a time to each other value of REFINE
   (SPACE plus a step past its edges), and score those the same way.
5. Confirm: the best CONFIRM candidates are scored again on 3 new folds (seed FOLD_SEEDS[1]); the lowest
   mean log loss over all 6 folds wins and becomes HYPERPARAMETERS' defaults (CHOSEN below; a test holds
   the two equal).

Tuning (`--tuning`): what a tuning job over the stage's default ranges (config/settings.py) finds, against
the defaults, on the split's validation rows by the tuner's own metric (validation AUC, contract/metrics.py).
TUNING_JOBS random draws stand in for SageMaker's Bayesian search (which should do no worse); the test rows
are scored for the record only. Recorded: the former ranges (eta 0.01..0.3, max_depth 3..10, min_child_weight
1..10, subsample 0.5..1, colsample_bytree 0.5..1, gamma 0..5) beat the defaults with 0 of 20 draws (best
validation AUC 0.9211 vs 0.9230); the present ones with 3 of 20 (best 0.9236; its test log loss 0.2715 vs the
defaults' 0.2722): a margin within the noise of 2,605 validation rows.

Cut-offs (`--thresholds`, training rows only): on the 6 folds the defaults reach accuracy 0.8715 at the best
grid cut-off on validation, 0.8720 at 0.5 and 0.8731 at each held-out third's own best cut-off (the former
defaults: 0.8700 / 0.8712 / 0.8718). Taking the best validation cut-off on 2,605 rows cost about as much accuracy
as the new defaults gained, so train.py's max_accuracy now keeps 0.5 unless a sign test on the rows where the two
disagree says the validation cut-off is better at level 0.01 (evaluation.THRESHOLD_EVIDENCE): 0.8720 on the 6
folds (0.8712 for the former defaults). At level 0.05 the rule moved the cut-off on one fold, and lost there.

RESULTS records what the run printed. Splits other than seed 42 share rows with these 26,048 (their test
rows were out-of-fold rows here), so only seed 42's test rows are wholly unseen by the choice; the choice is
among a few dozen candidates by a smooth score, which leaves little room to fit those rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SPLIT_SEED = 42  # prepare()'s default: the seed tutorial's split
FOLD_SEEDS = (0, 1)
FOLDS = 3
DRAWS = 24
DRAW_SEED = 12
CONFIRM = 4
PATIENCE = 5.0  # early_stopping_rounds = PATIENCE / eta
MAX_ROUNDS = 5000
NTHREAD = 2

# The former defaults (before issue 12) and XGBoost's own (eta 0.3, depth 6, no sampling), both as train.py
# hyperparameters. Everything not named takes HYPERPARAMETERS' default of the time, which equals XGBoost's
# except for the names listed.
ANCHORS: dict[str, dict[str, str]] = {
    "former defaults": {
        "eta": "0.1",
        "max_depth": "6",
        "min_child_weight": "1",
        "subsample": "0.8",
        "colsample_bytree": "0.8",
        "lambda": "1",
        "num_round": "1000",
        "early_stopping_rounds": "50",
    },
    "xgboost defaults": {
        "eta": "0.3",
        "max_depth": "6",
        "min_child_weight": "1",
        "subsample": "1",
        "colsample_bytree": "1",
        "lambda": "1",
        "num_round": "1000",
        "early_stopping_rounds": "50",
    },
}
SPACE: dict[str, tuple[str, ...]] = {
    "eta": ("0.02", "0.03", "0.05"),
    "max_depth": ("4", "5", "6", "8"),
    "min_child_weight": ("1", "3", "5", "10"),
    "subsample": ("0.7", "0.8", "1"),
    "colsample_bytree": ("0.5", "0.7", "0.8", "1"),
    "lambda": ("1", "3", "10"),
    "max_cat_to_onehot": ("none", "1", "64"),
}
# The refinement's values: SPACE's, plus one step past the edges the random stage may end on. eta stays >= 0.02:
# smaller ones take thousands of rounds, too slow for what the defaults are for (a first model in minutes).
REFINE: dict[str, tuple[str, ...]] = {
    **SPACE,
    "max_depth": ("3", *SPACE["max_depth"]),
    "min_child_weight": ("0.5", *SPACE["min_child_weight"]),
    "lambda": ("0.3", *SPACE["lambda"]),
}
# What the search chose (RESULTS' first row); training_scripts/hyperparameters.py carries these as its defaults
# (a test holds them equal). max_cat_to_onehot is left at XGBoost's own: "1" and "none" grow the same trees on
# Adult (the one categorical column with fewer than 4 values, sex, has 2), so the search cannot tell them apart.
CHOSEN: dict[str, Any] = {
    "eta": 0.02,
    "max_depth": 4,
    "min_child_weight": 1.0,
    "subsample": 1.0,
    "colsample_bytree": 0.5,
    "lambda": 1.0,
    "max_cat_to_onehot": None,
    "num_round": MAX_ROUNDS,
    "early_stopping_rounds": 250,  # PATIENCE / eta
}
# The full run (`python -m bench.defaults`, 2 shared cores, about 20 minutes), best first: (candidate, folds
# scored, mean CV log loss, AUC, accuracy at the validation cut-off, median trees). The 4 confirmed ones come
# first, on 6 folds; "draw 04 x=v" is draw 04 with one hyperparameter changed (the refinement).
RESULTS: list[tuple[str, int, float, float, float, int]] = [
    ("draw 04 colsample_bytree=0.5", 6, 0.2797, 0.9277, 0.8715, 1360),
    ("draw 04 max_cat_to_onehot=64", 6, 0.2798, 0.9276, 0.8715, 1765),
    ("draw 04 lambda=0.3", 6, 0.2798, 0.9275, 0.8708, 1188),
    ("draw 04 max_depth=6", 6, 0.2805, 0.9273, 0.8714, 674),
    ("draw 04 eta=0.03", 3, 0.2802, 0.9272, 0.8712, 795),
    ("draw 04 eta=0.05", 3, 0.2804, 0.9271, 0.8723, 523),
    ("draw 04 max_depth=5", 3, 0.2804, 0.9272, 0.8722, 801),
    ("draw 04", 3, 0.2805, 0.9272, 0.8715, 1142),
    ("draw 04 max_cat_to_onehot=none", 3, 0.2805, 0.9272, 0.8715, 1142),
    ("draw 04 colsample_bytree=0.8", 3, 0.2806, 0.9271, 0.8706, 1032),
    ("draw 06", 3, 0.2807, 0.9269, 0.8679, 1674),
    ("draw 04 min_child_weight=0.5", 3, 0.2808, 0.9271, 0.8715, 1064),
    ("draw 04 min_child_weight=3", 3, 0.2808, 0.9269, 0.8697, 1135),
    ("draw 04 max_depth=3", 3, 0.2809, 0.9269, 0.8708, 1895),
    ("draw 04 lambda=3", 3, 0.2810, 0.9269, 0.8697, 1223),
    ("draw 04 colsample_bytree=1", 3, 0.2814, 0.9266, 0.8707, 1249),
    ("draw 08", 3, 0.2815, 0.9264, 0.8704, 572),
    ("draw 16", 3, 0.2815, 0.9266, 0.8717, 938),
    ("draw 04 max_depth=8", 3, 0.2815, 0.9266, 0.8689, 541),
    ("draw 11", 3, 0.2818, 0.9263, 0.8693, 513),
    ("draw 04 subsample=0.8", 3, 0.2822, 0.9262, 0.8715, 917),
    ("draw 18", 3, 0.2823, 0.9260, 0.8693, 1071),
    ("draw 03", 3, 0.2824, 0.9262, 0.8666, 1231),
    ("draw 04 lambda=10", 3, 0.2824, 0.9261, 0.8699, 1795),
    ("draw 04 min_child_weight=10", 3, 0.2826, 0.9259, 0.8692, 2079),
    ("draw 04 subsample=0.7", 3, 0.2834, 0.9255, 0.8699, 863),
    ("former defaults", 3, 0.2836, 0.9254, 0.8694, 115),
    ("draw 20", 3, 0.2843, 0.9251, 0.8679, 854),
    ("draw 01", 3, 0.2849, 0.9247, 0.8694, 803),
    ("draw 10", 3, 0.2855, 0.9244, 0.8692, 312),
    ("draw 17", 3, 0.2856, 0.9245, 0.8693, 580),
    ("draw 19", 3, 0.2856, 0.9243, 0.8706, 242),
    ("draw 00", 3, 0.2859, 0.9241, 0.8672, 308),
    ("draw 09", 3, 0.2860, 0.9243, 0.8678, 135),
    ("draw 12", 3, 0.2861, 0.9240, 0.8695, 1327),
    ("xgboost defaults", 3, 0.2862, 0.9238, 0.8681, 36),
    ("draw 21", 3, 0.2862, 0.9239, 0.8685, 389),
    ("draw 13", 3, 0.2864, 0.9239, 0.8691, 721),
    ("draw 22", 3, 0.2864, 0.9240, 0.8691, 273),
    ("draw 07", 3, 0.2869, 0.9237, 0.8684, 572),
    ("draw 02", 3, 0.2872, 0.9233, 0.8676, 329),
    ("draw 14", 3, 0.2874, 0.9232, 0.8656, 562),
    ("draw 23", 3, 0.2885, 0.9226, 0.8664, 623),
    ("draw 05", 3, 0.2889, 0.9223, 0.8673, 1239),
    ("draw 15", 3, 0.2894, 0.9221, 0.8670, 445),
]


@dataclass
class Score:
    logloss: list[float]
    auc: list[float]
    accuracy: list[float]
    rounds: list[int]
    seconds: float
    # Accuracy on the held-out third at the cut-off 0.5, and at the best cut-off for those very rows (a ceiling).
    accuracy_at_half: list[float] = dataclasses.field(default_factory=list)
    accuracy_best_cut: list[float] = dataclasses.field(default_factory=list)
    # At the best grid cut-off on validation, taken whatever the evidence (train.py's rule before issue 12 §5).
    accuracy_validation_grid: list[float] = dataclasses.field(default_factory=list)

    def mean(self, key: str) -> float:
        return statistics.fmean(getattr(self, key))


def draws(count: int = DRAWS, seed: int = DRAW_SEED) -> list[dict[str, str]]:
    """`count` distinct points of SPACE, the same ones on every run."""
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    while len(out) < count:
        point = {name: rng.choice(values) for name, values in SPACE.items()}
        if point not in out:
            out.append(point)
    return out


def neighbours(point: dict[str, str]) -> list[dict[str, str]]:
    """Step 4's refinement: `point` with one hyperparameter changed to each other value of REFINE."""
    return [{**point, name: value} for name, values in REFINE.items() for value in values if value != point[name]]


def candidate(name: str) -> dict[str, str]:
    """The hyperparameters behind a name the search prints: an anchor, "draw NN", or "draw NN name=value"."""
    if name in ANCHORS:
        return dict(ANCHORS[name])
    words = name.split()
    point = draws(int(words[1]) + 1)[int(words[1])]
    return with_patience(point | dict(word.split("=", 1) for word in words[2:]))


def with_patience(candidate: dict[str, str]) -> dict[str, str]:
    """A draw as train.py hyperparameters: the round cap and the patience its eta calls for."""
    done = dict(candidate)
    done.setdefault("num_round", str(MAX_ROUNDS))
    done.setdefault("early_stopping_rounds", str(round(PATIENCE / float(done["eta"]))))
    return done


def describe(candidate: dict[str, str]) -> str:
    short = {"max_depth": "depth", "min_child_weight": "mcw", "subsample": "sub", "colsample_bytree": "col"}
    short |= {"max_cat_to_onehot": "onehot", "early_stopping_rounds": "patience", "num_round": "rounds"}
    return " ".join(f"{short.get(k, k)}={v}" for k, v in candidate.items() if k != "num_round")


def load_training_rows(seed: int = SPLIT_SEED) -> tuple[Any, np.ndarray, np.ndarray]:
    """The schema and the train + validation rows of prepare()'s split `seed`; test is not read."""
    from training_scripts import data_io
    from training_scripts.prepare import prepare

    with tempfile.TemporaryDirectory(prefix="bench-defaults-") as tmp:
        prepared = prepare(output_dir=Path(tmp) / "adult", seed=seed)
        schema = data_io.load_schema(prepared.schema_path)
        parts = [
            data_io.read_channel(prepared.channel(name), schema.n_columns, channel=name)
            for name in ("train", "validation")
        ]
    return schema, np.concatenate([p.X for p in parts]), np.concatenate([p.y for p in parts])


def params_for(candidate: dict[str, str], objective: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What train.py would resolve and send to xgboost for these hyperparameters."""
    from training_scripts import train

    hps = train.resolve_hyperparameters({**candidate, "objective": objective, "nthread": str(NTHREAD)}, {})
    hps["eval_metric"] = train.DEFAULT_EVAL_METRICS[objective]
    return hps, train.xgboost_params(hps, num_gpus=0)


def cross_validate(candidate: dict[str, str], schema: Any, X: np.ndarray, y: np.ndarray, fold_seed: int) -> Score:
    """Step 2 of the procedure for one candidate and one fold seed."""
    import xgboost as xgb
    from sklearn.model_selection import StratifiedKFold, train_test_split

    from training_scripts import evaluation

    hps, params = params_for(candidate, schema.objective)

    def matrix(rows: np.ndarray) -> xgb.DMatrix:
        return xgb.DMatrix(
            X[rows],
            label=y[rows],
            feature_names=list(schema.feature_names),
            feature_types=schema.xgb_feature_types,
            enable_categorical=True,
            nthread=NTHREAD,
        )

    score = Score([], [], [], [], 0.0)
    started = time.perf_counter()
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=fold_seed)
    for rest, held in folds.split(X, y):
        fit, val = train_test_split(rest, test_size=0.1, random_state=fold_seed, stratify=y[rest])
        dfit, dval, dheld = matrix(fit), matrix(val), matrix(held)
        booster = xgb.train(
            params,
            dfit,
            num_boost_round=hps["num_round"],
            evals=[(dval, "validation")],
            early_stopping_rounds=hps["early_stopping_rounds"] or None,
            verbose_eval=False,
        )
        keep = (0, booster.best_iteration + 1)
        p_val = booster.predict(dval, iteration_range=keep)
        cut = evaluation.choose_threshold(y[val], p_val, hps["threshold_method"])
        p_held = booster.predict(dheld, iteration_range=keep)
        metrics = evaluation.binary_metrics(y[held], p_held, cut, ["0", "1"])
        score.accuracy_at_half.append(float(np.mean((p_held >= 0.5) == y[held])))
        grid = evaluation.best_grid_cutoff(y[val], p_val, hps["threshold_method"])  # the rule before issue 12 §5
        score.accuracy_validation_grid.append(float(np.mean((p_held >= grid) == y[held])))
        best = evaluation.best_grid_cutoff(y[held], p_held, "max_accuracy")
        score.accuracy_best_cut.append(float(np.mean((p_held >= best) == y[held])))
        score.logloss.append(metrics["logloss"])
        score.auc.append(metrics["auc"])
        score.accuracy.append(metrics["accuracy"])
        score.rounds.append(booster.best_iteration + 1)
    score.seconds = time.perf_counter() - started
    return score


def _merge(a: Score, b: Score) -> Score:
    return Score(
        a.logloss + b.logloss,
        a.auc + b.auc,
        a.accuracy + b.accuracy,
        a.rounds + b.rounds,
        a.seconds + b.seconds,
        a.accuracy_at_half + b.accuracy_at_half,
        a.accuracy_best_cut + b.accuracy_best_cut,
        a.accuracy_validation_grid + b.accuracy_validation_grid,
    )


class Cache:
    """Scores already computed, by (hyperparameters, fold seed), in a JSON file: a rerun skips them."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.scores: dict[str, Any] = {}
        if self.path is not None and self.path.is_file():
            self.scores = json.loads(self.path.read_text())

    def score(self, hps: dict[str, str], fold_seed: int, compute: Any) -> Score:
        key = json.dumps([sorted(hps.items()), fold_seed])
        if key not in self.scores:
            self.scores[key] = dataclasses.asdict(compute())
            if self.path is not None:
                self.path.write_text(json.dumps(self.scores, indent=1))
        return Score(**self.scores[key])


Ranked = list[tuple[str, dict[str, str], Score]]


def search(
    n_draws: int = DRAWS, confirm: int = CONFIRM, cache: Cache | None = None, log: Any = print
) -> tuple[Ranked, Ranked]:
    """Steps 1-5; returns (the confirmed ones, best first, scored on 6 folds; every candidate on 3 folds)."""
    cache = cache or Cache(None)
    schema, X, y = load_training_rows()
    log(f"{len(y):,} training rows of split seed {SPLIT_SEED} (test not read); {FOLDS}-fold CV, nthread={NTHREAD}")

    def run(candidates: list[tuple[str, dict[str, str]]], fold_seed: int) -> Ranked:
        out = []
        for name, hps in candidates:
            score = cache.score(hps, fold_seed, lambda h=hps: cross_validate(h, schema, X, y, fold_seed))
            out.append((name, hps, score))
            log(_row(name, hps, score))
        return out

    points = draws(n_draws)
    scored = run(list(ANCHORS.items()), FOLD_SEEDS[0])
    scored += run([(f"draw {i:02d}", with_patience(point)) for i, point in enumerate(points)], FOLD_SEEDS[0])
    best_draw = min(
        (item for item in scored if item[0].startswith("draw")), key=lambda item: item[2].mean("logloss"), default=None
    )
    if best_draw is not None:
        base = points[int(best_draw[0].split()[1])]
        log(f"refining {best_draw[0]}: one hyperparameter at a time")
        seen = [hps for _, hps, _ in scored]
        fresh = [with_patience(point) for point in neighbours(base)]
        scored += run([(f"{best_draw[0]} {_changed(base, h)}", h) for h in fresh if h not in seen], FOLD_SEEDS[0])
    scored.sort(key=lambda item: item[2].mean("logloss"))
    log(f"confirming the best {confirm} on {FOLDS} new folds (seed {FOLD_SEEDS[1]})")
    again = run([(name, hps) for name, hps, _ in scored[:confirm]], FOLD_SEEDS[1])
    confirmed = [
        (name, hps, _merge(first, second))
        for (name, hps, first), (_, _, second) in zip(scored[:confirm], again, strict=True)
    ]
    confirmed.sort(key=lambda item: item[2].mean("logloss"))
    for item in confirmed:
        log(_row(*item))
    return confirmed, scored


def _changed(base: dict[str, str], hps: dict[str, str]) -> str:
    return " ".join(f"{name}={hps[name]}" for name in base if hps[name] != base[name])


def _row(name: str, hps: dict[str, str], score: Score) -> str:
    return (
        f"{name:<30} logloss {score.mean('logloss'):.4f}  AUC {score.mean('auc'):.4f}  acc "
        f"{score.mean('accuracy'):.4f}  trees {statistics.median(score.rounds):>5.0f}  {score.seconds:5.1f}s  "
        f"{describe(hps)}"
    )


TUNING_JOBS = 20  # config's default training.tuning.max_jobs
TUNING_SEED = 7


def tuning_draws(ranges: dict[str, tuple[float, float]], count: int, seed: int = TUNING_SEED) -> list[dict[str, str]]:
    """`count` uniform draws from [min, max] per name (integers for train.py's integer hyperparameters)."""
    from training_scripts import hyperparameters as hp

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        point = {}
        for name, (low, high) in ranges.items():
            if hp.HYPERPARAMETERS[name].kind == "int":
                point[name] = str(rng.randint(int(low), int(high)))
            else:
                point[name] = f"{rng.uniform(low, high):.4g}"
        out.append(point)
    return out


def fit_split(hps: dict[str, str], schema: Any, parts: dict[str, Any]) -> dict[str, float]:
    """train.py's fit on one prepared split: validation AUC (the tuner's metric), test figures for the record."""
    import xgboost as xgb

    from training_scripts import evaluation

    resolved, params = params_for(hps, schema.objective)
    matrix = {
        name: xgb.DMatrix(
            split.X,
            label=split.y,
            feature_names=list(schema.feature_names),
            feature_types=schema.xgb_feature_types,
            enable_categorical=True,
            nthread=NTHREAD,
        )
        for name, split in parts.items()
    }
    booster = xgb.train(
        params,
        matrix["train"],
        num_boost_round=resolved["num_round"],
        evals=[(matrix["validation"], "validation")],
        early_stopping_rounds=resolved["early_stopping_rounds"] or None,
        verbose_eval=False,
    )
    keep = (0, booster.best_iteration + 1)
    p_val = booster.predict(matrix["validation"], iteration_range=keep)
    p_test = booster.predict(matrix["test"], iteration_range=keep)
    cut = evaluation.choose_threshold(parts["validation"].y, p_val, resolved["threshold_method"])
    val = evaluation.binary_metrics(parts["validation"].y, p_val, cut, ["0", "1"])
    test = evaluation.binary_metrics(parts["test"].y, p_test, cut, ["0", "1"])
    return {
        "validation_auc": val["auc"],
        "validation_logloss": val["logloss"],
        "test_auc": test["auc"],
        "test_logloss": test["logloss"],
        "test_accuracy": test["accuracy"],
        "trees": booster.best_iteration + 1,
    }


def tuning_check(
    jobs: int = TUNING_JOBS, ranges: dict[str, tuple[float, float]] | None = None, log: Any = print
) -> tuple[dict[str, float], list[tuple[str, dict[str, float]]]]:
    """The defaults and `jobs` draws from the tuning ranges (default: the stage's) on the seed split; best first."""
    from config.settings import TuningConfig
    from training_scripts import data_io
    from training_scripts.prepare import prepare

    ranges = ranges or dict(TuningConfig().ranges)
    log(f"tuning ranges: {', '.join(f'{n} {lo:g}..{hi:g}' for n, (lo, hi) in ranges.items())}; {jobs} random draws")
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as tmp:
        prepared = prepare(output_dir=Path(tmp) / "adult", seed=SPLIT_SEED)
        schema = data_io.load_schema(prepared.schema_path)
        parts = {
            name: data_io.read_channel(prepared.channel(name), schema.n_columns, channel=name)
            for name in ("train", "validation", "test")
        }
    defaults = fit_split({}, schema, parts)
    log(_tuning_row("defaults", defaults))
    tried = []
    for point in tuning_draws(ranges, jobs):
        figures = fit_split(point, schema, parts)
        tried.append((" ".join(f"{k}={v}" for k, v in point.items()), figures))
        log(_tuning_row(tried[-1][0], figures))
    tried.sort(key=lambda item: -item[1]["validation_auc"])
    return defaults, tried


def _tuning_row(name: str, f: dict[str, float]) -> str:
    return (
        f"validation AUC {f['validation_auc']:.4f} logloss {f['validation_logloss']:.4f} | test AUC {f['test_auc']:.4f}"
        f" logloss {f['test_logloss']:.4f} acc {f['test_accuracy']:.4f} | trees {f['trees']:>5.0f}  {name}"
    )


def threshold_check(log: Any = print) -> None:
    """Accuracy on the 6 folds' held-out rows at train.py's cut-off (evaluation.choose_threshold), at the best grid
    cut-off on validation whatever the evidence (the rule before), at 0.5, and at the held-out rows' own best
    cut-off (a ceiling), for the defaults and the former defaults: how much the cut-off choice costs. Training rows
    only."""
    schema, X, y = load_training_rows()
    for name, hps in (("defaults", {}), ("former defaults", ANCHORS["former defaults"])):
        score = _merge(*(cross_validate(hps, schema, X, y, seed) for seed in FOLD_SEEDS))
        log(
            f"{name:<16} accuracy at train.py's cut-off {score.mean('accuracy'):.4f}, at the best validation cut-off "
            f"{score.mean('accuracy_validation_grid'):.4f}, at 0.5 {score.mean('accuracy_at_half'):.4f}, at the "
            f"held-out rows' best cut-off {score.mean('accuracy_best_cut'):.4f} (log loss "
            f"{score.mean('logloss'):.4f}; {len(score.logloss)} folds)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.defaults", description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=DRAWS, help=f"random draws besides the anchors ({DRAWS})")
    parser.add_argument("--confirm", type=int, default=CONFIRM, help=f"best ones scored on new folds ({CONFIRM})")
    parser.add_argument("--cache", help="a JSON file of scores: read, and extended as candidates are scored")
    parser.add_argument("--tuning", type=int, nargs="?", const=TUNING_JOBS, metavar="JOBS", help="run the tuning check")
    parser.add_argument("--thresholds", action="store_true", help="what the cut-off choice costs in accuracy")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # steady on a shared machine; no effect on results
    if args.thresholds:
        threshold_check(log=lambda line: print(line, flush=True))
        return 0
    if args.tuning:
        defaults, tried = tuning_check(args.tuning, log=lambda line: print(line, flush=True))
        best_name, best = tried[0]
        beats = best["validation_auc"] > defaults["validation_auc"]
        wins = sum(f["validation_auc"] > defaults["validation_auc"] for _, f in tried)
        print(
            f"\nbest draw: validation AUC {best['validation_auc']:.4f} vs the defaults' "
            f"{defaults['validation_auc']:.4f} ({'beats' if beats else 'does not beat'} them; {wins} of {len(tried)} "
            f"draws do); its test log loss {best['test_logloss']:.4f} vs {defaults['test_logloss']:.4f}, test AUC "
            f"{best['test_auc']:.4f} vs {defaults['test_auc']:.4f}  ({best_name})"
        )
        return 0
    confirmed, _ = search(args.draws, args.confirm, Cache(args.cache), log=lambda line: print(line, flush=True))
    name, hps, score = confirmed[0]
    print(
        f"\nchosen: {name} ({describe(hps)}), CV log loss {score.mean('logloss'):.4f} over {len(score.logloss)} folds"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
