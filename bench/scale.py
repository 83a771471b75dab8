"""How each component's cost grows with its work, against a floor measured in the same run. A benchmark, never a test.

    python -m bench.scale [--small] [--only NAME] [--repeats 3]

Every section generates its own data at the sizes it chooses (`--small`: the small sizes only), runs the
project and its floor(s) on the same input, each case in a fresh subprocess (so peak RSS is that case's own:
VmHWM at its end, imports included), and returns table rows. The time of a size is the median over
--repeats rounds (every side once per round, in turn); the ratio is the median of the per-round ratios.

Sections (one module each, with a `*_rows(args)` function and its CASES; add yours to SECTIONS):
- drift (bench/scale_drift.py): the drift monitor over 100k and 1M captured rows vs pyarrow + numpy PSI.
- validate (bench/scale_validate.py): `sagecycle validate` on 40 MB and 400 MB vs pyarrow read_csv / open_csv.
- ingest (bench/scale_ingest.py): the ingest function's logic on a 100 MB object in a moto server vs one
  streamed GET with SHA-256, a pyarrow parse and one CopyObject; with the function's configured memory.
- training (bench/scale_training.py): the local runner with 1 and 2 hosts at 1M rows vs xgboost.train.
The endpoint's rows (single-row throughput at 1/2/4 clients, one 10,000-row request) are bench/serve.py's:
it needs a trained model and a load generator, and `make bench` runs it just before this.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.scale_common import Row

# section -> (module, its rows function); a module's CASES maps each side to the function a case process runs.
SECTIONS: dict[str, tuple[str, str]] = {
    "drift": ("bench.scale_drift", "drift_rows"),
    "validate": ("bench.scale_validate", "validate_rows"),
    "ingest": ("bench.scale_ingest", "ingest_rows"),
    "training": ("bench.scale_training", "training_rows"),
}
SERVE_LINE = (
    "endpoint (single rows at 1/2/4 clients vs a bare gunicorn app; one 10,000-row CSV request vs inplace_predict):"
    " bench/serve.py prints these (make bench runs it before this)"
)


def print_table(rows: list[Row]) -> None:
    header = f"{'component':<22}{'size':<36}{'floor':<42}{'project s':>10}{'floor s':>9}{'ratio':>8}"
    header += f"{'project MB':>12}{'floor MB':>10}{'cpu ratio':>11}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.component:<22}{r.size:<36}{r.floor:<42}{r.project_s:>10.2f}{r.floor_s:>9.2f}{r.ratio:>7.2f}x"
            f"{r.project_rss_mb:>12.0f}{r.floor_rss_mb:>10.0f}{r.cpu_ratio:>10.2f}x"
        )
        for label, text in (("note", r.note), ("target", r.target)):
            if text:
                print(f"{'':<22}{label}: {text}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="only the small sizes (default: all sizes)")
    parser.add_argument("--only", choices=sorted(SECTIONS), help="run one section (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per size; medians (default: 3)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one side of one size, in a subprocess
    return parser.parse_args(argv)


def run_case_here(spec: dict[str, Any]) -> dict[str, Any]:
    """A case process: only its section's module is imported (imports count in its peak RSS)."""
    module = importlib.import_module(SECTIONS[spec["section"]][0])
    case: Callable[[dict[str, Any]], dict[str, Any]] = module.CASES[spec["side"]]
    return case(spec)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.case:
        print(json.dumps(run_case_here(json.loads(args.case))))
        return 0
    rows: list[Row] = []
    began = time.perf_counter()
    for name, (module, function) in SECTIONS.items():
        if args.only in (None, name):
            section_began = time.perf_counter()
            rows.extend(getattr(importlib.import_module(module), function)(args))
            print(f"{name}: {time.perf_counter() - section_began:.0f} s", file=sys.stderr, flush=True)
    print_table(rows)
    print(f"\n{SERVE_LINE}")
    print(f"\n{len(rows)} rows in {time.perf_counter() - began:.0f} s; times are medians of {args.repeats} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
