"""The notebook's idle auto-stop: decisions on recorded Jupyter API responses, and one run against a server."""

from __future__ import annotations

import ast
import json
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sagecycle import notebook_idle
from sagecycle.notebook_idle import Decision, decide, parse_timestamp

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "tests" / "events" / "jupyter"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
IDLE_MINUTES = 60


def recorded(name: str) -> dict[str, Any]:
    return json.loads((RECORDED / f"{name}.json").read_text())


def decide_on(name: str, *, now: datetime = NOW, ignore_connections: bool = False) -> Decision:
    api = recorded(name)
    return decide(
        kernels=api["api/kernels"],
        sessions=api["api/sessions"],
        terminals=api["api/terminals"],
        now=now,
        idle_minutes=IDLE_MINUTES,
        server_started=parse_timestamp(api["api/status"]["started"]),
        ignore_connections=ignore_connections,
    )


@pytest.mark.parametrize(
    ("recording", "stop", "reason"),
    [
        ("busy_kernel", False, "kernel quickstart.ipynb is busy"),
        ("idle_kernel_past_threshold", True, "idle for 139 min (limit 60 min); last activity: kernel quickstart"),
        ("idle_with_open_connection", False, "has 1 open connection(s)"),
        ("terminal_active", False, "idle for 9 min (limit 60 min); last activity: terminal 1"),
        ("no_kernels", True, "last activity: the Jupyter server started at 2026-11-20T09:12:40Z"),
        ("timestamps_z_and_offset", False, "idle for 45 min (limit 60 min); last activity: kernel explore/drift.ipynb"),
        ("kernel_created_just_now", False, "idle for 0 min (limit 60 min)"),
    ],
)
def test_decision_on_recorded_jupyter_state(recording: str, stop: bool, reason: str) -> None:
    # GIVEN the Jupyter API's recorded answers and "now" = 12:00 UTC
    # WHEN the idle check decides with a 60-minute limit
    decision = decide_on(recording)
    # THEN it stops only when nothing ran for 60 minutes, and says why
    assert decision.stop is stop, decision.reason
    assert reason in decision.reason


def test_open_connection_is_ignored_when_configured() -> None:
    # GIVEN an idle kernel with a browser tab attached, idle for over two hours
    # WHEN connections are ignored THEN the instance stops on the kernel's own idleness
    decision = decide_on("idle_with_open_connection", ignore_connections=True)
    assert decision.stop, decision.reason
    assert "idle for 139 min" in decision.reason


def test_fresh_instance_with_nothing_open_keeps_running() -> None:
    # GIVEN no kernels and no terminals, ten minutes after the server started
    now = parse_timestamp(recorded("no_kernels")["api/status"]["started"]) + timedelta(minutes=10)
    # WHEN the check decides THEN the server start is the last activity, so it is not idle yet
    decision = decide_on("no_kernels", now=now)
    assert not decision.stop
    assert "idle for 10 min" in decision.reason


def test_mixed_z_and_offset_timestamps_compare_as_instants() -> None:
    # GIVEN kernels stamped with `Z` and with `+00:00`; the newer one last ran at 11:15 (+00:00)
    # WHEN the check runs at 12:16 THEN both are read as UTC and the newer one is just past the limit
    decision = decide_on("timestamps_z_and_offset", now=NOW + timedelta(minutes=16))
    assert decision.stop, decision.reason
    assert "explore/drift.ipynb" in decision.reason


def test_naive_now_is_taken_as_utc() -> None:
    # GIVEN a naive "now" (what datetime.utcnow() returns) WHEN the check decides THEN it matches the aware one
    assert decide_on("terminal_active", now=NOW.replace(tzinfo=None)) == decide_on("terminal_active")


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20T10:00:00Z",
        "2026-11-20T10:00:00.000Z",
        "2026-11-20T10:00:00.000000+00:00",
        "2026-11-20T12:00:00.0000000+02:00",
        "2026-11-20T10:00:00",
        "2026-11-20 10:00:00z",
    ],
)
def test_timestamps_become_aware_utc(text: str) -> None:
    # GIVEN the forms Jupyter servers write WHEN parsed THEN each is the same aware UTC instant
    assert parse_timestamp(text) == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_missing_activity_data_never_stops() -> None:
    # GIVEN a terminal from an old server without last_activity WHEN the check decides THEN it keeps running
    decision = decide(kernels=[], sessions=[], terminals=[{"name": "1"}], now=NOW, idle_minutes=IDLE_MINUTES)
    assert not decision.stop
    assert "terminal 1 reports no last_activity" in decision.reason


def test_kernel_known_only_to_sessions_still_counts() -> None:
    # GIVEN a busy kernel that /api/kernels missed but /api/sessions lists
    sessions = recorded("busy_kernel")["api/sessions"]
    # WHEN the check decides THEN the session's kernel keeps the instance running
    decision = decide(kernels=[], sessions=sessions, terminals=[], now=NOW, idle_minutes=IDLE_MINUTES)
    assert decision == Decision(False, "kernel quickstart.ipynb is busy")


def test_runs_on_the_instance_python_with_the_standard_library_only() -> None:
    # GIVEN the installed file (AL2023's system python3 is 3.9; the JupyterSystemEnv may be older or newer)
    source = (ROOT / "sagecycle" / "notebook_idle.py").read_text()
    # WHEN it is parsed as Python 3.8 and its top-level imports are listed
    tree = ast.parse(source, feature_version=(3, 8))
    modules = {
        alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names
    } | {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
    # THEN it is valid 3.8 syntax and imports nothing outside the standard library at load time
    assert modules - {"__future__"} <= set(sys.stdlib_module_names), modules


class _Jupyter(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, Any]] = {}

    def do_GET(self) -> None:
        body = self.answers.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass


@pytest.fixture
def jupyter() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Jupyter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_main_stops_the_instance_named_in_its_metadata(
    jupyter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a Jupyter server answering with an idle kernel (terminals disabled: 404) and the instance's metadata
    api = recorded("idle_kernel_past_threshold")
    _Jupyter.answers = {k: v for k, v in api.items() if k != "api/terminals"}
    metadata = tmp_path / "resource-metadata.json"
    metadata.write_text(
        json.dumps(
            {
                "ResourceArn": "arn:aws:sagemaker:eu-west-1:123456789012:notebook-instance/sagecycle-dev-notebook",
                "ResourceName": "sagecycle-dev-notebook",
            }
        )
    )
    stopped: list[tuple[str, str]] = []
    monkeypatch.setattr(notebook_idle, "stop_instance", lambda name, region: stopped.append((name, region)))
    # WHEN one check runs
    code = notebook_idle.main(["--idle-minutes", "60", "--base-url", jupyter, "--metadata", str(metadata)])
    # THEN it logs its decision and stops this instance in the region of its ARN
    assert code == 0
    assert stopped == [("sagecycle-dev-notebook", "eu-west-1")]
    log = capsys.readouterr().out
    assert "sagecycle-autostop: STOP: idle for" in log
    assert "stopping notebook instance sagecycle-dev-notebook in eu-west-1" in log


def test_main_logs_and_keeps_running_when_jupyter_cannot_be_reached(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN no server on the port WHEN one check runs THEN it says so and does not stop
    code = notebook_idle.main(["--idle-minutes", "60", "--base-url", "https://127.0.0.1:9"])
    assert code == 1
    assert "keep: cannot read the Jupyter API at https://127.0.0.1:9" in capsys.readouterr().out


def test_main_logs_a_failed_stop_call(
    jupyter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an idle server, but a stop call that AWS refuses
    _Jupyter.answers = recorded("no_kernels")
    metadata = tmp_path / "resource-metadata.json"
    metadata.write_text(
        json.dumps({"ResourceArn": "arn:aws:sagemaker:us-east-1:1:notebook-instance/n", "ResourceName": "n"})
    )

    def refuse(name: str, region: str) -> None:
        raise PermissionError("AccessDeniedException: not authorized to perform sagemaker:StopNotebookInstance")

    monkeypatch.setattr(notebook_idle, "stop_instance", refuse)
    # WHEN one check runs THEN the failure is logged with AWS's reason and the run fails
    code = notebook_idle.main(["--idle-minutes", "60", "--base-url", jupyter, "--metadata", str(metadata)])
    assert code == 1
    assert "FAILED to stop the instance" in capsys.readouterr().out
