"""Deterministic code artifacts: the same sources always give the same bytes, so content hashes mean something.

Synth owns them (stacks/app_builder.py stages every asset from here); the CLI and the rehearsal import them, never
the other way round.

Both the training source tarball and the Lambda bundle carry the data contract (`contract/`, stdlib only) at
their root, next to `train.py` and next to `lambdas/` respectively, so every reader imports the same rules.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import io
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parents[1] / "training_scripts"
CONTRACT_DIR = Path(__file__).resolve().parents[1] / "contract"
CONTRACT_PACKAGE = "contract"


def _script_files(src: Path) -> list[Path]:
    return sorted(p for p in src.rglob("*.py") if "__pycache__" not in p.parts and p.name != "__init__.py")


def contract_files(src: Path = CONTRACT_DIR) -> list[tuple[Path, str]]:
    """(source, path in an artifact) of the contract package's sources: `contract/<module>.py`, sorted."""
    files = sorted(p for p in src.rglob("*.py") if "__pycache__" not in p.parts)
    return [(p, f"{CONTRACT_PACKAGE}/{p.relative_to(src).as_posix()}") for p in files]


def deterministic_targz(members: Iterable[tuple[str, bytes]]) -> bytes:
    """A gzip'd tar with fixed mtimes, owners and modes, members in the given order."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_sourcedir(out_dir: Path, src: Path = SCRIPTS_DIR, contract: Path = CONTRACT_DIR) -> Path:
    """Write `sourcedir-<hash>.tar.gz` (the `sagemaker_submit_directory` for script mode) into out_dir.

    The scripts lie flat at the top, as SageMaker unpacks them into /opt/ml/code, with `contract/` beside them.
    The name carries the first 16 hex digits of the content's SHA-256, so a training job always names the
    exact scripts it ran, and a deploy that changes nothing uploads nothing new.
    """
    members = [(p.relative_to(src).as_posix(), p.read_bytes()) for p in _script_files(src)]
    members += [(rel, p.read_bytes()) for p, rel in contract_files(contract)]
    data = deterministic_targz(members)
    digest = hashlib.sha256(data).hexdigest()[:16]
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("sourcedir-*.tar.gz"):
        stale.unlink()
    path = out_dir / f"sourcedir-{digest}.tar.gz"
    path.write_bytes(data)
    return path


LAMBDAS_DIR = Path(__file__).resolve().parents[1] / "lambdas"
# What the Lambda functions import besides the runtime's boto3: Powertools and its pure-Python dependencies.
LAYER_DISTRIBUTIONS = ("aws-lambda-powertools", "jmespath", "typing_extensions", "aws-xray-sdk", "wrapt")


def _copy_tree(files: Iterable[tuple[Path, str]], out_dir: Path) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    for src, rel in files:
        dest = out_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)


def build_lambda_bundle(out_dir: Path, src: Path = LAMBDAS_DIR, contract: Path = CONTRACT_DIR) -> Path:
    """Stage `lambdas/` and `contract/` (sources only) as the functions' code asset.

    Handlers are `lambdas.<name>.handler`; `contract` is importable beside them from the bundle's root.
    """
    files = [(p, f"lambdas/{p.relative_to(src).as_posix()}") for p in sorted(src.rglob("*.py"))]
    files = [(p, rel) for p, rel in files if "__pycache__" not in rel] + contract_files(contract)
    _copy_tree(files, out_dir)
    return out_dir


def build_powertools_layer(out_dir: Path) -> Path:
    """A layer holding exactly the Powertools version this project pins and tests with (pure Python).

    Compiled extensions are left out (the venv's are for this machine, not Lambda's arm64); wrapt falls
    back to its pure-Python implementation, the rest has none.
    """
    staged: list[tuple[Path, str]] = []
    for name in LAYER_DISTRIBUTIONS:
        dist = importlib.metadata.distribution(name)
        for file in dist.files or ():
            rel = str(file)
            if (
                ".dist-info" in rel
                or "__pycache__" in rel
                or rel.endswith((".so", ".pyd", ".pyc"))
                or rel.startswith("..")
            ):
                continue
            staged.append((Path(str(dist.locate_file(file))), f"python/{rel}"))
    _copy_tree(sorted(staged, key=lambda item: item[1]), out_dir)
    return out_dir
