"""`sagecycle train` and run_local_training: train.py in a subprocess through the SageMaker contract."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from sagecycle import cli
from sagecycle.local_training import (
    EmptyShardWarning,
    LocalTrainingError,
    host_names,
    package_model,
    run_local_training,
)
from training_scripts.prepare import Prepared

CONTRACT_MEMBERS = ["xgboost-model", "schema.json", "evaluation.json", "baseline.json"]


def _members(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


@pytest.mark.slow
def test_sagecycle_train_without_arguments_packs_adult(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an empty working directory (`make model` runs `sagecycle train --output model.tar.gz`)
    monkeypatch.chdir(tmp_path)
    # WHEN `sagecycle train` runs with no data options (few rounds, to keep the test short)
    code = cli.main(["train", "--hp", "num_round=20", "--hp", "nthread=2"])
    # THEN ./model.tar.gz holds the contract's members and the serving code train.py wrote into code/
    assert code == 0, capsys.readouterr().err
    members = _members(tmp_path / "model.tar.gz")
    assert set(CONTRACT_MEMBERS) <= set(members)
    assert "code/inference.py" in members
    assert "test auc" in capsys.readouterr().out


def test_run_local_training_returns_paths_evaluation_and_time(tmp_path: Path, adult_small: Prepared) -> None:
    # GIVEN the small Adult channels
    channels = {name: adult_small.channel(name) for name in ("train", "validation", "test")}
    # WHEN trained through run_local_training with an output tarball
    result = run_local_training(
        channels,
        hyperparameters={"num_round": 20, "nthread": 2},
        work_dir=tmp_path / "job",
        output_tar=tmp_path / "model.tar.gz",
    )
    # THEN the result points at the model directory, the tarball and the evaluation, with the host's log
    assert sorted(p.name for p in result.model_dir.iterdir()) == sorted([*CONTRACT_MEMBERS, "code"])
    assert result.model_tar == tmp_path / "model.tar.gz" and result.model_tar.is_file()
    # AND the tarball is the model directory as the job left it, nothing added or left out
    on_disk = sorted(p.relative_to(result.model_dir).as_posix() for p in result.model_dir.rglob("*") if p.is_file())
    assert _members(result.model_tar) == on_disk
    assert result.evaluation["dataset_sizes"] == adult_small.sizes
    assert result.wall_seconds > 0
    assert "[final]" in result.log
    # AND the host saw SageMaker's layout and hyperparameters file
    assert (result.hosts[0].root / "input" / "config" / "hyperparameters.json").is_file()
    assert result.hosts[0].host == "algo-1"


def test_failure_raises_with_the_hosts_reason(tmp_path: Path, adult_small: Prepared) -> None:
    # GIVEN an empty validation channel
    empty = tmp_path / "empty"
    empty.mkdir()
    channels = {"train": adult_small.channel("train"), "validation": empty}
    # WHEN trained
    with pytest.raises(LocalTrainingError) as failed:
        run_local_training(channels, hyperparameters={"nthread": 2}, work_dir=tmp_path / "job")
    # THEN a host failed, and the error carries the failure file's reason and the host's exit code
    assert failed.value.code == "host-failed"
    assert "channel 'validation' is empty" in str(failed.value)
    assert failed.value.hosts[0].returncode == 2


def test_a_used_work_dir_is_refused(tmp_path: Path, adult_small: Prepared) -> None:
    # GIVEN a work directory that already holds something
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "leftover").write_text("x")
    # WHEN training is asked to use it
    with pytest.raises(LocalTrainingError) as refused:
        run_local_training({"train": adult_small.channel("train")}, work_dir=tmp_path / "job")
    # THEN it refuses before starting: no host ran
    assert refused.value.code == "work-dir-not-empty"
    assert refused.value.hosts == ()


def test_package_adds_nothing_to_the_model_directory(tmp_path: Path) -> None:
    # GIVEN a model directory with the four artifacts and no code/ (a job that wrote no serving code)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for name in CONTRACT_MEMBERS:
        (model_dir / name).write_text("{}")
    # WHEN packaged
    tar = package_model(model_dir, tmp_path / "model.tar.gz")
    # THEN the tarball has exactly those members (no inference script is slipped in), deterministically
    assert _members(tar) == sorted(CONTRACT_MEMBERS)
    again = package_model(model_dir, tmp_path / "again.tar.gz")
    assert again.read_bytes() == tar.read_bytes()


def test_hosts_are_named_like_sagemaker_alone_and_loopback_together() -> None:
    # GIVEN one and three hosts
    # WHEN they are named
    # THEN one host is algo-1; several are loopback addresses they can bind and connect to
    assert host_names(1) == ["algo-1"]
    assert host_names(3) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]


def test_train_cli_needs_validation_in_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a --data directory without validation/
    (tmp_path / "data" / "train").mkdir(parents=True)
    # WHEN `sagecycle train --data` runs
    code = cli.main(["train", "--data", str(tmp_path / "data"), "--output", str(tmp_path / "m.tar.gz")])
    # THEN it exits 2 naming what is missing
    assert code == 2
    assert "needs train/ and validation/" in capsys.readouterr().err


def test_a_sharded_channel_with_fewer_data_files_than_hosts_warns(tmp_path: Path) -> None:
    # GIVEN a train channel with one data file and schema.json, for two hosts
    from sagecycle.local_training import _stage_channels

    channel = tmp_path / "train"
    channel.mkdir()
    (channel / "part-0.csv").write_text("1,2\n")
    (channel / "schema.json").write_text("{}")
    roots = [tmp_path / "h1", tmp_path / "h2"]
    # WHEN the channel is staged ShardedByS3Key
    with pytest.warns(EmptyShardWarning) as warned:
        _stage_channels({"train": channel}, {}, roots)
    # THEN a warning says one data file for two hosts (schema.json is no data file)
    shards = [w.message for w in warned if isinstance(w.message, EmptyShardWarning)]
    assert [(w.channel, w.files, w.hosts) for w in shards] == [("train", 1, 2)]
    # AND objects are sharded as SageMaker shards them: by key, schema.json included
    assert [sorted(p.name for p in (r / "input/data/train").iterdir()) for r in roots] == [
        ["part-0.csv"],
        ["schema.json"],
    ]


def test_a_relative_work_dir_works(tmp_path: Path, adult_small: Prepared, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a relative work directory (what `sagecycle demo` passes under build/demo)
    monkeypatch.chdir(tmp_path)
    channels = {name: adult_small.channel(name) for name in ("train", "validation")}
    # WHEN trained there
    result = run_local_training(channels, hyperparameters={"num_round": 5, "nthread": 2}, work_dir=Path("rel/job"))
    # THEN the hosts find their code and the model lands under it
    assert result.model_dir == tmp_path / "rel" / "job" / "algo-1" / "model"
    assert (result.model_dir / "xgboost-model").is_file()
