"""`sagecycle rollback --reason TEXT`: back to the previous champion through the alarm responder's guarded
update (refused while a deployment is in flight, never onto the model already served, once per request id).
Exit 0 the rollback started; 1 refused or nothing to do."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from lambdas.alarm_responder.logic import ACTION_ROLLBACK
from lambdas.shared.events import SOURCE_MANUAL
from sagecycle.operate import options, render
from sagecycle.operate.functions import add_request_options, ask, request_id_and_reason

PROG = "rollback"


def build_parser() -> argparse.ArgumentParser:
    p = options.parser(PROG, "Roll the endpoint back to the previous champion (the alarm responder's guarded update).")
    add_request_options(p, reason="kept in the deployment record and the notice", once="rolls back at most once")
    return p


def manual_event(reason: str, request_id: str) -> dict[str, Any]:
    return {"source": SOURCE_MANUAL, "action": ACTION_ROLLBACK, "reason": reason, "request_id": request_id}


def run(args: argparse.Namespace) -> int:
    request_id, reason = request_id_and_reason(args)
    common = options.common(args)
    answer = ask(common, "alarm_responder", manual_event(reason, request_id))
    done = answer.get("action") == ACTION_ROLLBACK
    result = {"request_id": request_id, "rolled_back": done, "answer": answer}
    if common.json:
        options.print_json(result)
    elif done:
        rows = [("endpoint config", answer.get("endpoint_config")), ("to", answer.get("to")),
                ("from", answer.get("from")), ("request", request_id)]  # fmt: skip
        render.print_answer("rollback: started", rows, ok=True)
    else:
        rows = [("action", answer.get("action")), ("reason", answer.get("reason")), ("request", request_id)]
        render.print_answer("rollback: not done", rows, ok=False)
    return options.EXIT_OK if done else options.EXIT_REFUSED


def main(argv: Sequence[str] | None = None) -> int:
    return options.run(PROG, build_parser, run, argv)
