"""The `sagecycle` command line: one entry point, one module per subcommand.

Each subcommand module owns its own argparse parser behind `main(argv) -> int`, so it can be tested
directly; this file only dispatches, and imports lazily so `sagecycle validate` never pays for xgboost.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("training_scripts.prepare", "raw CSV with a header -> label-first headerless splits + schema.json"),
    "train": ("sagecycle.local_training", "train through the SageMaker script-mode contract on this machine"),
    "validate": ("sagecycle.validate", "check a data file against a model's schema.json before uploading it"),
    "serve": ("sagecycle.serve", "serve a model directory on the SageMaker hosting contract (127.0.0.1:8080)"),
    "demo": ("sagecycle.demo", "the offline rehearsal on the embedded default data"),
}


def _usage() -> str:
    lines = ["usage: sagecycle COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`sagecycle COMMAND --help` shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"sagecycle: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
