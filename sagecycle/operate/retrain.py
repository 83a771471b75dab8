"""`sagecycle retrain --reason TEXT`: a manual start through the start-training function, so every guard applies
(daily cap, the lock). Exit 0 started (or this request's job runs already); 1 a guard skipped it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sagecycle.operate import options, render
from sagecycle.operate.functions import add_request_options, ask_on_request

PROG = "retrain"


def build_parser() -> argparse.ArgumentParser:
    p = options.parser(PROG, "Start a training run now, through the start-training function and its guards.")
    add_request_options(p, reason="kept in the run record and the job's tags", once="never starts a second job")
    return p


def run(args: argparse.Namespace) -> int:
    common, request_id, answer = ask_on_request(args, "start_training")
    started = bool(answer.get("started") or answer.get("duplicate"))
    result = {"request_id": request_id, "started": started, "answer": answer}
    if started:
        rows = [("job", answer.get("job_name")), ("kind", answer.get("kind")), ("reason", answer.get("reason")),
                ("trigger", answer.get("trigger"))]  # fmt: skip
        if answer.get("duplicate"):
            rows.append(("note", "this request started the job before; no second job"))
    else:
        rows = [("skipped", answer.get("skip_reason") or answer.get("ignored")), ("detail", answer.get("detail")),
                ("trigger", answer.get("trigger"))]  # fmt: skip
    return render.answer(common, result, f"retrain: {'started' if started else 'skipped'}", rows, ok=started)


def main(argv: Sequence[str] | None = None) -> int:
    return options.run(PROG, build_parser, run, argv)
