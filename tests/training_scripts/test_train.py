"""train.py through the SageMaker script-mode contract: the model directory it writes and the metrics it prints."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from tests.training_scripts.conftest import FullRun, make_job
from training_scripts import hyperparameters, metrics_format
from training_scripts.prepare import Prepared

# The contract's four files, and code/: the serving code SageMaker will run from the packed artifact.
MODEL_FILES = ["baseline.json", "code", "evaluation.json", "schema.json", "xgboost-model"]


@pytest.mark.slow
def test_defaults_beat_the_seed_tutorial_on_adult(adult_full_run: FullRun) -> None:
    # GIVEN one run on all of Adult with the default hyperparameters (session fixture)
    assert adult_full_run.exit_code == 0, adult_full_run.job.failure
    test = adult_full_run.job.evaluation()["splits"]["test"]
    # THEN on the seed's 6,513 test rows accuracy is >= 0.870 and AUC >= 0.925
    assert test["accuracy"] >= 0.870
    assert test["auc"] >= 0.925
    assert sum(map(sum, test["confusion_matrix"])) == 6_513


@pytest.mark.slow
def test_model_dir_holds_exactly_the_four_artifacts_and_the_serving_code(adult_full_run: FullRun) -> None:
    # GIVEN the full Adult run
    # THEN the model directory holds the contract's four files and code/, nothing else
    assert adult_full_run.job.model_files() == MODEL_FILES


@pytest.mark.slow
def test_model_is_json_and_keeps_the_best_iteration(adult_full_run: FullRun) -> None:
    # GIVEN the saved model and evaluation.json
    path = adult_full_run.job.model_dir / "xgboost-model"
    evaluation = adult_full_run.job.evaluation()
    # WHEN it is loaded with XGBoost
    booster = xgb.Booster(model_file=bytearray(path.read_bytes()))
    # THEN it is JSON (not UBJ, not pickle), has the best iteration's trees and the schema's feature types
    assert path.read_bytes()[:1] == b"{"
    assert booster.num_boosted_rounds() == evaluation["best_iteration"] + 1
    assert booster.feature_types[1] == "c"


@pytest.mark.slow
def test_evaluation_follows_the_contract(adult_full_run: FullRun) -> None:
    # GIVEN evaluation.json of the full Adult run
    doc = adult_full_run.job.evaluation()
    # THEN it names the primary metric (test AUC), a validation threshold, sizes and version
    assert doc["format_version"] == 1 and doc["objective"] == "binary:logistic"
    assert doc["primary_metric"] == {
        "name": "auc",
        "split": "test",
        "value": doc["splits"]["test"]["auc"],
        "higher_is_better": True,
    }
    assert doc["threshold"]["method"] == "max_accuracy" and 0 < doc["threshold"]["value"] < 1
    assert doc["dataset_sizes"] == {"train": 23_443, "validation": 2_605, "test": 6_513}
    assert doc["xgboost_version"] == xgb.__version__
    assert doc["hyperparameters"]["num_round"] == hyperparameters.HYPERPARAMETERS["num_round"].default
    # AND each split has the binary metrics, per class keyed by the raw class names
    for split in doc["splits"].values():
        assert {"auc", "accuracy", "logloss", "per_class", "confusion_matrix"} <= set(split)
        assert set(split["per_class"]) == {"<=50K", ">50K"}
        assert set(split["per_class"][">50K"]) == {"precision", "recall", "f1", "support"}


@pytest.mark.slow
def test_baseline_follows_the_contract(adult_full_run: FullRun) -> None:
    # GIVEN baseline.json of the full Adult run
    doc = json.loads((adult_full_run.job.model_dir / "baseline.json").read_text())
    age, workclass = doc["features"]["age"], doc["features"]["workclass"]
    # THEN it describes the 23,443 train rows: numeric deciles with proportions, categorical frequencies
    assert doc["sample_size"] == 23_443
    edges = np.asarray(age["bin_edges"])
    assert np.all(np.diff(edges) > 0) and len(age["proportions"]) == len(edges) - 1
    assert sum(age["proportions"]) == pytest.approx(1.0)
    assert sum(workclass["frequencies"].values()) == pytest.approx(1.0)
    assert "Private" in workclass["frequencies"]
    assert 0.0 < workclass["missing_proportion"] < 0.1


@pytest.mark.slow
def test_metric_lines_are_read_back_by_the_metric_definitions(adult_full_run: FullRun) -> None:
    # GIVEN the log of the full Adult run
    doc = adult_full_run.job.evaluation()
    # WHEN it is parsed with METRIC_DEFINITIONS, the way SageMaker does
    found = metrics_format.parse_metrics(adult_full_run.log)
    # THEN validation AUC appears every round, and the last values are the final evaluation
    assert len(found["validation:auc"]) > 10
    assert found["validation:auc"][-1] == pytest.approx(doc["splits"]["validation"]["auc"], abs=1e-7)
    assert found["test:auc"] == [pytest.approx(doc["splits"]["test"]["auc"], abs=1e-7)]
    assert found["test:accuracy"] == [pytest.approx(doc["splits"]["test"]["accuracy"], abs=1e-7)]


def test_metric_definitions_match_the_lambdas_copy() -> None:
    # GIVEN the Lambdas' own copy of the definitions (they may not import training_scripts)
    lambdas_metrics = pytest.importorskip("lambdas.shared.metrics")
    # THEN both lists are the same names and regexes
    assert [dict(d) for d in lambdas_metrics.METRIC_DEFINITIONS] == metrics_format.METRIC_DEFINITIONS


def test_metric_definitions_use_sagemaker_names() -> None:
    # GIVEN METRIC_DEFINITIONS
    names = [d["Name"] for d in metrics_format.METRIC_DEFINITIONS]
    # THEN names are split:metric, unique, within SageMaker's limit of 40
    assert "validation:auc" in names and "test:rmse" in names
    assert len(names) == len(set(names)) <= 40


def test_metric_regexes_accept_cloudwatch_tabs_and_reject_nan() -> None:
    # GIVEN built-in style lines as CloudWatch shows them, and a non-finite value
    text = "[12]#011train-auc:0.91#011validation-auc:0.92\n[13]\tvalidation-auc:nan"
    # WHEN parsed
    found = metrics_format.parse_metrics(text)
    # THEN the finite values are read and nan is not
    assert found == {"train:auc": [0.91], "validation:auc": [0.92]}


def test_multiclass_digits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digits_prepared: Prepared) -> None:
    # GIVEN digits prepared as multi:softprob
    job = make_job(tmp_path, digits_prepared)
    # WHEN trained
    code = job.run(monkeypatch)
    # THEN the primary metric is test mlogloss, there is no threshold, and the model is useful
    assert code == 0, job.failure
    doc = job.evaluation()
    assert doc["primary_metric"]["name"] == "mlogloss" and doc["primary_metric"]["higher_is_better"] is False
    assert doc["threshold"] is None
    test = doc["splits"]["test"]
    assert test["accuracy"] > 0.9 and test["auc"] > 0.98
    assert len(test["per_class"]) == 10 and len(test["confusion_matrix"]) == 10


def test_regression_diabetes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, diabetes_prepared: Prepared) -> None:
    # GIVEN diabetes prepared as reg:squarederror
    job = make_job(tmp_path, diabetes_prepared)
    # WHEN trained (a small learning rate: 300 rows overfit fast)
    code = job.run(monkeypatch, {"eta": "0.05", "num_round": "200", "max_depth": "3"})
    # THEN the primary metric is test rmse and the model explains some variance
    assert code == 0, job.failure
    doc = job.evaluation()
    assert doc["primary_metric"]["name"] == "rmse" and doc["threshold"] is None
    assert set(doc["splits"]["test"]) == {"rmse", "mae", "r2"}
    assert doc["splits"]["test"]["r2"] > 0.2


def test_several_files_per_channel_are_all_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small_raw: Path
) -> None:
    # GIVEN a train channel split over three files
    from training_scripts.prepare import prepare

    prepared = prepare(adult_small_raw, target="income", output_dir=tmp_path / "data", train_files=3)
    job = make_job(tmp_path / "job", prepared)
    # WHEN trained
    code = job.run(monkeypatch)
    # THEN every train row counted
    assert code == 0, job.failure
    assert job.evaluation()["dataset_sizes"]["train"] == prepared.sizes["train"]


def test_parquet_channels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small_raw: Path) -> None:
    # GIVEN channels written as Parquet
    from training_scripts.prepare import prepare

    prepared = prepare(adult_small_raw, target="income", output_dir=tmp_path / "data", file_format="parquet")
    job = make_job(tmp_path / "job", prepared)
    # WHEN trained
    code = job.run(monkeypatch)
    # THEN it trains on every row
    assert code == 0, job.failure
    assert job.evaluation()["dataset_sizes"] == prepared.sizes


def test_gzipped_csv_files_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared) -> None:
    # GIVEN a train channel whose file is gzipped
    job = make_job(tmp_path, adult_small)
    plain = job.channels["train"] / "train.csv"
    with gzip.open(plain.with_suffix(".csv.gz"), "wb") as handle:
        handle.write(plain.read_bytes())
    plain.unlink()
    # WHEN trained
    code = job.run(monkeypatch)
    # THEN all train rows were read
    assert code == 0, job.failure
    assert job.evaluation()["dataset_sizes"]["train"] == adult_small.sizes["train"]


def test_schema_channel_is_used_when_train_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN schema.json only in a separate `schema` channel
    job = make_job(tmp_path, adult_small)
    (job.channels["train"] / "schema.json").unlink()
    schema_dir = tmp_path / "input" / "data" / "schema"
    schema_dir.mkdir()
    shutil.copy(adult_small.schema_path, schema_dir / "schema.json")
    job.channels["schema"] = schema_dir
    # WHEN trained
    code = job.run(monkeypatch)
    # THEN it succeeds and writes that schema into the model
    assert code == 0, job.failure
    assert json.loads((job.model_dir / "schema.json").read_text()) == adult_small.schema


def test_without_a_test_channel_validation_is_primary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN only train and validation channels
    job = make_job(tmp_path, adult_small, channels=("train", "validation"))
    # WHEN trained
    code = job.run(monkeypatch)
    # THEN the primary metric comes from validation and no test split is reported
    assert code == 0, job.failure
    doc = job.evaluation()
    assert doc["primary_metric"]["split"] == "validation"
    assert set(doc["splits"]) == {"validation"} and "test" not in doc["dataset_sizes"]


def test_max_f1_threshold_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared) -> None:
    # GIVEN threshold_method=max_f1
    job = make_job(tmp_path, adult_small)
    # WHEN trained
    code = job.run(monkeypatch, {"threshold_method": "max_f1"})
    # THEN the threshold records the method, and sits below max-accuracy's cut-off (F1 favours recall)
    assert code == 0, job.failure
    threshold = job.evaluation()["threshold"]
    assert threshold["method"] == "max_f1" and 0 < threshold["value"] < 0.5


def test_eval_train_prints_train_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], adult_small: Prepared
) -> None:
    # GIVEN eval_train=true
    job = make_job(tmp_path, adult_small)
    # WHEN trained
    code = job.run(monkeypatch, {"eval_train": "true"})
    # THEN train metrics are printed each round (validation also once more, on the [final] line)
    assert code == 0, job.failure
    found = metrics_format.parse_metrics(capsys.readouterr().out)
    assert len(found["train:auc"]) == len(found["validation:auc"]) - 1 > 1


def test_without_early_stopping_every_round_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN early_stopping_rounds=0 and 25 rounds
    job = make_job(tmp_path, adult_small)
    # WHEN trained
    code = job.run(monkeypatch, {"early_stopping_rounds": "0", "num_round": "25"})
    # THEN the model has all 25 rounds
    assert code == 0, job.failure
    booster = xgb.Booster(model_file=bytearray((job.model_dir / "xgboost-model").read_bytes()))
    assert booster.num_boosted_rounds() == 25
    assert job.evaluation()["best_iteration"] == 24


def test_without_a_schema_the_objective_hyperparameter_suffices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN a train channel without schema.json (plain built-in-algorithm style data)
    job = make_job(tmp_path, adult_small)
    (job.channels["train"] / "schema.json").unlink()
    # WHEN trained with objective given
    code = job.run(monkeypatch, {"objective": "binary:logistic"})
    # THEN it trains on all-numeric features f0..f13 and writes that schema into the model
    assert code == 0, job.failure
    schema = json.loads((job.model_dir / "schema.json").read_text())
    assert [f["name"] for f in schema["features"]] == [f"f{i}" for i in range(14)]
    assert schema["label"]["classes"] == ["0", "1"]
