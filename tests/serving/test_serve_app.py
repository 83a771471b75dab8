"""sagecycle/serve_app.py in process: routes, status codes, error bodies, structured logs and data capture."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import model_factory
import pytest

from sagecycle import serve, serve_app
from sagecycle.data_capture import DataCapture
from training_scripts import inference

CSV = {"Content-Type": "text/csv"}


@pytest.fixture(scope="module")
def app(model_dirs: dict[str, Path]) -> serve_app.ServingApp:
    return serve_app.create_app(model_dirs["binary"])


def test_ping_answers_200_once_the_model_is_loaded(app, wsgi):
    # GIVEN an app built from a model directory
    # WHEN /ping is called
    response = wsgi(app, "GET", "/ping")
    # THEN it answers 200
    assert response.status == 200


def test_invocations_answers_csv_with_the_variant_header(app, wsgi):
    # GIVEN two CSV rows
    # WHEN they are posted to /invocations without Accept
    response = wsgi(app, "POST", "/invocations", "39,2,40,1\n18,0,5,0", CSV)
    # THEN the answer is CSV probabilities, with SageMaker's production-variant header
    assert response.status == 200
    assert response.headers["content-type"] == "text/csv"
    assert response.headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    assert len(response.body.decode().split(",")) == 2


def test_invocations_honours_accept(app, wsgi):
    # GIVEN a CSV row
    # WHEN JSON with labels is asked for
    response = wsgi(app, "POST", "/invocations", "80,2,90,1", {**CSV, "Accept": "application/json; labels=true"})
    # THEN the answer is JSON with the predicted label
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body)["predictions"][0]["predicted_label"] == ">50K"


@pytest.mark.parametrize(
    ("body", "headers", "status", "first_line"),
    [
        ("39,Foo,40,1", CSV, 400, "row 1, column 2 (workclass)"),
        ("39,2,40", CSV, 400, "row 1 has 3 values"),
        ("", CSV, 400, "the request body is empty"),
        ("39,2,40,1", {"Content-Type": "application/x-protobuf"}, 415, "unsupported Content-Type"),
        ("39,2,40,1", {**CSV, "Accept": "image/png"}, 406, "unsupported Accept"),
        ('{"instances": [[39, 2, 40, 1]', {"Content-Type": "application/json"}, 400, "invalid JSON"),
    ],
)
def test_bad_requests_answer_the_toolkits_4xx_and_body(app, wsgi, body, headers, status, first_line):
    # GIVEN a bad request
    # WHEN it is posted to /invocations
    response = wsgi(app, "POST", "/invocations", body, headers)
    # THEN it gets its 4xx status and the toolkit's error body: the message on the first line, then the traceback
    assert response.status == status
    message, _, trace = response.body.decode().partition("\n")
    assert message.startswith(first_line)
    assert "Traceback" in trace and "BadRequest" in trace


def test_runtime_api_path_answers_like_invoke_endpoint(app, wsgi):
    # GIVEN a CSV row
    # WHEN it is posted where boto3's invoke_endpoint posts
    response = wsgi(app, "POST", "/endpoints/my-endpoint/invocations", "39,2,40,1", CSV)
    # THEN the answer is the prediction with the variant header
    assert response.status == 200
    assert response.headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    assert float(response.body) > 0


def test_runtime_api_errors_are_model_errors_with_the_original_status(app, wsgi):
    # GIVEN a row with an unknown category
    # WHEN it is posted to the runtime API path
    response = wsgi(app, "POST", "/endpoints/my-endpoint/invocations", "39,Foo,40,1", CSV)
    # THEN it is a SageMaker ModelError (424) carrying our status and message
    body = json.loads(response.body)
    assert response.status == 424
    assert response.headers["x-amzn-errortype"] == "ModelError"
    assert body["OriginalStatusCode"] == 400
    assert body["ErrorCode"] == "CLIENT_ERROR_FROM_MODEL"
    assert "row 1, column 2 (workclass): unknown category 'Foo'" in body["Message"]
    assert body["OriginalMessage"].startswith("row 1, column 2")


def test_a_body_over_the_limit_is_413(model_dirs, wsgi):
    # GIVEN an app limited to 100-byte bodies
    small = serve_app.create_app(model_dirs["binary"], max_body_bytes=100)
    # WHEN a larger body arrives
    response = wsgi(small, "POST", "/invocations", "39,2,40,1\n" * 20, CSV)
    # THEN it is refused with 413
    assert response.status == 413


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/invocations", 405), ("POST", "/predict", 404)])
def test_unknown_routes_and_methods(app, wsgi, method, path, status):
    # GIVEN the app
    # WHEN an unknown route or method is used
    # THEN it answers 404 / 405
    assert wsgi(app, method, path).status == status


def test_an_internal_failure_is_500_and_the_app_keeps_serving(app, wsgi, monkeypatch):
    # GIVEN the artifact's predict_fn failing once with a bug (patched where the toolkit holds it)
    real = app.hosted.transformer._predict_fn
    calls = []

    def broken(data, model):
        if not calls:
            calls.append(1)
            raise RuntimeError("boom")
        return real(data, model)

    monkeypatch.setattr(app.hosted.transformer, "_predict_fn", broken)
    # WHEN two requests arrive
    first = wsgi(app, "POST", "/invocations", "39,2,40,1", CSV)
    second = wsgi(app, "POST", "/invocations", "39,2,40,1", CSV)
    # THEN the toolkit answers the first with a 500 carrying the error, and the second succeeds
    assert first.status == 500
    assert first.body.decode().startswith("boom")
    assert second.status == 200


def test_each_invocation_logs_one_structured_line(app, wsgi, caplog):
    # GIVEN the app
    caplog.set_level(logging.INFO, logger="sagecycle.serve")
    # WHEN one good and one bad request arrive
    wsgi(app, "POST", "/invocations", "39,2,40,1\n18,0,5,0", CSV)
    wsgi(app, "POST", "/invocations", "39,Foo,40,1", CSV)
    # THEN each produced one JSON line with status, sizes and latency (and the error for the bad one)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "sagecycle.serve"]
    assert [line["status"] for line in lines] == [200, 400]
    assert all(line["latency_ms"] >= 0 and line["bytes_in"] > 0 for line in lines)
    assert "unknown category" in lines[1]["error"]


# --- data capture -------------------------------------------------------------------------------------------


def capture_lines(root: Path) -> list[tuple[Path, dict]]:
    return [(p, json.loads(line)) for p in sorted(root.rglob("*.jsonl")) for line in p.read_text().splitlines()]


def test_data_capture_writes_sagemakers_record_shape_into_hourly_files(model_dirs, wsgi, tmp_path):
    # GIVEN an app capturing into a directory
    app = serve_app.create_app(model_dirs["binary"], capture_dir=tmp_path, endpoint_name="churn")
    # WHEN a CSV and a JSON request succeed and a bad one fails
    wsgi(app, "POST", "/invocations", "39,2,40,1", CSV)
    wsgi(app, "POST", "/invocations", '{"instances": [[39, 2, 40, 1]]}', {"Content-Type": "application/json"})
    wsgi(app, "POST", "/invocations", "39,Foo,40,1", CSV)
    app.close()
    # THEN the two successes are captured, in DIR/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl
    records = capture_lines(tmp_path)
    assert len(records) == 2
    path, first = records[0]
    parts = path.relative_to(tmp_path).parts
    assert parts[:2] == ("churn", "AllTraffic")
    assert [len(p) for p in parts[2:6]] == [4, 2, 2, 2]
    # AND each record has SageMaker's capture shape
    assert first["eventVersion"] == "0"
    assert set(first["eventMetadata"]) == {"eventId", "inferenceTime"}
    datetime.strptime(first["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ")
    assert first["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "39,2,40,1",
        "encoding": "CSV",
    }
    output = first["captureData"]["endpointOutput"]
    assert (output["observedContentType"], output["mode"], output["encoding"]) == ("text/csv", "OUTPUT", "CSV")
    assert float(output["data"]) > 0
    # AND a JSON request sent without Accept is answered in the container's default Accept (text/csv)
    second = records[1][1]["captureData"]
    assert second["endpointInput"]["encoding"] == "JSON"
    assert (second["endpointOutput"]["observedContentType"], second["endpointOutput"]["encoding"]) == (
        "text/csv",
        "CSV",
    )


def test_data_capture_starts_a_new_file_each_hour_and_keeps_the_inference_id(tmp_path):
    # GIVEN a capture writer
    capture = DataCapture(tmp_path, "Canary")
    # WHEN records arrive in two different hours, one with an inference id
    for hour in (9, 10):
        capture.record(
            endpoint="ep",
            request_body=b"1,2",
            request_content_type="text/csv",
            response_body=b"\x00\x01",
            response_content_type="application/octet-stream",
            inference_id="abc" if hour == 9 else None,
            now=datetime(2025, 3, 4, hour, 5, 6, tzinfo=UTC),
        )
    capture.close()
    # THEN each hour has its own file, the id is kept, and an unlisted type is base64-encoded
    records = capture_lines(tmp_path)
    assert [p.parent.relative_to(tmp_path).as_posix() for p, _ in records] == [
        "ep/Canary/2025/03/04/09",
        "ep/Canary/2025/03/04/10",
    ]
    assert records[0][1]["eventMetadata"]["inferenceId"] == "abc"
    assert records[0][1]["eventMetadata"]["inferenceTime"] == "2025-03-04T09:05:06Z"
    assert records[0][1]["captureData"]["endpointOutput"] == {
        "observedContentType": "application/octet-stream",
        "mode": "OUTPUT",
        "data": "AAE=",
        "encoding": "BASE64",
    }


def test_model_directory_extracts_a_model_tarball(model_dirs, tmp_path):
    # GIVEN a model.tar.gz packed as SageMaker ships it
    tarball = model_factory.make_model_tar(model_dirs["binary"], tmp_path / "model.tar.gz")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # WHEN it is resolved to a model directory
    directory = serve_app.model_directory(tarball, scratch)
    # THEN the directory holds the model files and loads
    assert (directory / "xgboost-model").is_file()
    assert inference.model_fn(str(directory)).task == "binary"


def test_cli_rejects_a_missing_model(tmp_path, capsys):
    # GIVEN a path that does not exist
    # WHEN `sagecycle serve` is run on it
    code = serve.main([str(tmp_path / "nope"), "--port", "0"])
    # THEN it exits 2 with a message
    assert code == 2
    assert "neither a model directory nor a model.tar.gz" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["..", "a.b", "-leading", "x" * 64, "café"])
def test_an_endpoint_name_sagemaker_would_refuse_never_reaches_the_file_system(model_dirs, wsgi, tmp_path, name):
    # GIVEN an app capturing under tmp_path/capture
    app = serve_app.create_app(model_dirs["binary"], capture_dir=tmp_path / "capture")
    # WHEN the runtime path names an endpoint SageMaker would refuse (one could climb out of the capture dir)
    response = wsgi(app, "POST", f"/endpoints/{name}/invocations", "39,2,40,1", CSV)
    app.close()
    # THEN it is the runtime API's ValidationException, and nothing was written anywhere
    assert response.status == 400
    assert response.headers["x-amzn-errortype"] == "ValidationException"
    assert not any(tmp_path.rglob("*.jsonl"))
