"""The local sagemaker-runtime: its HTTP server, and the data capture and CloudWatch metrics each invocation leaves.

`LocalHosting.runtime_url` is a real HTTP server that is sagemaker-runtime (`boto3.client("sagemaker-runtime",
endpoint_url=hosting.runtime_url)`): `RuntimeServer` with `runtime_handler` serves InvokeEndpoint's path and hands
each request to the hosting, which routes it to a variant. `Telemetry` then writes data capture to S3 as the
endpoint config's DataCaptureConfig says (SageMaker's layout and record format, `sagecycle.data_capture`), and
publishes per-variant `Invocations`, `Invocation4XXErrors`, `Invocation5XXErrors` (1 or 0 per request, as SageMaker
sends them), `ModelLatency` and `OverheadLatency` (microseconds) to the local CloudWatch, namespace AWS/SageMaker,
dimensions EndpointName and VariantName, stamped with the simulated time. They are written into moto's CloudWatch
backend as the service itself would publish them (a customer's PutMetricData may not use an AWS/ namespace). Both
reach S3 and CloudWatch when `flush()` runs, not on a timer.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sagecycle.data_capture import DataCapture
from sagecycle.rehearsal.moto_sagemaker import naive_utc
from sagecycle.rehearsal.serving_process import ServingProcess

LOG = logging.getLogger("sagecycle.rehearsal.hosting")
METRIC_NAMESPACE = "AWS/SageMaker"
RUNTIME_PATH = re.compile(r"^/endpoints/([^/?]+)/invocations$")
# The request headers InvokeEndpoint passes on to the container.
FORWARDED = {
    "content-type",
    "accept",
    "x-amzn-sagemaker-custom-attributes",
    "x-amzn-sagemaker-inference-id",
}


@dataclass
class CaptureSettings:
    """An endpoint config's DataCaptureConfig."""

    destination: str  # s3://bucket/prefix
    sampling_percent: float
    modes: frozenset[str]
    kms_key_id: str | None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> CaptureSettings | None:
        if not config or not config.get("EnableCapture", True) or not config.get("DestinationS3Uri"):
            return None
        modes = frozenset(str(o.get("CaptureMode")) for o in config.get("CaptureOptions") or []) or frozenset(
            {"Input", "Output"}
        )
        return cls(
            destination=str(config["DestinationS3Uri"]).rstrip("/"),
            sampling_percent=float(config.get("InitialSamplingPercentage", 100)),
            modes=modes,
            kms_key_id=config.get("KmsKeyId"),
        )


@dataclass
class RuntimeAnswer:
    """What the runtime answers one request: status, body and headers."""

    status: int
    body: bytes
    headers: list[tuple[str, str]]


class Telemetry:
    """Data capture and CloudWatch metrics of the runtime, buffered until `flush()`.

    Args:
        work_dir: capture files are staged under `work_dir/capture/<config>/`.
        account, region: whose CloudWatch the metrics go to.
        s3: returns the S3 client the capture is uploaded with.
    """

    def __init__(self, work_dir: Path, account: str, region: str, s3: Callable[[], Any]) -> None:
        self.work_dir = work_dir
        self.account = account
        self.region = region
        self._s3 = s3
        self._capture_lock = threading.Lock()
        self._captures: dict[tuple[str, str, str], tuple[DataCapture, CaptureSettings, Path]] = {}
        self._metrics: list[dict[str, Any]] = []
        self._metrics_lock = threading.Lock()

    def capture(
        self,
        process: ServingProcess,
        settings: CaptureSettings,
        body: bytes,
        headers: Mapping[str, str],
        answer: bytes,
        answer_headers: Mapping[str, str],
        at: datetime,
    ) -> None:
        """Records one successful invocation of `process`'s variant, as its endpoint config's capture says."""
        key = (process.endpoint, process.config, process.variant)
        with self._capture_lock:
            if key not in self._captures:
                staging = self.work_dir / "capture" / process.config
                self._captures[key] = (DataCapture(staging, process.variant), settings, staging)
            capture = self._captures[key][0]
            capture.record(
                endpoint=process.endpoint,
                request_body=body,
                request_content_type=headers.get("content-type") or "application/octet-stream",
                response_body=answer,
                response_content_type=answer_headers.get("Content-Type") or "application/octet-stream",
                inference_id=headers.get("x-amzn-sagemaker-inference-id"),
                now=at,
            )

    def meter(self, process: ServingProcess, status: int, model_us: float, overhead_us: float, at: datetime) -> None:
        """The variant's metrics for one invocation, as SageMaker publishes them."""
        dimensions = [
            {"Name": "EndpointName", "Value": process.endpoint},
            {"Name": "VariantName", "Value": process.variant},
        ]
        values = {
            "Invocations": (1.0, "None"),
            "Invocation4XXErrors": (1.0 if 400 <= status < 500 else 0.0, "None"),
            "Invocation5XXErrors": (1.0 if status >= 500 else 0.0, "None"),
            "ModelLatency": (model_us, "Microseconds"),
            "OverheadLatency": (overhead_us, "Microseconds"),
        }
        data = [
            {"MetricName": name, "Dimensions": dimensions, "Timestamp": naive_utc(at), "Value": value, "Unit": unit}
            for name, (value, unit) in values.items()
        ]
        with self._metrics_lock:
            self._metrics += data

    def flush(self) -> None:
        """Writes buffered data capture to S3 and metrics to CloudWatch."""
        self._flush_capture()
        self._flush_metrics()

    def _flush_capture(self) -> None:
        """Uploads the capture files written so far, as SageMaker uploads its buffered capture: one object each."""
        with self._capture_lock:
            captures = list(self._captures.values())
            for capture, _, _ in captures:
                capture.close()  # the next record opens a new file
            s3 = self._s3() if captures else None
            for _, settings, staging in captures:
                bucket, _, prefix = settings.destination.removeprefix("s3://").partition("/")
                for path in sorted(staging.rglob("*.jsonl")):
                    lines = [keep_modes(line, settings.modes) for line in path.read_text("utf-8").splitlines() if line]
                    if lines:
                        extra: dict[str, str] = {}
                        if settings.kms_key_id:
                            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.kms_key_id}
                        key = "/".join(p for p in (prefix.strip("/"), path.relative_to(staging).as_posix()) if p)
                        assert s3 is not None
                        s3.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode() + b"\n", **extra)
                    path.unlink()

    def _flush_metrics(self) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        with self._metrics_lock:
            data, self._metrics = self._metrics, []
        if data:
            cloudwatch_backends[self.account][self.region].put_metric_data(METRIC_NAMESPACE, data)


def keep_modes(line: str, modes: frozenset[str]) -> str:
    """A capture record with only the CaptureOptions' modes (Input, Output)."""
    if modes >= {"Input", "Output"}:
        return line
    record = json.loads(line)
    data = record.get("captureData", {})
    if "Input" not in modes:
        data.pop("endpointInput", None)
    if "Output" not in modes:
        data.pop("endpointOutput", None)
    return json.dumps(record, separators=(",", ":"))


def error_response(status: int, kind: str, message: str) -> RuntimeAnswer:
    body = json.dumps({"message": message}).encode()
    return RuntimeAnswer(status, body, [("Content-Type", "application/json"), ("x-amzn-ErrorType", kind)])


class RuntimeServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up is not an error
            super().handle_error(request, client_address)


Invoke = Callable[[str, bytes, dict[str, str]], RuntimeAnswer]


def runtime_handler(invoke: Invoke) -> type[BaseHTTPRequestHandler]:
    """The request handler of InvokeEndpoint's path: `invoke(endpoint, body, lower-cased headers)` answers."""

    class RuntimeHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            LOG.debug(format, *args)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            match = RUNTIME_PATH.match(self.path)
            if match is None:
                result = error_response(404, "UnknownOperationException", f"no operation at {self.path}")
            else:
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    result = invoke(match.group(1), body, headers)
                except Exception:
                    LOG.exception("invocation failed")
                    result = error_response(500, "InternalFailure", "An internal error occurred.")
            self.send_response(result.status)
            for key, value in result.headers:
                self.send_header(key, value)
            if not any(k.lower() == "x-amzn-requestid" for k, _ in result.headers):
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(result.body)))
            self.end_headers()
            self.wfile.write(result.body)

    return RuntimeHandler
