"""The bare-server floor for `bench.serve`: gunicorn's threaded worker answering a constant, nothing else.

Served exactly like `sagecycle serve` (same worker class family, workers, threads, keep-alive), so the ratio
between the two is what our work per request costs: the toolkit, parsing, prediction, formatting, logging.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = environ.get("CONTENT_LENGTH")
    environ["wsgi.input"].read(int(length) if length and length.isdigit() else 0)
    body = b"0.5"
    start_response("200 OK", [("Content-Type", "text/csv"), ("Content-Length", str(len(body)))])
    return [body]
