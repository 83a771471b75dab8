"""`sagecycle train`: run training_scripts/train.py on this machine through the SageMaker contract.

`run_local_training` builds, per host, the tree a SageMaker training container sees (input/data/<channel>,
model, output, output/data, checkpoints), sets the SM_* variables (SM_HOSTS, SM_CURRENT_HOST, SM_HPS,
SM_CHANNEL_*, SM_NUM_GPUS=0, SM_NUM_CPUS = this machine's cores / hosts, ...), extracts the very source tarball
the Model stack uploads into code/ as the container's /opt/ml/code, runs `python train.py` once per host
(N hosts = N local processes on 127.0.0.1, 127.0.0.2, ...), and packs rank 0's model directory into
model.tar.gz exactly as the job left it. The offline rehearsal reuses it as its SageMaker stand-in.

Channel distribution: `FullyReplicated` gives every host all files; `ShardedByS3Key` gives each host every
N-th object (in key order), schema.json included, as SageMaker does (train.py passes the schema on to the
hosts without it). A sharded channel with fewer data files than hosts warns: the hosts without one train on
nothing. Train is sharded, the other channels replicated by default.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sagecycle.cli import HelpFormatter
from stacks.packaging import SCRIPTS_DIR, build_sourcedir, deterministic_targz

TRAIN_SCRIPT = "train.py"
Distribution = Literal["FullyReplicated", "ShardedByS3Key"]
_GRACE_SECONDS = 60.0  # how long the other hosts get to notice a failed one (a loaded 2-core CI box is slow)


# Why a local training run failed, for code and tests that branch on it (the text is for people).
LocalTrainingErrorCode = Literal[
    "no-channel-source",  # a channel's source path does not exist
    "work-dir-not-empty",  # the work directory already holds something (one run never meets another's files)
    "host-failed",  # a host exited non-zero or was stopped (`hosts` holds every host's run)
]


class LocalTrainingError(RuntimeError):
    """Training failed on at least one host, or could not start; the message is that host's failure reason.

    `code` (a LocalTrainingErrorCode: no-channel-source, work-dir-not-empty, host-failed) says which; every raise
    site sets it. `hosts` holds the hosts' runs when they ran.
    """

    def __init__(self, message: str, *, code: LocalTrainingErrorCode, hosts: Sequence[HostRun] = ()) -> None:
        super().__init__(message)
        self.code: LocalTrainingErrorCode = code
        self.hosts = tuple(hosts)


class EmptyShardWarning(UserWarning):
    """A ShardedByS3Key channel has fewer data files than hosts: `hosts - files` hosts get no rows of `channel`."""

    def __init__(self, message: str, *, channel: str, files: int, hosts: int) -> None:
        super().__init__(message)
        self.channel = channel
        self.files = files
        self.hosts = hosts


@dataclass(frozen=True)
class HostRun:
    """One host's process: its /opt/ml-like tree, exit code, log file and failure reason (if any)."""

    host: str
    root: Path
    returncode: int
    log_path: Path
    failure: str | None

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_data_dir(self) -> Path:
        return self.root / "output" / "data"

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@dataclass(frozen=True)
class TrainingResult:
    """A finished local training job."""

    model_dir: Path  # rank 0's SM_MODEL_DIR: xgboost-model, schema.json, evaluation.json, baseline.json
    model_tar: Path | None  # model.tar.gz when `output_tar` was given
    evaluation: dict[str, Any]  # evaluation.json
    wall_seconds: float
    work_dir: Path
    hosts: tuple[HostRun, ...]

    @property
    def log(self) -> str:
        """Rank 0's training log (metric lines included)."""
        return self.hosts[0].log


def free_port() -> int:
    """A TCP port that was free a moment ago (for the collective's tracker)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def host_names(instance_count: int) -> list[str]:
    """SageMaker names hosts algo-1..N; locally N > 1 hosts are loopback addresses so they can connect."""
    if instance_count == 1:
        return ["algo-1"]
    if not 1 <= instance_count <= 250:
        raise ValueError(f"instance_count must be 1..250, got {instance_count}")
    return [f"127.0.0.{i + 1}" for i in range(instance_count)]


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _channel_objects(source: Path) -> list[tuple[Path, Path]]:
    """(file, key relative to the channel) for a channel directory, or a single file."""
    if source.is_file():
        return [(source, Path(source.name))]
    if not source.is_dir():
        raise LocalTrainingError(f"channel source {source} does not exist", code="no-channel-source")
    return [(p, p.relative_to(source)) for p in sorted(source.rglob("*")) if p.is_file()]


def is_side_file(key: Path) -> bool:
    """schema.json and other JSON side files: not rows. Sharded like any object (SageMaker shards by key, whatever
    the object holds); train.py sends schema.json to the hosts that did not get it."""
    return key.suffix == ".json"


def _stage_channels(channels: Mapping[str, Path], distribution: Mapping[str, Distribution], roots: list[Path]) -> None:
    for name, source in channels.items():
        objects = _channel_objects(source)
        mode = distribution.get(name, "ShardedByS3Key" if name == "train" else "FullyReplicated")
        data = [(path, key) for path, key in objects if not is_side_file(key)]
        if mode == "ShardedByS3Key" and len(roots) > 1 and len(data) < len(roots):
            warnings.warn(
                EmptyShardWarning(
                    f"channel {name!r} has {len(data)} data file(s) for {len(roots)} hosts: "
                    f"{len(roots) - len(data)} host(s) get no {name} rows (split the data into at least one file "
                    "per host; ShardedByS3Key shards by object, never inside one)",
                    channel=name,
                    files=len(data),
                    hosts=len(roots),
                ),
                stacklevel=3,
            )
        for rank, root in enumerate(roots):
            channel_dir = root / "input" / "data" / name
            channel_dir.mkdir(parents=True, exist_ok=True)
            mine = objects[rank :: len(roots)] if mode == "ShardedByS3Key" else objects
            for path, key in mine:
                _link_or_copy(path, channel_dir / key)


def _host_env(
    root: Path,
    hosts: list[str],
    host: str,
    channels: Sequence[str],
    hyperparameters: Mapping[str, str],
    tracker_port: int,
    extra: Mapping[str, str],
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    env.update(
        {
            "SM_HOSTS": json.dumps(hosts),
            "SM_CURRENT_HOST": host,
            "SM_NUM_GPUS": "0",
            # The hosts share this machine: each gets its share of the cores, as one instance has its own.
            "SM_NUM_CPUS": str(max(1, (os.cpu_count() or 1) // len(hosts))),
            "SM_HPS": json.dumps(dict(hyperparameters)),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_MODEL_DIR": str(root / "model"),
            "SM_OUTPUT_DIR": str(root / "output"),
            "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
            "SM_INPUT_DIR": str(root / "input"),
            "SM_INPUT_DATA_DIR": str(root / "input" / "data"),
            "SM_INPUT_CONFIG_DIR": str(root / "input" / "config"),
            "SM_CHECKPOINT_DIR": str(root / "checkpoints"),
            "SAGECYCLE_TRACKER_PORT": str(tracker_port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({f"SM_CHANNEL_{name.upper()}": str(root / "input" / "data" / name) for name in channels})
    env.update(extra)
    return env


def _pump(stream: Any, log_path: Path, prefix: str | None) -> None:
    with open(log_path, "w", encoding="utf-8") as log:
        for line in iter(stream.readline, ""):
            log.write(line)
            log.flush()
            if prefix is not None:
                sys.stdout.write(f"{prefix}{line}")
                sys.stdout.flush()


def _stop(processes: Sequence[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 5
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait(processes: Sequence[subprocess.Popen[str]], timeout: float | None) -> str | None:
    """Wait for every process; stop the rest when one fails or the time is up. Returns why it stopped early."""
    deadline = None if timeout is None else time.monotonic() + timeout
    failed_at: float | None = None
    while any(p.poll() is None for p in processes):
        now = time.monotonic()
        if failed_at is None and any(p.returncode not in (None, 0) for p in processes):
            failed_at = now  # the others may be blocked on a collective with the failed host
        if failed_at is not None and now - failed_at > _GRACE_SECONDS:
            _stop(processes)
            return "a host failed; the others were stopped"
        if deadline is not None and now > deadline:
            _stop(processes)
            return f"timed out after {timeout:.0f}s"
        time.sleep(0.05)
    return None


def package_model(model_dir: Path, output_tar: Path) -> Path:
    """model.tar.gz: exactly the files the job left in its model directory, as SageMaker packs them.

    Nothing is added here (train.py writes its own serving code into code/), so a model that serves locally
    serves from a real training job's artifact too. Deterministic: members in path order, fixed metadata.
    """
    files = sorted(p for p in model_dir.rglob("*") if p.is_file())
    members = [(p.relative_to(model_dir).as_posix(), p.read_bytes()) for p in files]
    output_tar.parent.mkdir(parents=True, exist_ok=True)
    output_tar.write_bytes(deterministic_targz(members))
    return output_tar


def run_local_training(
    channels: Mapping[str, str | Path],
    *,
    hyperparameters: Mapping[str, Any] | None = None,
    instance_count: int = 1,
    work_dir: str | Path | None = None,
    output_tar: str | Path | None = None,
    distribution: Mapping[str, Distribution] | None = None,
    tracker_port: int | None = None,
    timeout: float | None = 3600.0,
    stream_logs: bool = False,
    env: Mapping[str, str] | None = None,
    scripts_dir: str | Path = SCRIPTS_DIR,
) -> TrainingResult:
    """Run train.py on `instance_count` local "hosts" and return rank 0's results.

    Args:
        channels: channel name -> directory (or single file), e.g. {"train": ..., "validation": ..., "test": ...}.
        hyperparameters: SageMaker hyperparameters (sent as strings, via SM_HPS and as --flags).
        instance_count: hosts; each is a process, and N > 1 train one model through XGBoost's collective.
        work_dir: where the per-host /opt/ml-like trees go (must be empty or absent); default a new temp dir,
            which is kept so the result's paths stay valid (the caller removes it).
        output_tar: write model.tar.gz here.
        distribution: per channel; default train ShardedByS3Key, everything else FullyReplicated.
        tracker_port: the collective's tracker port; default a free one.
        timeout: seconds for the whole job; None waits forever.
        stream_logs: echo every host's log to stdout (prefixed by host when N > 1).
        env: extra environment for the processes (e.g. SAGECYCLE_COLLECTIVE_TIMEOUT).
    Returns:
        TrainingResult. Raises LocalTrainingError with the failing host's reason when a host fails.
    """
    started = time.perf_counter()
    # Absolute: the hosts run with their code directory as the working directory.
    work = (Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="sagecycle-train-"))).resolve()
    if work.exists() and any(work.iterdir()):
        raise LocalTrainingError(f"work_dir {work} is not empty", code="work-dir-not-empty")
    hosts = host_names(instance_count)
    roots = [work / host for host in hosts]
    for root in roots:
        for sub in ("model", "output/data", "checkpoints", "input/config"):
            (root / sub).mkdir(parents=True, exist_ok=True)
    sources = {name: Path(path) for name, path in channels.items()}
    _stage_channels(sources, distribution or {}, roots)
    # The container receives the source tarball extracted in /opt/ml/code and runs `python train.py` there: stage
    # the very tarball a real job gets (the same builder the Model stack uploads).
    code = work / "code"
    code.mkdir(parents=True, exist_ok=True)
    with tarfile.open(build_sourcedir(work / "sourcedir", Path(scripts_dir))) as tar:
        tar.extractall(code, filter="data")
    hps = {str(k): str(v) for k, v in (hyperparameters or {}).items()}
    port = tracker_port or free_port()
    argv = [arg for key, value in hps.items() for arg in (f"--{key}", value)]

    processes: list[subprocess.Popen[str]] = []
    pumps: list[threading.Thread] = []
    log_paths = [root / "output" / "train.log" for root in roots]
    try:
        for host, root, log_path in zip(hosts, roots, log_paths, strict=True):
            (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hps), encoding="utf-8")
            host_env = _host_env(root, hosts, host, list(sources), hps, port, env or {})
            process = subprocess.Popen(
                [sys.executable, str(code / TRAIN_SCRIPT), *argv],
                cwd=code,
                env=host_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            )
            processes.append(process)
            prefix = (f"[{host}] " if len(hosts) > 1 else "") if stream_logs else None
            pump = threading.Thread(target=_pump, args=(process.stdout, log_path, prefix), daemon=True)
            pump.start()
            pumps.append(pump)
        stopped = _wait(processes, timeout)
    finally:
        _stop(processes)
        for pump in pumps:
            pump.join(timeout=5)

    runs = tuple(
        HostRun(host, root, process.returncode, log_path, _failure(root))
        for host, root, process, log_path in zip(hosts, roots, processes, log_paths, strict=True)
    )
    failed = [run for run in runs if run.returncode != 0]
    if failed or stopped:
        reason = next((run.failure for run in failed if run.failure), None) or stopped or "training failed"
        where = next((run for run in failed if run.failure), failed[0] if failed else runs[0])
        raise LocalTrainingError(
            f"{reason}\n(host {where.host}, exit code {where.returncode}, log {where.log_path})",
            code="host-failed",
            hosts=runs,
        )
    model_dir = runs[0].model_dir
    evaluation = json.loads((model_dir / "evaluation.json").read_text(encoding="utf-8"))
    model_tar = package_model(model_dir, Path(output_tar)) if output_tar is not None else None
    return TrainingResult(model_dir, model_tar, evaluation, time.perf_counter() - started, work, runs)


def _failure(root: Path) -> str | None:
    path = root / "output" / "failure"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


# --- the command line ------------------------------------------------------------------------------


def _hyperparameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sagecycle train",
        formatter_class=HelpFormatter,
        description="Train through the SageMaker script-mode contract on this machine and write model.tar.gz. "
        "With no data options it prepares the embedded Adult data first.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help="a prepared directory with train/, validation/ (and test/)")
    source.add_argument("--input", help="a raw CSV with a header to prepare first (see `sagecycle prepare`)")
    parser.add_argument("--target", help="label column of --input")
    parser.add_argument("-o", "--output", default="model.tar.gz", help="model.tar.gz path")
    parser.add_argument("--instances", type=int, default=1, help="local hosts (processes) training one model")
    parser.add_argument(
        "--hp", type=_hyperparameter, action="append", default=[], metavar="KEY=VALUE", help="a hyperparameter (repeat)"
    )
    parser.add_argument("--work-dir", help="keep the per-host trees and logs here (default: a temp dir, removed)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds for the whole job")
    parser.add_argument("-v", "--verbose", action="store_true", help="stream the training logs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """`sagecycle train`; 0 on success, 1 when training fails, 2 for bad options or data."""
    from training_scripts.prepare import PrepareError, prepare

    args = parse_args(argv)
    if args.target and not args.input:
        print("sagecycle train: error: --target goes with --input", file=sys.stderr)
        return 2
    scratch = None if args.work_dir else Path(tempfile.mkdtemp(prefix="sagecycle-train-"))
    work = Path(args.work_dir) if args.work_dir else scratch
    assert work is not None
    try:
        if args.data:
            data = Path(args.data)
            channels = {name: data / name for name in ("train", "validation", "test") if (data / name).is_dir()}
            if "train" not in channels or "validation" not in channels:
                print(f"sagecycle train: error: {data} needs train/ and validation/ subdirectories", file=sys.stderr)
                return 2
        else:
            try:
                # One train file per host, since the train channel is sharded by S3 key.
                prepared = prepare(
                    args.input, output_dir=work / "prepared", target=args.target, train_files=args.instances
                )
            except PrepareError as exc:
                print(f"sagecycle train: error: {exc}", file=sys.stderr)
                return 2
            channels = {name: prepared.channel(name) for name in prepared.sizes}
            print(f"prepared {', '.join(f'{k} {v:,}' for k, v in prepared.sizes.items())} rows")
        try:
            result = run_local_training(
                channels,
                hyperparameters=dict(args.hp),
                instance_count=args.instances,
                work_dir=work / "job",
                output_tar=Path(args.output),
                timeout=args.timeout,
                stream_logs=args.verbose,
            )
        except LocalTrainingError as exc:
            print(f"sagecycle train: training failed: {exc}", file=sys.stderr)
            return 1
        _print_summary(result)
        return 0
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _print_summary(result: TrainingResult) -> None:
    doc = result.evaluation
    primary = doc["primary_metric"]
    split = doc["splits"][primary["split"]]
    figures = [f"{primary['split']} {primary['name']} {primary['value']:.4f}"]
    if "accuracy" in split:
        figures.append(f"accuracy {split['accuracy']:.4f}")
    if doc.get("threshold"):
        figures.append(f"threshold {doc['threshold']['value']}")
    figures.append(f"best iteration {doc['best_iteration']}")
    print(f"wrote {result.model_tar}: {', '.join(figures)} ({result.wall_seconds:.1f}s)")
