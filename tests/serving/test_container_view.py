"""The container's view: inference.py run through sagemaker-inference's Transformer with a request context.

This is what the SageMaker XGBoost container does per request, so the statuses, the default Accept and the
body decoding asserted here are AWS's own, not a re-implementation of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagecycle.container import HostedModel, start_container
from sagecycle.serve import default_environment

ROW = "39,2,40,1"  # age, workclass (code), hours_per_week, sex (code)
CLIENT_STATUSES = {200, 400, 406, 413, 415}


@pytest.fixture(scope="module")
def hosted(model_dirs: dict[str, Path]) -> HostedModel:
    return start_container(model_dirs["binary"], default_environment())


def score(hosted: HostedModel, body: bytes | str, content_type: str | None, accept: str | None = "text/csv") -> float:
    data = body.encode() if isinstance(body, str) else body
    result = hosted.invoke(data, content_type, accept)
    assert result.status == 200, result.body[:300]
    return float(result.body.decode().strip().split(",")[0])


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (ROW, "text/csv"),  # the toolkit decodes this exact type to str
        (ROW, "text/csv; charset=utf-8"),  # ... but not this one: it arrives as bytes
        (ROW, "text/csv;label_size=0"),
        ("1," + ROW, "text/csv; label_size=1"),  # a label column first, ignored
        (ROW, None),  # no Content-Type: CSV
        (json.dumps({"instances": [[39, 2, 40, 1]]}), "application/json"),
        (
            json.dumps({"instances": [{"age": 39, "workclass": "Private", "hours_per_week": 40, "sex": "Male"}]}),
            "application/json; charset=utf-8",
        ),
        ("[39, 2, 40, 1]\n", "application/jsonlines"),
        ("0 0:39 1:2 2:40 3:1", "text/libsvm"),  # the SDK XGBoostPredictor's default: label first, zero-based
        ("0:1.0 0:39 1:2 2:40 3:1", "text/x-libsvm"),  # label:weight
    ],
)
def test_every_content_type_a_sagemaker_user_sends_scores_the_same_row_alike(hosted, body, content_type):
    # GIVEN one row in each request format
    # WHEN it goes through the container's toolkit
    # THEN each scores exactly as the plain CSV row does
    assert score(hosted, body, content_type) == score(hosted, ROW, "text/csv")


def test_libsvm_absent_features_are_missing(hosted):
    # GIVEN a LIBSVM row naming only two features, and the CSV row with the other two empty
    # WHEN both are scored
    # THEN they agree: an absent LIBSVM feature is a missing value, as in XGBoost's own reader
    assert score(hosted, "1 0:39 2:40", "text/libsvm") == score(hosted, "39,,40,", "text/csv")


@pytest.mark.parametrize(
    ("accept", "content_type"), [(None, "text/csv"), ("*/*", "text/csv"), (None, "application/json")]
)
def test_a_missing_or_wildcard_accept_answers_the_containers_default(hosted, accept, content_type):
    # GIVEN a model started with the Environment every deployed model has (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT)
    body = ROW if content_type == "text/csv" else json.dumps({"instances": [[39, 2, 40, 1]]})
    # WHEN a request sends no Accept, or */*
    result = hosted.invoke(body.encode(), content_type, accept)
    # THEN the answer is text/csv, whatever the request's own format
    assert (result.status, result.content_type) == (200, "text/csv")


def test_accept_parameters_do_not_leak_into_the_response_content_type(hosted):
    # GIVEN a request for JSON with labels
    result = hosted.invoke(ROW.encode(), "text/csv", "application/json; labels=true")
    # THEN the response type is the bare media type and the body carries the label
    assert result.content_type == "application/json"
    assert "predicted_label" in json.loads(result.body)["predictions"][0]


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status"),
    [
        (ROW, "application/x-protobuf", None, 415),
        (ROW, "text/csv; charset=latin-1", None, 415),
        (ROW, "text/csv; label_size=2", None, 415),
        (ROW, "text/csv", "image/png", 406),
        ("39,2,40", "text/csv", None, 400),
        ("39,Nope,40,1", "text/csv", None, 400),
        ("", "text/csv", None, 400),
        ("1", "text/csv; label_size=1", None, 400),
        ("[" * 100_000 + "]" * 100_000, "application/json", None, 400),  # nested deeper than the parser goes
        ('{"instances": [[' + "9" * 5000 + ", 2, 40, 1]]}", "application/json", None, 400),  # > int digit limit
        ("[" + "9" * 5000 + ", 2, 40, 1]", "application/jsonlines", None, 400),
        ('"' + "x" * 200_000 + '",2,40,1', "text/csv", None, 400),  # over the csv module's field limit
        ("1e999,2,40,1", "text/csv", None, 400),
        ("39,2,40,1", "text/csv", "text/csv; labels=true; q=0", 406),
        ("0 4:1", "text/libsvm", None, 400),  # index past the last feature
        ("0 0:1 0:2", "text/libsvm", None, 400),  # an index twice
        ("x 0:1", "text/libsvm", None, 400),  # no label first
        ("0 a:1", "text/libsvm", None, 400),
        (b"39,2,40,\xff", "text/csv; charset=utf-8", None, 400),  # bytes our code decodes: a 400
    ],
)
def test_bad_requests_get_the_toolkits_client_status(hosted, body, content_type, accept, status):
    # GIVEN a bad request
    data = body if isinstance(body, bytes) else body.encode()
    # WHEN the container's toolkit handles it
    result = hosted.invoke(data, content_type, accept)
    # THEN it is the 4xx our code raised, never a 500
    assert result.status == status, result.body[:400]


def test_an_unsupported_type_is_told_which_types_are_accepted(hosted):
    # GIVEN a protobuf request
    result = hosted.invoke(ROW.encode(), "application/x-protobuf", None)
    # THEN the 415 lists every accepted type
    assert result.status == 415
    for accepted in ("text/csv", "application/json", "application/jsonlines", "text/libsvm"):
        assert accepted in result.message


def test_invalid_utf8_under_exactly_text_csv_is_the_toolkits_own_500(hosted):
    # GIVEN bytes that are not UTF-8, sent as exactly text/csv
    # WHEN the toolkit decodes the body before inference.py sees it (transformer.py: UTF8_TYPES)
    result = hosted.invoke(b"39,2,40,\xff", "text/csv", None)
    # THEN it answers 500, as the real container does; docs/serving.md records this difference from our 4xx rule
    assert result.status == 500


_TYPES_OUR_CODE_DECODES = [
    "text/csv; charset=utf-8",
    "application/json; charset=utf-8",
    "application/jsonlines",
    "text/libsvm",
    "application/x-protobuf",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300), content_type=st.sampled_from(_TYPES_OUR_CODE_DECODES))
def test_no_byte_body_is_a_500(hosted, body, content_type):
    # GIVEN any bytes under a type the toolkit hands over undecoded
    # WHEN the container handles them
    result = hosted.invoke(body, content_type, None)
    # THEN the answer is a success or a client error, never a 500
    assert result.status in CLIENT_STATUSES, result.body[:400]


_CELLS = st.one_of(
    st.sampled_from(
        ["39", "2", "", "nan", "?", "1e39", "-1e39", "3_9", "٣", " 5 ", "+5", ".5", "5.", "inf", "Private"]
    ),
    st.text(max_size=12),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_CELLS, min_size=3, max_size=5), min_size=1, max_size=4))
def test_no_text_request_is_a_500(hosted, rows):
    # GIVEN rows of nasty cells, as CSV and as JSON
    csv_body = "\n".join(",".join(cells) for cells in rows)
    json_body = json.dumps({"instances": rows})
    # WHEN the container handles them as exactly text/csv and application/json (decoded to str by the toolkit)
    for body, content_type in ((csv_body, "text/csv"), (json_body, "application/json")):
        result = hosted.invoke(body.encode(), content_type, None)
        # THEN each is a success or a client error, never a 500
        assert result.status in CLIENT_STATUSES, (content_type, body, result.body[:400])


_CONTEXT_PROGRAM = """
def model_fn(model_dir):
    return "model"


def input_fn(body, content_type, context):  # takes the request context, as the toolkit allows
    return type(context).__name__


def predict_fn(data, model):
    return data


def output_fn(prediction, accept):
    return prediction, "text/plain"
"""


def test_handlers_that_take_a_context_still_get_one_on_every_request(tmp_path):
    # GIVEN an artifact whose input_fn takes the toolkit's context argument and whose other handlers do not
    code = tmp_path / "code"
    code.mkdir()
    (code / "context_program.py").write_text(_CONTEXT_PROGRAM)
    hosted = start_container(tmp_path, {**default_environment(), "SAGEMAKER_PROGRAM": "context_program.py"})
    # WHEN it is invoked twice (the toolkit checks each handler's arity on every request)
    results = [hosted.invoke(b"x", "text/csv", "text/plain") for _ in range(2)]
    # THEN input_fn gets the context each time, and the others are called without it
    assert [(r.status, r.body) for r in results] == [(200, b"RequestContext")] * 2
