"""`sagecycle serve` under gunicorn: threaded workers with bounded reads, the model loaded once in the master.

One worker per CPU by default, as the container starts one model worker per CPU; the model is loaded before the
workers fork (off the main thread, so no OpenMP state is forked) and shared by them copy-on-write.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sagecycle.container import REALTIME_MAX_PAYLOAD_BYTES
from sagecycle.data_capture import DEFAULT_ENDPOINT, DEFAULT_VARIANT
from sagecycle.serve_app import (
    DEFAULT_BODY_TIMEOUT,
    HEADER_TIMEOUT_SECONDS,
    LOG,
    ServingApp,
    create_app,
    model_directory,
)

IDLE_WAIT_SECONDS = 0.25  # see serve_app's note on slow clients
DEFAULT_THREADS = 16


def _bounded_worker_class() -> type:
    """gunicorn's threaded worker with bounded reads, so slow clients cannot starve the thread pool.

    gunicorn's gthread worker waits up to 5 s in a pool thread for a new connection's first bytes, and then
    reads headers with no timeout. This worker waits IDLE_WAIT_SECONDS before handing an idle connection back to
    the poller (where it costs no thread) and gives every read on the connection a HEADER_TIMEOUT_SECONDS
    timeout; a read that times out closes the connection. The body has its own deadline (`ServingApp`).
    """
    from gunicorn.workers import gthread

    class BoundedConnection(gthread.TConn):
        def init(self) -> None:
            super().init()
            self.sock.settimeout(HEADER_TIMEOUT_SECONDS)

    class BoundedThreadWorker(gthread.ThreadWorker):
        def init_process(self) -> None:
            gthread.DEFAULT_WORKER_DATA_TIMEOUT = IDLE_WAIT_SECONDS  # read at call time by handle()
            gthread.TConn = BoundedConnection  # what accept() builds
            super().init_process()

    return BoundedThreadWorker


def _run_gunicorn(app: ServingApp, options: dict[str, Any]) -> None:
    """Runs gunicorn's arbiter over an already-built app (gunicorn is imported here: tests never need it)."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> ServingApp:
            return app

    Server().run()


def run_server(
    model_dir: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int | None = None,
    threads: int = DEFAULT_THREADS,
    capture_dir: str | os.PathLike[str] | None = None,
    endpoint_name: str = DEFAULT_ENDPOINT,
    variant: str = DEFAULT_VARIANT,
    max_body_bytes: int = REALTIME_MAX_PAYLOAD_BYTES,
    environment: Mapping[str, str] | None = None,
    timeout: int = 120,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> None:
    """Serves a model directory or model.tar.gz with gunicorn (threaded workers, model preloaded) until stopped.

    `workers` defaults to one per CPU, as the XGBoost container starts one model worker per CPU.
    """
    _configure_logging()
    workers = workers or os.cpu_count() or 1
    owner = os.getpid()
    scratch = Path(tempfile.mkdtemp(prefix="sagecycle-serve-"))
    try:
        app = _off_main_thread(
            lambda: create_app(
                model_directory(model_dir, scratch),
                environment=environment,
                capture_dir=capture_dir,
                endpoint_name=endpoint_name,
                variant=variant,
                max_body_bytes=max_body_bytes,
                body_timeout=body_timeout,
            )
        )
        model = app.model
        LOG.info(
            json.dumps(
                {
                    "event": "start",
                    "model": str(model_dir),
                    "task": getattr(model, "task", None),
                    "features": getattr(model, "n_features", None),
                    "threshold": getattr(model, "threshold", None),
                    "program": app.hosted.environment.get("SAGEMAKER_PROGRAM"),
                    "default_accept": app.hosted.default_accept,
                    "url": f"http://{host}:{port}",
                    "workers": workers,
                    "threads": threads,
                    "max_body_bytes": max_body_bytes,
                    "capture_dir": str(capture_dir) if capture_dir else None,
                }
            )
        )
        options = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": _bounded_worker_class(),
            "threads": threads,
            "preload_app": True,  # load once in the master; workers share it copy-on-write
            "timeout": timeout,
            "graceful_timeout": 10,
            "keepalive": 75,  # longer than SageMaker's 60 s idle connection timeout
            "accesslog": None,  # our own structured line per invocation instead
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "sagecycle-serve",
            "control_socket_disable": True,  # several servers may run side by side
            # XGBoost starts its OpenMP threads on first predict: do it per worker, after fork, never before.
            "post_worker_init": lambda worker: app.warm_up(),
            "worker_exit": lambda server, worker: app.close(),
        }
        # Move everything loaded so far out of the collector's sight: forked workers then neither rescan it nor
        # copy its pages by touching reference counts during collections.
        gc.freeze()
        _run_gunicorn(app, options)
    finally:
        if os.getpid() == owner:  # forked workers unwind through here too; only the master cleans up
            shutil.rmtree(scratch, ignore_errors=True)


def _off_main_thread(build: Callable[[], ServingApp]) -> ServingApp:
    """Runs `build` in a helper thread and returns its result.

    Loading a booster starts XGBoost's OpenMP (libgomp) thread pool in the calling thread, and libgomp is not
    fork-safe: a worker forked from a thread that owns a pool hangs on its first predict. Loading on a helper
    thread keeps the master's main thread, the one gunicorn forks from, free of OpenMP state.
    """
    result: list[ServingApp] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(build())
        except BaseException as e:
            failure.append(e)

    thread = threading.Thread(target=target, name="sagecycle-model-load")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _configure_logging() -> None:
    if not LOG.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
