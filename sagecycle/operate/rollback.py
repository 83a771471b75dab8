"""`sagecycle rollback --reason TEXT`: back to the previous champion through the alarm responder's guarded
update (refused while a deployment is in flight, never onto the model already served, once per request id).
Exit 0 the rollback started; 1 refused or nothing to do."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from typing import Any, Final

from lambdas.start_training.logic import SOURCE_MANUAL
from sagecycle.operate import options, render
from sagecycle.operate.functions import stage_functions
from sagecycle.operate.target import connect

PROG = "rollback"
ACTION: Final = "rollback"


def build_parser() -> argparse.ArgumentParser:
    p = options.parser(PROG, "Roll the endpoint back to the previous champion (the alarm responder's guarded update).")
    p.add_argument("--reason", required=True, help="why (kept in the deployment record and the notice)")
    p.add_argument("--request-id", help="idempotency key: the same id rolls back at most once (default: a new UUID)")
    return p


def manual_event(reason: str, request_id: str) -> dict[str, Any]:
    return {"source": SOURCE_MANUAL, "action": ACTION, "reason": reason, "request_id": request_id}


def run(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        raise options.UsageError("bad-argument", "--reason must not be blank")
    common = options.common(args)
    request_id = args.request_id or str(uuid.uuid4())
    with connect(common) as names:
        answer = stage_functions(names).invoke("alarm_responder", manual_event(args.reason, request_id))
    if not isinstance(answer, dict):
        raise options.Refused("unexpected-answer", f"alarm-responder answered {answer!r}")
    done = answer.get("action") == ACTION
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
