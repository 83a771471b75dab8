"""`sagecycle serve` as a real gunicorn subprocess, called over HTTP, through boto3 and the SageMaker SDK."""

from __future__ import annotations

import json
import socket
import time

import boto3
import model_factory
import numpy as np
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import BODY_TIMEOUT
from sagemaker.core.deserializers import CSVDeserializer
from sagemaker.core.serializers import CSVSerializer

from sagecycle import serve_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runtime(server):
    """A sagemaker-runtime client pointed at the local server, as the seed's client code builds it."""
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def test_ping(server):
    # GIVEN the server started from a model.tar.gz
    # WHEN /ping is called
    # THEN it answers 200
    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 200


def test_invocations_over_http(server):
    # GIVEN two CSV rows
    # WHEN they are posted to /invocations
    response = requests.post(
        f"{server.url}/invocations",
        data="39,Private,40,Male\n18,0,5,0",
        headers={"Content-Type": "text/csv"},
        timeout=5,
    )
    # THEN the answer is two CSV probabilities
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv"
    assert len(response.text.split(",")) == 2


def test_a_bad_request_is_a_400_and_the_worker_keeps_serving(server):
    # GIVEN a live server with one worker
    url = f"{server.url}/invocations"
    with requests.Session() as session:
        # WHEN a bad request is followed by a good one on the same connection
        bad = session.post(url, data="39,2,40", headers={"Content-Type": "text/csv"}, timeout=5)
        good = session.post(url, data="39,2,40,1", headers={"Content-Type": "text/csv"}, timeout=5)
    # THEN the bad one is a 400 naming the row, the good one succeeds, and no worker died or restarted
    assert bad.status_code == 400
    assert bad.text.startswith("row 1 has 3 values")
    assert good.status_code == 200
    time.sleep(0.2)
    log = server.log()
    assert log.count("Booting worker") == 1
    assert "Worker exiting" not in log


def test_boto3_invoke_endpoint_with_the_sdk_csv_serializer(server, runtime):
    # GIVEN a numpy array serialised by the SageMaker SDK's CSVSerializer, as the seed's client code does
    rows = model_factory.synthetic_features(20, seed=3)
    serializer = CSVSerializer()
    # WHEN it is sent through boto3's sagemaker-runtime invoke_endpoint
    response = runtime.invoke_endpoint(
        EndpointName="adult-xgb", ContentType=serializer.CONTENT_TYPE, Body=serializer.serialize(rows)
    )
    # THEN the body holds the probabilities as CSV text the seed parses with np.fromstring(..., sep=",")
    predictions = response["Body"].read().decode("utf-8")
    scores = np.fromstring(predictions, sep=",")
    np.testing.assert_allclose(scores, model_factory.reference_scores(server.model_dir, rows), rtol=1e-6)
    assert response["ContentType"] == "text/csv"
    assert response["InvokedProductionVariant"] == "AllTraffic"


def test_boto3_response_reads_with_the_sdk_csv_deserializer(server, runtime):
    # GIVEN rows sent asking for CSV labels
    response = runtime.invoke_endpoint(
        EndpointName="adult-xgb",
        ContentType="text/csv",
        Accept="text/csv; labels=true",
        Body=CSVSerializer().serialize(np.array([[80, 2, 90, 1], [18, 0, 5, 0]])),
    )
    # WHEN the SDK's CSVDeserializer reads the answer
    parsed = CSVDeserializer().deserialize(response["Body"], response["ContentType"])
    # THEN each row is [probability, label]
    assert [row[1] for row in parsed] == [">50K", "<=50K"]


def test_boto3_json_request_with_labels(server, runtime):
    # GIVEN a JSON request with rows keyed by feature name
    body = json.dumps({"instances": [{"age": 80, "workclass": "Private", "hours_per_week": 90, "sex": "Male"}]})
    # WHEN labels are asked for through Accept
    response = runtime.invoke_endpoint(
        EndpointName="adult-xgb", ContentType="application/json", Accept="application/json; labels=true", Body=body
    )
    # THEN the JSON answer carries the score and the label
    prediction = json.loads(response["Body"].read())["predictions"][0]
    assert prediction["predicted_label"] == ">50K"
    assert prediction["score"] >= model_factory.THRESHOLD


def test_boto3_surfaces_a_bad_request_as_a_client_error_with_our_message(server, runtime):
    # GIVEN a row with an unknown category
    # WHEN it is sent through invoke_endpoint
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="adult-xgb", ContentType="text/csv", Body="39,Foo,40,1")
    # THEN boto3 raises SageMaker's ModelError carrying our message and the original 400
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert "row 1, column 2 (workclass): unknown category 'Foo'" in error["Error"]["Message"]
    assert error["OriginalStatusCode"] == 400
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424


def test_the_server_captures_invocations_per_endpoint(server, runtime):
    # GIVEN the server runs with --capture-dir
    # WHEN an endpoint is invoked through the runtime API
    runtime.invoke_endpoint(EndpointName="captured-ep", ContentType="text/csv", Body="39,2,40,1")
    # THEN a capture record lands under DIR/captured-ep/AllTraffic/yyyy/mm/dd/hh/
    files = list((server.capture_dir / "captured-ep" / "AllTraffic").rglob("*.jsonl"))
    assert len(files) == 1
    record = json.loads(files[0].read_text().splitlines()[-1])
    assert record["captureData"]["endpointInput"]["data"] == "39,2,40,1"
    assert record["eventVersion"] == "0"


# --- slow and stalled clients -------------------------------------------------------------------------------


def _open(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_stalled_clients_do_not_delay_a_good_request(server):
    # GIVEN a live server with one worker of 4 threads, and stalled clients of every kind held open:
    # 12 that connected and sent nothing, one stuck inside its headers, one stuck inside its body
    stalled = [_open(server.url) for _ in range(12)]
    in_headers = _open(server.url)
    in_headers.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Ty")
    in_body = _open(server.url)
    in_body.sendall(
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 100\r\n\r\n39,"
    )
    stalled += [in_headers, in_body]
    try:
        time.sleep(0.2)
        # WHEN a good request arrives meanwhile
        started = time.monotonic()
        good = requests.post(
            f"{server.url}/invocations", data="39,2,40,1", headers={"Content-Type": "text/csv"}, timeout=10
        )
        elapsed = time.monotonic() - started
        # THEN it is answered, well within 2 s
        assert good.status_code == 200
        assert elapsed < 2.0, f"answered after {elapsed:.2f} s"
    finally:
        for sock in stalled:
            sock.close()


def test_a_body_that_never_arrives_is_answered_408_and_frees_its_thread(server):
    # GIVEN a client that sends its headers and part of its body, then stalls
    sock = _open(server.url)
    try:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 100\r\n\r\n39,"
        )
        # WHEN the server's body deadline passes
        started = time.monotonic()
        answer = sock.recv(4096)
        waited = time.monotonic() - started
    finally:
        sock.close()
    # THEN it gets 408 once the deadline is up, not before and not much later
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert BODY_TIMEOUT * 0.5 <= waited < BODY_TIMEOUT + 2.0


def test_a_client_stuck_inside_its_headers_is_disconnected(server):
    # GIVEN a client that stops in the middle of its request line and headers
    sock = _open(server.url)
    try:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Ty")
        # WHEN it waits
        started = time.monotonic()
        answer = sock.recv(4096)
        waited = time.monotonic() - started
    finally:
        sock.close()
    # THEN the server closes the connection after its header timeout, without an answer
    assert answer == b""
    assert waited < serve_app.HEADER_TIMEOUT_SECONDS + 2.0
