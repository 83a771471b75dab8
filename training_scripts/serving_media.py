"""The serving side's HTTP vocabulary: media types, the client error, and how messages show values.

Shared by inference.py and its serving_*.py modules (all copied into the model's code/ directory).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

try:  # the framework container answers this class with its status code; any other exception becomes a 500
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # outside the container

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        """Stand-in for sagemaker_inference's BaseInferenceToolkitError."""


CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
LIBSVM = "text/libsvm"
MAX_ROWS = 100_000

RESPONSE_TYPES = {
    CSV: CSV,
    JSON: JSON,
    JSONLINES: JSONLINES,
    "application/x-jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
}
# text/libsvm is the SageMaker SDK XGBoostPredictor's default serializer; text/x-libsvm the container's alias.
_REQUEST_TYPES = {**RESPONSE_TYPES, LIBSVM: LIBSVM, "text/x-libsvm": LIBSVM}
_ACCEPTED_REQUEST_TYPES = "text/csv, application/json, application/jsonlines or text/libsvm"
_UTF8_CHARSETS = {"utf-8", "utf8", "us-ascii", "ascii"}
_PHRASES = {400: "Bad Request", 406: "Not Acceptable", 413: "Payload Too Large", 415: "Unsupported Media Type"}
# Below this many lines a plain Python loop beats pandas' fixed start-up cost (about 0.3 ms).
VECTORISE_MIN_ROWS = 64


class BadRequest(ValueError, _ToolkitError):
    """A client error: the request, not the server, is wrong.

    Attributes:
        status: HTTP status (400, 406, 413 or 415); also `status_code` for the framework container.
        message: what is wrong, naming the row/column when there is one.
        row, column, feature: 1-based row and column and the feature name, where known.
    """

    def __init__(
        self,
        message: str,
        status: int = 400,
        *,
        row: int | None = None,
        column: int | None = None,
        feature: str | None = None,
    ) -> None:
        ValueError.__init__(self, message)
        self.message = message
        self.status = self.status_code = status
        self.phrase = _PHRASES.get(status, "Bad Request")
        self.row, self.column, self.feature = row, column, feature

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON error body: `message`, `status`, `error`, and `row`/`column`/`feature` when known."""
        body: dict[str, Any] = {"message": self.message, "status": self.status, "error": self.phrase}
        for key in ("row", "column", "feature"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


def request_media_type(content_type: str | None) -> str:
    """Returns the canonical request media type for a Content-Type header, or raises BadRequest(415)."""
    if not content_type:
        return CSV
    media, params = parse_media_range(content_type)
    kind = _REQUEST_TYPES.get(media)
    if kind is None:
        raise BadRequest(f"unsupported Content-Type {content_type!r}; send {_ACCEPTED_REQUEST_TYPES}", 415)
    options = dict(params)
    charset = options.get("charset")
    if charset is not None and charset not in _UTF8_CHARSETS:
        raise BadRequest(f"unsupported charset {charset!r}; send UTF-8", 415)
    label_size = options.get("label_size")
    if label_size is not None and (kind != CSV or label_size not in {"0", "1"}):
        raise BadRequest(
            f"unsupported parameter label_size={label_size!r} in Content-Type {content_type!r}; text/csv takes "
            "label_size=0 (features only, the default) or label_size=1 (a label column first, ignored)",
            415,
        )
    return kind


def label_columns(content_type: str | None) -> int:
    """text/csv's label_size parameter, as the container reads it: 1 means the first column is the label."""
    if not content_type:
        return 0
    return int(dict(parse_media_range(content_type)[1]).get("label_size") or 0)


@lru_cache(maxsize=256)
def parse_media_range(value: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    media, *rest = value.split(";")
    params = []
    for item in rest:
        key, _, val = item.partition("=")
        if key.strip():
            params.append((key.strip().lower(), val.strip().strip('"').lower()))
    return media.strip().lower(), tuple(params)


def csv_field(value: str) -> str:
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def show(value: Any, limit: int = 40) -> str:
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def preview(items: tuple[str, ...], limit: int = 6) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )
