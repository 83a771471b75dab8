"""Fixtures for training_scripts: prepared data sets (built once per session) and a SageMaker-like job tree.

`Job` lays out what a training container sees (input/data/<channel>, model, output, checkpoints) and runs
train.main in-process with the SM_* variables set, which keeps a run on a few thousand rows well under a
second. Only the tests that need separate processes (distributed, SIGTERM, `sagecycle train`) start them.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_digits

from training_scripts import train
from training_scripts.prepare import EMBEDDED_ADULT, Prepared, prepare

# Small runs: two threads (the CI box has two cores) and few rounds.
FAST_HPS = {"nthread": "2", "num_round": "40", "eta": "0.3"}


@dataclass
class Job:
    """One host's /opt/ml-like tree and the environment that points train.py at it."""

    root: Path
    channels: dict[str, Path]

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def failure(self) -> str | None:
        path = self.output_dir / "failure"
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def model_files(self) -> list[str]:
        return sorted(p.name for p in self.model_dir.iterdir()) if self.model_dir.is_dir() else []

    def evaluation(self) -> dict[str, Any]:
        return json.loads((self.model_dir / "evaluation.json").read_text(encoding="utf-8"))

    def env(self, hps: Mapping[str, Any] | None = None) -> dict[str, str]:
        env = {
            "SM_MODEL_DIR": str(self.model_dir),
            "SM_OUTPUT_DIR": str(self.output_dir),
            "SM_OUTPUT_DATA_DIR": str(self.output_dir / "data"),
            "SM_CHECKPOINT_DIR": str(self.checkpoint_dir),
            "SM_HOSTS": '["algo-1"]',
            "SM_CURRENT_HOST": "algo-1",
            "SM_NUM_GPUS": "0",
            "SM_HPS": json.dumps({k: str(v) for k, v in {**FAST_HPS, **(hps or {})}.items()}),
        }
        env.update({f"SM_CHANNEL_{name.upper()}": str(path) for name, path in self.channels.items()})
        return env

    def run(
        self, monkeypatch: pytest.MonkeyPatch, hps: Mapping[str, Any] | None = None, argv: list[str] | None = None
    ) -> int:
        """train.main in this process, with only this job's SM_* variables set."""
        with monkeypatch.context() as patch:
            for name in [k for k in os.environ if k.startswith("SM_")]:
                patch.delenv(name)
            for name, value in self.env(hps).items():
                patch.setenv(name, value)
            return train.main(argv or [])


def make_job(root: Path, source: Path | Prepared, channels: tuple[str, ...] = ("train", "validation", "test")) -> Job:
    """Copy a prepared data set's channels into a fresh job tree (tests may then spoil the copies)."""
    base = source.output_dir if isinstance(source, Prepared) else source
    job = Job(root, {})
    for name in channels:
        if (base / name).is_dir():
            shutil.copytree(base / name, root / "input" / "data" / name)
            job.channels[name] = root / "input" / "data" / name
    for sub in ("model", "output"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return job


@pytest.fixture(scope="session")
def adult_prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """The embedded Adult data with prepare's defaults: 23,443 / 2,605 / 6,513 rows."""
    return prepare(output_dir=tmp_path_factory.mktemp("adult"))


@pytest.fixture(scope="session")
def adult_small_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 4,000 rows of Adult as a raw CSV with a header (gzipped, like the embedded copy)."""
    path = tmp_path_factory.mktemp("adult-small-raw") / "adult-small.csv.gz"
    with gzip.open(EMBEDDED_ADULT, "rt") as source, gzip.open(path, "wt") as target:
        for number, line in enumerate(source):
            if number > 4000:
                break
            target.write(line)
    return path


@pytest.fixture(scope="session")
def adult_small(tmp_path_factory: pytest.TempPathFactory, adult_small_raw: Path) -> Prepared:
    """4,000 Adult rows prepared: quick to train, same schema as the full set."""
    return prepare(adult_small_raw, target="income", output_dir=tmp_path_factory.mktemp("adult-small"))


@pytest.fixture(scope="session")
def digits_prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """sklearn's digits (1,797 rows, 10 classes) through prepare: a multiclass set."""
    data = load_digits(as_frame=True)
    frame = data.frame.rename(columns={"target": "digit"})
    raw = tmp_path_factory.mktemp("digits-raw") / "digits.csv"
    frame.to_csv(raw, index=False)
    return prepare(raw, target="digit", output_dir=tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def diabetes_prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """sklearn's diabetes (442 rows, a continuous target) through prepare: a regression set."""
    data = load_diabetes(as_frame=True)
    frame: pd.DataFrame = data.frame.rename(columns={"target": "progression"})
    raw = tmp_path_factory.mktemp("diabetes-raw") / "diabetes.csv"
    frame.to_csv(raw, index=False)
    return prepare(raw, target="progression", output_dir=tmp_path_factory.mktemp("diabetes"))


@dataclass(frozen=True)
class FullRun:
    job: Job
    exit_code: int
    log: str


@pytest.fixture(scope="session")
def adult_full_run(tmp_path_factory: pytest.TempPathFactory, adult_prepared: Prepared) -> Iterator[FullRun]:
    """One training run on all of Adult with the default hyperparameters (only nthread set)."""
    job = make_job(tmp_path_factory.mktemp("adult-full-job"), adult_prepared)
    log = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(log):
        for name in [k for k in os.environ if k.startswith("SM_")]:
            patch.delenv(name)
        env = job.env()
        env["SM_HPS"] = json.dumps({"nthread": "2"})  # the defaults, untouched
        for name, value in env.items():
            patch.setenv(name, value)
        code = train.main([])
    yield FullRun(job, code, log.getvalue())
