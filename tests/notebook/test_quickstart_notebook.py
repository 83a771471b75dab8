"""The quickstart notebook: valid nbformat 4 without outputs, every section present, settings from the environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


@pytest.fixture(scope="module")
def notebook() -> dict[str, Any]:
    return json.loads(NOTEBOOK.read_text())


def _source(cell: dict[str, Any]) -> str:
    return "".join(cell["source"])


def test_is_nbformat_4_without_outputs(notebook: dict[str, Any]) -> None:
    # GIVEN the committed notebook WHEN its structure is read
    cells = notebook["cells"]
    # THEN it is nbformat 4.5 (cell ids), and no code cell carries outputs or an execution count
    assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 5)
    assert notebook["metadata"]["kernelspec"]["language"] == "python"
    assert len({c["id"] for c in cells}) == len(cells)
    for cell in cells:
        assert cell["cell_type"] in {"markdown", "code"}
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_every_code_cell_compiles(notebook: dict[str, Any]) -> None:
    # GIVEN each code cell WHEN compiled THEN none has a syntax error (the cells are not executed here)
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            compile(_source(cell), f"quickstart.ipynb cell {index}", "exec")


@pytest.mark.parametrize(
    ("section", "code"),
    [
        ("Prepare the Adult data", "from training_scripts.prepare import prepare"),
        ("Upload new data to `incoming/`", 'key = f"incoming/'),
        ("Watch the retraining", "list_training_jobs("),
        ("Call the endpoint", "from sagemaker.core.serializers import CSVSerializer"),
        ("Evaluate", "confusion_matrix("),
        ("Evaluate", "plt.plot(cutoffs, losses)"),
    ],
)
def test_has_each_tutorial_section(notebook: dict[str, Any], section: str, code: str) -> None:
    # GIVEN the notebook WHEN its headings and code are searched THEN each step of the tutorial is there
    headings = [_source(c) for c in notebook["cells"] if c["cell_type"] == "markdown"]
    assert any("## " in h and section in h for h in headings), section
    assert any(code in _source(c) for c in notebook["cells"] if c["cell_type"] == "code"), code


def test_reads_names_and_endpoints_from_the_environment(notebook: dict[str, Any]) -> None:
    # GIVEN the code cells WHEN searched for configuration THEN names and endpoint overrides come from env vars
    code = "\n".join(_source(c) for c in notebook["cells"] if c["cell_type"] == "code")
    for variable in (
        "SAGECYCLE_DATA_BUCKET",
        "SAGECYCLE_ENDPOINT_NAME",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
    ):
        assert f'"{variable}"' in code, variable
    # ...and it calls the endpoint through boto3's sagemaker-runtime, not a hard-coded URL or account
    assert 'client("sagemaker-runtime"' in code
    assert "amazonaws.com" not in code and "arn:aws" not in code
