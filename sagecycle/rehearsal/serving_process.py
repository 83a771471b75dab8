"""A model's container on this machine: `sagecycle serve` started from the model's artifact and Environment.

Endpoints (`hosting`) and batch transform jobs (`transform`) start their containers the same way, so both serve
through `sagecycle.container.start_container` and sagemaker-inference's `Transformer`:
`python -m sagecycle.cli serve <model.tar.gz downloaded from the model's ModelDataUrl> --env K=V (the model's container
Environment) --workers 1 --port <free> ...`. The container must answer `GET /ping` in time, or it never came up.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG = logging.getLogger("sagecycle.rehearsal.hosting")
REPO_ROOT = Path(__file__).resolve().parents[2]
# SageMaker's own words for a container that never became healthy, and for an artifact it could not fetch.
HEALTH_CHECK_FAILURE = (
    "The primary container for production variant {variant} did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint."
)
DOWNLOAD_FAILURE = (
    'Failed to download model data for container "container_1" from URL: "{url}". Please ensure that there is an '
    "object located at the URL and that the role passed to CreateModel has permissions to download the model."
)


class EndpointStartError(RuntimeError):
    """A fleet did not come up; the message is the FailureReason SageMaker would give."""


@dataclass
class ServingProcess:
    """One production variant of one endpoint config: a `sagecycle serve` process."""

    endpoint: str
    config: str
    variant: str
    model: str
    model_data_url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None


def model_container(sagemaker: Any, model_name: str) -> dict[str, Any]:
    """DescribeModel's container: PrimaryContainer, or the first of Containers."""
    model = sagemaker.describe_model(ModelName=model_name)
    return dict(model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0])


def fetch_artifact(s3: Any, url: str, artifact: Path) -> None:
    """Downloads model.tar.gz from `url` to `artifact` once; EndpointStartError (SageMaker's reason) if it cannot."""
    if artifact.is_file():
        return
    bucket, _, key = url.removeprefix("s3://").partition("/")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as e:
        LOG.warning("model data %s not downloaded: %s", url, e)
        raise EndpointStartError(DOWNLOAD_FAILURE.format(url=url)) from None
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_bytes(body)


def start_model(
    sagemaker: Any,
    s3: Any,
    model_name: str,
    *,
    artifact: Path,
    log_path: Callable[[int], Path],
    environment: Mapping[str, Any] | None = None,
    options: Sequence[str] = (),
) -> tuple[str, int, subprocess.Popen[bytes], Path]:
    """Starts the model's container: DescribeModel's container, its ModelDataUrl fetched to `artifact`, `sagecycle
    serve` on a free port with the container's Environment (`environment` over it) and `options`, logging to
    `log_path(port)`. Returns the ModelDataUrl, the port, the process and its log; EndpointStartError (SageMaker's
    reason) if the artifact cannot be fetched."""
    from sagecycle.local_training import free_port

    container = model_container(sagemaker, model_name)
    url = str(container.get("ModelDataUrl") or "")
    fetch_artifact(s3, url, artifact)
    port = free_port()
    log = log_path(port)
    merged = {**(container.get("Environment") or {}), **(environment or {})}
    return url, port, start_serve(artifact, port=port, log_path=log, environment=merged, options=options), log


def start_serve(
    artifact: Path,
    *,
    port: int,
    log_path: Path,
    environment: Mapping[str, Any],
    options: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Starts `sagecycle serve` on `artifact` with one worker, the container `environment` and extra `options`."""
    argv = [sys.executable, "-m", "sagecycle.cli", "serve", str(artifact), "--port", str(port), "--workers", "1"]
    argv += list(options)
    for key, value in environment.items():
        argv += ["--env", f"{key}={value}"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its own process group: stopping it stops gunicorn's workers too
        )


def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Polls `GET /ping` until it answers 200 (True), the process exits or `timeout` wall seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    return True
            finally:
                connection.close()
        time.sleep(0.1)
    return False


def log_tail(log_path: Path, size: int = 2000) -> str:
    return log_path.read_text(encoding="utf-8", errors="replace")[-size:]


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stops a serving process and its workers: SIGTERM to its process group, SIGKILL after `grace` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
