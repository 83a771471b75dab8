"""QuantileDMatrix vs DMatrix in train.py (issue 12 §4): the same job through train.main, once as it is (the train
rows as a QuantileDMatrix) and once with `train.quantile_train_matrix` forced off (a DMatrix, the path train.py took
before: the floor). Each run is a fresh process; the sides alternate, and the table gives medians.

    python -m bench.quantile_dmatrix            # 20k and 1M generated rows, 3 runs per side (a few minutes, 2 cores)
    python -m bench.quantile_dmatrix --small    # the 20k size only
    python -m bench.quantile_dmatrix --repeats 5
    python -m bench.quantile_dmatrix --rounds 300   # more rounds: the QuantileDMatrix's build cost is once per job

Data: Adult-shaped prepared CSV from bench/scale_data.py (9 categorical columns, 2% of the cells empty), a
validation channel a tenth of train (at least 5,000 rows), 50 rounds (`--rounds`) without early stopping so both
sides boost alike. Per run: wall and CPU seconds of the job (CPU time, all threads, is steadier on a shared
machine), seconds to build the two matrices (a DMatrix defers its sketch and binning to the first round, a
QuantileDMatrix does both when it is built), peak RSS of the whole process (VmHWM, the CSV parse included), what
training and evaluation add to the RSS the channels left (VmHWM reset after reading them; steadier than the whole
peak, since pyarrow's pool hands the parse's memory back to the system in some runs and not in others), and the
SHA-256 of the saved model. It fails unless every run of both sides saved the same model bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.scale_common import REPO, current_rss_mb, peak_rss_mb
from bench.scale_data import adult_schema, write_prepared_csv

SIDES = ("quantile", "dmatrix")


def _reset_peak() -> None:
    """Start VmHWM again from the current RSS (Linux: writing 5 to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def case(spec: dict[str, Any]) -> dict[str, Any]:
    """One run of one side, in this (fresh) process: train.main on the spec's channels."""
    import xgboost as xgb

    from training_scripts import channels, host_group, train

    work = Path(tempfile.mkdtemp(prefix=f"bench-qdm-{spec['side']}-", dir=spec["tmp"]))
    env = {
        "SM_MODEL_DIR": str(work / "model"),
        "SM_OUTPUT_DIR": str(work / "output"),
        "SM_OUTPUT_DATA_DIR": str(work / "output" / "data"),
        "SM_CHECKPOINT_DIR": str(work / "checkpoints"),
        "SM_CHANNEL_TRAIN": spec["train"],
        "SM_CHANNEL_VALIDATION": spec["validation"],
        "SM_HOSTS": '["algo-1"]',
        "SM_CURRENT_HOST": "algo-1",
        "SM_NUM_GPUS": "0",
        "SM_HPS": json.dumps(
            {"num_round": str(spec["rounds"]), "early_stopping_rounds": "0", "nthread": str(spec["nthread"])}
        ),
    }
    os.environ.update(env)
    if spec["side"] == "dmatrix":
        train.quantile_train_matrix = lambda params: False  # the floor: the DMatrix path
    marks: dict[str, float] = {}
    load, build = train.load, train.training_matrices

    def timed_load(args: argparse.Namespace, group: host_group.Group) -> channels.Loaded:
        loaded = load(args, group)
        marks["loaded_peak_mb"], marks["loaded_rss_mb"] = peak_rss_mb(), current_rss_mb()
        _reset_peak()
        return loaded

    def timed_build(loaded: channels.Loaded, params: dict[str, Any]) -> tuple[xgb.DMatrix, xgb.DMatrix]:
        started = time.perf_counter()
        matrices = build(loaded, params)
        marks["matrices_s"] = time.perf_counter() - started
        return matrices

    train.load, train.training_matrices = timed_load, timed_build
    started, cpu = time.perf_counter(), time.process_time()
    code = train.main([])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if code != 0:
        raise SystemExit(f"train.py failed: {(work / 'output' / 'failure').read_text()}")
    model = (work / "model" / "xgboost-model").read_bytes()
    evaluation = json.loads((work / "model" / "evaluation.json").read_text())
    shutil.rmtree(work, ignore_errors=True)
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        **marks,
        "peak_mb": max(marks["loaded_peak_mb"], peak_rss_mb()),
        "training_peak_mb": peak_rss_mb(),  # since the channels were read
        "training_added_mb": peak_rss_mb() - marks["loaded_rss_mb"],
        "model_sha256": hashlib.sha256(model).hexdigest(),
        "validation_logloss": evaluation["splits"]["validation"]["logloss"],
    }


def _spawn(spec: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.quantile_dmatrix", "--case", json.dumps(spec)]
    # Passive OpenMP waiting, as bench/train_adult.py: spinning threads make timings on a busy machine swing.
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{spec['side']} run failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _channels(tmp: Path, rows: int) -> dict[str, str]:
    train_dir, validation_dir = tmp / f"train-{rows}", tmp / f"validation-{rows}"
    train_dir.mkdir()
    validation_dir.mkdir()
    (train_dir / "schema.json").write_text(json.dumps(adult_schema()))
    write_prepared_csv(train_dir / "train.csv", rows=rows, seed=40)
    write_prepared_csv(validation_dir / "validation.csv", rows=max(5_000, rows // 10), seed=41)
    return {"train": str(train_dir), "validation": str(validation_dir)}


def measure(rows: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """`args.repeats` runs of both sides (their order alternating), checked for identical models."""
    spec = {**_channels(tmp, rows), "tmp": str(tmp), "nthread": args.nthread, "rounds": args.rounds}
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for i in range(args.repeats):
        for side in SIDES if i % 2 == 0 else SIDES[::-1]:
            runs[side].append(_spawn({**spec, "side": side}))
    digests = {run["model_sha256"] for side in SIDES for run in runs[side]}
    if len(digests) != 1:
        raise SystemExit(f"{rows:,} rows: the two paths saved different models: {sorted(digests)}")
    return {"rows": rows, "runs": runs, "model_sha256": digests.pop()}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(run[key]) for run in runs)


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| rows | side | job s | job CPU s | matrices s | peak RSS MB | training adds MB | model |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for side in SIDES:
            runs = result["runs"][side]
            name = "QuantileDMatrix (train.py)" if side == "quantile" else "floor: DMatrix"
            lines.append(
                f"| {result['rows']:,} | {name} | {_median(runs, 'seconds'):.2f} | {_median(runs, 'cpu_s'):.2f} "
                f"| {_median(runs, 'matrices_s'):.2f} "
                f"| {_median(runs, 'peak_mb'):.0f} | {_median(runs, 'training_added_mb'):.0f} "
                f"| {result['model_sha256'][:12]} |"
            )
        q, d = result["runs"]["quantile"], result["runs"]["dmatrix"]
        pairs = list(zip(q, d, strict=True))
        ratio = statistics.median(a["seconds"] / b["seconds"] for a, b in pairs)
        cpu_ratio = statistics.median(a["cpu_s"] / b["cpu_s"] for a, b in pairs)
        lines.append(
            f"| {result['rows']:,} | QuantileDMatrix / floor | {ratio:.2f}× | {cpu_ratio:.2f}× | | "
            f"{_median(q, 'peak_mb') - _median(d, 'peak_mb'):+.0f} | "
            f"{_median(q, 'training_added_mb') - _median(d, 'training_added_mb'):+.0f} | identical |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quantile_dmatrix", description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the 20k-row size only")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side and size (default 3)")
    parser.add_argument("--nthread", type=int, default=2, help="XGBoost threads (default 2)")
    parser.add_argument("--rounds", type=int, default=50, help="boosting rounds per job (default 50)")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one run of one side, in a subprocess
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(case(json.loads(args.case))))
        return 0
    sizes = (20_000,) if args.small else (20_000, 1_000_000)
    with tempfile.TemporaryDirectory(prefix="bench-qdm-") as tmp:
        results = [measure(rows, args, Path(tmp)) for rows in sizes]
    print(
        f"train.py, {args.rounds} rounds, nthread {args.nthread}, {os.cpu_count()} CPUs; medians of {args.repeats} "
        "run(s) per side, each in its own process"
    )
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
