"""`sagecycle retrain --reason TEXT`: a manual start through the start-training function, so every guard applies
(daily cap, the lock). Exit 0 started (or this request's job runs already); 1 a guard skipped it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from lambdas.shared.events import SOURCE_MANUAL
from sagecycle.operate import options, render
from sagecycle.operate.functions import add_request_options, ask, request_id_and_reason

PROG = "retrain"


def build_parser() -> argparse.ArgumentParser:
    p = options.parser(PROG, "Start a training run now, through the start-training function and its guards.")
    add_request_options(p, reason="kept in the run record and the job's tags", once="never starts a second job")
    return p


def manual_event(reason: str, request_id: str) -> dict[str, Any]:
    return {"source": SOURCE_MANUAL, "reason": reason, "request_id": request_id}


def run(args: argparse.Namespace) -> int:
    request_id, reason = request_id_and_reason(args)
    common = options.common(args)
    answer = ask(common, "start_training", manual_event(reason, request_id))
    started = bool(answer.get("started") or answer.get("duplicate"))
    result = {"request_id": request_id, "started": started, "answer": answer}
    if common.json:
        options.print_json(result)
    elif started:
        rows = [("job", answer.get("job_name")), ("kind", answer.get("kind")), ("reason", answer.get("reason")),
                ("trigger", answer.get("trigger"))]  # fmt: skip
        if answer.get("duplicate"):
            rows.append(("note", "this request started the job before; no second job"))
        render.print_answer("retrain: started", rows, ok=True)
    else:
        rows = [("skipped", answer.get("skip_reason") or answer.get("ignored")), ("detail", answer.get("detail")),
                ("trigger", answer.get("trigger"))]  # fmt: skip
        render.print_answer("retrain: skipped", rows, ok=False)
    return options.EXIT_OK if started else options.EXIT_REFUSED


def main(argv: Sequence[str] | None = None) -> int:
    return options.run(PROG, build_parser, run, argv)
