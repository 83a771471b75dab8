"""The drift section of bench/scale.py: the drift monitor over capture files of Adult-shaped single-row CSV
requests, as SageMaker writes them (100 files of 10,000 records at 1M rows). S3 is a moto server in the driver's
process, so both sides read the same objects over HTTP, as a function reads S3. Project: lambdas.drift_monitor
streaming every file through its reader and computing PSI from the counts. Floor: the same listing and GETs
(whole bodies), one pyarrow JSON parse of each file (only endpointInput.data), one pyarrow CSV parse of the rows,
numpy counts and PSI. Both must agree on every feature's PSI, or the section fails.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.adult import ADULT
from bench.scale_common import Row, current_rss_mb, moto_server, paired, peak_rss_mb, summary
from bench.scale_data import adult_schema

BUCKET = "sagecycle-bench-data"

ROWS_PER_FILE = 10_000
CAPTURE_LINE = (
    '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"%s",'
    '"encoding":"CSV"},"endpointOutput":{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT",'
    '"data":"0.%06d","encoding":"CSV"}},"eventMetadata":{"eventId":"4f3c2a1b-9d8e-4c7b-a6f5-%012d",'
    '"inferenceTime":"2026-11-23T05:%02d:%02dZ"},"eventVersion":"0"}'
)


def _columns(n: int, seed: int, shift: float) -> list[list[str]]:
    """Request cells per column: numbers as text, categories mostly as codes, some as names, 2% missing."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out: list[list[str]] = []
    for name, k in ADULT:
        if k:
            p = np.linspace(1 + shift, 1, k)
            codes = rng.choice(k, size=n, p=p / p.sum())
            cells = [str(c) for c in codes.tolist()]
            named = np.flatnonzero(rng.random(n) < 0.1)
            for i in named.tolist():
                cells[i] = f"{name}_{codes[i]}"
        elif name == "fnlwgt":
            cells = [str(v) for v in rng.integers(12_000, 1_500_000, n).tolist()]
        elif name.startswith("capital"):
            cells = [str(v) for v in np.where(rng.random(n) < 0.1, rng.integers(1, 99_999, n), 0).tolist()]
        else:
            cells = [
                f"{v:.1f}" if v % 1 else str(int(v)) for v in np.round(rng.normal(40 + 5 * shift, 12, n), 1).tolist()
            ]
        for i in np.flatnonzero(rng.random(n) < 0.02).tolist():
            cells[i] = "?"
        out.append(cells)
    return out


def adult_baseline(schema: dict[str, Any], n: int = 50_000) -> dict[str, Any]:
    """baseline.json from training-like rows (docs/artifacts.md): numeric deciles, categorical frequencies."""
    import numpy as np

    features: dict[str, Any] = {}
    for (name, k), cells in zip(ADULT, _columns(n, seed=1, shift=0.0), strict=True):
        present = [c for c in cells if c != "?"]
        missing = 1 - len(present) / n
        if k:
            categories = schema["features"][[f["name"] for f in schema["features"]].index(name)]["categories"]
            codes = [int(c) if c.isdigit() else categories.index(c) for c in present]
            counts = np.bincount(codes, minlength=k)
            frequencies = {categories[i]: counts[i] / len(codes) for i in range(k) if counts[i]}
            features[name] = {"type": "categorical", "frequencies": frequencies, "missing_proportion": missing}
        else:
            values = np.array(present, dtype=float)
            edges = np.unique(np.quantile(values, np.linspace(0, 1, 11)))
            if len(edges) < 3:
                edges = np.array([values.min(), values.min() + 0.5, max(values.max(), values.min() + 1)])
            positions = np.searchsorted(edges, values, side="right")
            bins = np.bincount(np.clip(positions - 1, 0, len(edges) - 2), minlength=len(edges) - 1)
            features[name] = {
                "type": "numeric",
                "bin_edges": edges.tolist(),
                "proportions": (bins / bins.sum()).tolist(),
                "missing_proportion": missing,
            }
    return {"format_version": 1, "sample_size": n, "features": features}


def write_capture(directory: Path, rows: int) -> list[Path]:
    """Capture files of `rows` single-row CSV requests (ROWS_PER_FILE per file), live traffic slightly shifted."""
    paths = []
    for start in range(0, rows, ROWS_PER_FILE):
        n = min(ROWS_PER_FILE, rows - start)
        data = [
            ",".join(cells) for cells in zip(*_columns(n, seed=1000 + start // ROWS_PER_FILE, shift=0.3), strict=True)
        ]
        lines = [
            CAPTURE_LINE % (d, (start + i) % 999_983, start + i, (start + i) // 60 % 60, (start + i) % 60)
            for i, d in enumerate(data)
        ]
        path = directory / f"{start // ROWS_PER_FILE:05d}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def drift_project(spec: dict[str, Any]) -> dict[str, Any]:
    """The drift monitor's own reading and PSI (lambdas.drift_monitor), as the function runs it."""
    from contract.data import parse_schema
    from lambdas.drift_monitor import logic
    from lambdas.drift_monitor.stream import CaptureReader
    from lambdas.drift_monitor.tally import Tally

    schema, baseline = _reference(spec)
    s3 = _s3(spec)
    start_rss = current_rss_mb()
    began, cpu = time.perf_counter(), time.process_time()
    reader = CaptureReader(Tally(parse_schema(schema), baseline))
    logic.read_files(s3, BUCKET, _keys(s3, spec), reader)
    psi = {d.name: d.psi for d in reader.tally.drifts()}
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    assert reader.unparseable == 0 and reader.tally.rows == spec["rows"], (reader.unparseable, reader.problems[:3])
    return {"seconds": seconds, "cpu_s": cpu, "rss_mb": peak_rss_mb(), "rss_start_mb": start_rss, "psi": psi}


def drift_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """The same GETs, then pyarrow parses and numpy counts: what the work costs with compiled parsers."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson

    schema, baseline = _reference(spec)
    s3 = _s3(spec)
    start_rss = current_rss_mb()
    began, cpu = time.perf_counter(), time.process_time()
    features = schema["features"]
    names = [f["name"] for f in features]
    data_only = pa.schema([("captureData", pa.struct([("endpointInput", pa.struct([("data", pa.string())]))]))])
    parse = pjson.ParseOptions(explicit_schema=data_only, unexpected_field_behavior="ignore")
    convert = pcsv.ConvertOptions(
        column_types={f["name"]: pa.string() if f["type"] == "categorical" else pa.float64() for f in features},
        null_values=["", "?"],
        strings_can_be_null=True,
    )
    refs = baseline["features"]
    edges = {n: np.array(refs[n]["bin_edges"]) for n in names if refs[n]["type"] == "numeric"}
    positions = {n: np.zeros(len(e) + 1, dtype=np.int64) for n, e in edges.items()}
    values: dict[str, dict[str, int]] = {n: {} for n in names if n not in edges}
    missing = dict.fromkeys(names, 0)
    for key in _keys(s3, spec):
        raw = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        table = pjson.read_json(io.BytesIO(raw), parse_options=parse)
        data = pc.struct_field(table.column("captureData"), [0, 0]).combine_chunks()
        body = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(data)], pa.int32()), data), "\n")[0]
        rows = pcsv.read_csv(
            io.BytesIO(body.as_buffer()),
            read_options=pcsv.ReadOptions(column_names=names),
            convert_options=convert,
        )
        for name in names:
            column = rows.column(name)
            missing[name] += column.null_count
            if name in edges:
                present = column.drop_null().to_numpy()
                positions[name] += np.bincount(
                    np.searchsorted(edges[name], present, side="right"), minlength=len(edges[name]) + 1
                )
            else:
                for item in pc.value_counts(column.drop_null()).to_pylist():
                    values[name][item["values"]] = values[name].get(item["values"], 0) + item["counts"]
    psi: dict[str, float] = {}
    for feature in features:
        name, ref = feature["name"], refs[feature["name"]]
        if name in edges:
            k = len(edges[name]) - 1
            live = np.zeros(k, dtype=np.int64)
            np.add.at(live, np.clip(np.arange(k + 2) - 1, 0, k - 1), positions[name])
            reference = np.array(ref["proportions"]) * (1 - ref["missing_proportion"])
        else:
            categories = [c for c in ref["frequencies"] if c != "__other__"] + ["__other__"]
            index = {c: i for i, c in enumerate(categories)}
            live = np.zeros(len(categories), dtype=np.int64)
            for value, count in values[name].items():
                category = feature["categories"][int(value)] if value.isdigit() else value
                live[index.get(category, index["__other__"])] += count
            reference = np.array([ref["frequencies"].get(c, 0.0) for c in categories]) * (1 - ref["missing_proportion"])
        n = live.sum() + missing[name]
        expected = np.append(reference, ref["missing_proportion"])
        actual = np.append(live, missing[name]) / n
        e = (expected + 1e-4) / (1 + len(expected) * 1e-4)
        a = (actual + 1e-4) / (1 + len(actual) * 1e-4)
        psi[name] = float(np.sum((a - e) * np.log(a / e)))
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"seconds": seconds, "cpu_s": cpu, "rss_mb": peak_rss_mb(), "rss_start_mb": start_rss, "psi": psi}


def _reference(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    reference = json.loads(Path(spec["reference"]).read_text())
    return reference["schema"], reference["baseline"]


def _s3(spec: dict[str, Any]) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=spec["endpoint"], region_name="us-east-1")


def _keys(s3: Any, spec: dict[str, Any]) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=spec["prefix"]):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def drift_rows(args: argparse.Namespace) -> list[Row]:
    import boto3

    sizes = [100_000] if args.small else [100_000, 1_000_000]
    rows: list[Row] = []
    with moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        schema = adult_schema()
        reference = Path(tmp) / "reference.json"
        reference.write_text(json.dumps({"schema": schema, "baseline": adult_baseline(schema)}))
        for size in sizes:
            files = Path(tmp) / str(size)
            files.mkdir()
            paths = write_capture(files, size)
            prefix = f"capture/bench-endpoint/AllTraffic/{size}/"
            megabytes = sum(p.stat().st_size for p in paths) / 1e6
            for path in paths:
                s3.upload_file(str(path), BUCKET, prefix + path.name)
                path.unlink()
            spec = {"endpoint": endpoint, "prefix": prefix, "rows": size, "reference": str(reference)}
            runs = paired("drift", spec, args.repeats)
            for p, f in zip(runs["project"], runs["floor"], strict=True):
                gaps = {name: abs(p["psi"][name] - f["psi"][name]) for name in f["psi"]}
                if max(gaps.values()) > 1e-9:
                    raise RuntimeError(f"drift: project and floor disagree on PSI: {gaps}")
            rows.append(
                summary(
                    "drift monitor",
                    f"{size:,} rows ({len(paths)} files, {megabytes:.0f} MB)",
                    runs["project"],
                    runs["floor"],
                    floor="same GETs, pyarrow parse, numpy PSI",
                    target="time <= 1.5x floor; peak < 200 MB, flat",
                )
            )
    return rows


CASES = {"project": drift_project, "floor": drift_floor}
