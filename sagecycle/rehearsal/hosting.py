"""Local SageMaker hosting: endpoints whose variants are real serving processes, blue/green on a compressed clock.

`LocalHosting` registers itself with the moto extensions (`moto_sagemaker`), so CreateEndpoint and UpdateEndpoint
made through the local AWS leave the endpoint `Creating` / `Updating` and hand the work over here. `reconcile()`
(the scenario's loop calls it) does what SageMaker would have done by now, on the simulated clock:

- Each production variant of an endpoint config becomes one serving process, started the way the container
  starts a model: `python -m sagecycle.cli serve <model.tar.gz downloaded from the model's ModelDataUrl> --env K=V
  (the model's container Environment) --workers 1 --port <free>`. It must answer `GET /ping` in time, or the
  endpoint goes `Failed` (CreateEndpoint) or the update is rolled back (UpdateEndpoint), with SageMaker's failure
  reason ("... did not pass the ping health check ...").
- UpdateEndpoint follows the request's DeploymentConfig (BlueGreenUpdatePolicy): the green fleet is launched beside
  the blue one; CANARY gives it CanarySize of the traffic and bakes WaitIntervalInSeconds, then the rest; LINEAR
  shifts LinearStepSize per WaitIntervalInSeconds; ALL_AT_ONCE shifts everything at once. After the full shift it
  bakes TerminationWaitInSeconds and then stops the blue fleet. During every baking period the
  AutoRollbackConfiguration alarms are read from the local CloudWatch (whoever evaluates them sets their state):
  one in ALARM, or MaximumExecutionTimeoutInSeconds passing, rolls the traffic back to the blue fleet and stops the
  green one; DescribeEndpoint then says InService on the old config with the FailureReason. Without a
  DeploymentConfig the update is all at once with no baking, as SageMaker's default.
- An endpoint already InService when the hosting registered (made by plain moto before it) is adopted: the first
  `reconcile()` starts its fleet, so every InService endpoint is served by real processes.
- Each step emits the documented events through `emit` ("SageMaker Endpoint State Change", "SageMaker Endpoint
  Deployment State Change" with the PendingDeploymentSummary and VariantStatus) and records the timeline.

`runtime_url` is a real HTTP server that is sagemaker-runtime (`boto3.client("sagemaker-runtime",
endpoint_url=hosting.runtime_url)`): InvokeEndpoint reaches the endpoint's variants split by their current weights
(blue vs green fleet during a deployment; `TargetVariant` honoured), writes data capture to S3 as the endpoint
config's DataCaptureConfig says (SageMaker's layout and record format, `sagecycle.serve.DataCapture`), and
publishes per-variant `Invocations`, `Invocation4XXErrors`, `Invocation5XXErrors` (1 or 0 per request, as SageMaker
sends them), `ModelLatency` and `OverheadLatency` (microseconds) to the local CloudWatch, namespace AWS/SageMaker,
dimensions EndpointName and VariantName, stamped with the simulated time. They are written into moto's CloudWatch
backend as the service itself would publish them (a customer's PutMetricData may not use an AWS/ namespace).

Known differences from SageMaker, kept on purpose: one process per variant whatever its instance count; a canary's
share of the traffic is its CanarySize as a fraction of the fleet (not rounded to whole instances); capture and
metrics reach S3 and CloudWatch when `flush()` runs (each `reconcile()` and `close()` call it), not on a timer.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import http.client
import json
import logging
import math
import random
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sagecycle.local_training import free_port
from sagecycle.rehearsal import ACCOUNT  # moto's account
from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.moto_sagemaker import (
    LOCK,
    EndpointRequest,
    backend,
    install_moto_extensions,
    naive_utc,
    register_endpoint_manager,
    switch_config,
    unregister_endpoint_manager,
)
from sagecycle.rehearsal.sagemaker_events import endpoint_event
from sagecycle.rehearsal.serving_process import (
    HEALTH_CHECK_FAILURE,
    EndpointStartError,
    ServingProcess,
    fetch_artifact,
    log_tail,
    model_container,
    start_serve,
    stop_process,
    wait_healthy,
)
from sagecycle.rehearsal.timeline import Timeline
from sagecycle.serve import DataCapture

LOG = logging.getLogger("sagecycle.rehearsal.hosting")
METRIC_NAMESPACE = "AWS/SageMaker"
RUNTIME_PATH = re.compile(r"^/endpoints/([^/?]+)/invocations$")
# Our wording (AWS does not publish the text of these reasons).
ALARM_ROLLBACK = "Deployment rolled back: CloudWatch alarm(s) {alarms} went into ALARM during the baking period."
TIMEOUT_ROLLBACK = "Deployment rolled back: it did not finish within MaximumExecutionTimeoutInSeconds ({seconds} s)."
Emit = Callable[[dict[str, Any]], Any]


@dataclass
class CaptureSettings:
    """An endpoint config's DataCaptureConfig."""

    destination: str  # s3://bucket/prefix
    sampling_percent: float
    modes: frozenset[str]
    kms_key_id: str | None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> CaptureSettings | None:
        if not config or not config.get("EnableCapture", True) or not config.get("DestinationS3Uri"):
            return None
        modes = frozenset(str(o.get("CaptureMode")) for o in config.get("CaptureOptions") or []) or frozenset(
            {"Input", "Output"}
        )
        return cls(
            destination=str(config["DestinationS3Uri"]).rstrip("/"),
            sampling_percent=float(config.get("InitialSamplingPercentage", 100)),
            modes=modes,
            kms_key_id=config.get("KmsKeyId"),
        )


@dataclass
class Fleet:
    """The serving processes of one endpoint config behind one endpoint, with the variants' weights."""

    config: str
    processes: dict[str, ServingProcess]
    weights: dict[str, float]
    instance_counts: dict[str, int]
    capture: CaptureSettings | None

    def routes(self, share: float) -> list[tuple[ServingProcess, float]]:
        total = sum(self.weights.values()) or 1.0
        return [(p, share * self.weights[name] / total) for name, p in self.processes.items()]


@dataclass
class Deployment:
    """An UpdateEndpoint in progress: the green fleet and where the traffic shift stands."""

    request: EndpointRequest
    green: Fleet | None = None
    routing: str = "ALL_AT_ONCE"
    wait_s: int = 0
    termination_s: int = 0
    timeout_s: int | None = None
    step: float = 1.0  # the canary's or each linear step's share of the traffic
    step_label: str = ""
    alarms: tuple[str, ...] = ()
    phase: str = "launching"  # launching, baking (a canary or linear step), final (TerminationWait), done
    phase_started: datetime | None = None
    phase_ends: datetime | None = None
    share: float = 0.0  # of the traffic to the green fleet
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class EndpointState:
    name: str
    blue: Fleet | None = None
    deployment: Deployment | None = None


@dataclass
class _Invocation:
    status: int
    body: bytes
    headers: list[tuple[str, str]]


class LocalHosting(contextlib.AbstractContextManager["LocalHosting"]):
    """SageMaker hosting on this machine for the endpoints of the local AWS (see the module's docstring).

    Args:
        aws: the local AWS (`sagecycle.rehearsal.LocalAws`): `.client(service)`, `.region`.
        work_dir: where model artifacts, serving logs and capture staging go.
        clock: the simulated clock; every wait and timestamp reads it.
        timeline: the lifecycle timeline.
        emit: receives every SageMaker event (the EventBus's `put`); None drops them.
        account: the local account (moto's).
        seed: seeds the traffic split and capture sampling, so a run is repeatable.
        startup_timeout: wall seconds a serving process has to answer /ping.
    """

    def __init__(
        self,
        aws: Any,
        work_dir: Path,
        clock: Clock,
        timeline: Timeline,
        emit: Emit | None = None,
        *,
        account: str = ACCOUNT,
        seed: int = 0,
        startup_timeout: float = 60.0,
    ) -> None:
        install_moto_extensions()
        self.aws = aws
        self.region = str(aws.region)
        self.account = account
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.timeline = timeline
        self.emit = emit
        self.startup_timeout = startup_timeout
        self.invocations: list[dict[str, Any]] = []  # one per InvokeEndpoint, for the report
        self.deployments: list[dict[str, Any]] = []  # one per UpdateEndpoint, for the report
        self.events: list[dict[str, Any]] = []  # every event emitted, in order
        self._requests: list[EndpointRequest] = []
        self._endpoints: dict[str, EndpointState] = {}
        self._lock = threading.RLock()  # routing state
        self._rng = random.Random(seed)
        self._capture_lock = threading.Lock()
        self._captures: dict[tuple[str, str, str], tuple[DataCapture, CaptureSettings, Path]] = {}
        self._metrics: list[dict[str, Any]] = []
        self._metrics_lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._closed = False
        register_endpoint_manager(account, self.region, self)
        self._server = _RuntimeServer(("127.0.0.1", 0), _runtime_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sagemaker-runtime", daemon=True)
        self._thread.start()
        self.runtime_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        atexit.register(self.close)  # no serving process outlives the interpreter, even without close()

    # ------------------------------------------------------------------------------------------- manager

    def now(self) -> datetime:
        return self.clock.now()

    def endpoint_requested(self, request: EndpointRequest) -> None:
        """Called by the moto extension (in a server thread) when an endpoint call has been accepted."""
        with self._lock:
            self._requests.append(request)

    # -------------------------------------------------------------------------------------------- public

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reconcile(self) -> None:
        """Does what SageMaker would have done by the simulated `clock.now()`: pending creates, updates and deletes
        (starting serving processes waits for their health check, in wall time), then every deployment's traffic
        shift, baking, rollback or completion; then flushes capture and metrics."""
        while True:
            self._adopt()
            while (request := self._next_request()) is not None:
                self._handle(request)
            for state in list(self._endpoints.values()):
                if state.deployment is not None:
                    self._advance(state)
            with self._lock:  # a function the events reached may have called UpdateEndpoint again
                if not self._requests:
                    break
        self.flush()

    def _adopt(self) -> None:
        """Endpoints already InService when this hosting started (made before it registered) get their fleets."""
        with LOCK:
            endpoints = backend(self.account, self.region).endpoints
            found = [(n, e.endpoint_config_name) for n, e in endpoints.items() if e.endpoint_status == "InService"]
        with self._lock:
            pending = {r.endpoint_name for r in self._requests}
            found = [(n, c) for n, c in found if n not in self._endpoints and n not in pending]
        for name, config in found:
            self.timeline.record("endpoint.adopted", f"{name}: InService before the hosting; starting {config}")
            try:
                fleet = self._start_fleet(name, config)
            except EndpointStartError as e:
                self._fail(name, str(e))
                continue
            with self._lock:
                self._endpoints[name] = EndpointState(name=name, blue=fleet)
            self._record_traffic(name)

    def _fail(self, name: str, reason: str) -> None:
        with LOCK:
            endpoint = self._moto_endpoint(name)
            if endpoint is not None:
                endpoint.endpoint_status = "Failed"
                endpoint.failure_reason = reason
                endpoint.last_modified_time = naive_utc(self.clock.now())
        self.timeline.record("endpoint.failed", f"{name}: {reason}", endpoint=name, reason=reason)
        self._emit("SageMaker Endpoint State Change", name)

    def _next_request(self) -> EndpointRequest | None:
        with self._lock:
            return self._requests.pop(0) if self._requests else None

    def client(self, service: str) -> Any:
        """One boto3 client per service against the local AWS, made once (clients are thread-safe)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.aws.client(service)
            return self._clients[service]

    def flush(self) -> None:
        """Writes buffered data capture to S3 and metrics to CloudWatch."""
        self._flush_capture()
        self._flush_metrics()

    def routes(self, endpoint_name: str) -> list[dict[str, Any]]:
        """The endpoint's current traffic split: [{"config", "variant", "model", "weight", "url"}]."""
        with self._lock:
            return [
                {"config": p.config, "variant": p.variant, "model": p.model, "weight": w, "url": p.url}
                for p, w in self._routes(endpoint_name)
            ]

    def processes(self) -> list[ServingProcess]:
        """Every serving process running now."""
        with self._lock:
            found: list[ServingProcess] = []
            for state in self._endpoints.values():
                for fleet in (state.blue, state.deployment.green if state.deployment else None):
                    if fleet is not None:
                        found += list(fleet.processes.values())
            return found

    def close(self) -> None:
        """Stops the runtime server and every serving process, flushes capture and metrics (idempotent)."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        unregister_endpoint_manager(self.account, self.region, self)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        for process in self.processes():
            stop_process(process.process)
        with self._lock:
            self._endpoints.clear()
        self.flush()

    # ----------------------------------------------------------------------------------------- requests

    def _handle(self, request: EndpointRequest) -> None:
        if request.kind == "create":
            self._create(request)
        elif request.kind == "update":
            self._update(request)
        else:
            self._delete(request)

    def _moto_endpoint(self, name: str) -> Any:
        return backend(self.account, self.region).endpoints.get(name)

    def _describe(self, name: str) -> dict[str, Any] | None:
        with LOCK:
            endpoint = self._moto_endpoint(name)
            return copy.deepcopy(endpoint.response_object) if endpoint is not None else None

    def _emit(self, detail_type: str, name: str) -> None:
        describe = self._describe(name)
        if describe is None:
            return
        event = endpoint_event(detail_type, describe, region=self.region, time=self.clock.now())
        self.events.append(event)
        if self.emit is not None:
            self.emit(event)

    def _create(self, request: EndpointRequest) -> None:
        name = request.endpoint_name
        self.timeline.record("endpoint.creating", f"{name}: creating on {request.endpoint_config_name}", endpoint=name)
        self._emit("SageMaker Endpoint State Change", name)
        try:
            fleet = self._start_fleet(name, request.endpoint_config_name)
        except EndpointStartError as e:
            self._fail(name, str(e))
            return
        with self._lock:
            self._endpoints[name] = EndpointState(name=name, blue=fleet)
        with LOCK:
            endpoint = self._moto_endpoint(name)
            if endpoint is not None:
                endpoint.endpoint_status = "InService"
                endpoint.last_modified_time = naive_utc(self.clock.now())
        self.timeline.record(
            "endpoint.in_service", f"{name}: InService on {fleet.config}", endpoint=name, config=fleet.config
        )
        self._record_traffic(name)
        self._emit("SageMaker Endpoint State Change", name)

    def _delete(self, request: EndpointRequest) -> None:
        with self._lock:
            state = self._endpoints.pop(request.endpoint_name, None)
        if state is None:
            return
        for fleet in (state.blue, state.deployment.green if state.deployment else None):
            for process in fleet.processes.values() if fleet else ():
                stop_process(process.process)
        self.timeline.record("endpoint.deleted", f"{request.endpoint_name}: deleted", endpoint=request.endpoint_name)

    def _update(self, request: EndpointRequest) -> None:
        name = request.endpoint_name
        state = self._endpoints.get(name)
        deployment = Deployment(request=request, phase_started=self.clock.now())
        policy = (request.deployment_config or {}).get("BlueGreenUpdatePolicy") or {}
        routing = policy.get("TrafficRoutingConfiguration") or {}
        deployment.routing = str(routing.get("Type") or "ALL_AT_ONCE")
        deployment.wait_s = int(routing.get("WaitIntervalInSeconds") or 0)
        deployment.termination_s = int(policy.get("TerminationWaitInSeconds") or 0)
        timeout = policy.get("MaximumExecutionTimeoutInSeconds")
        deployment.timeout_s = int(timeout) if timeout is not None else None
        rollback = (request.deployment_config or {}).get("AutoRollbackConfiguration") or {}
        deployment.alarms = tuple(str(a["AlarmName"]) for a in rollback.get("Alarms") or [])
        deployment.record = {
            "name": request.endpoint_config_name,
            "endpoint": name,
            "from": request.previous_config_name,
            "started": self.clock.now().isoformat(),
            "ended": None,
            "outcome": "in_progress",
            "routing": deployment.routing,
            "canary_percent": None,
            "reason": None,
        }
        self.deployments.append(deployment.record)
        self.timeline.record(
            "endpoint.updating",
            f"{name}: updating {request.previous_config_name} -> {request.endpoint_config_name} ({deployment.routing})",
            endpoint=name,
            config=request.endpoint_config_name,
            previous=request.previous_config_name,
            routing=deployment.routing,
        )
        self._emit("SageMaker Endpoint State Change", name)
        if state is None:  # made before this hosting registered: its current fleet starts first
            state = EndpointState(name=name)
            if request.previous_config_name:
                with contextlib.suppress(EndpointStartError):
                    state.blue = self._start_fleet(name, request.previous_config_name)
            with self._lock:
                self._endpoints[name] = state
        state.deployment = deployment
        counts = self._config_counts(request.endpoint_config_name)
        self._variant_status(name, "Creating", f"Launching {sum(counts.values())} instance(s).")
        self._emit("SageMaker Endpoint Deployment State Change", name)
        try:
            green = self._start_fleet(name, request.endpoint_config_name, retain_from=state.blue, request=request)
        except EndpointStartError as e:
            self._roll_back(state, str(e))
            return
        steps = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}
        if deployment.routing in steps:
            size = routing[steps[deployment.routing]]
            total = sum(green.instance_counts.values()) or 1
            fraction = size["Value"] / 100 if size["Type"] == "CAPACITY_PERCENT" else size["Value"] / total
            deployment.step = min(1.0, fraction)
            instances = max(1, math.ceil(total * fraction)) if size["Type"] == "CAPACITY_PERCENT" else size["Value"]
            deployment.step_label = f"{min(instances, total)} instance(s)"
            if deployment.routing == "CANARY":
                deployment.record["canary_percent"] = round(100 * deployment.step, 3)
        with self._lock:
            deployment.green = green
        self._shift(state, deployment.step if deployment.routing in steps else 1.0)
        self._advance(state)

    # ------------------------------------------------------------------------------------ the deployment

    def _shift(self, state: EndpointState, share: float) -> None:
        """Turns on `share` of the traffic on the green fleet and starts the matching baking period."""
        deployment = state.deployment
        assert deployment is not None and deployment.green is not None
        full = share >= 1.0 - 1e-9
        total = sum(deployment.green.instance_counts.values())
        capacity = f"full capacity of {total} instance(s)" if full else f"canary capacity of {deployment.step_label}"
        if deployment.routing == "LINEAR" and not full:
            capacity = f"{round(100 * share)}% of the capacity ({deployment.step_label} per step)"
        self._variant_status(state.name, "ActivatingTraffic", f"Activating traffic on {capacity}.")
        self._emit("SageMaker Endpoint Deployment State Change", state.name)
        with self._lock:
            deployment.share = 1.0 if full else share
        self._record_traffic(state.name)
        now = self.clock.now()
        if full:
            deployment.phase, seconds, which = "final", deployment.termination_s, "TerminationWaitInSeconds"
        else:
            deployment.phase, seconds, which = "baking", deployment.wait_s, "WaitIntervalInSeconds"
            if deployment.routing == "CANARY":
                self.timeline.record(
                    "endpoint.canary",
                    f"{state.name}: canary {round(100 * share, 1)}% on {deployment.green.config}, baking {seconds} s",
                    endpoint=state.name,
                    config=deployment.green.config,
                    share=share,
                    bake_seconds=seconds,
                )
        deployment.phase_started = now
        deployment.phase_ends = now + timedelta(seconds=seconds)
        self._variant_status(
            state.name, "Baking", f"Baking for {seconds} seconds ({which}) with traffic enabled on {capacity}."
        )
        self._emit("SageMaker Endpoint Deployment State Change", state.name)

    def _advance(self, state: EndpointState) -> None:
        """Moves a deployment on as far as the simulated clock allows, rolling back on an alarm or a timeout."""
        while (deployment := state.deployment) is not None and deployment.green is not None:
            now = self.clock.now()
            firing = self._alarms_firing(deployment.alarms)
            if firing:
                self._roll_back(state, ALARM_ROLLBACK.format(alarms=", ".join(firing)), alarms=firing)
                return
            started = datetime.fromisoformat(deployment.record["started"])
            if deployment.timeout_s is not None and now >= started + timedelta(seconds=deployment.timeout_s):
                self._roll_back(state, TIMEOUT_ROLLBACK.format(seconds=deployment.timeout_s))
                return
            if deployment.phase_ends is None or now < deployment.phase_ends:
                return
            if deployment.phase == "baking":  # a canary's next step is the rest; a linear one's, one more step
                step = 1.0 if deployment.routing == "CANARY" else deployment.share + deployment.step
                self._shift(state, min(1.0, step))
            else:
                self._finish(state)
                return

    def _alarms_firing(self, names: tuple[str, ...]) -> list[str]:
        if not names:
            return []
        answer = self.client("cloudwatch").describe_alarms(AlarmNames=list(names))
        states = {
            a["AlarmName"]: a["StateValue"] for a in answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", [])
        }
        return [name for name in names if states.get(name) == "ALARM"]

    def _finish(self, state: EndpointState) -> None:
        deployment = state.deployment
        assert deployment is not None and deployment.green is not None
        blue = state.blue
        if blue is not None:
            self._variant_status(
                state.name, "Deleting", f"Terminating {sum(blue.instance_counts.values())} instance(s)."
            )
            self._emit("SageMaker Endpoint Deployment State Change", state.name)
        with self._lock:
            state.blue, state.deployment = deployment.green, None
        for process in blue.processes.values() if blue else ():
            stop_process(process.process)
        request = deployment.request
        with LOCK:
            moto = backend(self.account, self.region)
            endpoint = moto.endpoints.get(state.name)
            config = moto.endpoint_configs.get(request.endpoint_config_name)
            if endpoint is not None and config is not None:
                switch_config(
                    moto,
                    endpoint,
                    config,
                    retain_all=request.retain_all_variant_properties,
                    excluded=request.exclude_retained_variant_properties,
                )
                endpoint.last_modified_time = naive_utc(self.clock.now())
        deployment.record.update(ended=self.clock.now().isoformat(), outcome="succeeded")
        self.timeline.record(
            "endpoint.in_service",
            f"{state.name}: InService on {request.endpoint_config_name}",
            endpoint=state.name,
            config=request.endpoint_config_name,
        )
        self._record_traffic(state.name)
        self._emit("SageMaker Endpoint State Change", state.name)

    def _roll_back(self, state: EndpointState, reason: str, alarms: list[str] | None = None) -> None:
        deployment = state.deployment
        assert deployment is not None
        with self._lock:
            green, state.deployment = deployment.green, None
        for process in green.processes.values() if green else ():
            stop_process(process.process)
        with LOCK:
            endpoint = self._moto_endpoint(state.name)
            if endpoint is not None:
                endpoint.endpoint_status = "InService"
                endpoint.pending_deployment_summary = None
                endpoint.failure_reason = reason
                endpoint.last_modified_time = naive_utc(self.clock.now())
        deployment.record.update(ended=self.clock.now().isoformat(), outcome="rolled_back", reason=reason)
        self.timeline.record(
            "endpoint.rolled_back",
            f"{state.name}: rolled back to {deployment.request.previous_config_name}: {reason}",
            endpoint=state.name,
            config=deployment.request.endpoint_config_name,
            serving=deployment.request.previous_config_name,
            reason=reason,
            alarms=alarms or [],
        )
        self._record_traffic(state.name)
        self._emit("SageMaker Endpoint State Change", state.name)

    def _variant_status(self, name: str, status: str, message: str) -> None:
        """Sets the pending deployment's VariantStatus, as DescribeEndpoint shows it."""
        with LOCK:
            endpoint = self._moto_endpoint(name)
            summary = getattr(endpoint, "pending_deployment_summary", None) if endpoint is not None else None
            if not summary:
                return
            for variant in summary.get("ProductionVariants", []):
                variant["VariantStatus"] = [
                    {"Status": status, "StatusMessage": message, "StartTime": naive_utc(self.clock.now())}
                ]

    def _record_traffic(self, name: str) -> None:
        routes = self.routes(name)
        self.timeline.record(
            "traffic",
            f"{name}: " + ", ".join(f"{r['config']}/{r['variant']} {100 * r['weight']:.0f}%" for r in routes),
            endpoint=name,
            routes=[{k: r[k] for k in ("config", "variant", "model", "weight")} for r in routes],
        )

    # --------------------------------------------------------------------------------------------- fleets

    def _config_counts(self, config_name: str) -> dict[str, int]:
        config = self.client("sagemaker").describe_endpoint_config(EndpointConfigName=config_name)
        return {v["VariantName"]: int(v.get("InitialInstanceCount") or 1) for v in config["ProductionVariants"]}

    def _start_fleet(
        self,
        endpoint: str,
        config_name: str,
        *,
        retain_from: Fleet | None = None,
        request: EndpointRequest | None = None,
    ) -> Fleet:
        """Starts one serving process per production variant of `config_name` and waits for their /ping."""
        sagemaker = self.client("sagemaker")
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        retain = retain_from is not None and request is not None and request.retain_all_variant_properties
        capture_config = config.get("DataCaptureConfig")
        if retain and "DataCaptureConfig" not in request.exclude_retained_variant_properties:  # type: ignore[union-attr]
            capture = retain_from.capture  # type: ignore[union-attr]
        else:
            capture = CaptureSettings.from_config(capture_config)
        weights: dict[str, float] = {}
        counts: dict[str, int] = {}
        started: dict[str, ServingProcess] = {}
        try:
            for variant in config["ProductionVariants"]:
                name = variant["VariantName"]
                weights[name] = float(variant.get("InitialVariantWeight", 1.0))
                counts[name] = int(variant.get("InitialInstanceCount") or 1)
                if retain and name in retain_from.weights:  # type: ignore[union-attr]
                    weights[name] = retain_from.weights[name]  # type: ignore[union-attr]
                    counts[name] = retain_from.instance_counts[name]  # type: ignore[union-attr]
                started[name] = self._launch(endpoint, config_name, name, variant["ModelName"])
            for process in started.values():
                self._wait_healthy(process)
        except BaseException:
            for process in started.values():
                stop_process(process.process)
            raise
        return Fleet(config=config_name, processes=started, weights=weights, instance_counts=counts, capture=capture)

    def _launch(self, endpoint: str, config: str, variant: str, model_name: str) -> ServingProcess:
        container = model_container(self.client("sagemaker"), model_name)
        url = str(container.get("ModelDataUrl") or "")
        artifact = self.work_dir / "models" / model_name / "model.tar.gz"
        fetch_artifact(self.client("s3"), url, artifact)
        port = free_port()
        log_path = self.work_dir / "logs" / f"{endpoint}-{config}-{variant}-{port}.log"
        process = start_serve(
            artifact,
            port=port,
            log_path=log_path,
            environment=container.get("Environment") or {},
            options=["--endpoint-name", endpoint, "--variant", variant],
        )
        return ServingProcess(endpoint, config, variant, model_name, url, port, process, log_path)

    def _wait_healthy(self, process: ServingProcess) -> None:
        if wait_healthy(process.port, process.process, self.startup_timeout):
            return
        LOG.warning(
            "variant %s of %s did not become healthy:\n%s", process.variant, process.config, log_tail(process.log_path)
        )
        self.timeline.record(
            "endpoint.health_check_failed",
            f"{process.endpoint}/{process.variant} ({process.config}) did not pass /ping",
            endpoint=process.endpoint,
            config=process.config,
            variant=process.variant,
            log=str(process.log_path),
            exit_code=process.process.poll(),
        )
        raise EndpointStartError(HEALTH_CHECK_FAILURE.format(variant=process.variant))

    # -------------------------------------------------------------------------------------------- runtime

    def _routes(self, name: str) -> list[tuple[ServingProcess, float]]:
        state = self._endpoints.get(name)
        if state is None:
            return []
        deployment = state.deployment
        green = deployment.green if deployment is not None else None
        share = deployment.share if deployment is not None and green is not None else 0.0
        routes: list[tuple[ServingProcess, float]] = []
        if state.blue is not None:
            routes += state.blue.routes(1.0 - share if green is not None else 1.0)
        if green is not None:
            routes += green.routes(share)
        return [(p, w) for p, w in routes if w > 0]

    def invoke(
        self,
        endpoint: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> _Invocation:
        """One InvokeEndpoint: routes, forwards to the variant's process, captures, meters."""
        started = time.perf_counter()
        at = self.clock.now()
        target = headers.get("x-amzn-sagemaker-target-variant")
        with self._lock:
            routes = self._routes(endpoint)
            if target:
                routes = [(p, 1.0) for p, _ in routes if p.variant == target]
            chosen = self._rng.choices([p for p, _ in routes], [w for _, w in routes])[0] if routes else None
            sample = self._rng.random() * 100
        if chosen is None:
            message = (
                f"Endpoint {endpoint} of account {self.account} not found."
                if not target
                else f"Variant {target} of endpoint {endpoint} of account {self.account} not found."
            )
            return _error_response(400, "ValidationError", message)
        forward = {k: v for k, v in headers.items() if k in _FORWARDED}
        model_started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", chosen.port, timeout=120)
            try:
                connection.request("POST", f"/endpoints/{endpoint}/invocations", body=body, headers=forward)
                response = connection.getresponse()
                answer, status = response.read(), response.status
                answer_headers = [
                    (k, v)
                    for k, v in response.getheaders()
                    if k.lower() not in {"content-length", "connection", "date", "server"}
                ]
            finally:
                connection.close()
        except (OSError, http.client.HTTPException) as e:
            LOG.warning("variant %s of %s unreachable: %s", chosen.variant, chosen.config, e)
            answer, status = json.dumps({"message": "An internal error occurred."}).encode(), 500
            answer_headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", "InternalFailure")]
        model_us = (time.perf_counter() - model_started) * 1e6
        original = status
        if status == 424:  # the runtime's ModelError wraps the container's own status
            with contextlib.suppress(ValueError, KeyError, TypeError):
                original = int(json.loads(answer)["OriginalStatusCode"])
        if status == 200:
            self._capture(chosen, body, headers, answer, dict(answer_headers), at, sample)
        total_us = (time.perf_counter() - started) * 1e6
        self._meter(chosen, original, model_us, max(0.0, total_us - model_us), at)
        self.invocations.append(
            {
                "t": at.isoformat(),
                "endpoint": endpoint,
                "variant": chosen.variant,
                "config": chosen.config,
                "model": chosen.model,
                "status": original,
                "latency_ms": round(total_us / 1000, 3),
                "model_latency_ms": round(model_us / 1000, 3),
            }
        )
        return _Invocation(status, answer, answer_headers)

    def _capture(
        self,
        process: ServingProcess,
        body: bytes,
        headers: Mapping[str, str],
        answer: bytes,
        answer_headers: Mapping[str, str],
        at: datetime,
        sample: float,
    ) -> None:
        fleet = self._fleet_of(process)
        settings = fleet.capture if fleet is not None else None
        if settings is None or sample >= settings.sampling_percent:
            return
        key = (process.endpoint, process.config, process.variant)
        with self._capture_lock:
            if key not in self._captures:
                staging = self.work_dir / "capture" / process.config
                self._captures[key] = (DataCapture(staging, process.variant), settings, staging)
            capture = self._captures[key][0]
            capture.record(
                endpoint=process.endpoint,
                request_body=body,
                request_content_type=headers.get("content-type") or "application/octet-stream",
                response_body=answer,
                response_content_type=answer_headers.get("Content-Type") or "application/octet-stream",
                inference_id=headers.get("x-amzn-sagemaker-inference-id"),
                now=at,
            )

    def _fleet_of(self, process: ServingProcess) -> Fleet | None:
        with self._lock:
            state = self._endpoints.get(process.endpoint)
            if state is None:
                return None
            for fleet in (state.blue, state.deployment.green if state.deployment else None):
                if fleet is not None and fleet.config == process.config:
                    return fleet
        return None

    def _flush_capture(self) -> None:
        """Uploads the capture files written so far, as SageMaker uploads its buffered capture: one object each."""
        with self._capture_lock:
            captures = list(self._captures.values())
            for capture, _, _ in captures:
                capture.close()  # the next record opens a new file
            s3 = self.client("s3") if captures else None
            for _, settings, staging in captures:
                bucket, _, prefix = settings.destination.removeprefix("s3://").partition("/")
                for path in sorted(staging.rglob("*.jsonl")):
                    lines = [_keep_modes(line, settings.modes) for line in path.read_text("utf-8").splitlines() if line]
                    if lines:
                        extra: dict[str, str] = {}
                        if settings.kms_key_id:
                            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.kms_key_id}
                        key = "/".join(p for p in (prefix.strip("/"), path.relative_to(staging).as_posix()) if p)
                        assert s3 is not None
                        s3.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode() + b"\n", **extra)
                    path.unlink()

    def _meter(self, process: ServingProcess, status: int, model_us: float, overhead_us: float, at: datetime) -> None:
        dimensions = [
            {"Name": "EndpointName", "Value": process.endpoint},
            {"Name": "VariantName", "Value": process.variant},
        ]
        values = {
            "Invocations": (1.0, "None"),
            "Invocation4XXErrors": (1.0 if 400 <= status < 500 else 0.0, "None"),
            "Invocation5XXErrors": (1.0 if status >= 500 else 0.0, "None"),
            "ModelLatency": (model_us, "Microseconds"),
            "OverheadLatency": (overhead_us, "Microseconds"),
        }
        data = [
            {"MetricName": name, "Dimensions": dimensions, "Timestamp": naive_utc(at), "Value": value, "Unit": unit}
            for name, (value, unit) in values.items()
        ]
        with self._metrics_lock:
            self._metrics += data

    def _flush_metrics(self) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        with self._metrics_lock:
            data, self._metrics = self._metrics, []
        if data:
            cloudwatch_backends[self.account][self.region].put_metric_data(METRIC_NAMESPACE, data)


_FORWARDED = {
    "content-type",
    "accept",
    "x-amzn-sagemaker-custom-attributes",
    "x-amzn-sagemaker-inference-id",
}


def _keep_modes(line: str, modes: frozenset[str]) -> str:
    """A capture record with only the CaptureOptions' modes (Input, Output)."""
    if modes >= {"Input", "Output"}:
        return line
    record = json.loads(line)
    data = record.get("captureData", {})
    if "Input" not in modes:
        data.pop("endpointInput", None)
    if "Output" not in modes:
        data.pop("endpointOutput", None)
    return json.dumps(record, separators=(",", ":"))


def _error_response(status: int, kind: str, message: str) -> _Invocation:
    body = json.dumps({"message": message}).encode()
    return _Invocation(status, body, [("Content-Type", "application/json"), ("x-amzn-ErrorType", kind)])


class _RuntimeServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up is not an error
            super().handle_error(request, client_address)


def _runtime_handler(hosting: LocalHosting) -> type[BaseHTTPRequestHandler]:
    class RuntimeHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            LOG.debug(format, *args)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            match = RUNTIME_PATH.match(self.path)
            if match is None:
                result = _error_response(404, "UnknownOperationException", f"no operation at {self.path}")
            else:
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    result = hosting.invoke(match.group(1), body, headers)
                except Exception:
                    LOG.exception("invocation failed")
                    result = _error_response(500, "InternalFailure", "An internal error occurred.")
            self.send_response(result.status)
            for key, value in result.headers:
                self.send_header(key, value)
            if not any(k.lower() == "x-amzn-requestid" for k, _ in result.headers):
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(result.body)))
            self.end_headers()
            self.wfile.write(result.body)

    return RuntimeHandler
