"""train.py must run in the SageMaker XGBoost framework container: its imports and its flat /opt/ml/code layout."""

from __future__ import annotations

import ast
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from stacks.packaging import build_sourcedir

SCRIPTS = Path(__file__).resolve().parents[2] / "training_scripts"
# Every module of the source tarball: train.py and its siblings, inference.py and its serving_*.py modules.
CONTAINER_SCRIPTS = sorted(p.name for p in SCRIPTS.glob("*.py") if p.name != "__init__.py")
# What the container has besides the standard library (sagemaker_inference: its serving toolkit).
CONTAINER_PACKAGES = {"numpy", "pandas", "scipy", "sklearn", "pyarrow", "xgboost", "sagemaker_inference"}
# The source tarball's own modules: the scripts beside train.py, and the shared contract package at its root.
SIBLINGS = {Path(name).stem for name in CONTAINER_SCRIPTS} | {"contract"}


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("script", CONTAINER_SCRIPTS)
def test_imports_only_what_the_container_has(script: str) -> None:
    # GIVEN a script that runs in the training container
    imports = _top_level_imports(SCRIPTS / script)
    # THEN it imports the standard library, the container's packages and its siblings only
    allowed = set(sys.stdlib_module_names) | CONTAINER_PACKAGES | SIBLINGS | {"training_scripts"}
    assert imports <= allowed, imports - allowed
    assert not imports & {"sagecycle", "lambdas", "stacks"}


@pytest.mark.parametrize("script", ["metrics_format.py", "hyperparameters.py"])
def test_modules_the_stacks_read_are_stdlib_or_contract_only(script: str) -> None:
    # GIVEN a module that synth (the job-spec builder, the stage config) also imports
    # THEN it needs nothing beyond the standard library and the stdlib-only contract package
    assert _top_level_imports(SCRIPTS / script) <= set(sys.stdlib_module_names) | {"contract"}


@pytest.mark.slow
def test_scripts_import_flat_as_in_opt_ml_code(tmp_path: Path) -> None:
    # GIVEN the very source tarball the Model stack uploads, extracted as SageMaker unpacks it into /opt/ml/code
    with tarfile.open(build_sourcedir(tmp_path / "upload")) as tar:
        tar.extractall(tmp_path / "code", filter="data")
    tmp_path = tmp_path / "code"
    # WHEN train is imported there with the `training_scripts` package unavailable
    code = "import sys; sys.modules['training_scripts'] = None; import train; print(train.data_io.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    # THEN the siblings come from that directory
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent == tmp_path
