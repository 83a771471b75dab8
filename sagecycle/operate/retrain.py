"""`sagecycle retrain --reason TEXT`: a manual start through the start-training function, so every guard applies
(daily cap, the lock). Exit 0 started (or this request's job runs already); 1 a guard skipped it."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from typing import Any

from lambdas.start_training.logic import SOURCE_MANUAL
from sagecycle.operate import options, render
from sagecycle.operate.functions import stage_functions
from sagecycle.operate.target import connect

PROG = "retrain"


def build_parser() -> argparse.ArgumentParser:
    p = options.parser(PROG, "Start a training run now, through the start-training function and its guards.")
    p.add_argument("--reason", required=True, help="why (kept in the run record and the job's tags)")
    p.add_argument("--request-id", help="idempotency key: the same id never starts a second job (default: a new UUID)")
    return p


def manual_event(reason: str, request_id: str) -> dict[str, Any]:
    return {"source": SOURCE_MANUAL, "reason": reason, "request_id": request_id}


def run(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        raise options.UsageError("bad-argument", "--reason must not be blank")
    common = options.common(args)
    request_id = args.request_id or str(uuid.uuid4())
    with connect(common) as names:
        answer = stage_functions(names).invoke("start_training", manual_event(args.reason, request_id))
    if not isinstance(answer, dict):
        raise options.Refused("unexpected-answer", f"start-training answered {answer!r}")
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
