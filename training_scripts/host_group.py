"""The hosts of one training job: the group every collective call goes through, and XGBoost's collective.

Several hosts (SM_HOSTS has more than one entry): rank = index of SM_CURRENT_HOST in SM_HOSTS; rank 0 runs
xgboost.tracker.RabitTracker on the first host, port SAGECYCLE_TRACKER_PORT (default 9099); every host joins with
xgboost.collective.CommunicatorContext. A step that fails on any rank stops every rank with the same error, so no
host is left waiting on a collective.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
import xgboost as xgb

# Imported as training_scripts.* (tests, the CLI), or run as the entry point from /opt/ml/code, where the
# scripts sit flat: there the flat copies beside it are the ones to use, even where the repository's package
# is importable too (the local runner), so a job runs exactly the scripts of its source tarball.
if __package__:
    from training_scripts import data_io
    from training_scripts.job_options import EXIT_BAD_INPUT, EXIT_INTERNAL, UsageError
else:
    import data_io  # type: ignore[no-redef]
    from job_options import EXIT_BAD_INPUT, EXIT_INTERNAL, UsageError  # type: ignore[no-redef]

T = TypeVar("T")


class Group:
    """The hosts of one job. A single host is a group of one and makes no collective calls.

    Every method is a collective call when world > 1: all ranks must call it, in the same order.
    """

    def __init__(self, rank: int = 0, world: int = 1) -> None:
        self.rank, self.world = rank, world

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, on every rank (pickled broadcasts; fine for KBs to a few MBs)."""
        if self.world == 1:
            return [obj]
        mine = (obj,)  # a tuple, since broadcast refuses None
        # Every rank receives the root's tuple, whatever it passed in.
        return [
            cast(tuple[Any], xgb.collective.broadcast(mine if r == self.rank else None, r))[0]
            for r in range(self.world)
        ]

    def any(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        return bool(xgb.collective.allreduce(np.array([int(flag)], dtype=np.int32), xgb.collective.Op.MAX)[0])

    def sum(self, values: np.ndarray) -> np.ndarray:
        if self.world == 1:
            return values
        return xgb.collective.allreduce(np.asarray(values, dtype=np.float64), xgb.collective.Op.SUM)

    def first_error(self, error: str | None) -> str | None:
        """The first rank's error, identical on all ranks, so they all stop together."""
        if not self.any(error is not None):
            return None
        errors = self.gather(error)
        rank, message = next((r, e) for r, e in enumerate(errors) if e is not None)
        return message if self.world == 1 else f"{message}\n(reported by rank {rank})"


class Abort(Exception):
    """An error every rank agreed on; carries the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def coordinated(group: Group, step: Any, *args: Any) -> Any:
    """Run `step` on this rank; if it failed on any rank, raise the same Abort on every rank."""
    result, error, code = None, None, EXIT_BAD_INPUT
    try:
        result = step(*args)
    except (data_io.DataError, UsageError) as exc:
        error = str(exc)
    except Exception as exc:  # a bug must not leave the other hosts waiting on a collective
        traceback.print_exc()
        error, code = f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL
    message = group.first_error(error)
    if message is not None:
        codes = group.gather(code if error is not None else 0)
        raise Abort(message, max(codes))
    return result


def run_distributed(args: argparse.Namespace, rank: int, run_group: Callable[[argparse.Namespace, Group], T]) -> T:
    """Join the hosts' collective as `rank`, run `run_group` with the group, and (rank 0) wait for the tracker."""
    hosts = args.hosts
    master = socket.gethostbyname(hosts[0])
    timeout = int(os.environ.get("SAGECYCLE_COLLECTIVE_TIMEOUT") or 1800)
    tracker = None
    if rank == 0:
        tracker = xgb.tracker.RabitTracker(host_ip=master, n_workers=len(hosts), port=args.tracker_port, sortby="task")
        tracker.start()
    else:
        wait_for_tracker(master, args.tracker_port, timeout)
    # Zero-padded task ids: the tracker sorts them as strings, and rank must equal the host's index.
    comm = {
        "dmlc_tracker_uri": master,
        "dmlc_tracker_port": args.tracker_port,
        "dmlc_task_id": f"{rank:05d}",
        "dmlc_retry": 30,
        "dmlc_timeout": timeout,
    }
    with xgb.collective.CommunicatorContext(**comm):
        group = Group(xgb.collective.get_rank(), xgb.collective.get_world_size())
        if group.rank != rank:
            raise RuntimeError(f"the tracker gave rank {group.rank}, expected {rank} (index in SM_HOSTS)")
        result = run_group(args, group)
    if tracker is not None:
        tracker.wait_for(timeout)
    return result


def wait_for_tracker(host: str, port: int, timeout: float) -> None:
    """Poll until the tracker listens. XGBoost's own connect retries back off exponentially (1, 2, 4 s...),
    which costs seconds whenever a worker starts before rank 0; the tracker logs one harmless warning per
    probe ("Failed to initialize worker proxy") and keeps accepting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError:
            time.sleep(0.1)
