"""Drift monitor: PSI of captured requests against the champion's baseline, robust to garbage captures."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lambdas.drift_monitor import handler as drift
from lambdas.drift_monitor import logic
from lambdas.shared import runs
from lambdas.shared.drift import (
    OTHER,
    categorical_drift,
    chi_square_pvalue,
    kolmogorov_pvalue,
    numeric_drift,
    psi,
)
from lambdas.shared.validation import parse_schema
from tests.lambdas.fixtures import (
    BASELINE,
    CHAMPION_PARAMETER,
    COLOR,
    DATA_BUCKET,
    EVENTS,
    RUNS_TABLE,
    SCHEMA,
    WORKCLASS,
    Aws,
    FakeContext,
    aws_client,
    emf_metrics,
    load_event,
    sample_rows,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

PARSER = logic.RowParser(parse_schema(SCHEMA))
LATER = datetime.now(UTC) + timedelta(minutes=10)  # every capture file written in a test has settled by then


def capture_line(data: str, *, content_type: str = "text/csv", encoding: str = "CSV") -> str:
    """One capture record, written as SageMaker writes them (compact JSON, its key order)."""
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": content_type,
                    "mode": "INPUT",
                    "data": data,
                    "encoding": encoding,
                },
                "endpointOutput": {
                    "observedContentType": "text/csv",
                    "mode": "OUTPUT",
                    "data": "0.5",
                    "encoding": "CSV",
                },
            },
            "eventMetadata": {"eventId": "8a1f2c3d", "inferenceTime": "2026-11-23T05:12:01Z"},
            "eventVersion": "0",
        },
        separators=(",", ":"),
    )


def csv_cells(row: Sequence[Any], *, names: bool = False) -> str:
    age, workclass, hours, color = row
    wc = WORKCLASS[workclass] if names else str(workclass)
    return f"{age},{wc},{hours},{COLOR[color] if names else color}"


def write_capture(
    rows: Sequence[Sequence[Any]], *, per_record: int = 20, extra: Sequence[str] = (), part: int = 0
) -> None:
    """Capture records (a few CSV rows each, half with category names) into one JSONL file."""
    lines = [
        capture_line("\n".join(csv_cells(r, names=bool(i % 2)) for r in rows[i : i + per_record]))
        for i in range(0, len(rows), per_record)
    ]
    lines[1:1] = list(extra)
    key = f"capture/sagecycle-dev-endpoint/AllTraffic/2026/11/23/05/part-{part}.jsonl"
    aws_client("s3").put_object(Bucket=DATA_BUCKET, Key=key, Body="\n".join(lines).encode())


def run(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(drift, "utcnow", lambda: LATER)
    return drift.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, FakeContext())


# ---------------------------------------------------------------------------------------------- stats


def test_psi_of_identical_distributions_is_zero() -> None:
    # GIVEN two identical distributions WHEN their PSI is computed THEN it is zero
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == pytest.approx(0.0, abs=1e-12)


def test_psi_grows_with_the_shift() -> None:
    # GIVEN a uniform baseline and three ever larger shifts of it
    base = [0.25, 0.25, 0.25, 0.25]
    # WHEN each PSI is computed THEN it grows with the shift
    assert psi(base, [0.3, 0.25, 0.25, 0.2]) < psi(base, [0.5, 0.25, 0.15, 0.1]) < psi(base, [0.9, 0.1, 0, 0])


def test_psi_stays_finite_for_a_bin_the_baseline_never_saw() -> None:
    # GIVEN a bin the baseline never saw, filled now
    # WHEN the PSI is computed
    value = psi([0.5, 0.5, 0.0], [0.45, 0.45, 0.10])
    # THEN it is finite, and large
    assert math.isfinite(value) and value > 0.5


def test_chi_square_p_value_matches_the_table() -> None:
    # GIVEN the table's 5% critical values: 3.841 for 1 degree of freedom, 9.488 for 4, 18.307 for 10
    # WHEN their p-values are computed THEN each is 5%
    assert chi_square_pvalue(3.841, 1) == pytest.approx(0.05, abs=1e-3)
    assert chi_square_pvalue(9.488, 4) == pytest.approx(0.05, abs=1e-3)
    assert chi_square_pvalue(18.307, 10) == pytest.approx(0.05, abs=1e-3)


def test_kolmogorov_p_value_is_small_for_large_gaps_and_one_for_none() -> None:
    # GIVEN no gap, a large gap and the 5% critical gap between two CDFs of 1,000 samples
    # WHEN the Kolmogorov p-values are computed THEN they are one, tiny, and about 5%
    assert kolmogorov_pvalue(0.0, 1000) == 1.0
    assert kolmogorov_pvalue(0.3, 1000) < 1e-6
    assert 0.01 < kolmogorov_pvalue(1.36 / math.sqrt(1000), 1000) < 0.1  # ~5% critical value


def test_numeric_drift_counts_missing_values_in_their_own_bin() -> None:
    # GIVEN a baseline without missing values, and live values half of them missing
    ref = {"bin_edges": [0.0, 1.0, 2.0], "proportions": [0.5, 0.5], "missing_proportion": 0.0}
    # WHEN the drift is measured
    result = numeric_drift("x", ref, [0.5, 1.5, None, None], 1000)
    # THEN the missing share is its own bin, and it drives the PSI up
    assert result.missing_share == 0.5 and result.psi > 1


def test_unseen_category_counts_as_other() -> None:
    # GIVEN a baseline of two categories, and live values half of them unseen (OTHER)
    ref = {"frequencies": {"a": 0.5, "b": 0.5}, "missing_proportion": 0.0}
    # WHEN the drift is measured
    result = categorical_drift("c", ref, ["a", "b", OTHER, OTHER])
    # THEN OTHER counts as a category of its own: a large PSI and a significant chi-square test
    assert result.psi > 1 and result.test == "chi2"
    assert result.p_value is not None and result.p_value < 0.01


# ---------------------------------------------------------------------------------------------- parsing


def test_sample_capture_file_parses_every_encoding() -> None:
    # GIVEN SageMaker capture lines: CSV codes, CSV category names, BASE64 CSV, JSON instances
    lines = (EVENTS / "capture_sample.jsonl").read_text().splitlines()
    # WHEN parsed
    rows = [row for line in lines for row in logic.parse_capture_record(line, PARSER)]
    # THEN codes and names land on the same categories, missing cells on None
    assert rows == [
        [39.0, "Private", 40.0, "c3"],
        [50.0, "Private", 13.0, "c11"],
        [38.0, None, 40.0, None],
        [41.0, "Private", 38.0, "c1"],
        [29.0, "Self-emp", 60.0, "c4"],
    ]


def test_base64_json_payload_is_decoded_by_content_type() -> None:
    # GIVEN a capture line whose JSON payload is base64-encoded
    data = base64.b64encode(json.dumps({"instances": [[30, "0", 20, 2]]}).encode()).decode()
    line = capture_line(data, content_type="application/json", encoding="BASE64")
    # WHEN it is parsed THEN it is decoded and read as JSON, the code naming its category
    assert logic.parse_capture_record(line, PARSER) == [[30.0, "Federal-gov", 20.0, "c2"]]


def test_out_of_range_code_and_unknown_name_count_as_other() -> None:
    # GIVEN a capture line with a code out of range and an unknown category name
    # WHEN it is parsed THEN both count as OTHER
    assert logic.parse_capture_record(capture_line("30,9,20,Purple"), PARSER) == [[30.0, OTHER, 20.0, OTHER]]


@pytest.mark.parametrize(
    "line",
    [
        "not json at all",
        json.dumps({"captureData": {}}),
        capture_line("30,2,20"),  # a column short
        capture_line("thirty,2,20,1"),  # a word in a numeric column
        capture_line("30,2,inf,1"),
        capture_line("!!!", encoding="BASE64"),
        capture_line("30,2,20,1", encoding="PROTOBUF"),
        capture_line('{"instances": [{"age": 3, "height": 2}]}', content_type="application/json", encoding="JSON"),
        capture_line('{"instances": ', content_type="application/json", encoding="JSON"),
    ],
)
def test_garbage_capture_record_is_refused_with_a_reason(line: str) -> None:
    # GIVEN a capture line that is not a well-formed record of this schema
    # WHEN it is parsed THEN it is refused as such (not taken for data)
    with pytest.raises(logic.CaptureParseError):
        logic.parse_capture_record(line, PARSER)


# ----------------------------------------------------------------------------------------------- handler


def test_unshifted_traffic_keeps_max_psi_below_0_1(
    resources: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN captured requests drawn like the baseline's training data
    write_capture(sample_rows(2000, seed=11))
    # WHEN the drift monitor runs
    result = run(monkeypatch)
    # THEN MaxPSI is published and small, one FeaturePSI per feature
    published = emf_metrics(capsys.readouterr().out)
    (max_psi,) = [v for name, v, _ in published if name == "MaxPSI"]
    assert max_psi < 0.1 and result["published"]
    features = {d["Feature"] for name, _, d in published if name == "FeaturePSI"}
    assert features == {"age", "workclass", "hours", "color"}


def test_shifted_traffic_pushes_max_psi_above_0_2(
    resources: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN captured requests from a population that moved (older, other jobs, new colours)
    write_capture(sample_rows(2000, seed=11, shift=1.0))
    # WHEN the drift monitor runs / THEN MaxPSI is above the 0.2 threshold
    run(monkeypatch)
    (max_psi,) = [
        v for name, v, d in emf_metrics(capsys.readouterr().out) if name == "MaxPSI" and d == {"Stage": "dev"}
    ]
    assert max_psi > 0.2


def test_garbage_capture_lines_are_counted_and_the_run_goes_on(
    resources: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN good captures with three broken records among them
    garbage = ["{broken json", capture_line("1,2"), capture_line("@@@", encoding="BASE64")]
    write_capture(sample_rows(400, seed=3), extra=garbage)
    # WHEN the drift monitor runs
    result = run(monkeypatch)
    # THEN the broken records are counted and the PSI still published from the rest
    metrics = {name: v for name, v, d in emf_metrics(capsys.readouterr().out) if d == {"Stage": "dev"}}
    assert metrics["UnparseableCaptureRecords"] == 3 and metrics["CaptureRecordsRead"] == 23
    assert "MaxPSI" in metrics and result["rows"] == 400


def test_too_few_rows_publish_no_psi_and_keep_the_files_for_the_next_run(
    resources: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN fewer captured rows than drift_min_samples (200)
    write_capture(sample_rows(50, seed=5))
    # WHEN the drift monitor runs
    result = run(monkeypatch)
    # THEN nothing is published and the watermark does not move
    assert not result["published"] and not result["consumed"]
    assert not [m for m in emf_metrics(capsys.readouterr().out) if m[0] == "MaxPSI"]
    assert runs.get_item(RUNS_TABLE, runs.DRIFT) is None


def test_files_read_once_are_not_read_again(resources: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a run that consumed the capture files so far
    write_capture(sample_rows(300, seed=5))
    run(monkeypatch)
    # WHEN the next run finds nothing newer
    result = run(monkeypatch)
    # THEN it reads no file
    assert result["files"] == 0 and result["records"] == 0


def test_file_still_being_written_is_left_for_later(resources: Aws) -> None:
    # GIVEN a capture file written just now (SageMaker may still be writing the hour's files)
    listing = iter([{"Key": "capture/e/v/2026/11/23/05/a.jsonl", "LastModified": datetime.now(UTC)}])
    # WHEN the pending files are listed / THEN it waits for the settle time
    files, more = logic.pending_files(listing, (0, ""), now=datetime.now(UTC), limit=10)
    assert files == [] and not more


def test_sample_alarm_drift_event_names_the_metric_this_function_publishes() -> None:
    # GIVEN the drift alarm's sample event
    # WHEN its metric is read
    # THEN it watches MaxPSI with exactly the Stage dimension
    metric = load_event("alarm_drift.json")["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]
    assert (metric["name"], metric["dimensions"]) == ("MaxPSI", {"Stage": "dev"})


def test_baseline_fixture_matches_the_documented_format() -> None:
    # GIVEN the baseline fixture WHEN its features are read
    # THEN they have the documented shape: numeric bins with edges, categorical frequencies summing to one
    assert BASELINE["features"]["age"]["type"] == "numeric"
    assert len(BASELINE["features"]["age"]["bin_edges"]) == len(BASELINE["features"]["age"]["proportions"]) + 1
    assert sum(BASELINE["features"]["workclass"]["frequencies"].values()) == pytest.approx(1.0)


def test_without_a_champion_the_run_fails_loudly(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN no champion parameter (nothing to compare with)
    from tests.lambdas.fixtures import create_resources

    create_resources(champion=False)
    # WHEN the drift monitor runs
    with pytest.raises(logic.DriftMonitorError) as refused:
        run(monkeypatch)
    # THEN it raises (the function's error alarm fires) for want of a champion, naming the parameter for the
    # operator
    assert refused.value.code == "no-champion"
    assert CHAMPION_PARAMETER in str(refused.value)
