"""training_scripts/hyperparameters.py says what train.py accepts; the stage config checks against it.

Until train.py imports its table and parser from hyperparameters.py, these tests hold the two copies equal:
the same names, types, bounds and aliases, and the same verdict (value or message) on accepted and refused
values alike.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.settings import TuningConfig, load_config
from lambdas.shared.job_settings import DEFAULT_HYPERPARAMETERS, DEFAULT_TUNING_RANGES, INTEGER_HYPERPARAMETERS
from training_scripts import data_io, evaluation, train
from training_scripts import hyperparameters as hp


def verdict(parse: Any, error: type[Exception], *args: Any) -> tuple[str, Any]:
    try:
        return ("ok", parse(*args))
    except error as exc:
        return ("refused", str(exc))


def test_the_tables_are_the_same() -> None:
    # GIVEN train.py's table and hyperparameters.py's WHEN compared field by field THEN they are equal
    assert {k: dataclasses.astuple(v) for k, v in train.HYPERPARAMETERS.items()} == {
        k: dataclasses.astuple(v) for k, v in hp.HYPERPARAMETERS.items()
    }
    assert train.ALIASES == hp.ALIASES
    assert set(train._SCRIPT_ONLY) == hp.SCRIPT_ONLY


def test_objectives_and_threshold_methods_match_the_numpy_modules() -> None:
    # GIVEN the numpy-side modules' objectives and threshold methods WHEN compared with hyperparameters.py's
    # THEN they are the same, in the same order
    assert tuple(data_io.OBJECTIVES) == hp.OBJECTIVES
    assert tuple(evaluation.THRESHOLD_METHODS) == hp.THRESHOLD_METHODS


ACCEPTED = [
    ("num_round", "1"),
    ("num_round", "120"),
    ("max_depth", "4.0"),
    ("max_depth", "0"),
    ("eta", "1"),
    ("eta", "1e-3"),
    ("subsample", " 0.5 "),
    ("gamma", "0"),
    ("max_bin", "2"),
    ("seed", "-3"),
    ("eval_metric", "auc,logloss"),
    ("eval_metric", '["error", "logloss"]'),
    ("eval_train", "True"),
    ("eval_train", "no"),
    ("objective", "multi:softprob"),
    ("objective", "none"),
    ("grow_policy", "lossguide"),
    ("threshold_method", "max_f1"),
    ("scale_pos_weight", "0.01"),
    ("num_class", "2"),
]
REFUSED = [
    ("num_round", "0"),
    ("num_round", "1.5"),
    ("num_round", "inf"),
    ("num_round", "9" * 400),
    ("max_depth", "-1"),
    ("eta", "0"),
    ("eta", "1.0001"),
    ("eta", "nan"),
    ("subsample", "1.5"),
    ("max_bin", "1"),
    ("eval_train", "maybe"),
    ("eval_metric", "[not json"),
    ("objective", "rank:pairwise"),
    ("tree_method", "exact"),
    ("threshold_method", "best"),
    ("scale_pos_weight", "0"),
    ("num_class", "1"),
    ("nthread", "0"),
    ("checkpoint_interval", "0"),
    ("colsample_bynode", "0"),
]


@pytest.mark.parametrize(("name", "raw"), ACCEPTED)
def test_both_accept_the_same_values(name: str, raw: str) -> None:
    # GIVEN a value train.py must accept WHEN hyperparameters.py and train.py parse it
    ours = verdict(hp.parse_value, hp.UsageError, name, raw)
    # THEN both accept it, with the same value
    assert ours[0] == "ok"
    assert verdict(train._parse_value, train.UsageError, name, raw) == ours


@pytest.mark.parametrize(("name", "raw"), REFUSED)
def test_both_refuse_the_same_values_with_the_same_message(name: str, raw: str) -> None:
    # GIVEN a value train.py must refuse WHEN hyperparameters.py and train.py parse it
    ours = verdict(hp.parse_value, hp.UsageError, name, raw)
    # THEN both refuse it, and agree on why (the two implementations compared, not a message pinned here)
    assert ours[0] == "refused"
    assert verdict(train._parse_value, train.UsageError, name, raw) == ours


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(hp.HYPERPARAMETERS)),
    raw=st.one_of(
        st.text(max_size=12),
        st.integers(-(10**6), 10**6).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["true", "False", "1", "0", "none", "", "[]", '["a"]', "a,b"]),
    ),
)
def test_any_value_gets_the_same_verdict_from_both(name: str, raw: str) -> None:
    # GIVEN any name and any string SageMaker could pass WHEN both parse it THEN they agree exactly
    ours = verdict(hp.parse_value, hp.UsageError, name, raw)
    theirs = verdict(train._parse_value, train.UsageError, name, raw)
    assert theirs == ours


@pytest.mark.parametrize(
    "key", ["max_depth", "--max-depth", "reg_lambda", "learning_rate", "sagemaker_program", "_tuning_x", "max_detph"]
)
def test_names_resolve_the_same(key: str) -> None:
    # GIVEN a name as SageMaker or a flag spells it WHEN both resolve it THEN they agree
    assert verdict(train._canonical, train.UsageError, key) == verdict(hp.canonical, hp.UsageError, key)


def test_resolution_is_the_same() -> None:
    # GIVEN SageMaker's hyperparameters (an alias and a reserved name among them) and command-line flags
    sm_hps = {"num_round": "120", "learning_rate": "0.2", "sagemaker_program": "train.py"}
    flags = {"max_depth": "4", "eval_metric": "auc"}
    # WHEN both resolve them THEN they agree exactly
    assert train.resolve_hyperparameters(sm_hps, flags) == hp.resolve_hyperparameters(sm_hps, flags)


def test_what_the_functions_send_is_what_train_py_accepts() -> None:
    # GIVEN the job spec's default hyperparameters and tuning ranges (lambdas/shared/job_settings.py)
    # WHEN train.py's parser reads each value and bound
    # THEN train.py accepts every default value, every tuned name, and reads integer ranges as integers
    for name, raw in DEFAULT_HYPERPARAMETERS.items():
        hp.parse_value(name, raw)
    for r in DEFAULT_TUNING_RANGES:
        hp.parse_value(r.name, r.min_value)
        hp.parse_value(r.name, r.max_value)
        assert (r.kind == "integer") == (hp.HYPERPARAMETERS[r.name].kind == "int")
    assert {n for n in INTEGER_HYPERPARAMETERS if hp.HYPERPARAMETERS[n].kind != "int"} == set()


def test_the_stage_default_ranges_are_valid_for_train_py() -> None:
    # GIVEN the stage config's default tuning ranges WHEN a stage loads with tuning on THEN they pass
    cfg = load_config("dev", overrides={"training": {"tuning": {"enabled": True}}})
    assert dict(cfg.training.tuning.ranges) == dict(TuningConfig().ranges)


def test_each_default_tuning_range_holds_train_py_default() -> None:
    # GIVEN the stage config's default tuning ranges
    ranges = dict(TuningConfig().ranges)
    # WHEN each is set beside train.py's default for that name
    # THEN the default lies inside it, so a tuning job can reach the defaults and search around them
    for name, (low, high) in ranges.items():
        default = hp.HYPERPARAMETERS[name].default
        assert default is not None and low <= default <= high, (name, default, (low, high))
