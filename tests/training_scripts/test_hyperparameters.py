"""Hyperparameters: SageMaker sends strings (SM_HPS JSON and --flags) with the built-in algorithm's names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import defaults
from tests.training_scripts.conftest import make_job
from training_scripts import train
from training_scripts.prepare import Prepared


def test_sm_hps_strings_become_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN SM_HPS as SageMaker writes it: every value a string
    hps = {"num_round": "120", "eta": "0.05", "max_depth": "4.0", "eval_metric": "auc,logloss", "eval_train": "True"}
    monkeypatch.setenv("SM_HPS", json.dumps(hps))
    # WHEN the arguments are parsed
    resolved = train.parse_args([]).hyperparameters
    # THEN each is its proper type
    assert resolved["num_round"] == 120 and resolved["max_depth"] == 4
    assert resolved["eta"] == 0.05
    assert resolved["eval_metric"] == ["auc", "logloss"]
    assert resolved["eval_train"] is True


def test_flags_override_sm_hps(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a value in SM_HPS and another as a flag
    monkeypatch.setenv("SM_HPS", json.dumps({"max_depth": "4"}))
    # WHEN parsed
    resolved = train.parse_args(["--max_depth", "8"]).hyperparameters
    # THEN the flag wins
    assert resolved["max_depth"] == 8


def test_unset_hyperparameters_take_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN no hyperparameters at all
    monkeypatch.delenv("SM_HPS", raising=False)
    # WHEN parsed
    resolved = train.parse_args([]).hyperparameters
    # THEN the tuned defaults apply and the objective waits for the schema
    assert resolved["num_round"] == 5000 and resolved["eta"] == 0.02 and resolved["early_stopping_rounds"] == 250
    assert resolved["objective"] is None


def test_the_defaults_are_what_the_recorded_search_chose() -> None:
    # GIVEN what bench/defaults.py's cross-validation chose (and records with its results)
    # WHEN train.py resolves no hyperparameters at all
    resolved = train.resolve_hyperparameters({}, {})
    # THEN every chosen value is its default, and the patience is the procedure's PATIENCE / eta rounds
    assert {name: resolved[name] for name in defaults.CHOSEN} == defaults.CHOSEN
    assert resolved["early_stopping_rounds"] == round(defaults.PATIENCE / resolved["eta"])
    # AND the record's best row is the chosen candidate, ahead of the former defaults and XGBoost's own
    names = [row[0] for row in defaults.RESULTS]
    assert names.index("former defaults") > 0 and names.index("xgboost defaults") > 0
    best = defaults.candidate(defaults.RESULTS[0][0])
    assert train.resolve_hyperparameters({**best, "max_cat_to_onehot": "none"}, {}) == resolved


def test_the_search_draws_the_same_candidates_on_every_run() -> None:
    # GIVEN the recorded search's seeds WHEN its draws and refinement are made twice THEN they are the same
    assert defaults.draws() == defaults.draws()
    assert len({json.dumps(point, sort_keys=True) for point in defaults.draws()}) == defaults.DRAWS
    # AND each refinement differs from its base in exactly one hyperparameter
    base = defaults.draws()[0]
    for point in defaults.neighbours(base):
        assert sum(point[name] != base[name] for name in base) == 1


def test_aliases_map_to_the_builtin_names() -> None:
    # GIVEN xgboost-style aliases
    # WHEN resolved
    resolved = train.resolve_hyperparameters({"reg_lambda": "2.5", "reg_alpha": "0.1", "learning_rate": "0.2"}, {})
    # THEN they land on the built-in algorithm's names
    assert (resolved["lambda"], resolved["alpha"], resolved["eta"]) == (2.5, 0.1, 0.2)


def test_eval_metric_accepts_a_json_list() -> None:
    # GIVEN eval_metric as a JSON list string
    # WHEN resolved
    resolved = train.resolve_hyperparameters({"eval_metric": '["error", "logloss"]'}, {})
    # THEN it is a list
    assert resolved["eval_metric"] == ["error", "logloss"]


def test_sagemaker_own_keys_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the keys SageMaker adds (script mode, tuning)
    hps = {
        "sagemaker_program": "train.py",
        "sagemaker_region": "eu-west-1",
        "_tuning_objective_metric": "validation:auc",
    }
    monkeypatch.setenv("SM_HPS", json.dumps(hps))
    # WHEN parsed, also with the same keys as flags
    args = train.parse_args(["--sagemaker_program", "train.py", "--_tuning_objective_metric", "validation:auc"])
    # THEN nothing complains and nothing of them reaches the hyperparameters
    assert "sagemaker_program" not in args.hyperparameters


@pytest.mark.parametrize(
    ("hps", "code"),
    [
        ({"max_detph": "6"}, "unknown-hyperparameter"),
        ({"eta": "0"}, "out-of-bounds"),
        ({"subsample": "1.5"}, "out-of-bounds"),
        ({"num_round": "7.5"}, "invalid-value"),
        ({"objective": "reg:logistic"}, "not-a-choice"),
        ({"threshold_method": "youden"}, "not-a-choice"),
        ({"eta": "fast"}, "invalid-value"),
    ],
    ids=["typo", "eta-zero", "subsample-above-1", "fractional-int", "objective", "threshold-method", "not-a-number"],
)
def test_bad_values_are_named(hps: dict[str, str], code: str) -> None:
    # GIVEN a bad hyperparameter
    # WHEN resolved
    with pytest.raises(train.UsageError) as refused:
        train.resolve_hyperparameters(hps, {})
    # THEN the error says what is wrong and names the hyperparameter as given
    assert (refused.value.code, refused.value.hyperparameter) == (code, *hps)


def test_bad_hyperparameter_fails_the_job_without_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN a job with a misspelt hyperparameter
    job = make_job(tmp_path, adult_small)
    # WHEN train.py runs
    code = job.run(monkeypatch, {"colsample_by_tree": "0.5"})
    # THEN it exits 2, writes the reason to the failure file, and leaves no model
    assert code == train.EXIT_BAD_INPUT
    assert job.failure is not None and "unknown hyperparameter 'colsample_by_tree'" in job.failure
    assert job.model_files() == []


def test_cpu_without_gpus_and_cuda_with_them() -> None:
    # GIVEN SM_NUM_GPUS of 0 and of 1
    hps = train.resolve_hyperparameters({"objective": "binary:logistic"}, {})
    # WHEN the xgboost params are built
    # THEN the device follows the GPU count, and the script-only settings stay out of xgboost's params
    assert train.xgboost_params(hps, num_gpus=0)["device"] == "cpu"
    params = train.xgboost_params(hps, num_gpus=1)
    assert params["device"] == "cuda" and params["tree_method"] == "hist"
    assert not {"num_round", "early_stopping_rounds", "threshold_method", "checkpoint_interval"} & set(params)


def test_num_gpus_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN SM_NUM_GPUS=4
    monkeypatch.setenv("SM_NUM_GPUS", "4")
    # WHEN parsed
    args = train.parse_args([])
    # THEN the device is cuda
    assert train.device_for(args.num_gpus) == "cuda"


def test_hyperparameters_reach_xgboost_and_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN explicit hyperparameters in SM_HPS
    job = make_job(tmp_path, adult_small)
    # WHEN trained
    code = job.run(monkeypatch, {"max_depth": "3", "lambda": "3", "num_round": "15", "early_stopping_rounds": "0"})
    # THEN evaluation.json records them as used, and the model has 15 rounds of depth <= 3
    assert code == 0, job.failure
    used = job.evaluation()["hyperparameters"]
    assert (used["max_depth"], used["lambda"], used["num_round"]) == (3, 3.0, 15)
    model = json.loads((job.model_dir / "xgboost-model").read_text())
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    assert len(trees) == 15
    assert max(int(t["tree_param"]["num_nodes"]) for t in trees) <= 2**4 - 1
