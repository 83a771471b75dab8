"""The running local stage of a rehearsal: AWS, functions, events, alarms, training and hosting on one simulated
clock (`Rehearsal`), with what the scenario is asked to do (`Options`) and what it records for the report (`Run`).

`Rehearsal.tick` lets simulated minutes pass doing what AWS would do meanwhile (traffic, alarms, training and
hosting reconciled, schedules, deliveries); `until` ticks until something happens or fails with `ScenarioError`;
`background` keeps the stage running while another client (the notebook) uses it; `keep_running` keeps it
running after the story, in real time, for the operator commands of another shell (`sagecycle demo --keep-running`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
        self._stack.enter_context(self.functions.serving_invokes())  # Invoke on the local AWS runs them here
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
            self._minute()
            self.clock.sleep(60)

    def _minute(self) -> None:
        """What AWS does in a minute: traffic, capture, alarms, training and hosting, schedules, deliveries."""
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

    def keep_running(self, stop: threading.Event) -> None:
        """After the story, until `stop` is set: the stage stays up for clients of other processes (the operator
        commands, `--endpoint-url self.aws.url`), with batch transform jobs run as they are created. Its clock runs
        in real time from where the story left it: each real minute is one simulated minute (schedules fire, alarms
        are evaluated, jobs and deployments progress, queued invocations run), and objects that another process puts
        under incoming/ are announced as S3 announces them. The story's synthetic traffic stops."""
        from sagecycle.rehearsal.transform import LocalTransform

        self.traffic = None
        announced = set(self._incoming_versions())  # the story's uploads were announced already
        with LocalTransform(self.aws, self.out / "transform", self.clock, self.timeline, self.bus.put, background=True):
            last = time.monotonic()
            while not stop.is_set():
                self._announce(announced)
                self._minute()
                while not stop.wait(1.0) and time.monotonic() - last < 60:
                    pass
                now = time.monotonic()
                self.clock.advance(now - last)
                last = now

    @contextlib.contextmanager
    def background(self, interval: float = 0.1) -> Iterator[None]:
        """Keeps the stage running on its own while a `with` block lets something else use it (the notebook):
        new objects under incoming/ are announced as S3 does to EventBridge, and time passes minute by minute."""
        stop = threading.Event()
        failures: list[BaseException] = []
        announced: set[tuple[str, str | None]] = set()

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

    def _incoming_versions(self) -> list[tuple[str, str | None]]:
        """(key, version id) of every object version under incoming/, in S3's listing order."""
        listing = self.s3.list_object_versions(Bucket=self.names.data_bucket, Prefix=c.PREFIX_INCOMING)
        return [(version["Key"], version.get("VersionId")) for version in listing.get("Versions", [])]

    def _announce(self, announced: set[tuple[str, str | None]]) -> None:
        """S3 -> EventBridge for objects someone else put under incoming/ (another process, e.g. a notebook)."""
        for key in self._incoming_versions():
            if key not in announced:
                announced.add(key)
                self.timeline.record("s3.put", f"s3://{self.names.data_bucket}/{key[0]}", key=key[0])
                self.bus.object_created(self.names.data_bucket, key[0], version_id=key[1])

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
