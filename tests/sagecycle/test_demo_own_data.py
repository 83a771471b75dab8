"""`sagecycle demo --data FILE.csv --target COLUMN`: the same lifecycle on a user's own (here multiclass) data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_iris

from sagecycle.rehearsal import scenario
from sagecycle.rehearsal.terminal import Progress
from tests.rehearsal.conftest_stage import synthesized_cdk_out


@pytest.mark.slow
def test_own_multiclass_data_runs_the_whole_scenario(tmp_path: Path) -> None:
    # GIVEN a user's CSV with a header and a three-class label column (iris, repeated to a few thousand rows)
    frame = load_iris(as_frame=True).frame.rename(columns={"target": "species"})
    frame["species"] = frame["species"].map({0: "setosa", 1: "versicolor", 2: "virginica"})
    data = tmp_path / "flowers.csv"
    pd.concat([frame] * 20, ignore_index=True).to_csv(data, index=False)
    out = tmp_path / "demo"
    options = scenario.Options(out_dir=out, data=data, target="species", reduced=True, cdk_out=synthesized_cdk_out())
    # WHEN the demo runs on it, the objective left to be inferred
    with open(tmp_path / "terminal.txt", "w") as terminal:
        run = scenario.run(options, Progress(scenario.STEPS, stream=terminal, force_plain=True))
    # THEN the objective was inferred from the column, and all eight steps ran to the faulty candidate's rollback
    assert run.data["objective"] == "multi:softprob"
    assert [s["n"] for s in json.loads((out / "run.json").read_text())["steps"]] == list(range(1, 9))
    assert run.deployments[-1]["outcome"] == "rolled_back"
    assert run.figures["champion_after_faulty"] == run.figures["champion_before_faulty"]
    # AND drift was injected on the two most important numeric features, and the report was written
    shifted = (tmp_path / "terminal.txt").read_text().split("shifting ", 1)[1].split(" (x", 1)[0].split(", ")
    importance = run.feature_importance
    assert sorted(shifted) == sorted(sorted(importance, key=lambda f: -importance[f])[:2])
    assert (out / "report.html").stat().st_size > 10_000
