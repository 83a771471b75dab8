"""`sagecycle serve MODEL_DIR`: the SageMaker hosting contract on this machine, through the real inference code.

Routes:
- `GET /ping`: 200 once the model is loaded (it is loaded before the server accepts connections).
- `POST /invocations`: the container contract. Errors keep their own status (400/406/413/415, 500) with a
  JSON body `{"message": ..., "status": ..., "error": ..., "row"?, "column"?, "feature"?}`.
- `POST /endpoints/<name>/invocations`: the sagemaker-runtime InvokeEndpoint API, so boto3 (and the SageMaker
  SDK's serializers) work unchanged with `endpoint_url="http://127.0.0.1:8080"`. Success carries
  `Content-Type` and `x-Amzn-Invoked-Production-Variant`; a failed invocation answers as SageMaker does:
  HTTP 424 with `x-amzn-ErrorType: ModelError` and `{"Message", "OriginalStatusCode", "OriginalMessage",
  "LogStreamArn", "ErrorCode"}`, so boto3 raises a ClientError whose message carries ours.

Requests go through training_scripts/inference.py's model_fn/input_fn/predict_fn/output_fn, the same code the
framework container runs. The WSGI app (`create_app`) runs under gunicorn (`run_server`): the model is loaded
once in the master (preload) and shared by forked workers, each with a pool of threads. One JSON log line per
invocation goes to stderr. `--capture-dir` writes SageMaker data-capture JSON Lines files under
`DIR/<endpoint>/<variant>/yyyy/mm/dd/hh/`, the layout and record shape a monitoring job reads.
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
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from training_scripts import inference

LOG = logging.getLogger("sagecycle.serve")
DEFAULT_ENDPOINT = "local-endpoint"
DEFAULT_VARIANT = "AllTraffic"
_RUNTIME_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
_CAPTURE_ENCODINGS = {inference.CSV: "CSV", inference.JSON: "JSON", inference.JSONLINES: "JSON"}
_REASONS = {
    200: "OK",
    400: "Bad Request",
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
        self.variant = variant
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
        directory = self.root / endpoint / self.variant / hour
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
        encoding = _CAPTURE_ENCODINGS[inference.request_media_type(content_type)]
    except inference.BadRequest:
        encoding = "BASE64"  # SageMaker base64-encodes any type not listed as CSV or JSON
    data = base64.b64encode(body).decode("ascii") if encoding == "BASE64" else body.decode("utf-8", "replace")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


class ServingApp:
    """The WSGI application: /ping, /invocations and /endpoints/<name>/invocations over one loaded model."""

    def __init__(
        self,
        model: inference.Model,
        *,
        endpoint_name: str = DEFAULT_ENDPOINT,
        variant: str = DEFAULT_VARIANT,
        capture: DataCapture | None = None,
        max_body_bytes: int = 100 * 1024 * 1024,
    ) -> None:
        self.model = model
        self.endpoint_name = endpoint_name
        self.variant = variant
        self.capture = capture
        self.max_body_bytes = max_body_bytes

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
        return self._invoke(environ, start_response, endpoint, runtime is not None)

    def _invoke(
        self, environ: dict[str, Any], start_response: StartResponse, endpoint: str, runtime: bool
    ) -> list[bytes]:
        started = time.perf_counter()
        content_type = environ.get("CONTENT_TYPE") or None
        accept = environ.get("HTTP_ACCEPT") or None
        body = b""
        rows = 0
        error: dict[str, Any] | None = None
        try:
            body = self._read_body(environ)
            # Check the Content-Type and Accept before any parsing work.
            response_type, _ = inference.resolve_accept(accept, content_type)
            prediction = inference.predict_fn(inference.input_fn(body, content_type), self.model)
            rows = len(prediction.scores)
            output = inference.output_fn(prediction, accept)
        except inference.BadRequest as e:
            error = e.to_dict()
        except Exception as e:  # a bug, not the caller's fault: answer 500 and keep the worker alive
            LOG.error("invocation failed\n%s", traceback.format_exc())
            error = {"message": f"internal error: {type(e).__name__}: {e}", "status": 500, "error": _REASONS[500]}

        headers = [("x-Amzn-Invoked-Production-Variant", self.variant)]
        if error is None:
            status = 200
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
            output = _json(_model_error(error, endpoint))
            headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ModelError")]
        else:
            status = error["status"]
            output = _json(error)
            headers.append(("Content-Type", "application/json"))
        if runtime:
            headers.append(("x-amzn-RequestId", str(uuid.uuid4())))
        start_response(f"{status} {_REASONS.get(status, 'Error')}", [*headers, ("Content-Length", str(len(output)))])

        record = {
            "event": "invocation",
            "path": environ.get("PATH_INFO"),
            "endpoint": endpoint,
            "status": status,
            "rows": rows,
            "content_type": content_type,
            "accept": accept,
            "bytes_in": len(body),
            "bytes_out": len(output),
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        if error is not None:
            record["error"] = error["message"][:300]
        LOG.info(json.dumps(record))
        return [output]

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        length = environ.get("CONTENT_LENGTH")
        size = int(length) if length and length.isdigit() else None
        if size is not None and size > self.max_body_bytes:
            raise inference.BadRequest(f"the body is {size:,} bytes; the limit is {self.max_body_bytes:,} bytes", 413)
        stream = environ["wsgi.input"]
        body = stream.read(size) if size is not None else stream.read(self.max_body_bytes + 1)
        if len(body) > self.max_body_bytes:
            raise inference.BadRequest(f"the body is over the limit of {self.max_body_bytes:,} bytes", 413)
        return body

    def warm_up(self) -> None:
        """Scores one all-missing row, so a new worker's first request does not pay XGBoost's start-up."""
        row = np.full((1, self.model.n_features), np.nan)
        for booster in (self.model.small_booster, self.model.booster):
            booster.inplace_predict(row, iteration_range=self.model.iteration_range)

    def close(self) -> None:
        if self.capture is not None:
            self.capture.close()


def _model_error(error: dict[str, Any], endpoint: str) -> dict[str, Any]:
    status = error["status"]
    kind = "client" if status < 500 else "server"
    return {
        "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
        "Message": f'Received {kind} error ({status}) from primary with message "{error["message"]}". '
        f"See the sagecycle serve log for endpoint {endpoint}.",
        "OriginalMessage": error["message"],
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


def create_app(
    model_dir: str | os.PathLike[str],
    *,
    capture_dir: str | os.PathLike[str] | None = None,
    endpoint_name: str = DEFAULT_ENDPOINT,
    variant: str = DEFAULT_VARIANT,
    max_body_bytes: int = 100 * 1024 * 1024,
) -> ServingApp:
    """Loads a model directory through `inference.model_fn` and returns the WSGI app serving it.

    Args:
        model_dir: a directory in the model artifact layout (not a tarball; see `model_directory`).
        capture_dir: where to write data-capture files; None disables capture.
        endpoint_name: the endpoint name for `/invocations` (the runtime path names its own).
        variant: the production variant reported in responses and capture paths.
        max_body_bytes: larger bodies get 413.

    Returns:
        The `ServingApp`.
    """
    model = inference.model_fn(str(model_dir))
    capture = DataCapture(Path(capture_dir), variant) if capture_dir is not None else None
    return ServingApp(
        model, endpoint_name=endpoint_name, variant=variant, capture=capture, max_body_bytes=max_body_bytes
    )


def model_directory(path: str | os.PathLike[str], scratch: Path) -> Path:
    """Returns the model directory for `path`: the directory itself, or a model.tar.gz extracted into `scratch`."""
    source = Path(path)
    if source.is_dir():
        return source
    if not source.is_file() or not tarfile.is_tarfile(source):
        raise FileNotFoundError(f"{path} is neither a model directory nor a model.tar.gz")
    with tarfile.open(source) as tar:
        tar.extractall(scratch, filter="data")
    for candidate in [scratch, *sorted(p for p in scratch.iterdir() if p.is_dir())]:
        if (candidate / "xgboost-model").is_file():
            return candidate
    raise FileNotFoundError(f"{path} holds no xgboost-model")


def _run_gunicorn(app: ServingApp, options: dict[str, Any]) -> None:
    """Runs gunicorn's arbiter over an already-built app (gunicorn is imported here: tests never need it)."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):  # type: ignore[misc]
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
    workers: int = 1,
    threads: int = 4,
    capture_dir: str | os.PathLike[str] | None = None,
    endpoint_name: str = DEFAULT_ENDPOINT,
    variant: str = DEFAULT_VARIANT,
    max_body_bytes: int = 100 * 1024 * 1024,
    timeout: int = 120,
) -> None:
    """Serves a model directory or model.tar.gz with gunicorn (threaded workers, model preloaded) until stopped."""
    _configure_logging()
    owner = os.getpid()
    scratch = Path(tempfile.mkdtemp(prefix="sagecycle-serve-"))
    try:
        app = _off_main_thread(
            lambda: create_app(
                model_directory(model_dir, scratch),
                capture_dir=capture_dir,
                endpoint_name=endpoint_name,
                variant=variant,
                max_body_bytes=max_body_bytes,
            )
        )
        model = app.model
        LOG.info(
            json.dumps(
                {
                    "event": "start",
                    "model": str(model_dir),
                    "task": model.task,
                    "features": model.n_features,
                    "threshold": model.threshold,
                    "url": f"http://{host}:{port}",
                    "workers": workers,
                    "threads": threads,
                    "capture_dir": str(capture_dir) if capture_dir else None,
                }
            )
        )
        options = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sagecycle serve",
        description="Serve a model directory (or model.tar.gz) on the SageMaker hosting contract: "
        "GET /ping, POST /invocations and POST /endpoints/<name>/invocations.",
    )
    parser.add_argument("model_dir", help="model directory or model.tar.gz (xgboost-model, schema.json, ...)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--capture-dir", help="write SageMaker data-capture JSON Lines files under this directory")
    parser.add_argument("--endpoint-name", default=DEFAULT_ENDPOINT, help="endpoint name for /invocations")
    parser.add_argument("--variant", default=DEFAULT_VARIANT, help="production variant name")
    parser.add_argument("--max-body-mb", type=float, default=100.0, help="larger request bodies get 413")
    parser.add_argument("--timeout", type=int, default=120, help="seconds before a stuck worker is restarted")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
            max_body_bytes=int(args.max_body_mb * 1024 * 1024),
            timeout=args.timeout,
        )
    except (FileNotFoundError, ValueError) as e:  # no model, or one that fails its own checks
        print(f"sagecycle serve: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # gunicorn exits through SystemExit on shutdown
        return int(e.code or 0) if isinstance(e.code, int) or e.code is None else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
