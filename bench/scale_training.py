"""The training section of bench/scale.py: the local runner (sagecycle.local_training.run_local_training) on a
generated Adult-shaped train channel (1M rows in two files plus schema.json, ShardedByS3Key; `--small`: 100k
rows) and a 100k-row validation channel, with 1 host and with 2 hosts. Each host gets nthread = CPUs / hosts
(the runner's SM_NUM_CPUS). Both run a fixed number of rounds (early stopping off), so every side does the
same boosting. Floor: plain `xgboost.train` in one process with the same parameters (train.py's resolved
hyperparameters, every core): pyarrow reads the same files, then DMatrix and the same rounds on the same
validation set. The project's peak RSS is its largest host process's (the runner's children).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.scale_common import Clock, Row, current_rss_mb, paired, peak_rss_mb, summary
from bench.scale_data import adult_schema, write_prepared_csv

SIDES = ("1 host", "2 hosts", "floor")


def _hyperparameters(spec: dict[str, Any]) -> dict[str, str]:
    return {"num_round": str(spec["rounds"]), "early_stopping_rounds": "0"}


def training_hosts(spec: dict[str, Any], hosts: int) -> dict[str, Any]:
    """train.py through the local runner: the source tarball staged, one process per host, the model packed."""
    from sagecycle.local_training import run_local_training

    start_rss = current_rss_mb()
    work = Path(tempfile.mkdtemp(prefix="bench-train-", dir=spec["tmp"]))
    channels = {name: spec[name] for name in ("train", "validation")}
    clock = Clock()
    result = run_local_training(channels, hyperparameters=_hyperparameters(spec), instance_count=hosts, work_dir=work)
    seconds, cpu = clock.stop()
    booster = json.loads((result.model_dir / "xgboost-model").read_text())["learner"]["gradient_booster"]
    trees = int(booster["model"]["gbtree_model_param"]["num_trees"])  # binary: one tree per round
    shutil.rmtree(work, ignore_errors=True)
    if trees != spec["rounds"]:
        raise RuntimeError(f"training: {hosts} host(s) built {trees} trees, expected {spec['rounds']}")
    hosts_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest host process
    runner = peak_rss_mb()
    return {"seconds": seconds, "cpu_s": cpu, "rss_mb": hosts_rss, "rss_start_mb": start_rss, "runner_mb": runner}


def training_one(spec: dict[str, Any]) -> dict[str, Any]:
    return training_hosts(spec, 1)


def training_two(spec: dict[str, Any]) -> dict[str, Any]:
    return training_hosts(spec, 2)


def training_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """pyarrow reads the files, xgboost.train boosts with train.py's parameters on every core."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import xgboost as xgb

    from training_scripts import data_io, train

    start_rss = current_rss_mb()
    schema = data_io.load_schema(Path(spec["train"]) / "schema.json")
    hps = train.resolve_hyperparameters({**_hyperparameters(spec), "objective": schema.objective}, {})
    hps["eval_metric"] = hps["eval_metric"] or list(train.DEFAULT_EVAL_METRICS[schema.objective])  # as train.py
    params = train.xgboost_params(hps, num_gpus=0)
    params["nthread"] = os.cpu_count() or 1
    names = ["label", *schema.feature_names]
    read = pcsv.ReadOptions(column_names=names)
    convert = pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.float32()), null_values=["", "?"])
    clock = Clock()

    def matrix(files: list[Path]) -> xgb.DMatrix:
        table = pa.concat_tables(pcsv.read_csv(f, read_options=read, convert_options=convert) for f in files)
        values = np.column_stack([table.column(n).to_numpy(zero_copy_only=False) for n in names])
        return xgb.DMatrix(
            values[:, 1:],
            label=values[:, 0],
            feature_names=list(schema.feature_names),
            feature_types=schema.xgb_feature_types,
            enable_categorical=True,
            nthread=params["nthread"],
        )

    dtrain = matrix(sorted(Path(spec["train"]).glob("*.csv")))
    dval = matrix(sorted(Path(spec["validation"]).glob("*.csv")))
    evals = [(dtrain, "train"), (dval, "validation")] if hps["eval_train"] else [(dval, "validation")]
    booster = xgb.train(params, dtrain, num_boost_round=hps["num_round"], evals=evals, verbose_eval=False)
    booster.save_model(str(Path(spec["tmp"]) / "floor-model.json"))
    seconds, cpu = clock.stop()
    if booster.num_boosted_rounds() != spec["rounds"]:
        raise RuntimeError(f"training floor: {booster.num_boosted_rounds()} rounds, expected {spec['rounds']}")
    return {"seconds": seconds, "cpu_s": cpu, "rss_mb": peak_rss_mb(), "rss_start_mb": start_rss}


def training_rows(args: argparse.Namespace) -> list[Row]:
    size, rounds = (100_000, 30) if args.small else (1_000_000, 30)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        train_dir, validation_dir = Path(tmp) / "train", Path(tmp) / "validation"
        train_dir.mkdir()
        validation_dir.mkdir()
        (train_dir / "schema.json").write_text(json.dumps(adult_schema()))
        for part in range(2):  # one data file per host: ShardedByS3Key shards by object
            write_prepared_csv(train_dir / f"part-{part}.csv", rows=size // 2, seed=20 + part)
        write_prepared_csv(validation_dir / "validation.csv", rows=max(10_000, size // 10), seed=30)
        megabytes = sum(p.stat().st_size for p in train_dir.glob("*.csv")) / 1e6
        spec = {"train": str(train_dir), "validation": str(validation_dir), "rounds": rounds, "tmp": tmp}
        runs = paired("training", spec, args.repeats, SIDES)
        cpus = os.cpu_count() or 1
        for side in ("1 host", "2 hosts"):
            hosts = int(side.split()[0])
            rows.append(
                summary(
                    f"training, {side}",
                    f"{size:,} rows ({megabytes:.0f} MB), {rounds} rounds",
                    runs[side],
                    runs["floor"],
                    floor=f"xgboost.train, nthread {cpus}",
                    target="no oversubscription: 2 hosts near the floor",
                    note=f"nthread {max(1, cpus // hosts)} per host; MB = the largest host process",
                )
            )
    return rows


CASES = {"1 host": training_one, "2 hosts": training_two, "floor": training_floor}
