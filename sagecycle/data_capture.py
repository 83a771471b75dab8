"""SageMaker data capture as `sagecycle serve` writes it, and the endpoint and variant names it files records under.

One JSON line per invocation (`captureData.endpointInput` / `endpointOutput` with their observed content type and
encoding, `eventMetadata`, `eventVersion`), one file per process and hour, in SageMaker's S3 layout
`<endpoint>/<variant>/yyyy/mm/dd/hh/`: the records a monitor (and the drift job) reads. The rehearsal's runtime
writes its capture with the same class.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from training_scripts import inference

DEFAULT_ENDPOINT = "local-endpoint"
DEFAULT_VARIANT = "AllTraffic"
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
