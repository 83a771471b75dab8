"""notebooks/quickstart.ipynb, executed with nbclient against the rehearsal's local AWS.

The notebook reads only its own environment variables (the data bucket, the endpoint, the job prefix, and the
endpoint URLs of the services), so the same cells run on the notebook instance and here: its upload goes to the
local stage's incoming/, the real ingest and start-training functions start a job, the local SageMaker trains it,
and the notebook scores the test split through the local endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from sagecycle.rehearsal import scenario
from tests.rehearsal.conftest_stage import synthesized_cdk_out

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[scenario.Rehearsal]:
    out = tmp_path_factory.mktemp("notebook-stage") / "stage"
    rehearsal = scenario.open_stage(scenario.Options(out_dir=out, reduced=True, cdk_out=synthesized_cdk_out()))
    try:
        yield rehearsal
    finally:
        rehearsal.close()


def _notebook_environment(stage: scenario.Rehearsal) -> dict[str, str]:
    names = stage.names
    return {
        "SAGECYCLE_DATA_BUCKET": names.data_bucket,
        "SAGECYCLE_ENDPOINT_NAME": names.endpoint_name,
        "SAGECYCLE_JOB_PREFIX": stage.stage.functions["start_training"].name.rsplit("-start-training", 1)[0],
        "SAGECYCLE_START_TRAINING_FUNCTION": stage.stage.functions["start_training"].name,
        "SAGECYCLE_REGION": stage.aws.region,
        "SAGECYCLE_POLL_SECONDS": "0.5",
        "AWS_ENDPOINT_URL_S3": stage.aws.url,
        "AWS_ENDPOINT_URL_SAGEMAKER": stage.aws.url,
        "AWS_ENDPOINT_URL_LAMBDA": stage.aws.url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": stage.hosting.runtime_url,
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "MPLBACKEND": "Agg",
    }


@pytest.mark.slow
def test_the_quickstart_notebook_runs_against_the_local_stage(stage, tmp_path, monkeypatch):
    # GIVEN the notebook, and the local stage running on its own (uploads announced, time passing)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for key, value in _notebook_environment(stage).items():
        monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
    # WHEN every cell is executed in a fresh kernel
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    with stage.background():
        client.execute()
    # THEN no cell failed, the upload started a retraining that completed, and the test split was scored
    outputs = "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )
    assert "uploaded ['incoming/adult-" in outputs
    assert "Completed" in outputs
    assert "6,513 predictions" in outputs
    accuracy = float(outputs.split("accuracy at 0.5: ", 1)[1].split()[0])
    assert accuracy > 0.80  # the CI-sized first model (2,400 rows, 60 rounds) at a fixed 0.5 cutoff
    # AND the stage saw it all: ingest accepted the file, start-training started the job the notebook watched
    invoked = {i["function"] for i in stage.functions.invocations}
    assert {"ingest", "start_training", "promote"} <= invoked
    assert any(job["TrainingJobStatus"] == "Completed" for job in stage.jobs())
    assert os.environ.get("SAGECYCLE_DATA_BUCKET") == stage.names.data_bucket
