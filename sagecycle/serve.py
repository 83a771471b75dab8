"""`sagecycle serve MODEL`: a model served on this machine the way SageMaker's XGBoost container serves it.

The model starts as the container starts it (`sagecycle.container.start_container`): from the artifact as the
training job left it and the model's container Environment (the same `hosting_environment` promote and the
Endpoint stack use), importing `inference.py` from the artifact's own code/ and running it through
sagemaker-inference's `Transformer`. Statuses, the default Accept and body decoding are therefore the toolkit's.

Routes: `GET /ping`, `POST /invocations` (the container contract) and `POST /endpoints/<name>/invocations`
(the sagemaker-runtime InvokeEndpoint API); `sagecycle.serve_app` describes their answers.

The concerns live beside this module: `sagecycle.serve_app` (the WSGI app, SageMaker's front end),
`sagecycle.serve_server` (gunicorn) and `sagecycle.data_capture` (capture records and the names they are filed
under); this module is the command line and keeps their public names importable from here.

What this layer adds is SageMaker's front end: the payload limit (6 MB real-time, `--max-payload-mb` up to
100 for batch transform), a deadline for a client's body (408), data capture and one JSON log line per
invocation on stderr. It runs under gunicorn (`run_server`), one worker per CPU by default as the container
does, the model loaded once in the master and shared by the forked workers. `--capture-dir` writes SageMaker
data-capture JSON Lines files under `DIR/<endpoint>/<variant>/yyyy/mm/dd/hh/`, the layout a monitor reads.
docs/serving.md lists what still differs from the real container, and why.
"""

from __future__ import annotations

import argparse
import os
import sys

from sagecycle.cli import HelpFormatter
from sagecycle.container import REALTIME_MAX_PAYLOAD_BYTES, TRANSFORM_MAX_PAYLOAD_MB, ContainerStartError
from sagecycle.data_capture import DEFAULT_ENDPOINT, DEFAULT_VARIANT, NAME_PATTERN, DataCapture, check_name
from sagecycle.serve_app import (
    DEFAULT_BODY_TIMEOUT,
    HEADER_TIMEOUT_SECONDS,
    LOG,
    ServingApp,
    create_app,
    default_environment,
    model_directory,
)
from sagecycle.serve_server import DEFAULT_THREADS, IDLE_WAIT_SECONDS, run_server

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_ENDPOINT",
    "DEFAULT_THREADS",
    "DEFAULT_VARIANT",
    "HEADER_TIMEOUT_SECONDS",
    "IDLE_WAIT_SECONDS",
    "LOG",
    "NAME_PATTERN",
    "DataCapture",
    "ServingApp",
    "check_name",
    "create_app",
    "default_environment",
    "main",
    "model_directory",
    "parse_args",
    "run_server",
]


def _environment_item(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sagecycle serve",
        description="Serve a model directory (or model.tar.gz) the way SageMaker's XGBoost container does, through "
        "the sagemaker-inference toolkit: GET /ping, POST /invocations and POST /endpoints/<name>/invocations.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model_dir", help="model directory or model.tar.gz, as a training job left it (with code/)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (0: any free port)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (one per CPU)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="threads per worker")
    parser.add_argument("--capture-dir", help="write SageMaker data-capture JSON Lines files under this directory")
    parser.add_argument("--endpoint-name", default=DEFAULT_ENDPOINT, help="endpoint name for /invocations")
    parser.add_argument("--variant", default=DEFAULT_VARIANT, help="production variant name")
    parser.add_argument(
        "--max-payload-mb",
        type=float,
        default=REALTIME_MAX_PAYLOAD_BYTES / 2**20,
        help=f"larger request bodies get 413 (SageMaker real-time: 6; batch transform MaxPayloadInMB: up to "
        f"{TRANSFORM_MAX_PAYLOAD_MB})",
    )
    parser.add_argument(
        "--batch", action="store_true", help="serve as a batch transform container (SAGEMAKER_BATCH=true)"
    )
    parser.add_argument(
        "--env",
        type=_environment_item,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="container Environment entry over the deployed models' own (repeat)",
    )
    parser.add_argument("--timeout", type=int, default=120, help="seconds before a stuck worker is restarted")
    parser.add_argument(
        "--body-timeout", type=float, default=DEFAULT_BODY_TIMEOUT, help="seconds a client has to send its body"
    )
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads must be at least 1")
    if not 0 < args.max_payload_mb <= TRANSFORM_MAX_PAYLOAD_MB:
        parser.error(f"--max-payload-mb must be in (0, {TRANSFORM_MAX_PAYLOAD_MB}]")
    if args.body_timeout <= 0:
        parser.error("--body-timeout must be positive")
    for kind, name in (("endpoint", args.endpoint_name), ("variant", args.variant)):
        try:
            check_name(kind, name)
        except ValueError as e:
            parser.error(str(e))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    environment = default_environment()
    if args.batch:
        environment["SAGEMAKER_BATCH"] = "true"
    environment.update(dict(args.env))
    try:
        run_server(
            args.model_dir,
            host=args.host,
            port=args.port,
            workers=args.workers,
            threads=args.threads,
            capture_dir=args.capture_dir,
            endpoint_name=args.endpoint_name,
            variant=args.variant,
            max_body_bytes=int(args.max_payload_mb * 1024 * 1024),
            environment=environment,
            timeout=args.timeout,
            body_timeout=args.body_timeout,
        )
    except (FileNotFoundError, ValueError, ContainerStartError) as e:  # no model, or one that cannot start
        print(f"sagecycle serve: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # gunicorn exits through SystemExit on shutdown
        return int(e.code or 0) if isinstance(e.code, int) or e.code is None else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
