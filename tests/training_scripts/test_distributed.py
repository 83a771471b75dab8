"""Several hosts train one model through XGBoost's collective: here two processes on 127.0.0.1 and 127.0.0.2,
each with its own shard of the train files (ShardedByS3Key), validation and test replicated."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagecycle.local_training import LocalTrainingError, TrainingResult, run_local_training
from tests.training_scripts.conftest import FullRun
from training_scripts.prepare import Prepared

COLLECTIVE_ENV = {"SAGECYCLE_COLLECTIVE_TIMEOUT": "120"}


def _shard_train(prepared: Prepared, target: Path) -> dict[str, Path]:
    """The prepared channels, with train's one file cut into two halves (one per host) plus schema.json."""
    train = target / "train"
    train.mkdir(parents=True)
    lines = prepared.files["train"][0].read_text().splitlines(keepends=True)
    half = len(lines) // 2
    (train / "part-0.csv").write_text("".join(lines[:half]))
    (train / "part-1.csv").write_text("".join(lines[half:]))
    (train / "schema.json").write_bytes(prepared.schema_path.read_bytes())
    return {"train": train, "validation": prepared.channel("validation"), "test": prepared.channel("test")}


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory, adult_prepared: Prepared) -> TrainingResult:
    """All of Adult, default hyperparameters, on two local hosts."""
    root = tmp_path_factory.mktemp("distributed")
    channels = _shard_train(adult_prepared, root / "data")
    return run_local_training(
        channels,
        hyperparameters={"nthread": "1"},
        instance_count=2,
        work_dir=root / "job",
        env=COLLECTIVE_ENV,
        timeout=300,
    )


@pytest.mark.slow
def test_hosts_are_loopback_addresses_and_read_only_their_shard(two_hosts: TrainingResult) -> None:
    # GIVEN the two-host run
    first, second = (run.root / "input" / "data" / "train" for run in two_hosts.hosts)
    # THEN SM_HOSTS were two loopback addresses, and each host held different train files
    assert [run.host for run in two_hosts.hosts] == ["127.0.0.1", "127.0.0.2"]
    files = [{p.name for p in d.glob("*.csv")} for d in (first, second)]
    assert files[0] and files[1] and not files[0] & files[1]
    # AND schema.json, sharded like any object, reached only the first host (the second got it over the wire)
    assert (first / "schema.json").exists() and not (second / "schema.json").exists()


@pytest.mark.slow
def test_both_ranks_build_byte_identical_models(two_hosts: TrainingResult) -> None:
    # GIVEN rank 0's model directory and rank 1's copy of its model
    rank0 = (two_hosts.hosts[0].model_dir / "xgboost-model").read_bytes()
    rank1 = (two_hosts.hosts[1].output_data_dir / "rank-1" / "xgboost-model").read_bytes()
    # THEN they are the same bytes, and only rank 0 wrote a model directory
    assert rank0 == rank1
    assert list(two_hosts.hosts[1].model_dir.iterdir()) == []


@pytest.mark.slow
def test_distributed_auc_matches_a_single_process(two_hosts: TrainingResult, adult_full_run: FullRun) -> None:
    # GIVEN the two-host run and a single process on the same rows with the same hyperparameters
    single = adult_full_run.job.evaluation()
    both = two_hosts.evaluation
    # THEN test AUC is within 0.002, and every row was counted once
    assert both["splits"]["test"]["auc"] == pytest.approx(single["splits"]["test"]["auc"], abs=0.002)
    assert both["dataset_sizes"] == single["dataset_sizes"]


@pytest.mark.slow
def test_bad_rows_on_one_host_fail_every_host(tmp_path: Path, adult_small: Prepared) -> None:
    # GIVEN two hosts whose second shard has a label 2 in its row 3
    channels = _shard_train(adult_small, tmp_path / "data")
    bad = channels["train"] / "part-1.csv"
    lines = bad.read_text().splitlines()
    lines[2] = "2" + lines[2][1:]
    bad.write_text("\n".join(lines) + "\n")
    # WHEN they train
    with pytest.raises(LocalTrainingError) as failed:
        run_local_training(
            channels,
            hyperparameters={"nthread": "1"},
            instance_count=2,
            work_dir=tmp_path / "job",
            env=COLLECTIVE_ENV,
            timeout=300,
        )
    # THEN both hosts fail with the same reason naming the file and row, and neither leaves a model
    assert "part-1.csv: row 3, column 0 (income): label '2' is not a class index 0..1" in str(failed.value)
    assert all(run.returncode == 2 for run in failed.value.hosts)
    assert all(run.failure and "part-1.csv: row 3" in run.failure for run in failed.value.hosts)
    assert all(list(run.model_dir.iterdir()) == [] for run in failed.value.hosts)
