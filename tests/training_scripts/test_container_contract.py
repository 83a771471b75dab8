"""train.py must run in the SageMaker XGBoost framework container: its imports and its flat /opt/ml/code layout."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "training_scripts"
CONTAINER_SCRIPTS = ["train.py", "data_io.py", "evaluation.py", "metrics_format.py"]
# What the container has besides the standard library.
CONTAINER_PACKAGES = {"numpy", "pandas", "scipy", "sklearn", "pyarrow", "xgboost"}
SIBLINGS = {Path(name).stem for name in CONTAINER_SCRIPTS}


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


def test_metrics_format_is_stdlib_only() -> None:
    # GIVEN the module the job-spec builder imports
    # THEN it needs nothing beyond the standard library
    assert _top_level_imports(SCRIPTS / "metrics_format.py") <= set(sys.stdlib_module_names)


@pytest.mark.slow
def test_scripts_import_flat_as_in_opt_ml_code(tmp_path: Path) -> None:
    # GIVEN the scripts copied flat into a directory, as SageMaker unpacks source_dir into /opt/ml/code
    for script in CONTAINER_SCRIPTS:
        shutil.copy(SCRIPTS / script, tmp_path / script)
    # WHEN train is imported there with the `training_scripts` package unavailable
    code = "import sys; sys.modules['training_scripts'] = None; import train; print(train.data_io.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    # THEN the siblings come from that directory
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent == tmp_path
