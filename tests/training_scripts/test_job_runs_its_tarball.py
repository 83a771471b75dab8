"""A job runs exactly the scripts of its source tarball, as SageMaker's container would, even here.

In the container train.py runs from /opt/ml/code with its modules flat beside it and no `training_scripts`
package anywhere. Here the repository's package is importable too (an editable install), so a job whose
tarball differs from the repository (a regression under test, the demo's faulty candidate) must still run
and ship its own copies: the modules it imports, and the serving code it writes into code/.
"""

from __future__ import annotations

import shutil

import pytest

from sagecycle.local_training import LocalTrainingError, run_local_training
from stacks.packaging import SCRIPTS_DIR
from training_scripts.prepare import Prepared

MARK = "# sagecycle test: this copy came from the job's own tarball\n"


def test_the_job_imports_and_ships_the_modules_of_its_own_tarball(
    adult_small: Prepared, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # GIVEN a copy of the scripts whose serving modules and one training module carry a mark
    root = tmp_path_factory.mktemp("own-tarball")
    scripts = root / "scripts"
    shutil.copytree(SCRIPTS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    marked = ["inference.py", "serving_model.py", "model_outputs.py"]
    for name in marked:
        path = scripts / name
        path.write_text(MARK + path.read_text(encoding="utf-8"), encoding="utf-8")
    # model_outputs.py decides what goes into code/: a marked copy that works proves the job imported its own
    path = scripts / "model_outputs.py"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + '\nOWN_TARBALL = "yes"\n', encoding="utf-8")
    channels = {name: adult_small.channel(name) for name in ("train", "validation", "test")}
    # WHEN a job runs from that tarball
    result = run_local_training(
        channels, hyperparameters={"num_round": 5, "nthread": 1}, work_dir=root / "job", scripts_dir=scripts
    )
    # THEN the serving code in the model directory is the tarball's, not the repository's
    code = result.model_dir / "code"
    for name in ("inference.py", "serving_model.py"):
        assert (code / name).read_text(encoding="utf-8").startswith(MARK), name
    assert not (code / "model_outputs.py").exists()  # training modules stay out of the artifact
    assert not (SCRIPTS_DIR / "inference.py").read_text(encoding="utf-8").startswith(MARK)


def test_a_module_missing_from_the_tarball_fails_the_job_instead_of_borrowing_the_repositorys(
    adult_small: Prepared, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # GIVEN a tarball without checkpoints.py (train.py imports it)
    root = tmp_path_factory.mktemp("missing-module")
    scripts = root / "scripts"
    shutil.copytree(SCRIPTS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "checkpoints.py").unlink()
    channels = {name: adult_small.channel(name) for name in ("train", "validation", "test")}
    # WHEN a job runs from it / THEN it fails, as it would in the container
    with pytest.raises(LocalTrainingError):
        run_local_training(
            channels, hyperparameters={"num_round": 5, "nthread": 1}, work_dir=root / "job", scripts_dir=scripts
        )
    log = (root / "job" / "algo-1" / "output" / "train.log").read_text(encoding="utf-8")
    assert "ModuleNotFoundError: No module named 'checkpoints'" in log
