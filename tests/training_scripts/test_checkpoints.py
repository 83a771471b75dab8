"""Checkpoints: written every `checkpoint_interval` rounds to SM_CHECKPOINT_DIR, and resumed from on restart
(managed spot training restores the directory when it restarts a job)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xgboost as xgb

from tests.training_scripts.conftest import Job, make_job
from training_scripts import train
from training_scripts.prepare import Prepared

TRAIN_PY = Path(train.__file__)
# No row/column sampling: then a resumed run must rebuild exactly the trees of an uninterrupted one.
EXACT = {"subsample": "1", "colsample_bytree": "1", "checkpoint_interval": "10"}


def _checkpoints(job: Job) -> list[str]:
    return sorted(p.name for p in job.checkpoint_dir.glob("checkpoint-*.ubj"))


def _rounds(path: Path) -> int:
    return xgb.Booster(model_file=bytearray(path.read_bytes())).num_boosted_rounds()


def test_checkpoints_are_saved_every_interval_keeping_the_last_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN 30 rounds without early stopping, a checkpoint every 10
    job = make_job(tmp_path, adult_small)
    # WHEN trained
    code = job.run(monkeypatch, {**EXACT, "num_round": "30", "early_stopping_rounds": "0"})
    # THEN the last two checkpoints remain, each loadable with its number of rounds
    assert code == 0, job.failure
    assert _checkpoints(job) == ["checkpoint-000020.ubj", "checkpoint-000030.ubj"]
    assert _rounds(job.checkpoint_dir / "checkpoint-000020.ubj") == 20


def test_resumed_run_rebuilds_the_same_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], adult_small: Prepared
) -> None:
    # GIVEN an uninterrupted 30-round run
    hps = {**EXACT, "num_round": "30", "early_stopping_rounds": "0"}
    first = make_job(tmp_path / "first", adult_small)
    assert first.run(monkeypatch, hps) == 0, first.failure
    # AND a second job that was interrupted after its round-20 checkpoint
    second = make_job(tmp_path / "second", adult_small)
    shutil.copytree(first.checkpoint_dir, second.checkpoint_dir)
    (second.checkpoint_dir / "checkpoint-000030.ubj").unlink()
    capsys.readouterr()
    # WHEN the second job restarts
    code = second.run(monkeypatch, hps)
    # THEN it resumes after round 19 and writes the very same model
    assert code == 0, second.failure
    assert "resuming from a checkpoint after round 19" in capsys.readouterr().out
    assert (second.model_dir / "xgboost-model").read_bytes() == (first.model_dir / "xgboost-model").read_bytes()


def test_resume_keeps_the_early_stopping_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN a run that stops early (patience 5), checkpointing every 10 rounds
    hps = {**EXACT, "num_round": "500", "eta": "0.5", "early_stopping_rounds": "5"}
    first = make_job(tmp_path / "first", adult_small)
    assert first.run(monkeypatch, hps) == 0, first.failure
    # AND a restart from the checkpoint before the final one
    second = make_job(tmp_path / "second", adult_small)
    shutil.copytree(first.checkpoint_dir, second.checkpoint_dir)
    (second.checkpoint_dir / _checkpoints(first)[-1]).unlink()
    # WHEN the second job runs
    code = second.run(monkeypatch, hps)
    # THEN it stops at the same round with the same best iteration and model
    assert code == 0, second.failure
    assert second.evaluation()["best_iteration"] == first.evaluation()["best_iteration"]
    assert (second.model_dir / "xgboost-model").read_bytes() == (first.model_dir / "xgboost-model").read_bytes()


def test_a_torn_newest_checkpoint_falls_back_to_an_older_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], adult_small: Prepared
) -> None:
    # GIVEN checkpoints at 20 and 30 rounds, the newest one cut short
    hps = {**EXACT, "num_round": "30", "early_stopping_rounds": "0"}
    job = make_job(tmp_path, adult_small)
    assert job.run(monkeypatch, hps) == 0, job.failure
    newest = job.checkpoint_dir / "checkpoint-000030.ubj"
    newest.write_bytes(newest.read_bytes()[:100])
    capsys.readouterr()
    # WHEN the job restarts
    code = job.run(monkeypatch, hps)
    # THEN it says so and resumes from round 20
    assert code == 0, job.failure
    out = capsys.readouterr().out
    assert "is unusable" in out and "resuming from a checkpoint after round 19" in out


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_a_restart_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adult_small: Prepared
) -> None:
    # GIVEN train.py as a process with more rounds than it could finish, checkpointing every 5 rounds
    job = make_job(tmp_path, adult_small)
    hps = {"num_round": "1000000", "early_stopping_rounds": "0", "checkpoint_interval": "5", "nthread": "1"}
    process = subprocess.Popen(
        [sys.executable, str(TRAIN_PY)], env=job.env(hps), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not _checkpoints(job) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _checkpoints(job), "no checkpoint appeared"
        # WHEN SageMaker stops it (spot interruption sends SIGTERM)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    # THEN it exits 143 with a reason, leaves a checkpoint and no model
    assert code == train.EXIT_INTERRUPTED
    assert job.failure is not None and "SIGTERM" in job.failure
    assert job.model_files() == []
    done = _rounds(job.checkpoint_dir / _checkpoints(job)[-1])
    # AND a restart asked for five more rounds trains just those
    assert job.run(monkeypatch, {**hps, "num_round": str(done + 5)}) == 0, job.failure
    assert _rounds(job.model_dir / "xgboost-model") == done + 5


@pytest.mark.parametrize(
    ("change", "hps_override"),
    [("other data", {}), ("other hyperparameters", {"max_depth": "3"})],
)
def test_a_checkpoint_of_another_job_is_never_resumed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    adult_small: Prepared,
    change: str,
    hps_override: dict[str, str],
) -> None:
    # GIVEN a finished job's checkpoints left in the directory a second job uses
    hps = {**EXACT, "num_round": "20", "early_stopping_rounds": "0"}
    first = make_job(tmp_path / "first", adult_small)
    assert first.run(monkeypatch, hps) == 0, first.failure
    second = make_job(tmp_path / "second", adult_small)
    shutil.copytree(first.checkpoint_dir, second.checkpoint_dir)
    # AND the second job differs: one train row less, or one hyperparameter
    if change == "other data":
        train_file = next(p for p in second.channels["train"].rglob("*.csv"))
        lines = train_file.read_text().splitlines()
        train_file.write_text("\n".join(lines[:-1]) + "\n")
    capsys.readouterr()
    # WHEN the second job runs
    code = second.run(monkeypatch, {**hps, **hps_override})
    # THEN it trains from scratch and says why in one line
    out = capsys.readouterr().out
    assert code == 0, second.failure
    assert "resuming from a checkpoint" not in out
    assert sum("belongs to another job" in line for line in out.splitlines()) == 1
    # AND its model carries no fingerprint attribute
    booster = xgb.Booster(model_file=bytearray((second.model_dir / "xgboost-model").read_bytes()))
    assert booster.attr(train.FINGERPRINT_ATTR) is None


def test_local_runs_default_to_a_checkpoint_directory_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN no SageMaker training environment
    for name in ("SM_CHECKPOINT_DIR", "TRAINING_JOB_NAME", "SM_TRAINING_ENV"):
        monkeypatch.delenv(name, raising=False)
    # WHEN the default is taken, and again inside a training job
    local = train.default_checkpoint_dir({})
    in_job = train.default_checkpoint_dir({"TRAINING_JOB_NAME": "job-1"})
    # THEN a local run gets its own directory, never the shared /opt/ml/checkpoints a job restores
    assert local != "/opt/ml/checkpoints" and str(os.getpid()) in local
    assert in_job == "/opt/ml/checkpoints"
