"""cfn-lint over the synthesized cloud assembly: zero errors and zero warnings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.infrastructure.conftest import Synthesized


def test_templates_are_lint_clean(synthesized: Synthesized) -> None:
    # GIVEN the stage's synthesized templates
    templates = sorted(str(p) for p in synthesized.outdir.glob("*.template.json"))
    assert len(templates) == len(synthesized.stage.stacks())
    # WHEN cfn-lint checks them (warnings included)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable", *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    # THEN it reports nothing
    assert result.returncode == 0, result.stdout + result.stderr
