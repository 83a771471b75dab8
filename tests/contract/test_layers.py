"""Imports run one way: `sagecycle/` may use the deployable packages; none of them imports `sagecycle`.

The stacks, the Lambda code, the training scripts and the configuration ship or synthesize without the
command-line package, and `contract/` ships inside both code artifacts, so it needs nothing but the stdlib.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOYABLE = ("stacks", "lambdas", "training_scripts", "config", "contract")
CLI_PACKAGE = "sagecycle"
CONTRACT_PACKAGE = "contract"


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a source imports: `import x`, `from x import y`, relative imports resolved against
    package, and `importlib.import_module` / `__import__` called with a literal name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: max(len(package.split(".")) - node.level + 1, 0)]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def _sources(top: str) -> list[tuple[Path, str]]:
    """(file, its package) for each Python source under top."""
    files = sorted(p for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)
    return [(p, ".".join(p.relative_to(ROOT).parent.parts)) for p in files]


def _root(module: str) -> str:
    return module.split(".", 1)[0]


def test_the_walker_sees_every_form_of_import() -> None:
    # GIVEN a source that reaches sagecycle in each way Python allows
    source = (
        "import sagecycle.cli\n"
        "from sagecycle import packaging\n"
        "from . import sibling\n"
        "from ..other import thing\n"
        "import importlib\n"
        "importlib.import_module('sagecycle.rehearsal')\n"
        "__import__('json')\n"
    )
    # WHEN its imports are collected as if it lived in stacks.constructs
    found = imported_modules(source, "stacks.constructs")
    # THEN every one is named, relative ones resolved
    assert found == {
        "sagecycle.cli",
        "sagecycle",
        "stacks.constructs",
        "stacks.other",
        "importlib",
        "sagecycle.rehearsal",
        "json",
    }


@pytest.mark.parametrize("top", DEPLOYABLE)
def test_deployable_packages_never_import_the_cli(top: str) -> None:
    # GIVEN every source of one deployable package
    sources = _sources(top)
    assert sources, f"no sources under {top}/"
    # WHEN their imports are collected
    offenders = {
        f"{path.relative_to(ROOT)}: {module}"
        for path, package in sources
        for module in imported_modules(path.read_text(encoding="utf-8"), package)
        if _root(module) == CLI_PACKAGE
    }
    # THEN none reaches the command-line package
    assert offenders == set()


def test_contract_imports_only_the_stdlib() -> None:
    # GIVEN the contract package, which ships inside the Lambda bundle and the training tarball
    sources = _sources(CONTRACT_PACKAGE)
    # WHEN its imports are collected
    allowed = set(sys.stdlib_module_names) | {"__future__", CONTRACT_PACKAGE}
    offenders = {
        f"{path.relative_to(ROOT)}: {module}"
        for path, package in sources
        for module in imported_modules(path.read_text(encoding="utf-8"), package)
        if _root(module) not in allowed
    }
    # THEN each is the stdlib or the contract itself
    assert offenders == set()
