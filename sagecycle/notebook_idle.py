"""Stop this SageMaker notebook instance when Jupyter has been idle for N minutes.

The notebook's lifecycle configuration installs this file and a systemd timer that runs it every five
minutes as ec2-user. It avoids the ways the public `autostop.py` sample fails without a word:
- it runs on whatever Python the instance has (3.8+) with the standard library only: no `requests`, and
  boto3 only if present (else the AWS CLI) for the one stop call;
- it asks the Jupyter server on https://localhost:8443 (SageMaker's port, a self-signed certificate) and
  sends a token when one is configured;
- every timestamp becomes an aware UTC datetime (Jupyter writes `Z`, `+00:00` or none at all) and is
  compared with an aware "now";
- an open connection to an idle kernel (a browser tab) keeps the instance running unless told otherwise;
- the region and the instance name come from /opt/ml/metadata/resource-metadata.json, not from an
  environment a timer does not have;
- each run logs one line with its decision and the reason, and errors are logged, never swallowed.

`decide` is a pure function over the parsed API responses, so it is tested without a server.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

UTC = timezone.utc  # noqa: UP017 - datetime.UTC needs Python 3.11; this runs on the instance's 3.8+
DEFAULT_BASE_URL = "https://localhost:8443"
METADATA_FILE = "/opt/ml/metadata/resource-metadata.json"
TOKEN_ENV = "SAGECYCLE_JUPYTER_TOKEN"
# Kernel states that count as work in progress; "dead" kernels keep nothing alive.
BUSY_STATES = frozenset({"busy", "starting", "restarting", "autorestarting"})
_TIMESTAMP = re.compile(r"^(?P<base>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?(?P<zone>.*)$")


@dataclass(frozen=True)
class Decision:
    """Whether to stop, and why (one sentence for the log)."""

    stop: bool
    reason: str


def parse_timestamp(text: str) -> datetime:
    """Jupyter's ISO 8601 timestamp as an aware UTC datetime.

    Accepts `Z` / `z`, `+00:00` (any offset) or no zone (Jupyter's clock is UTC), and any number of fraction
    digits (Python < 3.11 parses only 3 or 6).
    """
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    fraction = (match.group("fraction") or "0")[:6].ljust(6, "0")
    zone = match.group("zone")
    if zone in ("Z", "z"):
        zone = "+00:00"
    parsed = datetime.fromisoformat(f"{match.group('base').replace(' ', 'T')}.{fraction}{zone}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f} min"


def decide(
    *,
    kernels: list[dict[str, Any]],
    sessions: list[dict[str, Any]],
    terminals: list[dict[str, Any]],
    now: datetime,
    idle_minutes: int,
    server_started: datetime | None = None,
    ignore_connections: bool = False,
) -> Decision:
    """Stop only if nothing ran for `idle_minutes`: no kernel busy or recently active, no terminal in use.

    Args:
        kernels, sessions, terminals: the JSON bodies of /api/kernels, /api/sessions, /api/terminals.
        now: the current time (naive is taken as UTC).
        server_started: when the Jupyter server started (/api/status); the floor of "last activity", so a
            fresh instance with nothing open yet is not stopped at once.
        ignore_connections: when false, a kernel with an open connection (a browser tab) keeps it running.
    Returns:
        Decision(stop, reason).
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    threshold = timedelta(minutes=idle_minutes)
    names: dict[str, str] = {}  # kernel id -> notebook path, for readable reasons
    by_id = {str(k["id"]): k for k in kernels if k.get("id")}
    for session in sessions:
        kernel = session.get("kernel") or {}
        if not kernel.get("id"):
            continue  # a session without a kernel (e.g. a closed one) runs nothing
        kernel_id = str(kernel["id"])
        names[kernel_id] = str(session.get("path") or session.get("name") or kernel_id)
        by_id.setdefault(kernel_id, kernel)  # a kernel only the sessions list knows still counts

    activity: list[tuple[datetime, str]] = []
    if server_started is not None:
        activity.append((server_started, "the Jupyter server started"))
    for kernel_id, kernel in sorted(by_id.items()):
        label = f"kernel {names.get(kernel_id, kernel_id)!s}"
        state = str(kernel.get("execution_state", "unknown"))
        if state in BUSY_STATES:
            return Decision(False, f"{label} is {state}")
        if state == "dead":
            continue
        connections = int(kernel.get("connections") or 0)
        if connections and not ignore_connections:
            return Decision(False, f"{label} has {connections} open connection(s) (a browser tab is attached)")
        if not kernel.get("last_activity"):
            return Decision(False, f"{label} reports no last_activity; not stopping on missing data")
        activity.append((parse_timestamp(str(kernel["last_activity"])), f"{label} ({state})"))
    for terminal in terminals:
        label = f"terminal {terminal.get('name', '?')}"
        if not terminal.get("last_activity"):
            return Decision(False, f"{label} reports no last_activity; not stopping on missing data")
        activity.append((parse_timestamp(str(terminal["last_activity"])), label))

    if not activity:
        return Decision(False, "no kernels, no terminals and no server start time to measure idleness from")
    latest, what = max(activity)
    idle_for = max(now - latest, timedelta(0))  # a clock slightly ahead of ours is not negative idleness
    summary = (
        f"idle for {_minutes(idle_for)} (limit {idle_minutes} min); "
        f"last activity: {what} at {latest:%Y-%m-%dT%H:%M:%S}Z"
    )
    return Decision(idle_for >= threshold, summary)


# ---------------------------------------------------------------------------------------------- on the instance


def _log(message: str) -> None:
    print(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} sagecycle-autostop: {message}", flush=True)


def _get_json(base_url: str, path: str, token: str | None, *, missing_ok: bool = False) -> Any:
    # The local Jupyter server has a self-signed certificate; the request never leaves the instance.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(f"{base_url.rstrip('/')}{path}")
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        if missing_ok and error.code == 404:  # e.g. terminals disabled on this server
            return []
        raise


def _boot_time() -> datetime | None:
    try:
        with open("/proc/uptime", encoding="utf-8") as handle:
            uptime = float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return datetime.now(UTC) - timedelta(seconds=uptime)


def instance_identity(metadata_file: str = METADATA_FILE) -> tuple[str, str]:
    """(notebook instance name, region) from the instance's own metadata."""
    with open(metadata_file, encoding="utf-8") as handle:
        metadata = json.load(handle)
    arn = str(metadata["ResourceArn"])  # arn:aws:sagemaker:REGION:ACCOUNT:notebook-instance/NAME
    return str(metadata["ResourceName"]), arn.split(":")[3]


def stop_instance(name: str, region: str) -> None:
    """StopNotebookInstance with boto3 when this Python has it, else with the AWS CLI."""
    try:
        import boto3
    except ImportError:
        cli = shutil.which("aws") or "/usr/local/bin/aws"
        command = [cli, "sagemaker", "stop-notebook-instance", "--notebook-instance-name", name, "--region", region]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
        return
    boto3.client("sagemaker", region_name=region).stop_notebook_instance(NotebookInstanceName=name)


def _self_test(args: argparse.Namespace) -> int:
    """Checks the install can work (run once by the lifecycle script, logged where the user sees it)."""
    problems = []
    try:
        name, region = instance_identity(args.metadata)
        _log(f"self-test: instance {name} in {region}")
    except (OSError, KeyError, IndexError, ValueError) as error:
        problems.append(f"cannot read {args.metadata}: {error!r}")
    try:
        import boto3  # noqa: F401

        _log(f"self-test: {sys.executable} {sys.version.split()[0]} will stop the instance with boto3")
    except ImportError:
        if shutil.which("aws") is None and not os.path.exists("/usr/local/bin/aws"):
            problems.append(f"{sys.executable} has no boto3 and there is no AWS CLI to stop the instance")
        else:
            _log(f"self-test: {sys.executable} has no boto3; the AWS CLI will stop the instance")
    for problem in problems:
        _log(f"self-test FAILED: {problem}")
    return 1 if problems else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Stop this notebook instance after N idle minutes.")
    parser.add_argument("--idle-minutes", type=int, required=True)
    parser.add_argument("--ignore-connections", action="store_true", help="stop even with a browser tab open")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"Jupyter server (default {DEFAULT_BASE_URL})")
    parser.add_argument("--metadata", default=METADATA_FILE)
    parser.add_argument("--dry-run", action="store_true", help="log the decision, never stop")
    parser.add_argument("--self-test", action="store_true", help="check the install, then exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """One check: 0 when it decided (and stopped if due), 1 when it could not decide or stop."""
    args = parse_args(argv)
    if args.self_test:
        return _self_test(args)
    token = os.environ.get(TOKEN_ENV)
    try:
        status = _get_json(args.base_url, "/api/status", token)
        kernels = _get_json(args.base_url, "/api/kernels", token)
        sessions = _get_json(args.base_url, "/api/sessions", token)
        terminals = _get_json(args.base_url, "/api/terminals", token, missing_ok=True)
    except (OSError, ValueError) as error:  # URLError and HTTPError are OSErrors, bad JSON a ValueError
        _log(f"keep: cannot read the Jupyter API at {args.base_url}: {error!r}")
        return 1
    started = status.get("started") if isinstance(status, dict) else None
    try:
        decision = decide(
            kernels=kernels,
            sessions=sessions,
            terminals=terminals,
            now=datetime.now(UTC),
            idle_minutes=args.idle_minutes,
            server_started=parse_timestamp(started) if started else _boot_time(),
            ignore_connections=args.ignore_connections,
        )
    except (ValueError, TypeError, AttributeError) as error:
        _log(f"keep: unexpected Jupyter API response: {error!r}")
        return 1
    _log(f"{'STOP' if decision.stop else 'keep'}: {decision.reason}")
    if not decision.stop or args.dry_run:
        return 0
    try:
        name, region = instance_identity(args.metadata)
        stop_instance(name, region)
    except Exception as error:  # log every failure: a silent one leaves the instance running
        detail = getattr(error, "stderr", "") or ""
        _log(f"FAILED to stop the instance: {error!r} {detail}".strip())
        return 1
    _log(f"stopping notebook instance {name} in {region}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
