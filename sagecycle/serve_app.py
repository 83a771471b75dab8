"""The WSGI application of `sagecycle serve`: SageMaker's front end over one model started as the container starts it.

Routes:
- `GET /ping`: 200 once the model is loaded (it is loaded before the server accepts connections).
- `POST /invocations`: the container contract. An error answers with the toolkit's status (400/406/413/415,
  500) and its body: the message, then the traceback.
- `POST /endpoints/<name>/invocations`: the sagemaker-runtime InvokeEndpoint API, so boto3 (and the SageMaker
  SDK's serializers) work unchanged with `endpoint_url="http://127.0.0.1:8080"`. Success carries
  `Content-Type` and `x-Amzn-Invoked-Production-Variant`; a failed invocation answers as SageMaker does:
  HTTP 424 with `x-amzn-ErrorType: ModelError` and `{"Message", "OriginalStatusCode", "OriginalMessage",
  "LogStreamArn", "ErrorCode"}`, so boto3 raises a ClientError whose message carries the container's.

Each invocation goes through the container's own toolkit (`sagecycle.container.HostedModel.invoke`); this layer adds
only what SageMaker's front end adds: the payload limit, a deadline for a client's body (408), the runtime API's
error wrapping, data capture and one JSON log line per invocation.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tarfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from lambdas.shared.jobspec import hosting_environment
from sagecycle.container import REALTIME_MAX_PAYLOAD_BYTES, HostedModel, Invocation, start_container
from sagecycle.data_capture import DEFAULT_ENDPOINT, DEFAULT_VARIANT, NAME_PATTERN, DataCapture
from training_scripts import inference

LOG = logging.getLogger("sagecycle.serve")
# Slow or stalled clients must not hold the threads that serve everyone else (`serve_server._bounded_worker_class`):
# a connection that sends nothing goes back to the poller after IDLE_WAIT_SECONDS, one that stalls inside its
# headers is closed after HEADER_TIMEOUT_SECONDS, and one that stalls inside its body is answered 408 after
# DEFAULT_BODY_TIMEOUT. So up to `threads - 1` stalled clients per worker never delay a good request.
HEADER_TIMEOUT_SECONDS = 2.0
DEFAULT_BODY_TIMEOUT = 10.0
_READ_CHUNK = 1 << 16
_RUNTIME_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
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
