"""Serving entry points for the SageMaker XGBoost framework container (and for `sagecycle serve`).

The container imports this file from the model's own code/ directory (train.py writes it there), runs it through
sagemaker-inference's Transformer, calls `model_fn` once, then `input_fn` -> `predict_fn` -> `output_fn` per
request. It imports only what that container has: the standard library, numpy, pandas and xgboost, the shared
`contract` package shipped beside it, and the toolkit's error class, so client errors keep their 4xx status
(any other exception becomes a 500 there).

Requests (`Content-Type`; `charset` must be UTF-8):
- `text/csv`: headerless rows, the features in schema order (what the SageMaker SDK's CSVSerializer sends).
  `label_size=1` says each row starts with a label column, which is ignored; `label_size=0` or none: features
  only. In CSV a categorical cell that reads as a number is the category's integer code; anything else must be
  one of the category strings. An empty cell, `nan` or a schema missing token is a missing value. A missing
  Content-Type means CSV.
- `application/json`: `{"instances": [row, ...]}` (a bare list of rows is accepted too); a row is a list in
  schema order or an object keyed by feature name, where an absent key is a missing value. A JSON number
  in a categorical column is a code, a string is a category name (or, failing that, a code), null is missing.
- `application/jsonlines`: one row per line, each a list or an object as above.
- `text/libsvm` (the SDK XGBoostPredictor's default; also `text/x-libsvm`): `<label>[:<weight>] <index>:<value>
  ...` per line, read as XGBoost reads LIBSVM: the first token is the label (ignored), indices are zero-based,
  an absent feature is missing.
A request holds 1 to 100,000 rows. Rows are numbered from 1, blank lines not counted.

Responses (`Accept`): the toolkit replaces a missing Accept or `*/*` by SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT
(text/csv in every model sagecycle deploys); without that variable the answer is in the request's format.
- `text/csv`: like the built-in XGBoost algorithm, one value per row joined by commas for a binary or
  regression model (`0.12,0.87`); rows on separate lines when a row has several values (multiclass
  probabilities, or a label). Batch transform (`SAGEMAKER_BATCH` set) always writes one line per row.
- `application/json`: `{"predictions": [{"score": 0.87}, ...]}`.
- `application/jsonlines`: one `{"score": 0.87}` per line.
`score` is P(class 1) for binary, the probability vector for multiclass and the value for regression.

Labels: add the parameter `labels=true` to Accept (e.g. `Accept: text/csv; labels=true`, or
`invoke_endpoint(..., Accept="application/json; labels=true")`). Each row then also carries the predicted
class name (`predicted_label` in JSON, a last CSV column): binary uses the threshold chosen in
evaluation.json (P(class 1) >= threshold), multiclass the most probable class. Regression has no labels (406).

Errors raise `BadRequest` with an HTTP status (400 bad data, 406 unsupported Accept, 413 too many rows,
415 unsupported Content-Type) and a message that names the row, column and problem. No client input may
raise anything else: the container would answer it with a 500, which counts against the canary.

Where things live (serving_*.py beside this file, copied with it into the model's code/ directory): the loaded
model in serving_model.py, request decoding in serving_requests.py, cells to features in serving_features.py,
response encoding in serving_responses.py, media types and `BadRequest` in serving_media.py. This module holds
the four handlers and what they read from the container's environment.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from contract import data

# The siblings come from where this file was imported from: the repository's package, or the model's code/
# directory when the toolkit imports this file by name (the artifact then serves its own copies).
if __package__:  # training_scripts.inference
    from training_scripts import serving_features, serving_media, serving_model, serving_requests, serving_responses
else:  # SAGEMAKER_PROGRAM, imported by name from code/
    import serving_features  # type: ignore[no-redef]
    import serving_media  # type: ignore[no-redef]
    import serving_model  # type: ignore[no-redef]
    import serving_requests  # type: ignore[no-redef]
    import serving_responses  # type: ignore[no-redef]

BadRequest = serving_media.BadRequest
Model = serving_model.Model
ParsedInput = serving_requests.ParsedInput
Prediction = serving_responses.Prediction
CSV, JSON, JSONLINES, LIBSVM = serving_media.CSV, serving_media.JSON, serving_media.JSONLINES, serving_media.LIBSVM
MAX_ROWS = serving_media.MAX_ROWS
request_media_type, to_features = serving_media.request_media_type, serving_features.to_features

__all__ = [
    "CSV",
    "JSON",
    "JSONLINES",
    "LIBSVM",
    "MAX_ROWS",
    "BadRequest",
    "Model",
    "ParsedInput",
    "Prediction",
    "data",
    "input_fn",
    "model_fn",
    "output_fn",
    "predict_fn",
    "request_media_type",
    "resolve_accept",
    "to_features",
]

# Read from the container's environment when the toolkit imports this file, so each model started in a process
# gets its own (the serving_*.py modules read nothing from the environment).
# The toolkit answers a missing Accept or `*/*` with this (the container's Environment sets it to text/csv);
# `*/*` inside a longer Accept list resolves to it too, so the two paths agree.
_DEFAULT_ACCEPT = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or None
_DEFAULT_ACCEPT_TYPE = (
    serving_media.RESPONSE_TYPES.get(serving_media.parse_media_range(_DEFAULT_ACCEPT)[0]) if _DEFAULT_ACCEPT else None
)
# Batch transform joins the response lines back to the input records, so there every row needs its own line.
_BATCH = os.environ.get("SAGEMAKER_BATCH", "").lower() in {"true", "1"}
# Up to this many rows one OpenMP thread is faster: a thread team costs more than it saves, and when the CPUs
# are busy its barriers wait on descheduled threads, which turned a 0.25 ms single-row p99 into 40+ ms.
_SINGLE_THREAD_MAX_ROWS = 1000


def model_fn(model_dir: str) -> Model:
    """Loads the booster, schema.json and the threshold from evaluation.json, once per process.

    Args:
        model_dir: directory holding `xgboost-model`, `schema.json` and (optionally) `evaluation.json`.

    Returns:
        The `Model` the other entry points use.
    """
    return serving_model.load_model(model_dir)


def input_fn(request_body: bytes | str | Any, request_content_type: str | None) -> ParsedInput:
    """Decodes a CSV, JSON or JSON Lines request and checks its envelope (type, encoding, JSON syntax, row count).

    The cells are checked against the schema in `predict_fn`, the first entry point that sees the model.

    Args:
        request_body: the raw body (bytes or str; the container may hand over already-decoded JSON).
        request_content_type: the request's Content-Type header, parameters allowed; None means text/csv.

    Returns:
        A `ParsedInput` for `predict_fn`. Raises `BadRequest` (400/413/415) naming the row and problem.
    """
    return serving_requests.decode_request(request_body, request_content_type)


def predict_fn(input_data: ParsedInput, model: Model) -> Prediction:
    """Checks the rows against the schema, then scores them with `Booster.inplace_predict` (no DMatrix).

    Args:
        input_data: `input_fn`'s result.
        model: `model_fn`'s result.

    Returns:
        A `Prediction` holding P(class 1), the class probabilities or the regression value per row.
        Raises `BadRequest` (400) naming the row, column and problem of the first bad cell.
    """
    features = to_features(input_data, model)
    booster = model.small_booster if len(features) <= _SINGLE_THREAD_MAX_ROWS else model.booster
    scores = booster.inplace_predict(features, iteration_range=model.iteration_range, validate_features=False)
    return Prediction(scores=np.asarray(scores), content_type=input_data.content_type, model=model)


def output_fn(prediction: Prediction, accept: str | None) -> tuple[bytes, str]:
    """Encodes the prediction as CSV, JSON or JSON Lines, with labels when Accept carries `labels=true`.

    Args:
        prediction: `predict_fn`'s result.
        accept: the Accept header (the toolkit has already replaced a missing one or `*/*` by
            SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT); `*/*` in a list means that default, else the request's format.

    Returns:
        (UTF-8 body, response media type): the toolkit sends the type as the response's Content-Type, without
        parameters such as `labels=true`. Raises `BadRequest` (406) for an unsupported Accept.
    """
    media, want_labels = resolve_accept(accept, prediction.content_type)
    return serving_responses.encode_response(prediction, media, want_labels, batch=_BATCH)


def resolve_accept(accept: str | None, request_content_type: str | None = None) -> tuple[str, bool]:
    """Picks the response media type and whether labels were asked for.

    Args:
        accept: the Accept header (q-values honoured); None, empty or `*/*` means SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT
            if set, else the request's own type.
        request_content_type: the request's Content-Type (or its canonical media type).

    Returns:
        (canonical media type, labels requested). Raises `BadRequest` (406) when nothing acceptable is offered.
    """
    return serving_responses.resolve_accept(accept, request_content_type, _DEFAULT_ACCEPT_TYPE)
