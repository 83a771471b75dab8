"""Running the `sagecycle` command line in a test: its exit code and what it printed."""

from __future__ import annotations

import pytest

from sagecycle import cli


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`sagecycle argv`: (exit code, stdout, stderr), argparse's own exits (--help, bad flags) included."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err
