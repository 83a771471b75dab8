"""train.py builds the train rows as a QuantileDMatrix (bins only) for hist on the CPU: the model must be the very
bytes the DMatrix path builds, on every task, with categorical columns, missing cells, sampling and resumes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.training_scripts.conftest import Job, make_job
from training_scripts import channels, data_io, train
from training_scripts.prepare import Prepared

# Row and column sampling too: the draws depend only on the seed and the row count, so they must agree as well.
SAMPLED = {"subsample": "0.8", "colsample_bytree": "0.7", "max_bin": "64", "eval_train": "true"}


def _dmatrix_path(patch: pytest.MonkeyPatch) -> None:
    """train.py as it was: a plain DMatrix for the train rows too."""
    patch.setattr(train, "quantile_train_matrix", lambda params: False)


def _model(job: Job) -> bytes:
    return (job.model_dir / "xgboost-model").read_bytes()


def _round_lines(log: str) -> list[str]:
    """The per-round and final metric lines (what early stopping and SageMaker's metric definitions read)."""
    return [line for line in log.splitlines() if line.startswith("[")]


@pytest.mark.parametrize("data", ["adult_small", "digits_prepared", "diabetes_prepared"])
@pytest.mark.parametrize("hps", [{}, SAMPLED], ids=["defaults", "sampled"])
def test_a_quantile_train_matrix_builds_the_same_model_as_dmatrix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    data: str,
    hps: dict[str, str],
) -> None:
    # GIVEN a prepared data set (binary with categorical columns and missing cells, multiclass, regression)
    prepared: Prepared = request.getfixturevalue(data)
    quantile, plain = make_job(tmp_path / "quantile", prepared), make_job(tmp_path / "dmatrix", prepared)
    # WHEN one job trains with train.py's matrices and the other with plain DMatrix
    capsys.readouterr()
    assert quantile.run(monkeypatch, hps) == 0, quantile.failure
    quantile_log = capsys.readouterr().out
    with monkeypatch.context() as patch:
        _dmatrix_path(patch)
        assert plain.run(monkeypatch, hps) == 0, plain.failure
    # THEN the saved models are the same bytes, and so are the evaluations and every round's metrics
    assert _model(quantile) == _model(plain)
    assert quantile.evaluation() == plain.evaluation()
    assert _round_lines(quantile_log) == _round_lines(capsys.readouterr().out) != []


def test_a_dmatrix_checkpoint_resumes_into_the_same_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN a checkpoint after 20 rounds written by the DMatrix path (a job started before this change), without
    # sampling (XGBoost does not checkpoint its random state, so only then is a resumed run exact)
    hps = {
        "subsample": "1",
        "colsample_bytree": "1",
        "checkpoint_interval": "10",
        "num_round": "30",
        "early_stopping_rounds": "0",
    }
    earlier = make_job(tmp_path / "earlier", adult_small)
    with monkeypatch.context() as patch:
        _dmatrix_path(patch)
        assert earlier.run(monkeypatch, hps) == 0, earlier.failure
    resumed = make_job(tmp_path / "resumed", adult_small)
    shutil.copytree(earlier.checkpoint_dir, resumed.checkpoint_dir)
    (resumed.checkpoint_dir / "checkpoint-000030.ubj").unlink()
    # WHEN the job restarts with quantile matrices
    assert resumed.run(monkeypatch, hps) == 0, resumed.failure
    # THEN it continues from round 20 to exactly the uninterrupted DMatrix model
    assert _model(resumed) == _model(earlier)


@pytest.mark.parametrize(
    ("tree_method", "num_gpus", "quantile"),
    [("hist", 0, True), ("auto", 0, True), ("approx", 0, False), ("hist", 1, False)],
)
def test_a_quantile_train_matrix_only_for_hist_on_the_cpu(tree_method: str, num_gpus: int, quantile: bool) -> None:
    # GIVEN train.py's parameters for a tree method and a device
    hps = train.resolve_hyperparameters({"objective": "binary:logistic", "tree_method": tree_method}, {})
    params = train.xgboost_params(hps, num_gpus)
    # WHEN train.py decides which matrices to build
    # THEN approx (which re-sketches every round) and the GPU (whose sketch we have not checked) keep DMatrix
    assert train.quantile_train_matrix(params) is quantile


def test_approx_trains_on_dmatrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared) -> None:
    # GIVEN tree_method approx, which XGBoost refuses on a QuantileDMatrix
    job = make_job(tmp_path, adult_small)
    # WHEN trained
    code = job.run(monkeypatch, {"tree_method": "approx"})
    # THEN the job succeeds and writes its model
    assert code == 0, job.failure
    assert job.model_files() == sorted([*train.model_outputs.OUTPUT_FILES, train.SERVING_CODE_DIR])


def _loaded(X: np.ndarray, y: np.ndarray, kinds: list[str]) -> channels.Loaded:
    doc = data_io.synthesize_schema(X.shape[1], "binary:logistic", None)
    doc["features"] = [
        {"name": f"f{i}", "type": "categorical", "categories": [f"c{j}" for j in range(6)]}
        if kind == "c"
        else {"name": f"f{i}", "type": "numeric"}
        for i, kind in enumerate(kinds)
    ]
    schema = data_io.schema_from_dict(doc)
    cut = len(y) * 3 // 4
    train_split = data_io.Split(y[:cut], X[:cut], [Path("train.csv")], [cut])
    validation = data_io.Split(y[cut:], X[cut:], [Path("validation.csv")], [len(y) - cut])
    hps = train.resolve_hyperparameters({"objective": "binary:logistic"}, {})
    return channels.Loaded(
        schema, "binary:logistic", "binary", ["0", "1"], hps, train_split, validation, None, validation, None, cut
    )


def _boost(loaded: channels.Loaded, params: dict[str, Any]) -> bytes:
    dtrain, dval = train.training_matrices(loaded, params)
    booster = xgb.train(params, dtrain, num_boost_round=5, evals=[(dval, "validation")], verbose_eval=False)
    return bytes(booster.save_raw("json"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.integers(20, 3_000),
    kinds=st.lists(st.sampled_from("qc"), min_size=1, max_size=5),
    missing=st.sampled_from([0.0, 0.1, 0.6]),
    max_bin=st.sampled_from([2, 16, 256]),
    seed=st.integers(0, 2**16),
)
def test_any_data_gets_the_same_trees_from_either_matrix(
    monkeypatch: pytest.MonkeyPatch, rows: int, kinds: list[str], missing: float, max_bin: int, seed: int
) -> None:
    # GIVEN random numeric and categorical columns (ties, missing cells) and a label that depends on them
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [rng.integers(0, 6, rows) if kind == "c" else np.round(rng.normal(0, 3, rows), 1) for kind in kinds]
    ).astype(np.float32)
    y = (X[:, 0] + rng.normal(0, 1, rows) > 1).astype(np.float64)
    X[rng.random(X.shape) < missing] = np.nan
    loaded = _loaded(X, y, kinds)
    params = train.xgboost_params({**loaded.hps, "max_bin": max_bin, "eval_metric": ["logloss"]}, 0)
    params["nthread"] = 2
    # WHEN both kinds of matrices feed the same boosting
    quantile = _boost(loaded, params)
    with monkeypatch.context() as patch:
        _dmatrix_path(patch)
        plain = _boost(loaded, params)
    # THEN the trees are the same bytes
    assert quantile == plain
