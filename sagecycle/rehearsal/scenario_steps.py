"""The scenario's eight steps, in order, and what they read back from the local stage.

`initial_stage` is step 1 (the data, the first model, the stage provisioned from cdk.out, the first upload); `play`
runs all eight on a started `Rehearsal` and fills its `Run`. The helpers below them read the local AWS back
(training jobs, promote's decisions, the endpoint, the drift monitor's records) and send the traffic.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any, cast

import numpy as np

from contract import names as c
from sagecycle.rehearsal import ACCOUNT  # moto's account
from sagecycle.rehearsal.local_stage import Options, Rehearsal, ScenarioError

MANUAL_SOURCE = "sagecycle.manual"  # start-training's manual trigger (what `sagecycle retrain` sends)
TRAFFIC_BATCH = 25  # rows per InvokeEndpoint request
# The faulty candidate's serving code: the same inference.py, with a regression that makes each request slow.
FAULT_SECONDS = 0.25


# ------------------------------------------------------------------------------------------------- helpers


def _feature_rows(path: Path) -> tuple[np.ndarray, list[str]]:
    """(labels, feature lines) of a prepared label-first CSV."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    labels = np.array([float(line.split(",", 1)[0]) for line in lines])
    return labels, [line.split(",", 1)[1] for line in lines]


def _shift(lines: list[str], columns: list[int], scale: float) -> list[str]:
    """Drifted copies of feature lines: the given numeric columns multiplied (and nudged) by `scale`."""
    out = []
    for line in lines:
        cells = line.split(",")
        for j in columns:
            if cells[j]:
                cells[j] = f"{float(cells[j]) * scale + 3:g}"
        out.append(",".join(cells))
    return out


def _faulty_sourcedir(out: Path) -> Path:
    """The training source tarball with a serving regression: inference.py's predict_fn sleeps on each request."""
    from stacks.packaging import SCRIPTS_DIR, build_sourcedir

    scripts = out / "faulty-code"
    shutil.rmtree(scripts, ignore_errors=True)
    shutil.copytree(SCRIPTS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    inference = scripts / "inference.py"
    text = inference.read_text(encoding="utf-8")
    marker = "    features = to_features(input_data, model)\n"
    if marker not in text:
        raise ScenarioError("cannot place the faulty candidate's regression in inference.py")
    regression = f"    import time as _time\n\n    _time.sleep({FAULT_SECONDS})  # the regression under test\n"
    inference.write_text(text.replace(marker, regression + marker, 1), encoding="utf-8")
    return build_sourcedir(out / "faulty-upload", scripts)


def _model_files(tar_bytes: bytes, dest: Path) -> dict[str, Any]:
    dest.mkdir(parents=True, exist_ok=True)
    import io

    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        tar.extractall(dest, filter="data")
    return json.loads((dest / "evaluation.json").read_text(encoding="utf-8"))


def _primary(evaluation: dict[str, Any]) -> str:
    p = evaluation["primary_metric"]
    return f"{p['split']} {p['name']} {p['value']:.4f}"


def initial_stage(r: Rehearsal, step: Any, hps: dict[str, str]) -> tuple[Any, dict[str, Any], Any, list[bytes]]:
    """Step 1: the data prepared, the first model trained through the contract, the local AWS provisioned from
    cdk.out with that model as the first deploy's, and the first upload. Returns (prepared, schema, first model's
    training result, the train rows kept back for a later upload)."""
    from sagecycle.local_training import run_local_training
    from training_scripts.prepare import prepare

    o, out, run_ = r.options, r.out, r.run
    prepared = prepare(o.data, output_dir=out / "data", target=o.target, objective=o.objective)
    schema = json.loads(prepared.schema_path.read_text(encoding="utf-8"))
    run_.data = {
        "target": schema["label"]["name"],
        "objective": schema["objective"],
        "classes": schema["label"].get("classes"),
        "sizes": dict(prepared.sizes),
        "source": str(o.data) if o.data else "embedded UCI Adult (CC BY 4.0)",
    }
    train_lines = prepared.files["train"][0].read_bytes().splitlines(keepends=True)
    if o.reduced:
        train_lines = train_lines[:4000]
    first, later = train_lines[: len(train_lines) * 6 // 10], train_lines[len(train_lines) * 6 // 10 :]
    seed_dir = out / "data" / "first-upload"
    (seed_dir / "train").mkdir(parents=True)
    (seed_dir / "train" / "train.csv").write_bytes(b"".join(first))
    shutil.copy(prepared.schema_path, seed_dir / "train" / "schema.json")
    for split in ("validation", "test"):
        shutil.copytree(prepared.channel(split), seed_dir / split)
    baseline_tar = out / "models" / "baseline" / "model.tar.gz"
    baseline = run_local_training(
        {split: seed_dir / split for split in ("train", "validation", "test")},
        hyperparameters=hps,
        work_dir=out / "baseline-training",
        output_tar=baseline_tar,
    )
    step.note(f"first model (as `make model`): {_primary(baseline.evaluation)}")
    templates, cdk_out = _templates(r, baseline_tar)
    r.start(templates, cdk_out, templates_region(templates))
    _set_training(r, hps, schema["objective"])
    _ensure_baseline(r, baseline_tar)
    for split in ("train", "validation", "test"):
        for path in sorted((seed_dir / split).iterdir()):
            r.put(f"{split}/{path.name}", path.read_bytes())
    r.put(f"{c.PREFIX_BASELINE}schema.json", prepared.schema_path.read_bytes())
    r.bus.flush()
    run_.models.append(
        {
            "name": "baseline",
            "job": "make model",
            "evaluation": baseline.evaluation,
            "champion": True,
            "role": "initial",
        }
    )
    rehearsed = sum(r.stage.rehearsed.values())
    step.note(f"local AWS at {r.aws.url}: {rehearsed} resources from {len(templates)} templates")
    step.figure(f"{sum(prepared.sizes.values()):,} rows; {rehearsed} resources rehearsed")
    return prepared, schema, baseline, later


def hyperparameters(options: Options) -> dict[str, str]:
    """The training's hyperparameters beyond the stage's: fewer rounds for the CI-sized scenario."""
    return {"num_round": "60", "early_stopping_rounds": "10"} if options.reduced else {}


def play(r: Rehearsal) -> None:
    """Steps 1 to 8 on a rehearsal that has not started yet; the run's record is `r.run`."""

    o, out, run_ = r.options, r.out, r.run
    hps = hyperparameters(o)

    # 1 -----------------------------------------------------------------------------------------------------
    with r.progress.step(1, "initial data: a local AWS from cdk.out, the first model, the first upload") as step:
        r.timeline.step = 1
        prepared, schema, baseline, later = initial_stage(r, step, hps)

    # 2 -----------------------------------------------------------------------------------------------------
    with r.progress.step(2, "first training: start-training, the job, the gate, the registry") as step:
        r.timeline.step = 2
        r.hosting.reconcile()  # the Endpoint stack's endpoint comes up on the first model
        r.functions.call("start_training", {"source": MANUAL_SOURCE, "reason": "first training on the initial data"})
        jobs = r.until(lambda: _finished_jobs(r) >= 1, limit_minutes=60, what="the first training job")
        del jobs
        r.until(lambda: _decisions(r) >= 1, limit_minutes=30, what="promote's decision on the first job")
        job, first_eval = _record_latest_job(r, "retrained")
        decision = _last_decision(r)
        step.note(f"{job}: {_primary(first_eval)}; promote: {decision}")
        step.figure(f"{_primary(first_eval)}; {decision}")

    # 3 -----------------------------------------------------------------------------------------------------
    with r.progress.step(3, "the endpoint InService, then traffic from the hold-out set") as step:
        r.timeline.step = 3
        r.until(lambda: settled(r), limit_minutes=120, what="the endpoint InService")
        labels, lines = _feature_rows(prepared.files["test"][0])
        if o.reduced:
            labels, lines = labels[:1000], lines[:1000]
        runtime = r.runtime()

        holdout = _traffic(runtime, r.names.endpoint_name, lines)
        r.traffic = holdout
        r.tick(30)
        scores = _score(runtime, r.names.endpoint_name, lines)
        champion_eval = _champion_evaluation(r, out / "models" / "champion-now")
        threshold = (champion_eval.get("threshold") or {}).get("value", 0.5)
        run_.predictions = {
            "model": r.champion(),
            "y_true": labels.tolist(),
            "y_score": scores.tolist(),
            "threshold": threshold,
        }
        if run_.data["objective"] != "binary:logistic":
            run_.predictions["threshold"] = None
        if run_.data["objective"] == "binary:logistic":
            accuracy = float(((scores >= threshold).astype(int) == labels).mean())
            step.figure(f"{len(lines):,} hold-out rows scored: accuracy {accuracy:.4f} at cutoff {threshold:.2f}")
            run_.figures["served_accuracy"] = accuracy
        else:
            step.figure(f"{len(lines):,} hold-out rows scored")
        step.note(f"endpoint {r.names.endpoint_name} InService on {r.champion()}")

    # 4 -----------------------------------------------------------------------------------------------------
    with r.progress.step(4, "new data: a malformed upload quarantined, a good one accepted") as step:
        r.timeline.step = 4
        bad = b"1,39,State-gov,77516\n0,50,Self-emp,83311,Bachelors,13\n"
        r.put("incoming/broken.csv", bad)
        r.put("incoming/new-rows.csv", b"".join(later))
        r.until(lambda: _keys(r, c.PREFIX_INCOMING) == [], limit_minutes=30, what="ingest of the uploads")
        quarantined = _keys(r, c.PREFIX_QUARANTINE)
        run_.figures["quarantined"] = {
            k: r.s3.get_object(Bucket=r.names.data_bucket, Key=k)["Body"].read() for k in quarantined
        }
        run_.figures["bad_bytes"] = bad
        sidecar = next((k for k in quarantined if k.endswith(".report.json")), None)
        if sidecar:
            report = json.loads(r.s3.get_object(Bucket=r.names.data_bucket, Key=sidecar)["Body"].read())
            problem = report["problems"][0]
            step.note(
                f"quarantined: {sidecar.removesuffix('.report.json')}: row {problem['row']}: {problem['message']}"
            )
        step.figure(
            f"{len([k for k in quarantined if not k.endswith('.json')])} quarantined, {len(later):,} rows accepted"
        )

    # 5 -----------------------------------------------------------------------------------------------------
    with r.progress.step(5, "drifted traffic, the drift metric, the drift alarm") as step:
        r.timeline.step = 5
        drift_columns = _drift_columns(r, schema, baseline.model_dir)
        drifted = _shift(lines, drift_columns, 1.25)

        r.traffic = _traffic(runtime, r.names.endpoint_name, drifted)
        names = [schema["features"][j]["name"] for j in drift_columns]
        step.note(f"shifting {', '.join(names)} (x1.25 + 3) in the live traffic")
        r.until(lambda: _alarm_fired(r, "drift"), limit_minutes=6 * 60, what="the drift alarm")
        run_.drift = _drift_records(r)
        worst = max((d["max_psi"] for d in run_.drift), default=0.0)
        step.figure(f"max PSI {worst:.2f} ({', '.join(names)}); drift alarm in ALARM")

    # 6 -----------------------------------------------------------------------------------------------------
    with r.progress.step(6, "retraining on the accumulated data, then the gate") as step:
        r.timeline.step = 6
        r.traffic = holdout
        before = _finished_jobs(r)
        r.until(lambda: _finished_jobs(r) > before, limit_minutes=180, what="the retraining the drift alarm started")
        r.until(lambda: _decisions(r) >= 2, limit_minutes=30, what="promote's decision on the retraining")
        _, retrained = _record_latest_job(r, "retrained")
        decision = _last_decision(r)
        step.figure(f"{_primary(retrained)}; {decision}")

    # 7 -----------------------------------------------------------------------------------------------------
    with r.progress.step(7, "a blue/green canary, InService, more traffic") as step:
        r.timeline.step = 7
        r.until(lambda: settled(r), limit_minutes=240, what="the deployment of the retrained model")
        r.tick(20)
        outcome = r.hosting.deployments[-1]["outcome"] if r.hosting.deployments else "none"
        step.figure(f"deployment {outcome}; champion {_short(r.champion())}")

    # 8 -----------------------------------------------------------------------------------------------------
    with r.progress.step(8, "a faulty candidate: the canary's alarms, auto-rollback, champion unchanged") as step:
        r.timeline.step = 8
        champion_before = r.champion()
        tarball = _faulty_sourcedir(out)
        _deploy_code(r, tarball)
        step.note(
            f"deployed new serving code ({tarball.name}) with a regression: +{FAULT_SECONDS * 1000:.0f} ms per request"
        )
        r.clock.advance(61 * 60)  # past the retraining interval
        r.functions.call("start_training", {"source": MANUAL_SOURCE, "reason": "new serving code"})
        before = len(r.hosting.deployments)
        r.until(
            lambda: len(r.hosting.deployments) > before, limit_minutes=180, what="the faulty candidate's deployment"
        )
        r.until(lambda: settled(r), limit_minutes=240, what="the faulty candidate's deployment to end")
        r.tick(10)
        faulty_job, _ = _record_latest_job(r, "faulty")
        outcome = r.hosting.deployments[-1]["outcome"]
        run_.figures.update(
            champion_before_faulty=champion_before, champion_after_faulty=r.champion(), faulty_job=faulty_job
        )
        step.figure(f"deployment {outcome}; champion {'unchanged' if r.champion() == champion_before else 'MOVED'}")

    # the record --------------------------------------------------------------------------------------------
    r.timeline.step = None
    run_.invocations = [
        {k: v for k, v in i.items() if k in {"t", "variant", "model", "status", "latency_ms", "config", "endpoint"}}
        for i in r.hosting.invocations
    ]
    run_.deployments = list(r.hosting.deployments)
    r.bus.collect_notices()
    run_.notices = list(r.bus.inbox)
    champion_url = r.champion()
    for model in run_.models:
        model["champion"] = model["job"] != "make model" and champion_url.find(f"/{model['job']}/") >= 0
    if not any(m["champion"] for m in run_.models):
        run_.models[0]["champion"] = True
    run_.feature_importance = _importance(baseline.model_dir, schema)
    run_.figures.update(
        jobs=[j["TrainingJobName"] for j in r.jobs()],
        training_lock=r.training_lock(),
        handlers={i["function"]: r.stage.functions[i["function"]].handler for i in r.functions.invocations},
        champion=champion_url,
    )


# --------------------------------------------------------------------------------------- scenario helpers


def templates_region(templates: dict[str, dict[str, Any]]) -> str:
    return "us-east-1"


def _templates(r: Rehearsal, baseline_model: Path) -> tuple[dict[str, dict[str, Any]], Path]:
    from sagecycle.rehearsal.stage import load_templates

    if r.options.cdk_out is not None:
        return load_templates(r.options.cdk_out), r.options.cdk_out
    from sagecycle.demo import synthesize

    cdk_out = r.out / "cdk.out"
    synthesize(r.options.stage, cdk_out, baseline_model=baseline_model)
    return load_templates(cdk_out), cdk_out


def _ensure_baseline(r: Rehearsal, model_tar: Path) -> None:
    """This run's first model at the champion parameter's URL: what the Model stack's deployment copies there when
    the stage is synthesized with it (a reused cdk.out may carry another run's model, or none)."""
    bucket, _, key = r.champion().removeprefix("s3://").partition("/")
    r.s3.put_object(Bucket=bucket, Key=key, Body=model_tar.read_bytes())


def _set_training(r: Rehearsal, hps: dict[str, str], objective: str) -> None:
    """What a stage synthesized for this data would deploy, in the functions' training settings: the data's
    objective (your own data may be multiclass or regression) and, for the CI-sized scenario, fewer rounds."""
    from lambdas.shared.runtime import reset_caches

    for function in r.stage.functions.values():
        raw = function.environment.get(c.ENV_TRAINING_SETTINGS)
        if raw:
            settings = json.loads(raw)
            settings["objective"] = objective
            settings.setdefault("hyperparameters", {}).update(hps)
            function.environment[c.ENV_TRAINING_SETTINGS] = json.dumps(settings)
    reset_caches()


def _deploy_code(r: Rehearsal, tarball: Path) -> None:
    """A code change shipped: the new source tarball uploaded, start-training's settings pointing at it."""
    from lambdas.shared.runtime import reset_caches

    function = r.stage.functions["start_training"]
    settings = json.loads(function.environment[c.ENV_TRAINING_SETTINGS])
    bucket, _, old_key = settings["source_dir_s3_uri"].removeprefix("s3://").partition("/")
    key = f"{old_key.rsplit('/', 1)[0]}/{tarball.name}"
    r.s3.put_object(Bucket=bucket, Key=key, Body=tarball.read_bytes())
    settings["source_dir_s3_uri"] = f"s3://{bucket}/{key}"
    for f in r.stage.functions.values():
        if c.ENV_TRAINING_SETTINGS in f.environment:
            merged = json.loads(f.environment[c.ENV_TRAINING_SETTINGS])
            merged["source_dir_s3_uri"] = settings["source_dir_s3_uri"]
            f.environment[c.ENV_TRAINING_SETTINGS] = json.dumps(merged)
    reset_caches()
    r.timeline.record("code.deployed", f"serving code {tarball.name}", source_dir=settings["source_dir_s3_uri"])


def _finished_jobs(r: Rehearsal) -> int:
    return sum(j["TrainingJobStatus"] in {"Completed", "Failed", "Stopped"} for j in r.jobs())


def _decisions(r: Rehearsal) -> int:
    """Model packages registered: promote registers every candidate it judges, approved or rejected."""
    sagemaker = r.aws.client("sagemaker")
    return len(
        sagemaker.list_model_packages(ModelPackageGroupName=r.names.model_package_group)["ModelPackageSummaryList"]
    )


def _last_decision(r: Rehearsal) -> str:
    sagemaker = r.aws.client("sagemaker")
    packages = sagemaker.list_model_packages(ModelPackageGroupName=r.names.model_package_group)
    summaries = sorted(packages["ModelPackageSummaryList"], key=lambda p: p["CreationTime"])
    if not summaries:
        return "not registered"
    last = summaries[-1]
    return f"package {last['ModelPackageArn'].rsplit('/', 1)[-1]} {last.get('ModelApprovalStatus', '?')}"


def settled(r: Rehearsal) -> bool:
    status = r.endpoint()["EndpointStatus"]
    return status == "InService" and not any(d["outcome"] == "in_progress" for d in r.hosting.deployments)


def _keys(r: Rehearsal, prefix: str) -> list[str]:
    found = r.s3.list_objects_v2(Bucket=r.names.data_bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in found)


def _job_evaluation(r: Rehearsal, job: str, dest: Path) -> dict[str, Any]:
    described = r.aws.client("sagemaker").describe_training_job(TrainingJobName=job)
    url = described.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if described["TrainingJobStatus"] != "Completed" or not url:
        return {"status": described["TrainingJobStatus"], "failure": described.get("FailureReason")}
    bucket, _, key = url.removeprefix("s3://").partition("/")
    data = r.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    (dest.parent).mkdir(parents=True, exist_ok=True)
    (dest.with_suffix(".tar.gz")).write_bytes(data)
    return _model_files(data, dest)


def _record_latest_job(r: Rehearsal, role: str) -> tuple[str, dict[str, Any]]:
    """The latest training job and its evaluation, kept under models/ and recorded as a model of the run."""
    job = r.jobs()[-1]["TrainingJobName"]
    evaluation = _job_evaluation(r, job, r.out / "models" / job)
    r.run.models.append({"name": job, "job": job, "evaluation": evaluation, "champion": False, "role": role})
    return job, evaluation


def _champion_evaluation(r: Rehearsal, dest: Path) -> dict[str, Any]:
    bucket, _, key = r.champion().removeprefix("s3://").partition("/")
    return _model_files(r.s3.get_object(Bucket=bucket, Key=key)["Body"].read(), dest)


def _traffic(runtime: Any, endpoint: str, lines: list[str], requests_per_minute: int = 2) -> Callable[[], None]:
    """A minute's traffic: the next `requests_per_minute` batches of `lines` through InvokeEndpoint, round and round."""
    cursor = {"i": 0}

    def send() -> None:
        for _ in range(requests_per_minute):
            start = cursor["i"] % len(lines)
            batch = lines[start : start + TRAFFIC_BATCH]
            cursor["i"] += TRAFFIC_BATCH
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body="\n".join(batch).encode())

    return send


def _score(runtime: Any, endpoint: str, lines: list[str]) -> np.ndarray:
    """Scores feature lines through InvokeEndpoint: one value per row, or one probability vector (multiclass)."""
    scores: list[Any] = []
    for start in range(0, len(lines), 500):
        batch = lines[start : start + 500]
        body = "\n".join(batch).encode()
        answer = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="text/csv", Body=body)
        rows = [r for r in answer["Body"].read().decode().split("\n") if r.strip()]
        if len(rows) == len(batch) and len(batch) > 1:  # one line per row: vectors (multiclass)
            parsed = [[float(v) for v in r.split(",")] for r in rows]
            scores.extend(p[0] if len(p) == 1 else p for p in parsed)
        else:  # one comma-joined line of values (binary, regression)
            scores.extend(float(v) for v in ",".join(rows).split(","))
    return np.array(scores)


def _drift_columns(r: Rehearsal, schema: dict[str, Any], model_dir: Path) -> list[int]:
    """The two most important numeric features (by the first model's gain): where drift is injected."""
    importance = _importance(model_dir, schema)
    numeric = [j for j, f in enumerate(schema["features"]) if f.get("type") != "categorical"]
    wanted = {"age", "hours-per-week"}  # on the Adult data: the shift the scenario is written for
    if wanted <= {f["name"] for f in schema["features"]}:
        return [j for j, f in enumerate(schema["features"]) if f["name"] in wanted]
    ranked = sorted(numeric, key=lambda j: -importance.get(schema["features"][j]["name"], 0.0))
    return ranked[:2]


def _importance(model_dir: Path, schema: dict[str, Any]) -> dict[str, float]:
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray((model_dir / "xgboost-model").read_bytes()))
    gains = cast(dict[str, float], booster.get_score(importance_type="gain"))  # a tree booster: one gain each
    names = [f["name"] for f in schema["features"]]
    return {name: float(gains.get(name, gains.get(f"f{j}", 0.0))) for j, name in enumerate(names)}


def _alarm_fired(r: Rehearsal, word: str) -> bool:
    return any(word in t["alarm"].lower() and t["new"] == "ALARM" for t in r.alarms.transitions)


def _drift_records(r: Rehearsal) -> list[dict[str, Any]]:
    from moto.backends import get_backend
    from moto.cloudwatch.models import MetricDatum

    backend = get_backend("cloudwatch")[ACCOUNT][r.aws.region]
    by_time: dict[str, dict[str, Any]] = {}
    for datum in list(backend.metric_data):
        if datum.namespace != c.METRIC_NAMESPACE or datum.name not in {c.METRIC_FEATURE_PSI, c.METRIC_MAX_PSI}:
            continue
        t = datum.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entry = by_time.setdefault(t, {"t": t, "feature_psi": {}, "max_psi": 0.0, "alarm": False})
        dims = {d.name: d.value for d in datum.dimensions}
        single = cast(MetricDatum, datum)  # the drift function puts single values, not statistics
        if datum.name == c.METRIC_MAX_PSI:
            entry["max_psi"] = float(single.value)
        elif "Feature" in dims:
            entry["feature_psi"][dims["Feature"]] = float(single.value)
    threshold = _drift_threshold(r)
    for entry in by_time.values():
        entry["alarm"] = threshold is not None and entry["max_psi"] > threshold
        entry["threshold"] = threshold
    r.run.figures["drift_threshold"] = threshold
    return [by_time[t] for t in sorted(by_time)]


def _drift_threshold(r: Rehearsal) -> float | None:
    for alarm in r.stage.alarms:
        if alarm.definition.get("MetricName") == c.METRIC_MAX_PSI:
            return float(alarm.definition["Threshold"])
    return None


def _short(url: str) -> str:
    parts = url.split("/")
    return parts[-3] if len(parts) >= 3 and parts[-1] == "model.tar.gz" and parts[-2] == "output" else url


@contextlib.contextmanager
def _timed() -> Iterator[Callable[[], float]]:
    started = time.perf_counter()
    yield lambda: time.perf_counter() - started
