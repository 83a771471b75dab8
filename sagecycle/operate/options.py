"""The options every operator command takes, its errors and exit codes, and the one way a command is run."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final, TextIO

from config.settings import STAGES, StageConfig

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1  # refused, unhealthy, or the work failed
EXIT_USAGE: Final = 2  # bad arguments, unknown stage, nothing deployed

DEFAULT_APP: Final = next(f.default for f in dataclasses.fields(StageConfig) if f.name == "app_name")


class OperateError(Exception):
    """A command could not do what was asked; `code` is stable (scripts match it), `exit_code` what we exit with."""

    exit_code = EXIT_REFUSED

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UsageError(OperateError):
    """Bad arguments, or the stage (or what the command needs in it) is not deployed."""

    exit_code = EXIT_USAGE


class Refused(OperateError):
    """The stage refused, or the work failed."""

    exit_code = EXIT_REFUSED


@dataclasses.dataclass(frozen=True)
class Common:
    """What every command is given: which stage, where, and how to print."""

    stage: str
    app: str
    region: str | None
    endpoint_url: str | None
    json: bool


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    from sagecycle.cli import HelpFormatter

    p = argparse.ArgumentParser(prog=f"sagecycle {prog}", description=description, formatter_class=HelpFormatter)
    p.add_argument("--stage", choices=STAGES, default="dev", help="the deployed stage")
    p.add_argument("--app", default=DEFAULT_APP, help="the stage's app_name (config)")
    p.add_argument("--region", help="the stage's region (default: boto3's, e.g. AWS_REGION or the profile's)")
    p.add_argument(
        "--endpoint-url",
        help="talk to a local AWS at this URL (e.g. the rehearsal's moto server) instead of AWS",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout, for scripts")
    return p


def common(args: argparse.Namespace) -> Common:
    return Common(
        stage=args.stage, app=args.app, region=args.region, endpoint_url=args.endpoint_url, json=bool(args.json)
    )


def print_json(value: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str), file=stream or sys.stdout)


def run(
    prog: str,
    build: Callable[[], argparse.ArgumentParser],
    body: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None,
) -> int:
    """Parse (argparse exits 2 on bad arguments), run, and turn errors into one stderr line and an exit code.

    With --json an error is also one JSON object on stdout: {"error": {"code": ..., "message": ...}}.
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    args = build().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return body(args)
    except OperateError as error:
        code, message, exit_code = error.code, str(error), error.exit_code
    except (NoCredentialsError, NoRegionError) as error:
        code, message, exit_code = "no-credentials", str(error), EXIT_USAGE
    except ClientError as error:
        if os.environ.get("SAGECYCLE_DEBUG"):
            raise
        code = str(error.response.get("Error", {}).get("Code", "aws-error"))
        message, exit_code = str(error), EXIT_REFUSED
    except BotoCoreError as error:  # AWS could not be reached or answered nothing usable
        if os.environ.get("SAGECYCLE_DEBUG"):
            raise
        code, message, exit_code = type(error).__name__, str(error), EXIT_REFUSED
    if getattr(args, "json", False):
        print_json({"error": {"code": code, "message": message}})
    print(f"sagecycle {prog}: {code}: {message}", file=sys.stderr)
    return exit_code
