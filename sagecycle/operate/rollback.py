"""`sagecycle rollback --reason TEXT`: back to the previous champion through the alarm responder's guarded
update (refused while a deployment is in flight, never onto the model already served, once per request id).
Exit 0 the rollback started; 1 refused or nothing to do."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from lambdas.alarm_responder.logic import ACTION_ROLLBACK
from sagecycle.operate import options, render
from sagecycle.operate.functions import add_request_options, ask_on_request

PROG = "rollback"


def build_parser() -> argparse.ArgumentParser:
    p = options.parser(PROG, "Roll the endpoint back to the previous champion (the alarm responder's guarded update).")
    add_request_options(p, reason="kept in the deployment record and the notice", once="rolls back at most once")
    return p


def run(args: argparse.Namespace) -> int:
    common, request_id, answer = ask_on_request(args, "alarm_responder", action=ACTION_ROLLBACK)
    done = answer.get("action") == ACTION_ROLLBACK
    result = {"request_id": request_id, "rolled_back": done, "answer": answer}
    if done:
        rows = [("endpoint config", answer.get("endpoint_config")), ("to", answer.get("to")),
                ("from", answer.get("from")), ("request", request_id)]  # fmt: skip
    else:
        rows = [("action", answer.get("action")), ("reason", answer.get("reason")), ("request", request_id)]
    return render.answer(common, result, f"rollback: {'started' if done else 'not done'}", rows, ok=done)


def main(argv: Sequence[str] | None = None) -> int:
    return options.run(PROG, build_parser, run, argv)
