"""`sagecycle serve MODEL`: a model served on this machine the way SageMaker's XGBoost container serves it.

The model starts as the container starts it (`sagecycle.container.start_container`): from the artifact as the
training job left it and the model's container Environment (the same `hosting_environment` promote and the
Endpoint stack use), importing `inference.py` from the artifact's own code/ and running it through
sagemaker-inference's `Transformer`. Statuses, the default Accept and body decoding are therefore the toolkit's.

Routes:
- `GET /ping`: 200 once the model is loaded (it is loaded before the server accepts connections).
- `POST /invocations`: the container contract. An error answers with the toolkit's status (400/406/413/415,
  500) and its body: the message, then the traceback.
- `POST /endpoints/<name>/invocations`: the sagemaker-runtime InvokeEndpoint API, so boto3 (and the SageMaker
  SDK's serializers) work unchanged with `endpoint_url="http://127.0.0.1:8080"`. Success carries
  `Content-Type` and `x-Amzn-Invoked-Production-Variant`; a failed invocation answers as SageMaker does:
  HTTP 424 with `x-amzn-ErrorType: ModelError` and `{"Message", "OriginalStatusCode", "OriginalMessage",
  "LogStreamArn", "ErrorCode"}`, so boto3 raises a ClientError whose message carries the container's.

What this layer adds is SageMaker's front end: the payload limit (6 MB real-time, `--max-payload-mb` up to
100 for batch transform), a deadline for a client's body (408), data capture and one JSON log line per
invocation on stderr. It runs under gunicorn (`run_server`), one worker per CPU by default as the container
does, the model loaded once in the master and shared by the forked workers. `--capture-dir` writes SageMaker
data-capture JSON Lines files under `DIR/<endpoint>/<variant>/yyyy/mm/dd/hh/`, the layout a monitor reads.
docs/serving.md lists what still differs from the real container, and why.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from lambdas.shared.jobspec import hosting_environment
from sagecycle.cli import HelpFormatter
from sagecycle.container import (
    REALTIME_MAX_PAYLOAD_BYTES,
    TRANSFORM_MAX_PAYLOAD_MB,
    ContainerStartError,
    HostedModel,
    Invocation,
    start_container,
)
from training_scripts import inference

LOG = logging.getLogger("sagecycle.serve")
DEFAULT_ENDPOINT = "local-endpoint"
DEFAULT_VARIANT = "AllTraffic"
# Slow or stalled clients must not hold the threads that serve everyone else (see `_bounded_worker_class`):
# a connection that sends nothing goes back to the poller after IDLE_WAIT_SECONDS, one that stalls inside its
# headers is closed after HEADER_TIMEOUT_SECONDS, and one that stalls inside its body is answered 408 after
# DEFAULT_BODY_TIMEOUT. So up to `threads - 1` stalled clients per worker never delay a good request.
IDLE_WAIT_SECONDS = 0.25
HEADER_TIMEOUT_SECONDS = 2.0
DEFAULT_BODY_TIMEOUT = 10.0
DEFAULT_THREADS = 16
_READ_CHUNK = 1 << 16
_RUNTIME_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
# SageMaker's own pattern for endpoint and variant names. The names become capture directories, so nothing
# else (`..`, slashes, NUL) may reach the file system.
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def check_name(kind: str, name: str) -> str:
    """Returns `name` if SageMaker would accept it as an endpoint or variant name, else raises ValueError."""
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"{kind} name {name[:80]!r} is not a SageMaker name: 1-63 letters, digits and hyphens, "
            "starting with a letter or digit"
        )
    return name


_CAPTURE_ENCODINGS = {inference.CSV: "CSV", inference.JSON: "JSON", inference.JSONLINES: "JSON"}
_REASONS = {
    200: "OK",
    400: "Bad Request",
    408: "Request Timeout",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    424: "Failed Dependency",
    500: "Internal Server Error",
}

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class DataCapture:
    """Writes SageMaker data-capture records: one JSON line per invocation, one file per process and hour.

    Layout: `root/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<mmm>-<uuid>.jsonl`, the S3 layout SageMaker uses.
    Each line is flushed as it is written, so a monitor can read the current hour while the server runs.
    """

    def __init__(self, root: Path, variant: str = DEFAULT_VARIANT) -> None:
        self.root = Path(root)
        self.variant = check_name("variant", variant)
        self._lock = threading.Lock()
        self._files: dict[str, tuple[str, TextIO]] = {}  # endpoint -> (hour directory, open file)

    def record(
        self,
        *,
        endpoint: str,
        request_body: bytes,
        request_content_type: str,
        response_body: bytes,
        response_content_type: str,
        inference_id: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Appends one capture record for a successful invocation."""
        now = now or datetime.now(UTC)
        metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if inference_id:
            metadata["inferenceId"] = inference_id
        event = {
            "captureData": {
                "endpointInput": _capture_part(request_body, request_content_type, "INPUT"),
                "endpointOutput": _capture_part(response_body, response_content_type, "OUTPUT"),
            },
            "eventMetadata": metadata,
            "eventVersion": "0",
        }
        line = json.dumps(event, separators=(",", ":")) + "\n"
        with self._lock:
            handle = self._file(endpoint, now)
            handle.write(line)
            handle.flush()

    def _file(self, endpoint: str, now: datetime) -> TextIO:
        hour = now.strftime("%Y/%m/%d/%H")
        current = self._files.get(endpoint)
        if current is not None and current[0] == hour:
            return current[1]
        if current is not None:
            current[1].close()
        directory = self.root / check_name("endpoint", endpoint) / self.variant / hour
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{now:%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
        handle = open(directory / name, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the hour
        self._files[endpoint] = (hour, handle)
        return handle

    def close(self) -> None:
        with self._lock:
            for _, handle in self._files.values():
                handle.close()
            self._files.clear()


def _capture_part(body: bytes, content_type: str, mode: str) -> dict[str, str]:
    try:
        encoding = _CAPTURE_ENCODINGS.get(inference.request_media_type(content_type), "BASE64")
    except inference.BadRequest:
        encoding = "BASE64"  # SageMaker base64-encodes any type not listed as CSV or JSON
    data = base64.b64encode(body).decode("ascii") if encoding == "BASE64" else body.decode("utf-8", "replace")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


class ServingApp:
    """The WSGI application: /ping, /invocations and /endpoints/<name>/invocations over one started model.

    Each invocation goes through the container's own toolkit (`HostedModel.invoke`); this layer adds only what
    SageMaker's front end adds: the payload limit, the runtime API's error wrapping, data capture and a log line.
    """

    def __init__(
        self,
        hosted: HostedModel,
        *,
        endpoint_name: str = DEFAULT_ENDPOINT,
        variant: str = DEFAULT_VARIANT,
        capture: DataCapture | None = None,
        max_body_bytes: int = REALTIME_MAX_PAYLOAD_BYTES,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        self.hosted = hosted
        self.endpoint_name = endpoint_name
        self.variant = variant
        self.capture = capture
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    @property
    def model(self) -> Any:
        return self.hosted.model

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/ping":
            if method not in {"GET", "HEAD"}:
                return _respond(start_response, 405, _json({"message": "use GET /ping"}), "application/json")
            return _respond(start_response, 200, b"", "text/plain")
        runtime = _RUNTIME_PATH.match(path)
        if path != "/invocations" and runtime is None:
            body = _json({"message": f"no route for {path}; use /ping or /invocations"})
            return _respond(start_response, 404, body, "application/json")
        if method != "POST":
            return _respond(start_response, 405, _json({"message": f"use POST {path}"}), "application/json")
        endpoint = runtime.group(1) if runtime else self.endpoint_name
        if not NAME_PATTERN.match(endpoint):  # as the runtime API answers a malformed endpoint name
            body = _json(
                {"message": f"1 validation error detected: EndpointName {endpoint[:80]!r} fails {NAME_PATTERN.pattern}"}
            )
            start_response(
                "400 Bad Request",
                [
                    ("Content-Type", "application/json"),
                    ("x-amzn-ErrorType", "ValidationException"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        return self._invoke(environ, start_response, endpoint, runtime is not None)

    def _invoke(
        self, environ: dict[str, Any], start_response: StartResponse, endpoint: str, runtime: bool
    ) -> list[bytes]:
        started = time.perf_counter()
        content_type = environ.get("CONTENT_TYPE") or None
        accept = environ.get("HTTP_ACCEPT") or None
        body = b""
        try:
            body = self._read_body(environ)
        except _FrontEndError as e:
            result = Invocation(e.status, e.message.encode("utf-8"), None)
        else:
            try:
                result = self.hosted.invoke(body, content_type, accept)
            except Exception as e:  # the toolkit answers every error itself; this is a bug in this layer
                LOG.error("invocation failed\n%s", traceback.format_exc())
                result = Invocation(500, f"internal error: {type(e).__name__}: {e}".encode(), None)

        headers = [("x-Amzn-Invoked-Production-Variant", self.variant)]
        if result.ok:
            status, output = 200, result.body
            response_type = result.content_type or self.hosted.default_accept
            if self.capture is not None:
                try:
                    self.capture.record(
                        endpoint=endpoint,
                        request_body=body,
                        request_content_type=content_type or inference.CSV,
                        response_body=output,
                        response_content_type=response_type,
                        inference_id=environ.get("HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID"),
                    )
                except OSError:  # a full disk must not fail the caller's prediction
                    LOG.error("data capture failed\n%s", traceback.format_exc())
            headers.append(("Content-Type", response_type))
        elif runtime:
            # The runtime API wraps any container error as ModelError (HTTP 424), as SageMaker does.
            status = 424
            output = _json(_model_error(result, endpoint))
            headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ModelError")]
        else:
            # The container's own answer: the toolkit's status, and the message followed by its traceback.
            status, output = result.status, result.body
            headers.append(("Content-Type", "text/plain; charset=utf-8"))
        if runtime:
            headers.append(("x-amzn-RequestId", str(uuid.uuid4())))
        start_response(f"{status} {_REASONS.get(status, 'Error')}", [*headers, ("Content-Length", str(len(output)))])

        record: dict[str, Any] = {
            "event": "invocation",
            "path": environ.get("PATH_INFO"),
            "endpoint": endpoint,
            "status": status,
            "content_type": content_type,
            "accept": accept,
            "bytes_in": len(body),
            "bytes_out": len(output),
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        if not result.ok:
            record["error"] = result.message[:300]
        LOG.info(json.dumps(record))
        return [output]

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        """Reads the body within the payload limit and a deadline, so a stalled client cannot hold a thread."""
        length = environ.get("CONTENT_LENGTH")
        size = int(length) if length and length.isdigit() else None
        if size is not None and size > self.max_body_bytes:
            raise _FrontEndError(413, f"the body is {size:,} bytes; the limit is {self.max_body_bytes:,} bytes")
        stream = environ["wsgi.input"]
        sock = environ.get("gunicorn.socket")
        deadline = time.monotonic() + self.body_timeout
        want = size if size is not None else self.max_body_bytes + 1
        chunks: list[bytes] = []
        got = 0
        while got < want:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _FrontEndError(408, f"the body did not arrive within {self.body_timeout:g} s")
            if sock is not None:
                sock.settimeout(min(remaining, self.body_timeout))
            try:
                chunk = stream.read(min(_READ_CHUNK, want - got))
            except (TimeoutError, OSError):
                raise _FrontEndError(408, f"the body did not arrive within {self.body_timeout:g} s") from None
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if sock is not None:
            sock.settimeout(HEADER_TIMEOUT_SECONDS)  # what the worker set for this connection's reads
        if size is not None and got < size:
            raise _FrontEndError(400, f"the body ended after {got:,} of {size:,} bytes")
        if got > self.max_body_bytes:
            raise _FrontEndError(413, f"the body is over the limit of {self.max_body_bytes:,} bytes")
        return b"".join(chunks)

    def warm_up(self) -> None:
        """One all-missing row through the toolkit, so a new worker's first request does not pay XGBoost's start-up."""
        n = int(getattr(self.hosted.model, "n_features", 1))
        for rows in (1, 2000):  # both boosters: the one-thread one for small requests and the all-cores one
            self.hosted.invoke(("," * (n - 1) + "\n").encode() * rows, inference.CSV, inference.CSV)

    def close(self) -> None:
        if self.capture is not None:
            self.capture.close()


class _FrontEndError(Exception):
    """Refused before the container sees it (SageMaker's front end: payload size, a body that never arrives)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _model_error(result: Invocation, endpoint: str) -> dict[str, Any]:
    status = result.status
    kind = "client" if status < 500 else "server"
    original = result.body.decode("utf-8", "replace")
    return {
        "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
        "Message": f'Received {kind} error ({status}) from primary with message "{original}". '
        f"See the sagecycle serve log for endpoint {endpoint}.",
        "OriginalMessage": original,
        "OriginalStatusCode": status,
        "LogStreamArn": "",
    }


def _json(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def _respond(start_response: StartResponse, status: int, body: bytes, content_type: str) -> list[bytes]:
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return [body]


def default_environment() -> dict[str, str]:
    """The Environment every deployed model gets (promote's CreateModel and the Endpoint stack share it)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return hosting_environment(region=region, container_log_level=20)


def create_app(
    model_dir: str | os.PathLike[str],
    *,
    environment: Mapping[str, str] | None = None,
    capture_dir: str | os.PathLike[str] | None = None,
    endpoint_name: str = DEFAULT_ENDPOINT,
    variant: str = DEFAULT_VARIANT,
    max_body_bytes: int = REALTIME_MAX_PAYLOAD_BYTES,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> ServingApp:
    """Starts a model directory the way SageMaker's container does and returns the WSGI app serving it.

    Args:
        model_dir: model.tar.gz extracted as-is (see `model_directory`); its code/ holds inference.py.
        environment: the model's container Environment; default `default_environment()`.
        capture_dir: where to write data-capture files; None disables capture.
        endpoint_name: the endpoint name for `/invocations` (the runtime path names its own).
        variant: the production variant reported in responses and capture paths.
        max_body_bytes: larger bodies get 413 (SageMaker: 6 MB real-time; MaxPayloadInMB for batch transform).
        body_timeout: seconds a client has to deliver its body; then 408.

    Returns:
        The `ServingApp`. Raises `ContainerStartError` when the container would not start this model.
    """
    hosted = start_container(Path(model_dir), environment if environment is not None else default_environment())
    capture = DataCapture(Path(capture_dir), variant) if capture_dir is not None else None
    return ServingApp(
        hosted,
        endpoint_name=endpoint_name,
        variant=variant,
        capture=capture,
        max_body_bytes=max_body_bytes,
        body_timeout=body_timeout,
    )


def model_directory(path: str | os.PathLike[str], scratch: Path) -> Path:
    """Returns the model directory for `path`: the directory itself, or a model.tar.gz extracted into `scratch`.

    Extracted as SageMaker does, as-is into one directory: an archive whose files sit under a top-level folder
    would not serve there either. Unsafe members (absolute paths, `..`, links out) are refused.
    """
    source = Path(path)
    if source.is_dir():
        return source
    if not source.is_file() or not tarfile.is_tarfile(source):
        raise FileNotFoundError(f"{path} is neither a model directory nor a model.tar.gz")
    try:
        with tarfile.open(source) as tar:
            tar.extractall(scratch, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise ValueError(f"{path} cannot be extracted safely: {e}") from None
    return scratch


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


def _environment_item(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sagecycle serve",
        description="Serve a model directory (or model.tar.gz) the way SageMaker's XGBoost container does, through "
        "the sagemaker-inference toolkit: GET /ping, POST /invocations and POST /endpoints/<name>/invocations.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model_dir", help="model directory or model.tar.gz, as a training job left it (with code/)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (0: any free port)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (one per CPU)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="threads per worker")
    parser.add_argument("--capture-dir", help="write SageMaker data-capture JSON Lines files under this directory")
    parser.add_argument("--endpoint-name", default=DEFAULT_ENDPOINT, help="endpoint name for /invocations")
    parser.add_argument("--variant", default=DEFAULT_VARIANT, help="production variant name")
    parser.add_argument(
        "--max-payload-mb",
        type=float,
        default=REALTIME_MAX_PAYLOAD_BYTES / 2**20,
        help=f"larger request bodies get 413 (SageMaker real-time: 6; batch transform MaxPayloadInMB: up to "
        f"{TRANSFORM_MAX_PAYLOAD_MB})",
    )
    parser.add_argument(
        "--batch", action="store_true", help="serve as a batch transform container (SAGEMAKER_BATCH=true)"
    )
    parser.add_argument(
        "--env",
        type=_environment_item,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="container Environment entry over the deployed models' own (repeat)",
    )
    parser.add_argument("--timeout", type=int, default=120, help="seconds before a stuck worker is restarted")
    parser.add_argument(
        "--body-timeout", type=float, default=DEFAULT_BODY_TIMEOUT, help="seconds a client has to send its body"
    )
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads must be at least 1")
    if not 0 < args.max_payload_mb <= TRANSFORM_MAX_PAYLOAD_MB:
        parser.error(f"--max-payload-mb must be in (0, {TRANSFORM_MAX_PAYLOAD_MB}]")
    if args.body_timeout <= 0:
        parser.error("--body-timeout must be positive")
    for kind, name in (("endpoint", args.endpoint_name), ("variant", args.variant)):
        try:
            check_name(kind, name)
        except ValueError as e:
            parser.error(str(e))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    environment = default_environment()
    if args.batch:
        environment["SAGEMAKER_BATCH"] = "true"
    environment.update(dict(args.env))
    try:
        run_server(
            args.model_dir,
            host=args.host,
            port=args.port,
            workers=args.workers,
            threads=args.threads,
            capture_dir=args.capture_dir,
            endpoint_name=args.endpoint_name,
            variant=args.variant,
            max_body_bytes=int(args.max_payload_mb * 1024 * 1024),
            environment=environment,
            timeout=args.timeout,
            body_timeout=args.body_timeout,
        )
    except (FileNotFoundError, ValueError, ContainerStartError) as e:  # no model, or one that cannot start
        print(f"sagecycle serve: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # gunicorn exits through SystemExit on shutdown
        return int(e.code or 0) if isinstance(e.code, int) or e.code is None else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
