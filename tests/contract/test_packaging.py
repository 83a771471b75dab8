"""The data contract ships inside both code artifacts, and each side imports it from there (not from this tree)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from stacks.packaging import CONTRACT_DIR, build_lambda_bundle, build_sourcedir, contract_files
from tests.lambdas.fixtures import ENV

CONTRACT_MODULES = {
    f"contract/{name}.py"
    for name in ("__init__", "data", "numbers", "problems", "schema", "cells", "csv_check", "metrics", "names")
}

# Run in a fresh interpreter whose only view of this project is the artifact in its working directory: the
# editable install's finder (which maps `contract`, `lambdas`, ... to this tree) is taken off the import system.
ISOLATE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
sys.path_hooks[:] = [h for h in sys.path_hooks if "__editable__" not in getattr(h, "__module__", "")]
sys.path[:] = [p for p in sys.path if "__editable__" not in p and p.rstrip("/") != {root!r}]
sys.path.insert(0, {staged!r})
"""


def run_isolated(staged: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | ENV
    prelude = ISOLATE.format(root=str(CONTRACT_DIR.parent), staged=str(staged))
    return subprocess.run(
        [sys.executable, "-c", prelude + code], cwd=staged, env=env, capture_output=True, text=True, check=False
    )


def test_the_contract_is_stdlib_only() -> None:
    # GIVEN every module of the contract package
    # WHEN its imports are listed / THEN they are the standard library and the package itself
    import ast

    for source, _ in contract_files():
        for node in ast.walk(ast.parse(source.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "contract", f"{source.name} imports {name}"


def test_lambda_bundle_holds_the_contract_beside_lambdas(tmp_path: Path) -> None:
    # GIVEN the Lambda code asset
    # WHEN it is staged
    bundle = build_lambda_bundle(tmp_path / "bundle")
    # THEN contract/ sits at its root next to lambdas/, byte for byte the sources, without caches
    staged = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert staged >= CONTRACT_MODULES
    assert "lambdas/shared/validation.py" in staged
    assert not any("__pycache__" in name for name in staged)
    for source, rel in contract_files():
        assert (bundle / rel).read_bytes() == source.read_bytes()


def test_sourcedir_holds_the_contract_beside_train_py(tmp_path: Path) -> None:
    # GIVEN the training source tarball
    # WHEN it is built twice
    a, b = build_sourcedir(tmp_path / "a"), build_sourcedir(tmp_path / "b")
    # THEN they are identical, and contract/ sits at the top next to the flat scripts
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tar:
        names = set(tar.getnames())
    assert names >= CONTRACT_MODULES
    assert {"train.py", "data_io.py", "inference.py", "metrics_format.py"} <= names


@pytest.mark.slow
def test_a_handler_imports_from_the_bundle_alone(tmp_path: Path) -> None:
    # GIVEN the staged bundle as the only copy of this project on the import path
    bundle = build_lambda_bundle(tmp_path / "bundle")
    # WHEN a handler and the ingest validation are imported, as Lambda does from /var/task
    done = run_isolated(
        bundle,
        "import lambdas.ingest.handler, lambdas.shared.validation as v, contract\n"
        "print(contract.__file__); print(v.parse_schema.__module__)",
    )
    # THEN they import, and the contract comes from the bundle, where validation takes its schema parser
    assert done.returncode == 0, done.stderr[-2000:]
    contract_file, module = done.stdout.split()
    assert Path(contract_file).parent == bundle / "contract"
    assert module == "contract.schema"


@pytest.mark.slow
def test_train_py_imports_from_the_extracted_sourcedir_alone(tmp_path: Path) -> None:
    # GIVEN the source tarball extracted as SageMaker does into /opt/ml/code
    code = tmp_path / "code"
    with tarfile.open(build_sourcedir(tmp_path / "dist")) as tar:
        tar.extractall(code, filter="data")
    # WHEN train.py and inference.py are imported there
    done = run_isolated(
        code, "import train, inference\nprint(train.data_io.data.__file__); print(inference.data.__file__)"
    )
    # THEN both read the contract extracted beside them
    assert done.returncode == 0, done.stderr[-2000:]
    assert {Path(line).parent for line in done.stdout.split()} == {code / "contract"}


def test_isolation_hides_this_tree(tmp_path: Path) -> None:
    # GIVEN an empty directory as the only copy of the project
    # WHEN the contract is imported / THEN it is not found: the tests above cannot pass through the editable install
    done = run_isolated(tmp_path, "import contract")
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr
