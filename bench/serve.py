"""Serving latency and throughput against floors measured in the same run.

    python -m bench.serve [--model MODEL_DIR_OR_TAR] [--requests 2000] [--repeats 3]

Measures, on one model:
- single row, p50/p99 over --requests requests, median over --repeats:
  (a) floor: `Booster.inplace_predict` on an already-parsed numpy row;
  (b) in process: inference.input_fn -> predict_fn -> output_fn on a CSV body;
  (c) HTTP: a keep-alive connection to a real `sagecycle serve` subprocess (/invocations).
- one 10,000-row CSV request: rows/s for the floor (inplace_predict on the parsed array), in process, and HTTP.
- sustained single-row invocations/s of one server (--workers workers, one per CPU by default, x --threads threads)
  under --clients concurrent keep-alive client processes, against a bare gunicorn app with the same settings:
  the measured per-instance figure an autoscaling target is derived from.

Every stage runs this tree's serving code (training_scripts/inference.py and contract/, as the next training job
ships them in code/); --artifact-code serves the code inside the model artifact instead. Without --model it
trains an Adult-shaped model on synthetic data: 14 features (8 categorical, Adult's cardinalities), 300 trees of
depth 6.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from bench.adult import ADULT
from sagecycle.serve import model_directory
from training_scripts import inference
from training_scripts.train import SERVING_CODE_DIR, write_serving_code

REPO = Path(__file__).resolve().parents[1]
TARGETS = {
    "inproc_p99_us": 2000.0,
    "inproc_p50_ratio": 3.0,
    "http_p99_us": 10000.0,
    "bulk_fraction": 0.8,
    "sustained_fraction": 0.6,
}


def train_adult_like(directory: Path, *, n_rows: int = 10000, n_trees: int = 300, depth: int = 6) -> Path:
    """Trains an Adult-shaped binary model on synthetic data and writes it in the artifact layout."""
    rng = np.random.default_rng(0)
    x = _synthetic_rows(n_rows, rng)
    cats = [k for _, k in ADULT]
    logit = 0.04 * (x[:, 0] - 38) + 0.3 * (x[:, 4] - 10) + 0.02 * (x[:, 12] - 40)
    logit += np.where(np.isin(x[:, 5], [2, 4]), 1.2, -0.8) + np.where(x[:, 7] < 2, 0.6, -0.3) + 0.4 * (x[:, 6] % 3)
    y = (logit + rng.logistic(size=n_rows) > 0.5).astype(float)
    types = ["c" if k else "q" for k in cats]
    dtrain = xgb.DMatrix(x, label=y, feature_types=types, enable_categorical=True)
    params = {"objective": "binary:logistic", "max_depth": depth, "eta": 0.1, "tree_method": "hist"}
    params |= {"max_cat_to_onehot": 1, "min_child_weight": 0.0, "lambda": 0.1}
    booster = xgb.train(params, dtrain, num_boost_round=n_trees)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "xgboost-model").write_bytes(bytes(booster.save_raw("json")))
    features = [
        {"name": n, "type": "categorical", "categories": [f"{n}_{i}" for i in range(k)]}
        if k
        else {"name": n, "type": "numeric"}
        for n, k in ADULT
    ]
    schema = {
        "format_version": 1,
        "objective": "binary:logistic",
        "label": {"name": "income", "task": "binary", "classes": ["<=50K", ">50K"]},
        "features": features,
        "missing_tokens": ["", "?"],
    }
    (directory / "schema.json").write_text(json.dumps(schema))
    (directory / "evaluation.json").write_text(json.dumps({"format_version": 1, "threshold": {"value": 0.5}}))
    return directory


def _synthetic_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    columns = []
    for name, k in ADULT:
        if k:
            columns.append(rng.integers(0, k, n).astype(float))
        elif name == "fnlwgt":
            columns.append(rng.integers(12000, 1_500_000, n).astype(float))
        elif name.startswith("capital"):
            columns.append(np.where(rng.random(n) < 0.1, rng.integers(1, 99999, n), 0).astype(float))
        else:
            columns.append(rng.integers(1, 99, n).astype(float))
    return np.column_stack(columns)


def rows_for(model: inference.Model, n: int, seed: int) -> np.ndarray:
    """Request rows for any schema: codes for categorical features, plausible integers for numeric ones."""
    rng = np.random.default_rng(seed)
    if model.feature_names == tuple(name for name, _ in ADULT):
        return _synthetic_rows(n, rng)
    return np.column_stack(
        [rng.integers(0, len(c), n) if c else rng.integers(0, 100, n) for c in model.categories]
    ).astype(float)


def to_csv(x: np.ndarray) -> bytes:
    return "\n".join(",".join(f"{v:g}" for v in row) for row in x.tolist()).encode()


def latencies(call: Callable[[int], Any], n: int) -> np.ndarray:
    """Times n calls of call(i), in microseconds."""
    out = np.empty(n)
    clock = time.perf_counter
    for i in range(n):
        start = clock()
        call(i)
        out[i] = clock() - start
    return out * 1e6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, workers: int, threads: int, log_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "sagecycle.cli", "serve", model, "--port", str(port)]
    command += ["--workers", str(workers), "--threads", str(threads)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    return _await_ping(process, port, log_path)


def _await_ping(process: subprocess.Popen, port: int, log_path: Path) -> subprocess.Popen:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log_path.read_text()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                connection.close()
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not answer /ping")


class Client:
    """One keep-alive HTTP connection posting CSV to /invocations."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Content-Type": "text/csv", "Accept": "text/csv"}

    def post(self, body: bytes) -> bytes:
        self.connection.request("POST", "/invocations", body=body, headers=self.headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        return data


def _client_loop(port: int, bodies: list[bytes], seconds: float, offset: int, stride: int) -> tuple[int, int, list]:
    """One client process: keep-alive single-row posts for `seconds`; (count, errors, latency samples in s)."""
    client = Client(port)
    count = errors = 0
    samples: list[float] = []
    i = offset
    deadline = time.perf_counter() + seconds
    while (began := time.perf_counter()) < deadline:
        try:
            client.post(bodies[i % len(bodies)])
            count += 1
            if count % 10 == 0:
                samples.append(time.perf_counter() - began)
        except (RuntimeError, OSError):
            errors += 1
        i += stride
    return count, errors, samples


def sustained(port: int, bodies: list[bytes], clients: int, seconds: float) -> tuple[float, float, int]:
    """(invocations/s, p50 latency µs, errors) for `clients` client PROCESSES posting single rows for `seconds`.

    Processes, not threads: a Python client is GIL-bound, and threads of one client would cap the rate they measure.
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")
    with context.Pool(clients) as pool:
        results = pool.starmap(_client_loop, [(port, bodies, seconds, k, clients) for k in range(clients)])
    count = sum(r[0] for r in results)
    samples = [x for r in results for x in r[2]]
    p50 = float(np.median(samples)) * 1e6 if samples else float("nan")
    return count / seconds, p50, sum(r[1] for r in results)


def start_bare_server(port: int, workers: int, threads: int, log_path: Path) -> subprocess.Popen:
    """The floor: gunicorn serving bench/bare_app.py with the same workers and threads."""
    command = [
        sys.executable, "-m", "gunicorn", "bench.bare_app:app", "--bind", f"127.0.0.1:{port}", "--workers",
        str(workers), "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "75",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    return _await_ping(process, port, log_path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory or model.tar.gz (default: train an Adult-shaped one)")
    parser.add_argument("--requests", type=int, default=2000, help="single-row requests per repeat (>= 2000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bulk-rows", type=int, default=10000)
    parser.add_argument("--bulk-repeats", type=int, default=7, help="repeats of the bulk request (median)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server workers (one per CPU)")
    parser.add_argument("--threads", type=int, default=16, help="threads per server worker (serve's default)")
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[1, 2, 4], help="client processes for each sustained run"
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each sustained run")
    parser.add_argument(
        "--artifact-code", action="store_true", help="serve the artifact's own code/ rather than this tree's"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        scratch = Path(tmp)
        if args.model:
            source = args.model
            model_dir = scratch / "model"
            if Path(args.model).is_dir():
                shutil.copytree(args.model, model_dir)
            else:
                model_directory(args.model, model_dir)
        else:
            model_dir = train_adult_like(scratch / "model")
            source = "synthetic Adult-shaped"
        if not args.artifact_code or not (model_dir / SERVING_CODE_DIR).is_dir():
            shutil.rmtree(model_dir / SERVING_CODE_DIR, ignore_errors=True)
            write_serving_code(model_dir)  # what the next training job ships
        else:
            source += " (its own serving code)"
        model_path = str(model_dir)
        model = inference.model_fn(str(model_dir))
        # The floors use the better of the served configurations: one thread for a row, all cores for a batch.
        booster = model.small_booster
        trees = model.booster.num_boosted_rounds()
        n_cat = sum(c is not None for c in model.categories)

        single = rows_for(model, args.requests, seed=1)
        single_bodies = [to_csv(single[i : i + 1]) for i in range(args.requests)]
        parsed = [np.ascontiguousarray(single[i : i + 1]) for i in range(args.requests)]
        bulk = rows_for(model, args.bulk_rows, seed=2)
        bulk_body = to_csv(bulk)

        def floor_one(i: int) -> None:
            booster.inplace_predict(parsed[i], iteration_range=model.iteration_range, validate_features=False)

        def inproc_one(i: int) -> None:
            data = inference.input_fn(single_bodies[i], "text/csv")
            inference.output_fn(inference.predict_fn(data, model), "text/csv")[0]

        def inproc_bulk() -> bytes:
            return inference.output_fn(
                inference.predict_fn(inference.input_fn(bulk_body, "text/csv"), model), "text/csv"
            )[0]

        def floor_bulk() -> None:
            model.booster.inplace_predict(bulk, iteration_range=model.iteration_range, validate_features=False)

        def floor_bulk_one_thread() -> None:
            booster.inplace_predict(bulk, iteration_range=model.iteration_range, validate_features=False)

        # The answers must agree before any timing means anything.
        expected = model.booster.inplace_predict(bulk, iteration_range=model.iteration_range)
        np.testing.assert_allclose(np.array(inproc_bulk().split(b","), dtype=float), expected, rtol=1e-6)

        port = free_port()
        process = start_server(str(model_path), port, args.workers, args.threads, scratch / "server.log")
        try:
            client = Client(port)
            for i in range(200):  # warm both sides
                floor_one(i % args.requests)
                inproc_one(i % args.requests)
                client.post(single_bodies[i % args.requests])
            results: dict[str, list[tuple[float, float]]] = {"floor": [], "inproc": [], "http": []}
            bulk_times: dict[str, list[float]] = {"floor": [], "floor1": [], "inproc": [], "http": []}
            for _ in range(args.repeats):  # interleaved, so machine noise hits every stage alike
                for name, call in (
                    ("floor", floor_one),
                    ("inproc", inproc_one),
                    ("http", lambda i: client.post(single_bodies[i])),
                ):
                    t = latencies(call, args.requests)
                    results[name].append((float(np.percentile(t, 50)), float(np.percentile(t, 99))))
            for _ in range(args.bulk_repeats):
                bulk_stages: tuple[tuple[str, Callable[[], Any]], ...] = (
                    ("floor", floor_bulk),
                    ("floor1", floor_bulk_one_thread),
                    ("inproc", inproc_bulk),
                    ("http", lambda: client.post(bulk_body)),
                )
                for name, run in bulk_stages:
                    began = time.perf_counter()
                    run()
                    bulk_times[name].append(time.perf_counter() - began)
            served = {n: sustained(port, single_bodies, n, args.seconds) for n in args.clients}
        finally:
            process.terminate()
            process.wait(timeout=30)
        bare_port = free_port()
        bare = start_bare_server(bare_port, args.workers, args.threads, scratch / "bare.log")
        try:
            floor_rates = {n: sustained(bare_port, single_bodies, n, args.seconds) for n in args.clients}
        finally:
            bare.terminate()
            bare.wait(timeout=30)

    p = {k: (float(np.median([r[0] for r in v])), float(np.median([r[1] for r in v]))) for k, v in results.items()}
    rows_per_s = {k: args.bulk_rows / float(np.median(v)) for k, v in bulk_times.items()}
    rows_per_s["floor"] = max(rows_per_s["floor"], rows_per_s.pop("floor1"))
    floor50 = p["floor"][0]
    ok_inproc = p["inproc"][1] <= TARGETS["inproc_p99_us"] and p["inproc"][0] <= TARGETS["inproc_p50_ratio"] * floor50
    ok_http = p["http"][1] <= TARGETS["http_p99_us"]
    ok_bulk = rows_per_s["inproc"] >= TARGETS["bulk_fraction"] * rows_per_s["floor"]
    versus_floor = {n: served[n][0] / floor_rates[n][0] for n in args.clients}
    ok_sustained = all(versus_floor[n] >= TARGETS["sustained_fraction"] for n in args.clients if n >= 2)

    print(
        f"model: {source}; {model.n_features} features ({n_cat} categorical), {trees} trees; "
        f"xgboost {xgb.__version__}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(f"\nsingle row: {args.requests} requests x {args.repeats} repeats, median of repeats")
    print(f"{'stage':<48}{'p50 µs':>10}{'p99 µs':>10}{'p50/floor':>11}{'p99/floor':>11}  target")
    rows = [
        ("floor: inplace_predict, parsed row (1 thread)", "floor", ""),
        (
            "in process: input_fn->predict_fn->output_fn",
            "inproc",
            f"p99 <= 2000 µs, p50 <= 3x floor: {_met(ok_inproc)}",
        ),
        ("HTTP /invocations, keep-alive", "http", f"p99 <= 10000 µs: {_met(ok_http)}"),
    ]
    for label, key, target in rows:
        ratios = f"{p[key][0] / floor50:>10.2f}x{p[key][1] / p['floor'][1]:>10.2f}x"
        print(f"{label:<48}{p[key][0]:>10.0f}{p[key][1]:>10.0f}{ratios}  {target}")
    print(f"\none {args.bulk_rows:,}-row CSV request, median of {args.bulk_repeats}")
    print(f"{'stage':<48}{'ms':>10}{'rows/s':>12}{'vs floor':>10}  target")
    for label, key, target in (
        ("floor: inplace_predict, parsed (best cfg)", "floor", ""),
        ("in process: CSV in -> CSV out", "inproc", f">= 80% of floor: {_met(ok_bulk)}"),
        ("HTTP /invocations", "http", ""),
    ):
        ms = args.bulk_rows / rows_per_s[key] * 1000
        share = rows_per_s[key] / rows_per_s["floor"]
        print(f"{label:<48}{ms:>10.1f}{rows_per_s[key]:>12,.0f}{share:>9.0%}  {target}")
    print(
        f"\nsustained single-row invocations: {args.workers} worker(s) x {args.threads} threads, keep-alive client "
        f"processes, {args.seconds:g} s each"
    )
    print(f"{'clients':>8}{'sagecycle serve/s':>19}{'p50 µs':>9}{'bare floor/s':>14}{'p50 µs':>9}{'ratio':>8}  target")
    for n in args.clients:
        rate, p50_served, errors = served[n]
        floor_rate, p50_floor, _ = floor_rates[n]
        target = f">= 0.6x: {_met(versus_floor[n] >= TARGETS['sustained_fraction'])}" if n >= 2 else ""
        note = f" ({errors} errors)" if errors else ""
        figures = (
            f"{n:>8}{rate:>19,.0f}{p50_served:>9,.0f}{floor_rate:>14,.0f}{p50_floor:>9,.0f}{versus_floor[n]:>7.2f}x"
        )
        print(f"{figures}  {target}{note}")
    best = max(served[n][0] for n in args.clients)
    print(
        f"per instance ({args.workers} CPUs): {best:,.0f} invocations/s measured; with target utilisation 0.5 "
        f"the autoscaling target is {best * 0.5 * 60:,.0f} invocations per instance per minute"
    )
    all_met = ok_inproc and ok_http and ok_bulk and ok_sustained
    print(f"targets: {'all met' if all_met else 'NOT all met'}")
    return 0


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


if __name__ == "__main__":
    raise SystemExit(main())
