"""Local SageMaker hosting: endpoints whose variants are real serving processes, blue/green on a compressed clock.

`LocalHosting` registers itself with the moto extensions (`moto_sagemaker`), so CreateEndpoint and UpdateEndpoint
made through the local AWS leave the endpoint `Creating` / `Updating` and hand the work over here. `reconcile()`
(the scenario's loop calls it) does what SageMaker would have done by now, on the simulated clock:

- Each production variant of an endpoint config becomes one serving process, started the way the container
  starts a model (`serving_process`). It must answer `GET /ping` in time, or the endpoint goes `Failed`
  (CreateEndpoint) or the update is rolled back (UpdateEndpoint), with SageMaker's failure reason ("... did not pass
  the ping health check ...").
- UpdateEndpoint follows the request's DeploymentConfig: blue/green with canary, linear or all-at-once traffic
  shifting, baking, alarm and timeout rollback (`blue_green`).
- An endpoint already InService when the hosting registered (made by plain moto before it) is adopted: the first
  `reconcile()` starts its fleet, so every InService endpoint is served by real processes.
- Each step emits the documented events through `emit` ("SageMaker Endpoint State Change", "SageMaker Endpoint
  Deployment State Change" with the PendingDeploymentSummary and VariantStatus, `sagemaker_events`) and records the
  timeline.

`runtime_url` is a real HTTP server that is sagemaker-runtime (`runtime`): InvokeEndpoint reaches the endpoint's
variants split by their current weights (blue vs green fleet during a deployment; `TargetVariant` honoured), and
leaves data capture in S3 and the variant's metrics in the local CloudWatch.

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
import random
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sagecycle.rehearsal import ACCOUNT  # moto's account
from sagecycle.rehearsal.blue_green import (
    BlueGreenDeployments,
    EndpointState,
    Fleet,
)
from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.moto_sagemaker import (
    LOCK,
    Emit,
    EndpointRequest,
    LocalManager,
    backend,
    naive_utc,
    register_endpoint_manager,
    unregister_endpoint_manager,
)
from sagecycle.rehearsal.runtime import (
    FORWARDED,
    CaptureSettings,
    RuntimeAnswer,
    RuntimeServer,
    Telemetry,
    error_response,
    runtime_handler,
)
from sagecycle.rehearsal.sagemaker_events import endpoint_event
from sagecycle.rehearsal.serving_process import (
    HEALTH_CHECK_FAILURE,
    EndpointStartError,
    ServingProcess,
    log_tail,
    start_model,
    stop_process,
    wait_healthy,
)
from sagecycle.rehearsal.timeline import Timeline

LOG = logging.getLogger("sagecycle.rehearsal.hosting")


class LocalHosting(BlueGreenDeployments, LocalManager, contextlib.AbstractContextManager["LocalHosting"]):
    """SageMaker hosting on this machine for the endpoints of the local AWS (see the module's docstring).

    Takes `LocalManager`'s arguments (`work_dir` holds model artifacts, serving logs and capture staging; `emit`
    receives every SageMaker event), and:
        seed: seeds the traffic split and capture sampling, so a run is repeatable.
        startup_timeout: wall seconds a serving process has to answer /ping.
    """

    def __init__(
        self, aws: Any, work_dir: Path, clock: Clock, timeline: Timeline, emit: Emit | None = None, *,
        account: str = ACCOUNT, seed: int = 0, startup_timeout: float = 60.0,
    ) -> None:  # fmt: skip
        super().__init__(aws, work_dir, clock, timeline, emit, account=account)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.startup_timeout = startup_timeout
        self.invocations: list[dict[str, Any]] = []  # one per InvokeEndpoint, for the report
        self.deployments: list[dict[str, Any]] = []  # one per UpdateEndpoint, for the report
        self._requests: list[EndpointRequest] = []
        self._endpoints: dict[str, EndpointState] = {}
        self._lock = threading.RLock()  # routing state
        self._rng = random.Random(seed)
        self._clients: dict[str, Any] = {}
        self._telemetry = Telemetry(self.work_dir, account, self.region, lambda: self.client("s3"))
        self._closed = False
        register_endpoint_manager(account, self.region, self)
        self._server = RuntimeServer(("127.0.0.1", 0), runtime_handler(self.invoke))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sagemaker-runtime", daemon=True)
        self._thread.start()
        self.runtime_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        atexit.register(self.close)  # no serving process outlives the interpreter, even without close()

    # ------------------------------------------------------------------------------------------- manager

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
        self._telemetry.flush()

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
        self.publish(endpoint_event(detail_type, describe, region=self.region, time=self.clock.now()))

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

    def _start_fleet(self, endpoint: str, config_name: str) -> Fleet:
        """Starts one serving process per production variant of `config_name` and waits for their /ping."""
        config = self.client("sagemaker").describe_endpoint_config(EndpointConfigName=config_name)
        capture = CaptureSettings.from_config(config.get("DataCaptureConfig"))
        weights: dict[str, float] = {}
        counts: dict[str, int] = {}
        started: dict[str, ServingProcess] = {}
        try:
            for variant in config["ProductionVariants"]:
                name = variant["VariantName"]
                weights[name] = float(variant.get("InitialVariantWeight", 1.0))
                counts[name] = int(variant.get("InitialInstanceCount") or 1)
                started[name] = self._launch(endpoint, config_name, name, variant["ModelName"])
            for process in started.values():
                self._wait_healthy(process)
        except BaseException:
            for process in started.values():
                stop_process(process.process)
            raise
        return Fleet(config=config_name, processes=started, weights=weights, instance_counts=counts, capture=capture)

    def _launch(self, endpoint: str, config: str, variant: str, model_name: str) -> ServingProcess:
        url, port, process, log_path = start_model(
            self.client("sagemaker"),
            self.client("s3"),
            model_name,
            artifact=self.work_dir / "models" / model_name / "model.tar.gz",
            log_path=lambda port: self.work_dir / "logs" / f"{endpoint}-{config}-{variant}-{port}.log",
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
    ) -> RuntimeAnswer:
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
            return error_response(400, "ValidationError", message)
        forward = {k: v for k, v in headers.items() if k in FORWARDED}
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
        settings = self._capture_settings(chosen) if status == 200 else None
        if settings is not None and sample < settings.sampling_percent:
            self._telemetry.capture(chosen, settings, body, headers, answer, dict(answer_headers), at)
        total_us = (time.perf_counter() - started) * 1e6
        self._telemetry.meter(chosen, original, model_us, max(0.0, total_us - model_us), at)
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
        return RuntimeAnswer(status, answer, answer_headers)

    def _capture_settings(self, process: ServingProcess) -> CaptureSettings | None:
        """The data capture of the fleet `process` belongs to (None: no capture)."""
        with self._lock:
            state = self._endpoints.get(process.endpoint)
            if state is None:
                return None
            for fleet in (state.blue, state.deployment.green if state.deployment else None):
                if fleet is not None and fleet.config == process.config:
                    return fleet.capture
        return None
