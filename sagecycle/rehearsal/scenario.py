"""The main job: the whole lifecycle of a model, rehearsed on a local AWS built from the synthesized templates.

Everything that decides is the real thing: the stage comes from `cdk.out` (buckets, tables, queues, topics, rules,
schedules, alarms, the functions with their synthesized environments), the glue is the real handlers from
`lambdas/`, training runs `train.py` under the container contract, serving runs `inference.py` through the
inference toolkit, events are matched by moto's EventBridge pattern engine against the synthesized rules, and
alarms are evaluated from the local CloudWatch by their synthesized definitions. Time is simulated and compressed
(`Clock`), so a 10-minute canary wait or an hourly drift check passes in moments.

The scenario, in order:
1. initial data: the stage is provisioned from cdk.out; the first deploy's model is trained through the
   contract (as `make model` does); the data goes to train/, validation/ and test/;
2. first training: start-training starts a job, it trains, promote gates it against the champion and registers it;
3. the endpoint InService, then traffic from the hold-out set;
4. a malformed upload (quarantined with its reason) and a good one (accepted; the retraining interval holds it);
5. drifted traffic (two numeric features shifted), the drift monitor's PSI, the drift alarm;
6. the alarm starts a retraining on the accumulated data, then the gate;
7. a blue/green canary, InService, more traffic;
8. a faulty candidate (new serving code that answers slowly): the canary's alarms fire, the deployment rolls back,
   the champion is unchanged and the operators are told.

Output: `out_dir` keeps timeline.json, run.json, report.html, the models, the functions' log and the endpoint logs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np

from contract import names as c
from sagecycle.rehearsal import ACCOUNT  # moto's account
from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.terminal import Progress
from sagecycle.rehearsal.timeline import Timeline

STEPS = 8


def simulated_start() -> datetime:
    """09:00 UTC tomorrow: ahead of the wall clock (S3 stamps objects with real time, and the drift monitor only
    reads capture files older than its simulated now), and 18 hours before the daily 03:00 retraining schedule."""
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    return today + timedelta(days=1)


MANUAL_SOURCE = "sagecycle.manual"  # start-training's manual trigger (what `sagecycle retrain` sends)
TRAFFIC_BATCH = 25  # rows per InvokeEndpoint request
# The faulty candidate's serving code: the same inference.py, with a regression that makes each request slow.
FAULT_SECONDS = 0.25


class ScenarioError(RuntimeError):
    """A step of the lifecycle did not happen as it should (the message says which, and where to look)."""


@dataclass
class Options:
    out_dir: Path = Path("build/demo")
    data: Path | None = None  # a raw CSV with a header; None: the embedded UCI Adult data
    target: str | None = None
    objective: str | None = None
    reduced: bool = False  # fewer rows and rounds: the CI-sized scenario
    cdk_out: Path | None = None  # a synthesized dev stage to reuse; None: synthesize one into out_dir/cdk.out
    speedup: float = 3600.0
    stage: str = "dev"


@dataclass
class Run:
    """What the report reads (run.json), filled as the scenario goes."""

    data: dict[str, Any] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    predictions: dict[str, Any] = field(default_factory=dict)
    feature_importance: dict[str, float] = field(default_factory=dict)
    drift: list[dict[str, Any]] = field(default_factory=list)
    invocations: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    unrehearsed: dict[str, int] = field(default_factory=dict)
    notices: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # for tests and the closing summary

    def to_json(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "models": self.models,
            "predictions": self.predictions,
            "feature_importance": self.feature_importance,
            "drift": self.drift,
            "drift_threshold": self.figures.get("drift_threshold"),
            "invocations": self.invocations,
            "deployments": self.deployments,
            "steps": self.steps,
            "unrehearsed": self.unrehearsed,
            "notices": self.notices,
        }


class Rehearsal:
    """The running local stage: AWS, functions, events, alarms, training and hosting on one simulated clock."""

    _champion: str  # the champion _watch_champion last saw; unset until its first look

    def __init__(self, options: Options, progress: Progress) -> None:
        self.options = options
        self.progress = progress
        self.out = options.out_dir.resolve()
        self.clock = Clock(speedup=options.speedup, start=simulated_start())
        self.timeline = Timeline(self.clock)
        self.run = Run()
        self._stack = contextlib.ExitStack()
        self.traffic: Callable[[], None] | None = None

    # --- plumbing -------------------------------------------------------------------------------------------

    def start(self, templates: dict[str, dict[str, Any]], cdk_out: Path | None, region: str) -> None:
        from sagecycle.rehearsal import LocalAws
        from sagecycle.rehearsal.alarms import AlarmEvaluator
        from sagecycle.rehearsal.events import EventBus
        from sagecycle.rehearsal.functions import Functions
        from sagecycle.rehearsal.hosting import LocalHosting
        from sagecycle.rehearsal.stage import provision_stage
        from sagecycle.rehearsal.training import LocalTraining

        self.aws = self._stack.enter_context(LocalAws(region))
        self.stage = provision_stage(self.aws, templates, account=ACCOUNT, region=region, cdk_out=cdk_out)
        self.names = self.stage.names
        self.functions = Functions(self.stage, self.out / "functions.log", self.timeline)
        self._stack.callback(self.functions.close)
        self.bus = EventBus(self.stage, self.functions, self.clock, self.timeline)
        self.alarms = AlarmEvaluator(self.stage, self.clock, self.bus, self.timeline)
        self.training = self._stack.enter_context(
            LocalTraining(self.aws, self.out / "training", self.clock, self.timeline, emit=self.bus.put)
        )
        self.hosting = self._stack.enter_context(
            LocalHosting(self.aws, self.out / "endpoints", self.clock, self.timeline, emit=self.bus.put)
        )
        self.run.unrehearsed = dict(self.stage.unrehearsed)
        self.s3 = self.aws.client("s3")

    def close(self) -> None:
        self._stack.close()

    def runtime(self) -> Any:
        import boto3

        return boto3.client(
            "sagemaker-runtime",
            endpoint_url=self.hosting.runtime_url,
            region_name=self.aws.region,
            aws_access_key_id="rehearsal",
            aws_secret_access_key="rehearsal",
        )

    def tick(self, minutes: int = 1) -> None:
        """Lets `minutes` of simulated time pass, minute by minute, doing what AWS would do meanwhile."""
        for _ in range(minutes):
            if self.traffic is not None:
                self.traffic()
            self.hosting.flush()
            self.alarms.evaluate()
            self.training.reconcile()
            self.hosting.reconcile()
            self.bus.run_schedules(self.clock.now())
            self.bus.flush()
            self._watch_champion()
            self.progress.tick()
            self.clock.sleep(60)

    @contextlib.contextmanager
    def background(self, interval: float = 0.1) -> Iterator[None]:
        """Keeps the stage running on its own while a `with` block lets something else use it (the notebook):
        new objects under incoming/ are announced as S3 does to EventBridge, and time passes minute by minute."""
        import threading

        stop = threading.Event()
        failures: list[BaseException] = []
        announced: set[tuple[str, str]] = set()

        def loop() -> None:
            while not stop.is_set():
                try:
                    self._announce(announced)
                    self.tick()
                except BaseException as e:  # reported when the block ends
                    failures.append(e)
                    return
                stop.wait(interval)

        thread = threading.Thread(target=loop, name="rehearsal-stage", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=60)
        if failures:
            raise ScenarioError(f"the local stage stopped: {type(failures[0]).__name__}: {failures[0]}")

    def _announce(self, announced: set[tuple[str, str]]) -> None:
        """S3 -> EventBridge for objects someone else put under incoming/ (another process, e.g. a notebook)."""
        listing = self.s3.list_object_versions(Bucket=self.names.data_bucket, Prefix=c.PREFIX_INCOMING)
        for version in listing.get("Versions", []):
            key = (version["Key"], str(version.get("VersionId")))
            if key not in announced:
                announced.add(key)
                self.timeline.record("s3.put", f"s3://{self.names.data_bucket}/{key[0]}", key=key[0])
                self.bus.object_created(self.names.data_bucket, key[0], version_id=version.get("VersionId"))

    def _watch_champion(self) -> None:
        """Records each move of the champion parameter (promote moves it only once a deployment is InService)."""
        now = self.champion()
        if getattr(self, "_champion", None) not in (None, now):
            self.timeline.record("champion.changed", f"champion -> {now}", champion=now, previous=self._champion)
        self._champion = now

    def until(self, done: Callable[[], bool], *, limit_minutes: int, what: str) -> int:
        """Ticks until `done()`; raises when it does not happen within `limit_minutes` simulated minutes."""
        for minute in range(limit_minutes):
            if done():
                return minute
            self.tick()
        if done():
            return limit_minutes
        raise ScenarioError(f"{what} did not happen within {limit_minutes} simulated minutes")

    def endpoint(self) -> dict[str, Any]:
        return self.aws.client("sagemaker").describe_endpoint(EndpointName=self.names.endpoint_name)

    def champion(self) -> str:
        return self.aws.client("ssm").get_parameter(Name=self.names.champion_parameter)["Parameter"]["Value"]

    def put(self, key: str, body: bytes) -> None:
        answer = self.s3.put_object(Bucket=self.names.data_bucket, Key=key, Body=body)
        self.timeline.record("s3.put", f"s3://{self.names.data_bucket}/{key}", key=key, bytes=len(body))
        self.bus.object_created(self.names.data_bucket, key, version_id=answer.get("VersionId"))

    def jobs(self) -> list[dict[str, Any]]:
        found = self.aws.client("sagemaker").list_training_jobs(SortBy="CreationTime", SortOrder="Ascending")
        return found["TrainingJobSummaries"]

    def training_lock(self) -> dict[str, Any] | None:
        """The training lock item of the runs table (see lambdas/shared/runs.py), or None when nobody holds it."""
        key = {"pk": {"S": "lock"}, "sk": {"S": "training"}}
        item = self.aws.client("dynamodb").get_item(TableName=self.names.runs_table, Key=key).get("Item")
        if item is None:
            return None
        expires = float(item.get("expires_at", {}).get("N", "inf"))
        return item if expires > self.clock.now().timestamp() else None


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


# ------------------------------------------------------------------------------------------------- scenario


def run(options: Options, progress: Progress | None = None) -> Run:
    """The whole scenario; returns what it recorded (run.json), having written everything under out_dir."""
    progress = progress or Progress(STEPS)
    options = dataclasses.replace(options, out_dir=options.out_dir.resolve())
    out = options.out_dir
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rehearsal = Rehearsal(options, progress)
    try:
        _scenario(rehearsal)
    finally:
        rehearsal.timeline.dump(out / "timeline.json")
        rehearsal.run.steps = [
            {"n": s.n, "title": s.title, "seconds": round(s.seconds, 2), "figure": s.figure} for s in progress.steps
        ]
        (out / "run.json").write_text(json.dumps(rehearsal.run.to_json(), indent=1, default=str), encoding="utf-8")
        rehearsal.close()
    from sagecycle.rehearsal.report import build_report

    build_report(out)
    return rehearsal.run


@dataclass
class _Quiet:
    """A step handle that keeps its notes (the notebook run and other callers outside the demo's terminal)."""

    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def figure(self, text: str) -> None:
        self.notes.append(text)


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


def open_stage(options: Options) -> Rehearsal:
    """Step 1 alone, then the endpoint InService on the first model: a running local stage for other clients
    (the quickstart notebook's test). The caller closes it."""
    import io

    options = dataclasses.replace(options, out_dir=options.out_dir.resolve())
    if options.out_dir.exists():
        shutil.rmtree(options.out_dir)
    options.out_dir.mkdir(parents=True)
    r = Rehearsal(options, Progress(STEPS, stream=io.StringIO(), force_plain=True))
    try:
        initial_stage(r, _Quiet(), {"num_round": "60", "early_stopping_rounds": "10"} if options.reduced else {})
        r.hosting.reconcile()
        r.until(lambda: _settled(r), limit_minutes=60, what="the endpoint InService")
    except BaseException:
        r.close()
        raise
    return r


def _scenario(r: Rehearsal) -> None:

    o, out, run_ = r.options, r.out, r.run
    hps = {"num_round": "60", "early_stopping_rounds": "10"} if o.reduced else {}

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
        job = r.jobs()[-1]["TrainingJobName"]
        first_eval = _job_evaluation(r, job, out / "models" / job)
        run_.models.append({"name": job, "job": job, "evaluation": first_eval, "champion": False, "role": "retrained"})
        decision = _last_decision(r)
        step.note(f"{job}: {_primary(first_eval)}; promote: {decision}")
        step.figure(f"{_primary(first_eval)}; {decision}")

    # 3 -----------------------------------------------------------------------------------------------------
    with r.progress.step(3, "the endpoint InService, then traffic from the hold-out set") as step:
        r.timeline.step = 3
        r.until(lambda: _settled(r), limit_minutes=120, what="the endpoint InService")
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
        job = r.jobs()[-1]["TrainingJobName"]
        retrained = _job_evaluation(r, job, out / "models" / job)
        run_.models.append({"name": job, "job": job, "evaluation": retrained, "champion": False, "role": "retrained"})
        decision = _last_decision(r)
        step.figure(f"{_primary(retrained)}; {decision}")

    # 7 -----------------------------------------------------------------------------------------------------
    with r.progress.step(7, "a blue/green canary, InService, more traffic") as step:
        r.timeline.step = 7
        r.until(lambda: _settled(r), limit_minutes=240, what="the deployment of the retrained model")
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
        r.until(lambda: _settled(r), limit_minutes=240, what="the faulty candidate's deployment to end")
        r.tick(10)
        faulty_job = r.jobs()[-1]["TrainingJobName"]
        run_.models.append(
            {
                "name": faulty_job,
                "job": faulty_job,
                "evaluation": _job_evaluation(r, faulty_job, out / "models" / faulty_job),
                "champion": False,
                "role": "faulty",
            }
        )
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


def _settled(r: Rehearsal) -> bool:
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
