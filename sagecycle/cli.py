"""The `sagecycle` command line: one entry point, one module per subcommand.

Each subcommand module owns its own argparse parser behind `main(argv) -> int`, so it can be tested
directly; this file only dispatches, and imports lazily so `sagecycle validate` never pays for xgboost.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import sys
import tarfile

# subcommand -> (module, or module:function, taking argv and returning the exit code; one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("training_scripts.prepare", "raw CSV with a header -> label-first headerless splits + schema.json"),
    "train": ("sagecycle.local_training", "train through the SageMaker script-mode contract on this machine"),
    "validate": ("sagecycle.validate", "check a data file against a model's schema.json before uploading it"),
    "serve": ("sagecycle.serve", "serve a model directory on the SageMaker hosting contract (127.0.0.1:8080)"),
    "demo": ("sagecycle.demo", "the offline rehearsal on the embedded default data"),
    # Operator commands against a deployed stage (sagecycle.operate; docs/operating.md)
    "status": ("sagecycle.operate.status", "a deployed stage: champion, endpoint, deployments, runs, alarms"),
    "retrain": ("sagecycle.operate.retrain", "start a training run through the start function and its guards"),
    "approve": ("sagecycle.operate.registry:main_approve", "approve a model package of the stage's group"),
    "reject": ("sagecycle.operate.registry:main_reject", "reject a model package of the stage's group"),
    "rollback": ("sagecycle.operate.rollback", "roll the endpoint back to the previous champion"),
    "transform": ("sagecycle.operate.transform", "score an S3 prefix with the champion (batch transform)"),
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each option's default, except where there is nothing to show (None, off, empty)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, [], argparse.SUPPRESS) or "%(default)" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action) or ""


def _usage() -> str:
    lines = ["usage: sagecycle COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`sagecycle COMMAND --help` shows a command's options."]
    return "\n".join(lines)


def version() -> str:
    try:
        return importlib.metadata.version("sagecycle")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Dispatches to a subcommand. Exit codes: 0 ok, 1 the work failed or was refused, 2 usage (bad options,
    missing or malformed input files): one line on stderr, never a traceback (SAGECYCLE_DEBUG=1 shows it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(_usage())
        return 0 if args else 2
    if args[0] in {"-V", "--version"}:
        print(f"sagecycle {version()}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"sagecycle: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name, _, function = COMMANDS[name][0].partition(":")
    entry = getattr(importlib.import_module(module_name), function or "main")
    try:
        return int(entry(rest) or 0)
    except KeyboardInterrupt:
        print(f"sagecycle {name}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, tarfile.TarError) as e:  # a missing, unreadable or malformed input
        if os.environ.get("SAGECYCLE_DEBUG"):
            raise
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"sagecycle {name}: error: {detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
