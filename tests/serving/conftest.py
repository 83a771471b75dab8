"""Fixtures for the serving tests: small model directories, in-process WSGI calls, and a real server."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest
import requests

from training_scripts import inference

# model_factory sits beside this file; pytest's default import mode puts this folder on sys.path, and this keeps
# `import model_factory` working under --import-mode=importlib too.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_factory

REPO = Path(__file__).resolve().parents[2]
BODY_TIMEOUT = 1.5  # the live server's deadline for a client's body, short so the slow-client tests stay quick


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One model directory per task, built once per session."""
    root = tmp_path_factory.mktemp("models")
    return {task: model_factory.build_model_dir(root / task, task) for task in model_factory.TASKS}


@pytest.fixture(scope="session")
def models(model_dirs: dict[str, Path]) -> dict[str, inference.Model]:
    return {task: inference.model_fn(str(path)) for task, path in model_dirs.items()}


@pytest.fixture(scope="session")
def binary_model(models: dict[str, inference.Model]) -> inference.Model:
    return models["binary"]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


WsgiCall = Callable[..., Response]


@pytest.fixture
def wsgi() -> WsgiCall:
    """Calls a WSGI app in process (through wsgiref's PEP 3333 validator) and returns the response."""

    def call(app, method: str, path: str, body: bytes | str = b"", headers: dict[str, str] | None = None) -> Response:
        data = body.encode() if isinstance(body, str) else body
        environ: dict = {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": ""}
        environ["CONTENT_LENGTH"] = str(len(data))
        setup_testing_defaults(environ)
        environ["wsgi.input"] = io.BytesIO(data)
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            environ[key if key in {"CONTENT_TYPE", "CONTENT_LENGTH"} else f"HTTP_{key}"] = value
        seen: dict = {}

        def start_response(status: str, response_headers: list, exc_info=None):
            seen["status"] = int(status.split()[0])
            seen["headers"] = {k.lower(): v for k, v in response_headers}

        result = validator(app)(environ, start_response)
        try:
            out = b"".join(result)
        finally:
            result.close()
        return Response(seen["status"], seen["headers"], out)

    return call


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    log_path: Path
    capture_dir: Path
    model_dir: Path
    process: subprocess.Popen

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]) -> Iterator[Server]:
    """`python -m sagecycle.cli serve model.tar.gz --port P --capture-dir D` as a real subprocess."""
    root = tmp_path_factory.mktemp("server")
    tarball = model_factory.make_model_tar(model_dirs["binary"], root / "model.tar.gz")
    port = free_port()
    log_path = root / "server.log"
    capture_dir = root / "capture"
    command = [sys.executable, "-m", "sagecycle.cli", "serve", str(tarball), "--port", str(port), "--workers", "1"]
    command += ["--capture-dir", str(capture_dir), "--threads", "4", "--body-timeout", str(BODY_TIMEOUT)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            pytest.fail(f"sagecycle serve exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(f"{url}/ping", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"sagecycle serve did not answer /ping:\n{log_path.read_text()}")
        time.sleep(0.1)
    yield Server(url, log_path, capture_dir, model_dirs["binary"], process)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
