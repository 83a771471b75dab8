"""An operator's rollback request to the alarm responder: the alarm path's guards, once per request."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.alarm_responder import handler as responder
from lambdas.alarm_responder import logic
from lambdas.shared import runs
from lambdas.shared.events import EventShapeError
from tests.lambdas.fixtures import CHAMPION_URL, ENDPOINT, RUNS_TABLE, SETTINGS, Aws, FakeContext, forbid
from tests.lambdas.test_alarm_responder import PREVIOUS_URL, previous_champion, record_updates, serving

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


def request(reason: str = "bad predictions reported by the fraud team", request_id: str = "req-1") -> dict[str, Any]:
    return {"source": "sagecycle.manual", "action": "rollback", "reason": reason, "request_id": request_id}


def test_operator_rollback_redeploys_the_previous_champion_even_with_rollback_on_alarm_off(resources: Aws) -> None:
    # GIVEN rollback_on_alarm off (the default), a previous champion and the endpoint on the current one
    previous_champion()
    serving()
    updates = record_updates()
    # WHEN an operator asks for a rollback
    result = responder.handler(request(), FakeContext())
    # THEN the endpoint goes to a config of the previous champion, on record for promote to finish
    name = logic.rollback_config_name(SETTINGS, PREVIOUS_URL)
    assert result == {"action": "rollback", "endpoint_config": name, "to": PREVIOUS_URL, "from": CHAMPION_URL}
    assert len(updates.calls) == 1 and updates.calls[0]["EndpointConfigName"] == name
    deployment = runs.get_item(RUNS_TABLE, runs.deployment_key(name)) or {}
    assert deployment["kind"] == "rollback" and deployment["alarm_episode"] == "manual:req-1"
    # AND the operators are told
    (notice,) = resources.notices()
    assert notice["Message"]["event"] == "operator-rollback"


def test_the_same_request_delivered_twice_rolls_back_once(resources: Aws) -> None:
    # GIVEN one request delivered twice (a client retry)
    previous_champion()
    serving()
    updates = record_updates()
    # WHEN both arrive
    first = responder.handler(request(), FakeContext())
    second = responder.handler(request(), FakeContext())
    # THEN one UpdateEndpoint; the second answer repeats the first, marked duplicate
    assert len(updates.calls) == 1
    assert second == {**first, "duplicate": True}


def test_no_previous_champion_is_refused(resources: Aws) -> None:
    # GIVEN the endpoint on its first champion (no previous one)
    serving()
    forbid("sagemaker", "UpdateEndpoint", "CreateModel", "CreateEndpointConfig")
    # WHEN an operator asks for a rollback / THEN it is refused with the reason
    result = responder.handler(request(), FakeContext())
    assert result["action"] == "refused"


def test_no_endpoint_is_refused(resources: Aws) -> None:
    # GIVEN nothing deployed
    previous_champion()
    # WHEN an operator asks for a rollback / THEN refused, nothing claimed
    assert responder.handler(request(), FakeContext())["action"] == "refused"
    assert runs.get_item(RUNS_TABLE, runs.rollback_key("manual:req-1")) is None


def test_rollback_during_a_deployment_is_refused(resources: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a deployment in flight (DescribeEndpoint: Updating)
    previous_champion()
    serving()
    result_calls: list[dict[str, Any]] = []

    def updating(endpoint: str) -> dict[str, Any]:
        result_calls.append({"EndpointName": endpoint})
        return {"EndpointName": endpoint, "EndpointStatus": "Updating", "EndpointConfigName": "x"}

    monkeypatch.setattr(logic, "describe_endpoint", updating)
    forbid("sagemaker", "UpdateEndpoint")
    # WHEN an operator asks for a rollback / THEN refused: the guardrails own the endpoint now
    result = responder.handler(request(), FakeContext())
    assert result["action"] == "refused" and result_calls == [{"EndpointName": ENDPOINT}]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"source": "sagecycle.manual", "action": "rollback", "reason": "  "}, "reason"),
        ({"source": "sagecycle.manual", "action": "rollback"}, "reason"),
        ({"source": "sagecycle.manual", "action": "retrain", "reason": "x"}, "action"),
    ],
)
def test_malformed_requests_are_refused_as_event_shape_errors(
    resources: Aws, event: dict[str, Any], field: str
) -> None:
    # GIVEN a manual event without a reason or with another action
    # WHEN it arrives
    with pytest.raises(EventShapeError) as refused:
        responder.handler(event, FakeContext())
    # THEN it is refused as a malformed request, naming the field
    assert (refused.value.code, refused.value.field) == ("missing-field", field)
