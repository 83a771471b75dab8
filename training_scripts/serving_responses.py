"""Response encoding: the media type an Accept header asks for, and the scores (with labels on request) as CSV,
JSON or JSON Lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

if __package__:  # training_scripts.<module>, imported from the repository
    from training_scripts import serving_media, serving_model
else:  # imported by name from the model's code/ directory, beside inference.py
    import serving_media  # type: ignore[no-redef]
    import serving_model  # type: ignore[no-redef]

CSV, JSON, RESPONSE_TYPES = serving_media.CSV, serving_media.JSON, serving_media.RESPONSE_TYPES
VECTORISE_MIN_ROWS = serving_media.VECTORISE_MIN_ROWS
BadRequest = serving_media.BadRequest
Model = serving_model.Model
csv_field, parse_media_range = serving_media.csv_field, serving_media.parse_media_range
request_media_type = serving_media.request_media_type


@dataclass(frozen=True, slots=True)
class Prediction:
    """`predict_fn`'s result: raw model output plus what `output_fn` needs to encode it."""

    scores: np.ndarray  # (rows,) binary/regression, (rows, classes) multiclass
    content_type: str
    model: Model


def encode_response(prediction: Prediction, media: str, want_labels: bool, batch: bool) -> tuple[bytes, str]:
    """The prediction as `media` (CSV, JSON or JSON Lines, from `resolve_accept`), with labels when asked for.

    `batch` (SAGEMAKER_BATCH): batch transform joins the response lines back to the input records, so there every
    row gets its own CSV line. Returns (UTF-8 body, media). Raises `BadRequest` (406) for labels of a regression.
    """
    model = prediction.model
    scores = prediction.scores
    labels = _labels(prediction) if want_labels else None
    if media == CSV:
        texts = _float_texts(scores)
        if scores.ndim == 1 and labels is None:
            body = ("\n" if batch else ",").join(texts)
        else:
            escaped = [csv_field(c) for c in model.classes]
            width = 1 if scores.ndim == 1 else scores.shape[1]
            lines = [",".join(texts[i : i + width]) for i in range(0, len(texts), width)]
            if labels is not None:
                lines = [f"{line},{escaped[k]}" for line, k in zip(lines, labels, strict=True)]
            body = "\n".join(lines)
        if batch:
            body += "\n"
        return body.encode("utf-8"), media
    values = scores.tolist()
    if labels is None:
        records = [{"score": v} for v in values]
    else:
        records = [{"score": v, "predicted_label": model.classes[k]} for v, k in zip(values, labels, strict=True)]
    if media == JSON:
        return json.dumps({"predictions": records}).encode("utf-8"), media
    return ("\n".join(map(json.dumps, records)) + "\n").encode("utf-8"), media


@lru_cache(maxsize=256)
def resolve_accept(
    accept: str | None, request_content_type: str | None, default_accept_type: str | None
) -> tuple[str, bool]:
    """Picks the response media type and whether labels were asked for.

    Args:
        accept: the Accept header (q-values honoured); None, empty or `*/*` means the default below.
        request_content_type: the request's Content-Type (or its canonical media type).
        default_accept_type: the canonical type of SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, if set; else the request's
            own type is the default.

    Returns:
        (canonical media type, labels requested). Raises `BadRequest` (406) when nothing acceptable is offered.
    """
    request_type = request_media_type(request_content_type)
    # Responses are CSV, JSON or JSON Lines; a LIBSVM request answers in the configured default, else CSV.
    default = default_accept_type or (request_type if request_type in RESPONSE_TYPES else CSV)
    if not accept or not accept.strip():
        return default, False
    offers = []
    for position, item in enumerate(accept.split(",")):
        media, params = parse_media_range(item)
        options = dict(params)
        try:
            q = float(options.get("q", "1"))
        except ValueError:
            q = 1.0
        if media and q > 0:
            offers.append((-q, position, media, options.get("labels") in {"true", "1", "yes"}))
    for _, _, media, labels in sorted(offers):
        if media in RESPONSE_TYPES:
            return RESPONSE_TYPES[media], labels
        if media == "*/*" or (media == "text/*" and default == CSV):
            return default, labels
        if media == "application/*":
            return (default if default != CSV else JSON), labels
    raise BadRequest(
        f"unsupported Accept {accept!r}; accept text/csv, application/json or application/jsonlines "
        "(add '; labels=true' for predicted labels)",
        406,
    )


def _float_texts(values: np.ndarray) -> list[str]:
    """Each value (row-major) as the shortest text that reads back as the same float32: `0.8234567`, not the
    `0.8234567046165466` of its float64 repr; `1` for 1.0, and nan/inf/-inf.

    A large response is formatted by pyarrow in one call, about 4x faster than repr for 10,000 rows; a small one by
    numpy's shortest repr of each value, since pyarrow's fixed cost is larger there. Both find the same digits; only
    the notation of very small or large numbers may differ (`1e-05` here, `0.00001` from pyarrow).
    """
    flat = np.ascontiguousarray(values, dtype=np.float32).ravel()
    if len(flat) >= VECTORISE_MIN_ROWS:
        try:
            import pyarrow as pa
        except ImportError:  # pragma: no cover - the framework container has pyarrow
            pass
        else:
            texts: list[str] = pa.array(flat).cast(pa.string()).to_pylist()
            return texts
    return [text[:-2] if text.endswith(".0") else text for text in map(str, flat)]


def _labels(prediction: Prediction) -> list[int]:
    model = prediction.model
    if model.task == "regression":
        raise BadRequest("labels=true: a regression model predicts values, not labels", 406)
    if model.task == "binary":
        return (prediction.scores >= model.threshold).astype(np.int64).tolist()
    return prediction.scores.argmax(axis=1).tolist()
