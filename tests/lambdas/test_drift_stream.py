"""The drift monitor reads capture files as streams: garbage is counted and skipped, memory stays bounded,
and the counts (and so the PSI) are exactly what reading every record on its own gives."""

from __future__ import annotations

import base64
import bisect
import io
import itertools
import json
import math
import os
import tracemalloc
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.response import StreamingBody
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.data import parse_schema, request_csv_cell
from lambdas.drift_monitor import logic
from lambdas.drift_monitor.records import CaptureParseError, RowParser, parse_capture_record
from lambdas.drift_monitor.stream import CHUNK_BYTES, MAX_RECORD_BYTES, CaptureReader, segments
from lambdas.drift_monitor.tally import MEMO_SIZE, MEMO_TEXT_CHARS, Tally, _plain_numbers
from lambdas.shared import runs
from lambdas.shared.drift import EPSILON, OTHER, BaselineError
from tests.lambdas.fixtures import BASELINE, DATA_BUCKET, EVENTS, RUNS_TABLE, SCHEMA, Aws, aws_client, sample_rows
from tests.lambdas.test_drift_monitor import capture_line, csv_cells, run

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

SPEC = parse_schema(SCHEMA)
KEY = "capture/sagecycle-dev-endpoint/AllTraffic/2026/11/23/05/part-0.jsonl"


def good_lines(n: int, *, seed: int = 3, shift: float = 0.0) -> list[str]:
    """n single-row CSV capture records, half with category names."""
    return [capture_line(csv_cells(r, names=bool(i % 2))) for i, r in enumerate(sample_rows(n, seed=seed, shift=shift))]


def read(data: bytes, chunk: int = CHUNK_BYTES) -> CaptureReader:
    reader = CaptureReader(Tally(SPEC, BASELINE))
    reader.read(KEY, (data[i : i + chunk] for i in range(0, len(data), chunk)))
    return reader


# --------------------------------------------------------------------- the previous row-based computation


def legacy_psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    k = len(expected)
    e = [(p + EPSILON) / (1 + k * EPSILON) for p in expected]
    a = [(p + EPSILON) / (1 + k * EPSILON) for p in actual]
    return sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(e, a, strict=True))


def legacy_drift(baseline: Mapping[str, Any], columns: Mapping[str, list[Any]]) -> dict[str, float]:
    """PSI per feature as the monitor computed it before counting: every value kept, binned at the end."""
    out: dict[str, float] = {}
    for name, ref in baseline["features"].items():
        values = columns[name]
        n = len(values)
        missing = sum(v is None for v in values)
        if ref["type"] == "numeric":
            edges, shares = ref["bin_edges"], ref["proportions"]
            k = len(shares)
            counts = [0] * k
            for v in values:
                if v is not None:
                    counts[min(k - 1, max(0, bisect.bisect_right(edges, v) - 1))] += 1
            ref_shares = shares
        else:
            categories = [c for c in ref["frequencies"] if c != OTHER] + [OTHER]
            index = {c: i for i, c in enumerate(categories)}
            counts = [0] * len(categories)
            for v in values:
                if v is not None:
                    counts[index.get(v, index[OTHER])] += 1
            ref_shares = [ref["frequencies"].get(c, 0.0) for c in categories]
        ref_missing = ref.get("missing_proportion", 0.0)
        expected = [(1 - ref_missing) * p for p in ref_shares] + [ref_missing]
        out[name] = legacy_psi(expected, [c / n for c in counts] + [missing / n])
    return out


def reference(lines: Sequence[str | bytes]) -> tuple[int, int, list[list[Any]]]:
    """(records, unparseable, rows) reading every line on its own, split at "\\n" like the monitor."""
    records = unparseable = 0
    rows: list[list[Any]] = []
    parser = RowParser(SPEC)
    for line in lines:
        raw = line.encode() if isinstance(line, str) else line
        if not raw.strip():
            continue
        records += 1
        try:
            rows.extend(parse_capture_record(raw, parser))
        except CaptureParseError:
            unparseable += 1
    return records, unparseable, rows


def columns(rows: list[list[Any]]) -> dict[str, list[Any]]:
    return {f.name: [row[i] for row in rows] for i, f in enumerate(SPEC.features)}


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param((EVENTS / "capture_sample.jsonl").read_text().splitlines(), id="capture_sample.jsonl"),
        pytest.param(good_lines(2000, seed=11), id="unshifted"),
        pytest.param(good_lines(2000, seed=11, shift=1.0), id="shifted"),
        pytest.param(
            [
                capture_line("\n".join(csv_cells(r) for r in sample_rows(400, seed=3)[i : i + 20]))
                for i in range(0, 400, 20)
            ],
            id="multi-row records",
        ),
    ],
)
def test_counts_give_the_psi_of_the_previous_row_based_computation(lines: list[str]) -> None:
    # GIVEN capture records from the existing fixtures
    records, unparseable, rows = reference(lines)
    # WHEN the streaming reader counts them
    reader = read("\n".join(lines).encode() + b"\n", chunk=4096)
    # THEN the same records and rows, and every feature's PSI equal to the row-based one within 1e-12
    assert (reader.records, reader.unparseable, reader.tally.rows) == (records, unparseable, len(rows))
    expected = legacy_drift(BASELINE, columns(rows))
    for drift in reader.tally.drifts():
        assert drift.psi == pytest.approx(expected[drift.name], abs=1e-12)


# ---------------------------------------------------------------------------------- unparseable records

NESTED = "[" * 100_000 + "]" * 100_000
HUGE_INT = "9" * 5000  # over Python's 4300-digit limit for int(str)
BIG_INT = "9" * 4000  # under the limit: parses, then overflows a float
UNPARSEABLE = {
    "deeply nested line": NESTED,
    "deeply nested JSON payload": capture_line(NESTED, content_type="application/json", encoding="JSON"),
    "deeply nested BASE64 payload": capture_line(
        base64.b64encode(NESTED.encode()).decode(), content_type="application/json", encoding="BASE64"
    ),
    "deeply nested instance": capture_line(
        json.dumps({"instances": [[30, 2, 20, json.loads("[" * 500 + "]" * 500)]]}),
        content_type="application/json",
        encoding="JSON",
    ),
    "integer with thousands of digits in the line": capture_line("30,2,20,1")[:-1] + f',"x":{HUGE_INT}}}',
    "integer with thousands of digits in the payload": capture_line(
        f'{{"instances": [[{HUGE_INT}, 2, 20, 1]]}}', content_type="application/json", encoding="JSON"
    ),
    "integer that overflows a float": capture_line(
        f'{{"instances": [[{BIG_INT}, 2, 20, 1]]}}', content_type="application/json", encoding="JSON"
    ),
    "number beyond float32 in CSV": capture_line("1e39,2,20,1"),
    "boolean in a numeric column": capture_line(
        '{"instances": [[true, 2, 20, 1]]}', content_type="application/json", encoding="JSON"
    ),
    "binary garbage": bytes(b for b in range(256) if b != 10).decode("latin-1"),
    "invalid UTF-8": b'{"captureData": "\xff\xfe"}'.decode("latin-1"),
    "truncated line": capture_line("30,2,20,1")[:90],
    "truncated after endpointInput": capture_line("30,2,20,1")[:-40],
    "not an object": "[1, 2, 3]",
    "null": "null",
    "BASE64 of binary": capture_line(base64.b64encode(bytes(range(256))).decode(), encoding="BASE64"),
    "BASE64 with non-ASCII": capture_line("MzAsMiwyMCwx\u00e9", encoding="BASE64"),
    "CSV field too large for the csv module": capture_line('"' + "1" * 200_000 + '",2,20,1'),
    "raw tab inside a string": capture_line("30,2,20,1").replace("30,2", "30\t,2"),
    "raw NUL inside a string": capture_line("30,2,20,1").replace('"eventId":"', '"eventId":"\x00'),
    "lone surrogate": capture_line("30,2,20,1").replace("30,2", "\\ud800,2"),
    "a column short": capture_line("30,2,20"),
    "an empty CSV payload": capture_line(""),
    "infinity in a numeric column": capture_line("30,2,inf,1"),
    "spaced JSON with a short row": json.dumps(json.loads(capture_line("30,2,20"))),
}


def _latin1(line: str) -> bytes:
    return line.encode("latin-1") if all(ord(c) < 256 for c in line) and not line.isascii() else line.encode()


@pytest.mark.parametrize("bad", list(UNPARSEABLE.values()), ids=list(UNPARSEABLE))
def test_unparseable_record_is_counted_and_skipped_and_the_watermark_advances(
    bad: str, resources: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a capture file whose 300 good records surround one bad record
    lines = good_lines(300)
    body = "\n".join(lines[:150]).encode() + b"\n" + _latin1(bad) + b"\n" + "\n".join(lines[150:]).encode()
    aws_client("s3").put_object(Bucket=DATA_BUCKET, Key=KEY, Body=body)
    # WHEN the drift monitor runs
    result = run(monkeypatch)
    # THEN the bad record is one unparseable record, the good rows all count, and the watermark moves on
    assert (result["records"], result["unparseable"], result["rows"]) == (301, 1, 300)
    assert result["published"] and result["consumed"]
    assert runs.get_item(RUNS_TABLE, runs.DRIFT)["last_key"] == KEY


def test_a_line_longer_than_the_record_limit_is_skipped_holding_at_most_the_limit() -> None:
    # GIVEN a file whose second line is 3x the record limit, streamed in 1 MiB chunks made on the fly
    good = good_lines(10)
    first = ("\n".join(good[:5]) + "\n").encode()
    last = ("\n" + "\n".join(good[5:]) + "\n").encode()
    filler = b"x" * CHUNK_BYTES

    def chunks() -> Iterator[bytes]:
        yield first + b'{"captureData":'
        for _ in range(3 * MAX_RECORD_BYTES // CHUNK_BYTES):
            yield filler
        yield last

    reader = CaptureReader(Tally(SPEC, BASELINE))
    # WHEN it is read
    tracemalloc.start()
    try:
        reader.read(KEY, chunks())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # THEN the long line is one unparseable record (line 6), the rest count, and no more than the limit was held
    assert (reader.records, reader.unparseable, reader.tally.rows) == (11, 1, 10)
    assert reader.problems[0].startswith(f"{KEY}:6: ")
    assert peak < MAX_RECORD_BYTES + 4 * CHUNK_BYTES


# ------------------------------------------------------------------------------------------- streaming


class ChunksOnly(StreamingBody):
    """An S3 body that refuses to be read whole: read() without a size fails the test."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        super().__init__(io.BytesIO(data), len(data))
        self.sizes = sizes

    def read(self, amt: int | None = None) -> bytes:
        if amt is None:
            raise AssertionError("read() without a size loads the whole object")
        self.sizes.append(amt)
        return super().read(amt)


class ChunkOnlyS3:
    """The functions' S3 client, with every GetObject body wrapped in ChunksOnly."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.sizes: list[int] = []

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        response = self.s3.get_object(**kwargs)
        response["Body"] = ChunksOnly(response["Body"].read(), self.sizes)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)


def test_a_large_capture_file_is_read_in_chunks_never_whole(resources: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a capture file of several chunks (~5 MB)
    lines = good_lines(20_000)
    aws_client("s3").put_object(Bucket=DATA_BUCKET, Key=KEY, Body="\n".join(lines).encode())
    original = logic.client
    wrapped = ChunkOnlyS3(original("s3"))
    monkeypatch.setattr(logic, "client", lambda service: wrapped if service == "s3" else original(service))
    # WHEN the drift monitor runs
    result = run(monkeypatch)
    # THEN every read asked for one chunk at most, and every row counted
    assert result["rows"] == 20_000 and result["unparseable"] == 0
    assert len(wrapped.sizes) > 4 and max(wrapped.sizes) <= CHUNK_BYTES


def test_a_run_out_of_time_keeps_what_it_read_and_leaves_the_rest(resources: Aws) -> None:
    # GIVEN two capture files and a run whose time budget is already spent
    for part in (0, 1):
        key = KEY.replace("part-0", f"part-{part}")
        aws_client("s3").put_object(Bucket=DATA_BUCKET, Key=key, Body="\n".join(good_lines(100, seed=part)).encode())
    later = datetime.now(UTC) + timedelta(minutes=10)
    config = logic.Settings.from_env(os.environ)
    # WHEN it runs
    first = logic.run_drift_check(config, later, deadline=0.0)
    # THEN it read one file and consumed it, though too few rows to publish: files were left for later
    assert (first.files, first.rows, first.consumed, first.published) == (1, 100, True, False)
    assert runs.get_item(RUNS_TABLE, runs.DRIFT)["last_key"].endswith("part-0.jsonl")
    # WHEN the next run has time to spare / THEN it reads the file that was left
    second = logic.run_drift_check(config, later)
    assert (second.files, second.rows) == (1, 100)


def test_a_baseline_of_another_type_than_the_schema_fails_before_reading(aws: None) -> None:
    # GIVEN a baseline that calls a categorical feature numeric
    baseline = json.loads(json.dumps(BASELINE))
    baseline["features"]["workclass"] = {"type": "numeric", "bin_edges": [0, 1, 2], "proportions": [0.5, 0.5]}
    # WHEN a tally is made for it
    with pytest.raises(BaselineError) as refused:
        Tally(SPEC, baseline)
    # THEN it is refused at once as a type mismatch, naming the feature
    assert (refused.value.code, refused.value.feature) == ("type-mismatch", "workclass")


# ------------------------------------------------------------------------------------------- properties

ROWS = st.lists(
    st.tuples(
        st.one_of(st.floats(0, 120, allow_nan=False).map(lambda v: f"{v:g}"), st.sampled_from(["", "?", "nan", "x"])),
        st.one_of(st.integers(0, 5).map(str), st.sampled_from(["Private", "Self-emp", " Private", "", "1.0", "9"])),
        st.one_of(st.integers(-5, 99).map(str), st.sampled_from(["1e39", "-0", ".5", "5.", "1_0", " 7"])),
        st.one_of(st.integers(0, 13).map(str), st.sampled_from(["c3", "Purple", "?"])),
    ).map(",".join),
    min_size=1,
    max_size=3,
)


@st.composite
def capture_records(draw: st.DrawFn) -> str:
    """Capture lines of every shape: canonical CSV, multi-row, JSON, BASE64, other layouts, garbage."""
    rows = draw(ROWS)
    kind = draw(st.sampled_from(["csv", "csv", "csv", "json", "base64", "metadata", "garbage", "blank", "mutated"]))
    if kind == "csv":
        return capture_line("\n".join(rows))
    if kind == "json":
        instances = [[None if c == "" else c for c in row.split(",")] for row in rows]
        return capture_line(json.dumps({"instances": instances}), content_type="application/json", encoding="JSON")
    if kind == "base64":
        return capture_line(base64.b64encode("\n".join(rows).encode()).decode(), encoding="BASE64")
    if kind == "metadata":  # another canonical layout (an inferenceId), or a key the layouts do not know
        extra = draw(st.sampled_from(['"inferenceId":"r1",', '"inferenceId":7,']))
        line = capture_line(rows[0]).replace('"inferenceTime":', extra + '"inferenceTime":')
        return line if draw(st.booleans()) else line.replace('"eventVersion"', '"extra":{},"eventVersion"')
    if kind == "garbage":
        return draw(st.sampled_from(["{", "null", '{"captureData": 1}', "\x00\x01", "[[[", '""']))
    if kind == "blank":
        return draw(st.sampled_from(["", "  ", "\t"]))
    line = capture_line(rows[0])
    at = draw(st.integers(0, len(line)))
    cut = draw(st.integers(0, 2))
    return line[:at] + draw(st.sampled_from(['"', "{", "}", ",", ":", " ", "\\", "x", "1", ""])) + line[at + cut :]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(capture_records(), min_size=1, max_size=40), chunk=st.integers(1, 3000))
def test_the_streaming_reader_agrees_with_reading_each_record_alone(lines: list[str], chunk: int) -> None:
    # GIVEN any mix of capture lines, cut into chunks of any size
    data = "\n".join(lines).encode()
    records, unparseable, rows = reference(data.split(b"\n"))
    # WHEN the streaming reader counts them
    reader = read(data, chunk)
    # THEN the same records, unparseable records and rows, and the same counts per feature
    assert (reader.records, reader.unparseable, reader.tally.rows) == (records, unparseable, len(rows))
    expected = Tally(SPEC, BASELINE)
    expected.add_rows(rows)
    assert [f.counts for f in reader.tally.features] == [f.counts for f in expected.features]


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(alphabet="0123456789+-.eE _x\u0663", max_size=8), min_size=1, max_size=30))
def test_cells_read_together_are_read_as_the_contract_reads_each(texts: list[str]) -> None:
    # GIVEN any CSV texts made of number-like characters
    values = _plain_numbers(texts)
    # WHEN they are read together / THEN either left to the one-by-one path, or equal to the contract's values
    if values is not None:
        assert values == [request_csv_cell(t, SPEC, 0) for t in texts]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), chunk=st.integers(1, 50), limit=st.integers(5, 60))
def test_segments_give_every_line_once_with_its_number(data: bytes, chunk: int, limit: int) -> None:
    # GIVEN any bytes cut into chunks of any size, and a line limit
    pieces = (data[i : i + chunk] for i in range(0, len(data), chunk))
    # WHEN they are segmented
    got: list[tuple[int, bytes | None]] = []
    for number, raw, count in segments(pieces, limit):
        assert raw is None or raw.count(b"\n") + 1 == count
        got.extend([(number, None)] if raw is None else [(number + i, line) for i, line in enumerate(raw.split(b"\n"))])
    # THEN each line comes once, numbered from 1, or None when it is over the limit
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    assert got == [(i, line if len(line) <= limit else None) for i, line in enumerate(lines, start=1)]


def _corruptions() -> list[str]:
    """A canonical line broken once at each structural character or key letter, its quotes left as they are."""
    line = capture_line("30,2,20,1")
    broken = []
    for at, char in enumerate(line):
        if char in "{}:,":
            broken += [line[:at] + "x" + line[at + 1 :], line[:at] + line[at + 1 :], line[:at] + char + " " + line[at:]]
        elif char.isalpha() and line[at - 1] == '"' and line[at + 1 : at + 4].isalpha():
            broken.append(line[:at] + char.upper() + line[at + 1 :])  # a key (or value) spelled otherwise
    return broken


def test_a_line_broken_anywhere_among_canonical_lines_is_read_as_json_loads_reads_it() -> None:
    # GIVEN, for every way of breaking one canonical line at one place, that line first, last or amid good ones
    good = good_lines(9)
    for bad, at in itertools.product(_corruptions(), (0, 4, 9)):
        lines = [*good[:at], bad, *good[at:]]
        data = "\n".join(lines).encode() + b"\n"  # SageMaker ends every line, the last too
        # WHEN the chunk is read at once / THEN exactly what reading each line alone gives
        reader = read(data)
        records, unparseable, rows = reference(lines)
        assert (reader.records, reader.unparseable, reader.tally.rows) == (records, unparseable, len(rows)), bad


def test_the_memo_of_cell_texts_stays_small_whatever_the_cells_hold() -> None:
    # GIVEN rows whose cells are all distinct, some of them long (numbers padded with zeros, unknown names)
    tally = Tally(SPEC, BASELINE)
    lines = [f"{'0' * (i % 200)}{i % 90},Name{'x' * (i % 300)}{i},{i % 60},{i % 12}" for i in range(3 * MEMO_SIZE)]
    # WHEN they are counted
    refused = tally.add_csv_lines(lines)
    # THEN every row counts, and each feature remembers at most MEMO_SIZE texts of at most MEMO_TEXT_CHARS
    assert refused == [] and tally.rows == len(lines)
    for feature in tally.features:
        assert len(feature.memo) <= MEMO_SIZE
        assert all(len(text) <= MEMO_TEXT_CHARS for text in feature.memo)
