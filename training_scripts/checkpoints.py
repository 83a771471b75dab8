"""Checkpoints for managed-spot restarts: `checkpoint-<rounds>.ubj` files, and the fingerprint that keeps one job
from resuming from another's.

Only rank 0 writes checkpoints. A checkpoint carries the job's fingerprint (its data files, the hyperparameters
that shape the trees, and the schema) as a booster attribute; the model itself never does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import xgboost as xgb

# Imported as training_scripts.* (tests, the CLI), or run as the entry point from /opt/ml/code, where the
# scripts sit flat: there the flat copies beside it are the ones to use, even where the repository's package
# is importable too (the local runner), so a job runs exactly the scripts of its source tarball.
if __package__:
    from training_scripts import data_io
else:
    import data_io  # type: ignore[no-redef]

CHECKPOINT_PREFIX, CHECKPOINT_SUFFIX, CHECKPOINTS_KEPT = "checkpoint-", ".ubj", 2
FINGERPRINT_ATTR = "sagecycle_job_fingerprint"  # a booster attribute in each checkpoint, never in the model
# Hyperparameters that change how fast or how often, not which trees: a resume may differ in these.
_NOT_SHAPING = frozenset({"nthread", "checkpoint_interval", "eval_train", "threshold_method"})


class Checkpoints:
    """`checkpoint-<rounds>.ubj` files (XGBoost's own binary JSON, never pickle), written atomically.

    SageMaker syncs the directory to S3 and restores it when a managed-spot job restarts, so the newest
    checkpoint that loads is where training resumes. Early-stopping state rides along as the booster's
    best_iteration/best_score attributes.
    """

    def __init__(self, directory: str | Path, interval: int, fingerprint: str = "") -> None:
        self.directory = Path(directory)
        self.interval = interval
        self.fingerprint = fingerprint  # of this job's data and hyperparameters; see `job_fingerprint`

    def paths(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        found = [
            p
            for p in self.directory.glob(f"{CHECKPOINT_PREFIX}*{CHECKPOINT_SUFFIX}")
            if p.stem[len(CHECKPOINT_PREFIX) :].isdigit()
        ]
        return sorted(found, key=lambda p: int(p.stem[len(CHECKPOINT_PREFIX) :]))

    def latest(self) -> bytes | None:
        """The newest checkpoint of this very job that XGBoost can load.

        A torn file is skipped for an older one. A checkpoint whose fingerprint differs (another run's data or
        hyperparameters left in a shared directory) is never resumed from: the job starts fresh and says why.
        """
        for path in reversed(self.paths()):
            try:
                raw = path.read_bytes()
                booster = xgb.Booster(model_file=bytearray(raw))
            except (OSError, xgb.core.XGBoostError) as exc:
                print(f"checkpoint {path} is unusable ({exc}); trying an older one", flush=True)
                continue
            found = booster.attr(FINGERPRINT_ATTR)
            if found != self.fingerprint:
                print(
                    f"not resuming from {path}: it belongs to another job (data or hyperparameters differ: "
                    f"fingerprint {(found or 'none')[:12]} vs {self.fingerprint[:12]}); training from scratch",
                    flush=True,
                )
                return None
            return raw
        return None

    def save(self, booster: xgb.Booster, rounds: int) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{CHECKPOINT_PREFIX}{rounds:06d}{CHECKPOINT_SUFFIX}"
        booster.set_attr(**{FINGERPRINT_ATTR: self.fingerprint})
        try:
            data_io.write_text_atomic(path, bytes(booster.save_raw("ubj")))
        finally:
            booster.set_attr(**{FINGERPRINT_ATTR: None})  # the model itself never carries it
        for old in self.paths()[:-CHECKPOINTS_KEPT]:
            old.unlink(missing_ok=True)
        return path


def file_fingerprints(files: list[Path]) -> list[tuple[str, int, str]]:
    """(name, size, sha256) of each channel file, streamed: what makes two jobs' data the same."""
    out = []
    for path in files:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        out.append((path.name, path.stat().st_size, digest.hexdigest()))
    return out


def job_fingerprint(channels: dict[str, list[list[tuple[str, int, str]]]], hps: dict[str, Any], schema: Any) -> str:
    """One hash over every host's channel files, the hyperparameters that shape the trees, and the schema."""
    shaping = {k: v for k, v in sorted(hps.items()) if k not in _NOT_SHAPING}
    doc = {"channels": channels, "hyperparameters": shaping, "schema": schema}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
