"""The main job: `sagecycle demo` reproduces the seed tutorial end to end and beats it, over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagecycle.demo import SEED, run


@pytest.mark.slow
def test_demo_trains_serves_and_beats_the_seed_over_the_real_client_path(tmp_path: Path) -> None:
    # GIVEN a fresh work dir and the embedded Adult data
    # WHEN the demo prepares, trains through the SageMaker contract, serves and predicts with boto3 + CSVSerializer
    figures = run(tmp_path, synth=False)
    # THEN the seed's 80/20 test split is scored in full over HTTP
    assert figures["prepared"]["test"] == 6513
    served = figures["served"]
    # AND what the client gets back agrees with what training measured on the same rows
    assert served["accuracy"] == pytest.approx(figures["evaluation"]["splits"]["test"]["accuracy"], abs=1e-9)
    # AND it beats the seed's 87% (5,686 of 6,513) at the cutoff chosen on validation
    assert served["right"] > 5686 and served["accuracy"] >= 0.870
    assert served["accuracy"] > SEED["accuracy"]
    # AND the malformed upload is refused with named reasons
    assert {"wrong_column_count", "label_out_of_domain"} <= set(figures["validation_problems"])
    # AND on the local AWS the real functions quarantined it (sidecar beside it), promoted the good file, and
    # started exactly one training job and sent one notice although every file was delivered twice
    keys = figures["data_keys"]
    assert "train/new-rows.csv" in keys and not any(k.startswith("incoming/") for k in keys)
    assert any(k.endswith("/broken.csv") for k in keys) and any(k.endswith("/broken.csv.report.json") for k in keys)
    assert len(figures["training_jobs"]) == 1 and figures["training_jobs"][0].startswith("sagecycle-dev-")
    assert figures["notices"] == 1
    # AND that job trained here on its S3 channels, and promote decided on it against the champion
    assert figures["retrained_auc"] >= 0.925
    decision = figures["promotion"]
    assert decision["decision"] in {"approved", "rejected"} and decision["reason"]
    assert decision["model_package_arn"].endswith("/1")
    champion_moved = figures["champion_after"].endswith(f"/{figures['training_jobs'][0]}/output/model.tar.gz")
    assert champion_moved is (decision["decision"] == "approved")
    # AND the endpoint captured what it served
    assert any((tmp_path / "capture").rglob("*.jsonl"))
