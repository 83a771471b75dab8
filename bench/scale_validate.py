"""The validate section of bench/scale.py: `sagecycle validate` on a generated Adult-shaped prepared CSV (40 MB
and 400 MB; `--small`: 40 MB) against two floors on the same file: pyarrow's `read_csv` (the whole file in
memory, every core) and its streaming `open_csv` (block by block, discarded). Each side is timed from opening
the file to its answer, its imports done beforehand (they cost a second or more on a busy machine, whatever the
file); all three must count the same rows, or the section fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from bench.scale_common import Clock, Row, current_rss_mb, median, paired, peak_rss_mb, summary
from bench.scale_data import adult_schema, repeat_to_size, write_prepared_csv

SIDES = ("project", "read_csv", "open_csv")
BASE_BYTES = 40_000_000


def validate_project(spec: dict[str, Any]) -> dict[str, Any]:
    """The command as a user runs it: `sagecycle validate FILE --schema schema.json --max-bytes SIZE`."""
    from sagecycle import validate
    from training_scripts import data_io  # noqa: F401  (the pyarrow fast path the command imports on its way)

    start_rss = current_rss_mb()
    clock = Clock()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = validate.main([spec["file"], "--schema", spec["schema"], "--max-bytes", str(spec["bytes"])])
    seconds, cpu = clock.stop()
    counted = re.search(r"valid \((\d+) rows\)", err.getvalue())
    if code != validate.EXIT_VALID or counted is None:
        raise RuntimeError(f"validate: exit {code}: {out.getvalue()[-2000:]} {err.getvalue()[-2000:]}")
    rows = int(counted.group(1))
    return {"seconds": seconds, "cpu_s": cpu, "rss_mb": peak_rss_mb(), "rss_start_mb": start_rss, "rows": rows}


def _options(schema_path: str) -> tuple[Any, Any]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    schema = json.loads(Path(schema_path).read_text())
    names = [schema["label"]["name"], *(f["name"] for f in schema["features"])]
    read = pcsv.ReadOptions(column_names=names)
    convert = pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.float64()), null_values=schema["missing_tokens"])
    return read, convert


def validate_read_csv(spec: dict[str, Any]) -> dict[str, Any]:
    """Floor: pyarrow parses the whole file into a table (every value a float64), on every core."""
    import pyarrow.csv as pcsv

    read, convert = _options(spec["schema"])
    start_rss = current_rss_mb()
    clock = Clock()
    rows = pcsv.read_csv(spec["file"], read_options=read, convert_options=convert).num_rows
    seconds, cpu = clock.stop()
    return {"seconds": seconds, "cpu_s": cpu, "rss_mb": peak_rss_mb(), "rss_start_mb": start_rss, "rows": rows}


def validate_open_csv(spec: dict[str, Any]) -> dict[str, Any]:
    """Floor: pyarrow's streaming reader, each block parsed and dropped (memory stays flat)."""
    import pyarrow.csv as pcsv

    read, convert = _options(spec["schema"])
    start_rss = current_rss_mb()
    clock = Clock()
    rows = sum(batch.num_rows for batch in pcsv.open_csv(spec["file"], read_options=read, convert_options=convert))
    seconds, cpu = clock.stop()
    return {"seconds": seconds, "cpu_s": cpu, "rss_mb": peak_rss_mb(), "rss_start_mb": start_rss, "rows": rows}


def validate_rows(args: argparse.Namespace) -> list[Row]:
    sizes = [BASE_BYTES] if args.small else [BASE_BYTES, 400_000_000]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        schema = Path(tmp) / "schema.json"
        schema.write_text(json.dumps(adult_schema()))
        base = Path(tmp) / "base.csv"
        write_prepared_csv(base, max_bytes=BASE_BYTES, seed=7)
        for size in sizes:
            path = Path(tmp) / f"adult-{size}.csv"
            written = repeat_to_size(base, path, size)
            spec = {"file": str(path), "schema": str(schema), "bytes": written}
            runs = paired("validate", spec, args.repeats, SIDES)
            counts = {side: {r["rows"] for r in runs[side]} for side in SIDES}
            if len({n for found in counts.values() for n in found}) != 1:
                raise RuntimeError(f"validate: the sides counted different rows: {counts}")
            megabytes = written / 1e6
            label = f"{megabytes:.0f} MB CSV ({runs['project'][0]['rows']:,} rows)"
            speed = f"{megabytes / median(runs['project'], 'seconds'):.0f} MB/s"
            for floor, name in (("read_csv", "pyarrow read_csv"), ("open_csv", "pyarrow open_csv (streaming)")):
                floor_speed = f"{megabytes / median(runs[floor], 'seconds'):.0f} MB/s"
                target = "throughput >= 0.5x read_csv (ratio <= 2.0x); peak < 300 MB, flat"
                rows.append(
                    summary(
                        "sagecycle validate",
                        label,
                        runs["project"],
                        runs[floor],
                        floor=name,
                        target=target if floor == "read_csv" else "",
                        note=f"{speed} vs {floor_speed}",
                    )
                )
            path.unlink()
    return rows


CASES = {"project": validate_project, "read_csv": validate_read_csv, "open_csv": validate_open_csv}
