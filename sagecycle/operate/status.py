"""`sagecycle status`: the stage at a glance. Exit 0 healthy; 1 an alarm in ALARM or the endpoint not InService;
2 usage or the stage not deployed."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from lambdas.shared.contract import ENV_ACCOUNT_ROLE
from lambdas.shared.runtime import utcnow
from sagecycle.operate import options, render
from sagecycle.operate.functions import stage_functions
from sagecycle.operate.state import read_status
from sagecycle.operate.target import StageNames, connect

PROG = "status"


def build_parser() -> argparse.ArgumentParser:
    p = options.parser(PROG, "The champion, the endpoint, deployments, training, alarms and quarantine of a stage.")
    p.add_argument("--runs", type=int, default=5, help="how many of the newest runs to show")
    p.add_argument("--quarantine-days", type=int, default=7, help="show files quarantined in this many days")
    return p


def account_role(names: StageNames) -> str:
    """single | build | serving, as the stage's promote function is configured (docs/two-accounts.md).

    A promote function that cannot be read (not there, or no lambda:GetFunctionConfiguration) counts as a
    single-account stage: the endpoint is then expected, the stricter reading.
    """
    from botocore.exceptions import ClientError

    try:
        return stage_functions(names).environment("promote").get(ENV_ACCOUNT_ROLE, "single")
    except (options.UsageError, ClientError):
        return "single"


def run(args: argparse.Namespace) -> int:
    if args.runs < 0 or args.quarantine_days < 0:
        raise options.UsageError("bad-argument", "--runs and --quarantine-days must be 0 or more")
    common = options.common(args)
    with connect(common) as names:
        role = account_role(names)
        status = read_status(names, last_runs=args.runs, quarantine_days=args.quarantine_days, now=utcnow(), role=role)
    if common.json:
        options.print_json(status)
    else:
        render.print_status(status)
    return options.EXIT_OK if status["healthy"] else options.EXIT_REFUSED


def main(argv: Sequence[str] | None = None) -> int:
    return options.run(PROG, build_parser, run, argv)
