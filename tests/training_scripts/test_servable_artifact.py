"""A model that a real training job leaves behind serves, the way SageMaker packs and starts it.

SageMaker's model.tar.gz is exactly what the job left in /opt/ml/model. The model's container imports
SAGEMAKER_PROGRAM from SAGEMAKER_SUBMIT_DIRECTORY (/opt/ml/model/code) and runs it through the inference
toolkit. These tests do the same steps: train.py under the container contract, the model directory tarred
as-is, the container started from the Environment that promote's CreateModel (`build_model`) gives it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from lambdas.shared.jobspec import build_model
from sagecycle.container import ContainerStartError, start_container
from sagecycle.local_training import TrainingResult, run_local_training
from tests.lambdas.fixtures import SETTINGS
from training_scripts.prepare import Prepared

REPO = Path(__file__).resolve().parents[2]
# The Adult test split's first row, features only (age, workclass, ... as the schema orders them).
ROW = "25,Private,226802,11th,7,Never-married,Machine-op-inspct,Own-child,Black,Male,0,0,40,United-States"


def _model_environment() -> dict[str, str]:
    params = build_model(
        SETTINGS, model_name="m", model_data_url="s3://bucket/training-output/job/output/model.tar.gz", run_id="r"
    )
    return dict(params["PrimaryContainer"]["Environment"])


def _as_sagemaker_packs_it(model_dir: Path, root: Path) -> Path:
    """tar the model directory as-is (what SageMaker uploads), then extract it as the container does."""
    tar_path = root / "model.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)
    extracted = root / "opt-ml-model"
    with tarfile.open(tar_path) as tar:
        tar.extractall(extracted, filter="data")
    return extracted


@pytest.fixture(scope="module")
def trained(adult_small: Prepared, tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    channels = {name: adult_small.channel(name) for name in ("train", "validation", "test")}
    root = tmp_path_factory.mktemp("servable")
    return run_local_training(channels, hyperparameters={"num_round": 15, "nthread": 2}, work_dir=root / "job")


def test_a_real_jobs_model_directory_serves_from_build_models_environment(trained, tmp_path):
    # GIVEN the model directory train.py left under the container contract, tarred as-is and extracted
    model_dir = _as_sagemaker_packs_it(trained.model_dir, tmp_path)
    # WHEN the container starts it from the Environment promote's CreateModel gives every model
    hosted = start_container(model_dir, _model_environment())
    result = hosted.invoke(ROW.encode(), "text/csv", None)
    # THEN the artifact's own code/inference.py serves it, and a row scores as a probability in CSV
    assert Path(hosted.module.__file__).parent == model_dir / "code"
    assert result.status == 200, result.body
    assert result.content_type == "text/csv"
    assert 0.0 <= float(result.body) <= 1.0


def test_the_job_writes_everything_inference_imports(trained):
    # GIVEN the code/ directory of a trained model
    code = trained.model_dir / "code"
    # WHEN inference.py is imported in a fresh interpreter with only that directory as local code
    probe = "import sys; sys.path.insert(0, sys.argv[1]); import inference; print(inference.__file__)"
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(code)], capture_output=True, text=True, cwd="/", timeout=60
    )
    # THEN it imports from there and needs nothing from the repository
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent == code


def test_an_artifact_without_its_code_fails_to_start(trained, tmp_path):
    # GIVEN the same model directory with code/ removed (what another trainer would leave)
    model_dir = _as_sagemaker_packs_it(trained.model_dir, tmp_path)
    shutil.rmtree(model_dir / "code")
    # WHEN the container starts it
    # THEN it does not come up, as SageMaker's container would not
    with pytest.raises(ContainerStartError) as failed:
        start_container(model_dir, _model_environment())
    assert "code/inference.py" in str(failed.value)


def test_sagecycle_serve_refuses_an_artifact_without_code(trained, tmp_path):
    # GIVEN a model.tar.gz without code/
    stripped = tmp_path / "stripped"
    shutil.copytree(trained.model_dir, stripped)
    shutil.rmtree(stripped / "code")
    tar_path = tmp_path / "model.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for item in sorted(stripped.iterdir()):
            tar.add(item, arcname=item.name)
    # WHEN `sagecycle serve` is asked to serve it
    done = subprocess.run(
        [sys.executable, "-m", "sagecycle.cli", "serve", str(tar_path), "--port", "0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    # THEN it exits 2 with one line naming the missing code, and no traceback
    assert done.returncode == 2
    assert "has no code/inference.py" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_failed_job_leaves_no_serving_code_behind(trained, tmp_path):
    # GIVEN a model directory holding an earlier run's files, code/ included
    model_dir = tmp_path / "model"
    shutil.copytree(trained.model_dir, model_dir)
    # WHEN train.py fails before training starts (a bad hyperparameter)
    from training_scripts import train

    code = train.main(["--model_dir", str(model_dir), "--output-dir", str(tmp_path / "out"), "--max_depth", "-3"])
    # THEN nothing of the earlier model survives, its serving code neither
    assert code == train.EXIT_BAD_INPUT
    assert not any(model_dir.iterdir())
    assert (tmp_path / "out" / "failure").is_file()
