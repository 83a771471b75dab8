"""The `sagecycle` command line: version, help with defaults, and usage errors as one line with exit code 2."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from sagecycle import cli


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own exits (--help, bad flags)
        code = int(exit_.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _unsafe_tar(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        data = b"{}"
        info = tarfile.TarInfo("../escaped.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_version_prints_the_installed_version(capsys):
    # GIVEN the installed package
    # WHEN `sagecycle --version` runs
    code, out, _ = _run(["--version"], capsys)
    # THEN it prints the name and version and exits 0
    assert code == 0
    assert out.strip() == f"sagecycle {cli.version()}" and cli.version() != "unknown"


@pytest.mark.parametrize(
    ("command", "default"),
    [
        ("serve", "(default: 8080)"),
        ("train", "(default: model.tar.gz)"),
        ("validate", "(default: 20)"),
        ("prepare", "(default: 0.1)"),
        ("demo", "(default: build/demo)"),
    ],
)
def test_help_shows_the_defaults(capsys, command, default):
    # GIVEN a subcommand
    # WHEN its --help is asked for
    code, out, _ = _run([command, "--help"], capsys)
    # THEN the options show their defaults
    assert code == 0
    assert default in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve", "/no/such/model.tar.gz"], "neither a model directory nor a model.tar.gz"),
        (["serve", "UNSAFE"], "cannot be extracted safely"),
        (["serve", "MODEL", "--endpoint-name", "../../etc"], "is not a SageMaker name"),
        (["serve", "MODEL", "--variant", "a/b"], "is not a SageMaker name"),
        (["serve", "MODEL", "--max-payload-mb", "500"], "--max-payload-mb"),
        (["train", "--data", "/no/such/dir"], "needs train/ and validation/"),
        (["nope"], "unknown command"),
    ],
)
def test_usage_errors_exit_2_with_one_line_and_no_traceback(tmp_path, capsys, argv, expected):
    # GIVEN a bad invocation (missing file, unsafe archive, bad name or option)
    unsafe = _unsafe_tar(tmp_path / "unsafe.tar.gz")
    argv = [str(unsafe) if a == "UNSAFE" else str(tmp_path) if a == "MODEL" else a for a in argv]
    # WHEN it runs
    code, _, err = _run(argv, capsys)
    # THEN it exits 2, says what is wrong in its last line, and prints no traceback
    assert code == 2
    assert expected in err
    assert "Traceback" not in err
    assert not (tmp_path.parent / "escaped.json").exists()


def test_an_unexpected_input_error_is_one_line_too(tmp_path, capsys, monkeypatch):
    # GIVEN a subcommand that meets an unreadable file deep inside (an OSError it did not expect)
    from sagecycle import local_training

    def unreadable(argv):
        raise PermissionError(13, "Permission denied", str(tmp_path / "secret.csv"))

    monkeypatch.setattr(local_training, "main", unreadable)
    # WHEN it runs
    code, _, err = _run(["train"], capsys)
    # THEN the dispatcher turns it into one line and exit code 2
    assert code == 2
    assert err.strip().splitlines() == [
        f"sagecycle train: error: [Errno 13] Permission denied: '{tmp_path}/secret.csv'"
    ]
