"""training_scripts/inference.py: the four entry points the SageMaker XGBoost framework container calls."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import model_factory
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sagemaker.core.serializers import CSVSerializer

from training_scripts import inference
from training_scripts.inference import BadRequest


def invoke(model: inference.Model, body: bytes | str, content_type: str | None, accept: str | None = None) -> bytes:
    body_out, _ = inference.output_fn(inference.predict_fn(inference.input_fn(body, content_type), model), accept)
    return body_out


def csv_scores(body: bytes) -> np.ndarray:
    return np.array(body.decode().replace("\n", ",").split(","), dtype=float)


def bad_request(model: inference.Model, body: bytes | str, content_type: str | None, accept: str | None = None):
    with pytest.raises(BadRequest) as caught:
        invoke(model, body, content_type, accept)
    return caught.value


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return model_factory.synthetic_features(50, seed=7)


@pytest.fixture(scope="module")
def reference(model_dirs: dict[str, Path], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {task: model_factory.reference_scores(path, rows) for task, path in model_dirs.items()}


# --- model_fn -----------------------------------------------------------------------------------------------


def test_model_fn_loads_schema_and_chosen_threshold(binary_model):
    # GIVEN a model directory whose evaluation.json chose a threshold
    # WHEN model_fn loaded it (fixture)
    # THEN the model knows its task, features, classes and threshold
    assert binary_model.task == "binary"
    assert binary_model.feature_names == ("age", "workclass", "hours_per_week", "sex")
    assert binary_model.classes == ("<=50K", ">50K")
    assert binary_model.threshold == model_factory.THRESHOLD


def test_model_fn_reads_a_ubjson_booster_too(model_dirs, tmp_path, binary_model):
    # GIVEN the binary model re-saved as UBJSON under the same file name
    target = tmp_path / "ubj"
    target.mkdir()
    for name in ("schema.json", "evaluation.json"):
        (target / name).write_bytes((model_dirs["binary"] / name).read_bytes())
    (target / "xgboost-model").write_bytes(bytes(binary_model.booster.save_raw("ubj")))
    # WHEN it is loaded
    model = inference.model_fn(str(target))
    # THEN it scores like the JSON one
    assert invoke(model, "39,2,40,1", "text/csv") == invoke(binary_model, "39,2,40,1", "text/csv")


# --- request content types ----------------------------------------------------------------------------------


def test_csv_from_the_sdk_serializer_scores_like_the_booster(binary_model, rows, reference):
    # GIVEN rows serialised exactly as the SageMaker SDK's CSVSerializer sends a numpy array
    body = CSVSerializer().serialize(rows)
    # WHEN they are invoked with no Accept
    out = invoke(binary_model, body, "text/csv")
    # THEN the answer is CSV probabilities, one per row and comma-joined as the built-in algorithm does
    assert "\n" not in out.decode()
    np.testing.assert_allclose(csv_scores(out), reference["binary"], rtol=1e-6)


def test_csv_category_strings_and_missing_tokens_match_codes(binary_model):
    # GIVEN the same rows written with category strings / missing tokens and with integer codes / empty cells
    as_strings = "39,Private,40,Male\n52,?,,Female\n23, Self-emp ,nan,Male"
    as_codes = "39,2,40,1\n52,,,0\n23,3,,1"
    # WHEN both are invoked
    # THEN they score identically
    assert csv_scores(invoke(binary_model, as_strings, "text/csv")).tolist() == pytest.approx(
        csv_scores(invoke(binary_model, as_codes, "text/csv")).tolist()
    )


def test_content_type_parameters_and_missing_content_type_mean_csv(binary_model):
    # GIVEN one CSV row
    body = b"39,2,40,1"
    # WHEN it is sent with a charset parameter, with no Content-Type at all, and behind a byte-order mark
    with_charset = invoke(binary_model, body, "text/csv; charset=utf-8")
    without = invoke(binary_model, body, None)
    with_bom = invoke(binary_model, "\ufeff".encode() + body, "text/csv")
    # THEN all are read as the same CSV
    assert with_charset == without == with_bom == invoke(binary_model, body, "text/csv")


def test_large_csv_takes_the_vectorised_parse_and_matches_the_row_by_row_parse(binary_model, model_dirs):
    # GIVEN 500 rows mixing codes, category strings and missing values (large enough for the pandas path)
    x = model_factory.synthetic_features(500, seed=11, missing_fraction=0.1)
    lines = []
    for i, row in enumerate(x.tolist()):
        cells = ["" if v != v else repr(v) for v in row]
        if i % 3 == 0 and row[1] == row[1]:
            cells[1] = model_factory.WORKCLASS[int(row[1])]
        lines.append(",".join(cells))
    parsed = inference.input_fn("\n".join(lines) + "\n", "text/csv")
    # WHEN the features are built
    features = inference.to_features(parsed, binary_model)
    # THEN they equal the intended matrix, and the scores equal the booster's own
    np.testing.assert_array_equal(features, x)
    scores = inference.predict_fn(parsed, binary_model).scores
    np.testing.assert_allclose(scores, model_factory.reference_scores(model_dirs["binary"], x), rtol=1e-6)


def test_json_rows_as_lists(binary_model, rows, reference):
    # GIVEN {"instances": [...]} with rows as lists
    body = json.dumps({"instances": rows.tolist()})
    # WHEN invoked with no Accept
    out = json.loads(invoke(binary_model, body, "application/json"))
    # THEN the answer is JSON with one score per row
    np.testing.assert_allclose([p["score"] for p in out["predictions"]], reference["binary"], rtol=1e-6)


def test_json_rows_as_objects_treat_an_absent_key_as_missing(binary_model):
    # GIVEN a row keyed by feature name without "hours_per_week", and the same row as a list with null
    by_name = {"instances": [{"age": 39, "workclass": "Private", "sex": "Male"}]}
    as_list = {"instances": [[39, 2, None, 1]]}
    # WHEN both are invoked
    a = json.loads(invoke(binary_model, json.dumps(by_name), "application/json"))
    b = json.loads(invoke(binary_model, json.dumps(as_list), "application/json"))
    # THEN they score identically
    assert a == b


def test_json_accepts_a_bare_list_and_feature_rows(binary_model):
    # GIVEN the same row as a bare list of rows, a single bare row, and a {"features": [...]} row
    bodies = [[[39, 2, 40, 1]], [39, 2, 40, 1], {"instances": [{"features": [39, 2, 40, 1]}]}]
    # WHEN each is invoked
    answers = {invoke(binary_model, json.dumps(b), "application/json") for b in bodies}
    # THEN all give the same answer
    assert len(answers) == 1


def test_jsonlines_rows_as_lists_and_objects(binary_model):
    # GIVEN JSON Lines mixing a list row and an object row
    body = '[39, 2, 40, 1]\n{"age": 39, "workclass": "Private", "hours_per_week": 40, "sex": "Male"}\n'
    # WHEN invoked with no Accept
    out = invoke(binary_model, body, "application/jsonlines").decode().splitlines()
    # THEN the answer is one JSON object per row, equal for the two spellings
    assert len(out) == 2
    assert json.loads(out[0]) == json.loads(out[1])


# --- response types and labels ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "decode"),
    [
        ("text/csv", csv_scores),
        ("application/json", lambda b: [p["score"] for p in json.loads(b)["predictions"]]),
        ("application/jsonlines", lambda b: [json.loads(line)["score"] for line in b.decode().splitlines()]),
    ],
)
def test_every_accept_type_carries_the_probabilities(binary_model, rows, reference, accept, decode):
    # GIVEN a CSV request
    body = CSVSerializer().serialize(rows)
    # WHEN the caller asks for each response type
    out = invoke(binary_model, body, "text/csv", accept)
    # THEN each carries P(class 1) per row
    np.testing.assert_allclose(decode(out), reference["binary"], rtol=1e-6)


@pytest.mark.parametrize(("accept", "expected"), [(None, "json"), ("*/*", "json"), ("text/csv;q=0.5, */*", "json")])
def test_missing_or_wildcard_accept_answers_in_the_request_format(binary_model, accept, expected):
    # GIVEN a JSON request
    # WHEN Accept is absent or a wildcard wins
    out = invoke(binary_model, '{"instances": [[39, 2, 40, 1]]}', "application/json", accept)
    # THEN the answer is JSON too
    assert json.loads(out)["predictions"][0]["score"] > 0


def test_accept_q_values_pick_the_preferred_supported_type(binary_model):
    # GIVEN an Accept listing an unsupported type first and JSON with a lower q
    # WHEN a CSV request is invoked
    out = invoke(binary_model, "39,2,40,1", "text/csv", "application/xml, application/json;q=0.5")
    # THEN the answer is JSON
    assert "predictions" in json.loads(out)


def test_binary_labels_use_the_chosen_threshold_not_one_half(tmp_path):
    # GIVEN a binary model whose evaluation.json chose a threshold of 0.9
    model = inference.model_fn(str(model_factory.build_model_dir(tmp_path / "m", "binary", threshold=0.9)))
    x = model_factory.synthetic_features(300, seed=5)
    # WHEN rows are invoked with labels requested
    out = json.loads(
        invoke(model, json.dumps({"instances": x.tolist()}), "application/json", "application/json; labels=true")
    )
    scores = np.array([p["score"] for p in out["predictions"]])
    labels = [p["predicted_label"] for p in out["predictions"]]
    # THEN a row is ">50K" exactly when its score reaches 0.9, so rows between 0.5 and 0.9 are "<=50K"
    assert ((scores > 0.5) & (scores < 0.9)).any()
    assert labels == [">50K" if s >= 0.9 else "<=50K" for s in scores]


@pytest.mark.parametrize(
    ("accept", "labels_of"),
    [
        ("text/csv; labels=true", lambda b: [line.split(",")[-1] for line in b.decode().splitlines()]),
        ("application/json;labels=true", lambda b: [p["predicted_label"] for p in json.loads(b)["predictions"]]),
        ("application/jsonlines; labels=1", lambda b: [json.loads(x)["predicted_label"] for x in b.splitlines()]),
    ],
)
def test_labels_are_added_on_request_in_every_format(binary_model, accept, labels_of):
    # GIVEN rows that score on both sides of the threshold
    body = "80,2,90,1\n18,0,5,0"
    # WHEN labels are asked for through the Accept parameter
    out = invoke(binary_model, body, "text/csv", accept)
    # THEN each row carries its class name
    assert labels_of(out) == [">50K", "<=50K"]


def test_csv_with_labels_puts_each_row_on_its_own_line(binary_model):
    # GIVEN two rows
    # WHEN CSV with labels is asked for
    out = invoke(binary_model, "80,2,90,1\n18,0,5,0", "text/csv", "text/csv; labels=true").decode()
    # THEN each line is "probability,label"
    first, second = (line.split(",") for line in out.splitlines())
    assert float(first[0]) >= model_factory.THRESHOLD > float(second[0])
    assert (first[1], second[1]) == (">50K", "<=50K")


def test_multiclass_answers_probability_vectors_and_argmax_labels(models, rows, reference):
    # GIVEN a multiclass model
    model = models["multiclass"]
    # WHEN rows are invoked asking for CSV with labels
    out = invoke(model, CSVSerializer().serialize(rows), "text/csv", "text/csv; labels=true").decode().splitlines()
    # THEN each line holds the class probabilities and the most probable class
    probabilities = np.array([[float(v) for v in line.split(",")[:3]] for line in out])
    np.testing.assert_allclose(probabilities, reference["multiclass"], rtol=1e-6)
    assert [line.split(",")[3] for line in out] == [["low", "mid", "high"][i] for i in probabilities.argmax(axis=1)]


def test_regression_answers_values(models, rows, reference):
    # GIVEN a regression model
    # WHEN rows are invoked as JSON Lines
    out = invoke(models["regression"], CSVSerializer().serialize(rows), "text/csv", "application/jsonlines")
    # THEN each line holds the predicted value
    values = [json.loads(line)["score"] for line in out.decode().splitlines()]
    np.testing.assert_allclose(values, reference["regression"], rtol=1e-5)


def test_regression_rejects_a_labels_request(models):
    # GIVEN a regression model
    # WHEN labels are asked for
    error = bad_request(models["regression"], "39,2,40,1", "text/csv", "text/csv; labels=true")
    # THEN the client gets 406 saying why
    assert error.status == 406
    assert "regression" in error.message


# --- bad requests -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "status", "expected"),
    [
        ("39,2,40,1\n39,2,40", "text/csv", 400, "row 2 has 3 values; the model expects 4 features"),
        ("39,2,40,1,0", "text/csv", 400, "is the label column included"),
        ("39,2,40,1\nabc,2,40,1", "text/csv", 400, "row 2, column 1 (age): 'abc' is not a number"),
        ("39,Foo,40,1", "text/csv", 400, "row 1, column 2 (workclass): unknown category 'Foo'"),
        ("39,2,40,7", "text/csv", 400, "row 1, column 4 (sex): unknown category '7'"),
        ("39,1.5,40,1", "text/csv", 400, "row 1, column 2 (workclass): unknown category '1.5'"),
        ("inf,2,40,1", "text/csv", 400, "row 1, column 1 (age): 'inf' is not a finite number"),
        ("age,workclass,hours_per_week,sex\n39,2,40,1", "text/csv", 400, "row 1 is a header row"),
        ("", "text/csv", 400, "the request body is empty"),
        ("\n  \n", "text/csv", 400, "the request body is empty"),
        (b"39,\xff,40,1", "text/csv", 400, "not valid UTF-8"),
        ('{"instances": [[39, 2, 40, 1]', "application/json", 400, "invalid JSON"),
        ('{"rows": [[39, 2, 40, 1]]}', "application/json", 400, '"instances" key is missing'),
        ('{"instances": []}', "application/json", 400, "no rows"),
        ('{"instances": [[39, 2, 40, 1], {"age": 3, "colour": 1}]}', "application/json", 400, "row 2: unknown feature"),
        ('{"instances": [[39, 2, true, 1]]}', "application/json", 400, "row 1, column 3 (hours_per_week): expected a"),
        ('{"instances": [[39, "Foo", 40, 1]]}', "application/json", 400, "unknown category 'Foo'"),
        ('{"instances": ["39,2,40,1"]}', "application/json", 400, "row 1: expected a list of values or an object"),
        ("[39, 2, 40, 1]\n[39, 2, 40", "application/jsonlines", 400, "row 2: invalid JSON"),
        ("39,2,40,1", "text/plain", 415, "unsupported Content-Type 'text/plain'"),
        ("39,2,40,1", "text/csv; charset=latin-1", 415, "unsupported charset"),
    ],
)
def test_bad_requests_get_a_client_error_naming_the_row_and_problem(binary_model, body, content_type, status, expected):
    # GIVEN a malformed request
    # WHEN it is invoked
    error = bad_request(binary_model, body, content_type)
    # THEN it gets a client error status and a message naming the row and the problem
    assert error.status == status
    assert expected in error.message


def test_unsupported_accept_is_406(binary_model):
    # GIVEN a valid request
    # WHEN the caller accepts only XML
    error = bad_request(binary_model, "39,2,40,1", "text/csv", "application/xml")
    # THEN the answer is 406 naming the supported types
    assert error.status == 406
    assert "text/csv, application/json or application/jsonlines" in error.message


@pytest.mark.parametrize(
    ("bad_row", "bad_line", "expected"),
    [
        (777, "39,2,abc,1", "row 777, column 3"),
        (500, "1,2,3", "row 500 has 3 values"),
        (300, "39,2,40,1,", "row 300 has 5 values"),  # a trailing comma is a fifth, empty field
    ],
)
def test_an_error_deep_in_a_large_csv_names_its_row(binary_model, bad_row, bad_line, expected):
    # GIVEN 1,000 rows (the vectorised parse) with one bad row
    lines = ["39,2,40,1"] * 1000
    lines[bad_row - 1] = bad_line
    # WHEN invoked
    error = bad_request(binary_model, "\n".join(lines), "text/csv")
    # THEN the error names that row
    assert error.status == 400
    assert error.message.startswith(expected)


def test_bad_request_carries_the_framework_containers_status_fields(binary_model):
    # GIVEN a bad request
    # WHEN it fails
    error = bad_request(binary_model, "39,Foo,40,1", "text/csv")
    # THEN it is a ValueError with status_code/message/phrase (what sagemaker_inference maps to the response)
    assert isinstance(error, ValueError)
    assert (error.status_code, error.phrase) == (400, "Bad Request")
    assert error.to_dict() == {
        "message": error.message,
        "status": 400,
        "error": "Bad Request",
        "row": 1,
        "column": 2,
        "feature": "workclass",
    }


# --- request size -------------------------------------------------------------------------------------------


def test_100000_rows_are_accepted(binary_model):
    # GIVEN a CSV request of exactly 100,000 rows
    body = "39,2,40,1\n" * inference.MAX_ROWS
    # WHEN invoked
    out = invoke(binary_model, body, "text/csv")
    # THEN every row is scored
    assert len(csv_scores(out)) == inference.MAX_ROWS


@pytest.mark.parametrize(
    ("content_type", "make_body"),
    [
        ("text/csv", lambda n: "39,2,40,1\n" * n),
        ("application/json", lambda n: json.dumps({"instances": [[39, 2, 40, 1]] * n})),
        ("application/jsonlines", lambda n: "[39, 2, 40, 1]\n" * n),
    ],
)
def test_more_than_100000_rows_is_413(binary_model, content_type, make_body):
    # GIVEN a request of 100,001 rows
    body = make_body(inference.MAX_ROWS + 1)
    # WHEN it is decoded
    with pytest.raises(BadRequest) as caught:
        inference.input_fn(body, content_type)
    # THEN it is refused as too large, with the count and the limit
    assert caught.value.status == 413
    assert "100,001 rows; the limit is 100,000" in caught.value.message


@settings(max_examples=200, deadline=None)
@given(scores=hnp.arrays(np.float32, st.integers(1, 300), elements=st.floats(width=32)))
def test_csv_scores_read_back_as_the_same_float32_in_their_shortest_text(binary_model, scores):
    # GIVEN any float32 scores (NaN, infinities, subnormals, the float32 extremes), few or many
    prediction = inference.Prediction(scores=scores, content_type=inference.CSV, model=binary_model)
    # WHEN they are written as CSV
    body, _ = inference.output_fn(prediction, "text/csv")
    texts = body.decode().split(",")
    # THEN each reads back as exactly its float32 (what the booster predicted), in no more digits than needed
    np.testing.assert_array_equal(np.array([float(t) for t in texts], dtype=np.float32), scores)
    assert [_significant_digits(t) for t in texts] == [_significant_digits(str(v)) for v in scores]  # numpy's shortest


def _significant_digits(text: str) -> int:
    return len(Decimal(text).normalize().as_tuple().digits)
