"""What every bench/scale.py section shares: the table row, running one side of one size in a fresh process,
paired repeats and their medians, peak RSS, and the moto S3 server the S3-reading sections use."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Row:
    component: str
    size: str
    floor: str  # what the floor is, in a few words
    project_s: float
    floor_s: float
    ratio: float
    project_rss_mb: float
    floor_rss_mb: float
    cpu_ratio: float  # the case processes' CPU seconds (all their threads), less sensitive to a busy machine
    target: str = ""
    note: str = ""


def peak_rss_mb() -> float:
    """This process's peak RSS since exec: VmHWM. (ru_maxrss would not do: Linux carries the parent's peak
    over fork and exec, so a case started from a large parent would report the parent's.)"""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Clock:
    """Wall and CPU seconds of a measured stretch, the CPU of waited-for child processes included."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time() + self._children()

    @staticmethod
    def _children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() + self._children() - self.cpu


def run_case(section: str, side: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """One side of one size, in a fresh interpreter: {"seconds", "cpu_s", "rss_mb", ...}."""
    command = [sys.executable, "-m", "bench.scale", "--case", json.dumps({"section": section, "side": side, **spec})]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{section}/{side} failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def paired(
    section: str,
    spec: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    repeats: int,
    sides: Sequence[str] = ("project", "floor"),
) -> dict[str, list[dict[str, Any]]]:
    """`repeats` rounds of every side in turn (so a burst of load hits all of them alike). `spec` is one spec
    for every round, or one per round (a section whose project consumes its input gives each round its own)."""
    specs = [spec] * repeats if isinstance(spec, Mapping) else list(spec)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for one in specs:
        for side in sides:
            runs[side].append(run_case(section, side, one))
    return runs


def summary(
    component: str,
    size: str,
    projects: list[dict[str, Any]],
    floors: list[dict[str, Any]],
    *,
    floor: str,
    target: str = "",
    note: str = "",
) -> Row:
    """Medians of the times and of the per-pair ratios; the highest peak RSS of each side."""
    pairs = list(zip(projects, floors, strict=True))
    return Row(
        component=component,
        size=size,
        floor=floor,
        project_s=statistics.median(p["seconds"] for p in projects),
        floor_s=statistics.median(f["seconds"] for f in floors),
        ratio=statistics.median(p["seconds"] / f["seconds"] for p, f in pairs),
        project_rss_mb=max(p["rss_mb"] for p in projects),
        floor_rss_mb=max(f["rss_mb"] for f in floors),
        cpu_ratio=statistics.median(p["cpu_s"] / max(f["cpu_s"], 1e-9) for p, f in pairs),
        target=target,
        note=note,
    )


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 for this run (every service), its endpoint URL yielded. Objects it stores
    spill to disk, and it runs in this process, so a case's peak RSS is never the stored data's."""
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(1024))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the moto server's fake credentials
        os.environ.setdefault(name, "testing")
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
