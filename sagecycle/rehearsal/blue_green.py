"""Blue/green deployments of the local SageMaker hosting: what UpdateEndpoint does, on the simulated clock.

UpdateEndpoint follows the request's DeploymentConfig (BlueGreenUpdatePolicy): the green fleet is launched beside the
blue one; CANARY gives it CanarySize of the traffic and bakes WaitIntervalInSeconds, then the rest; LINEAR shifts
LinearStepSize per WaitIntervalInSeconds; ALL_AT_ONCE shifts everything at once. After the full shift it bakes
TerminationWaitInSeconds and then stops the blue fleet. During every baking period the AutoRollbackConfiguration
alarms are read from the local CloudWatch (whoever evaluates them sets their state): one in ALARM, or
MaximumExecutionTimeoutInSeconds passing, rolls the traffic back to the blue fleet and stops the green one;
DescribeEndpoint then says InService on the old config with the FailureReason. Without a DeploymentConfig the update
is all at once with no baking, as SageMaker's default. Each step sets the PendingDeploymentSummary's VariantStatus
and emits "SageMaker Endpoint Deployment State Change".

`BlueGreenDeployments` is a part of `LocalHosting` (a mixin): the fleets, events and timeline are the hosting's.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.moto_sagemaker import LOCK, EndpointRequest, backend, naive_utc, switch_config
from sagecycle.rehearsal.runtime import CaptureSettings
from sagecycle.rehearsal.serving_process import EndpointStartError, ServingProcess, stop_process
from sagecycle.rehearsal.timeline import Timeline

# Our wording (AWS does not publish the text of these reasons).
ALARM_ROLLBACK = "Deployment rolled back: CloudWatch alarm(s) {alarms} went into ALARM during the baking period."
TIMEOUT_ROLLBACK = "Deployment rolled back: it did not finish within MaximumExecutionTimeoutInSeconds ({seconds} s)."


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


def retain_properties(green: Fleet, blue: Fleet | None, request: EndpointRequest) -> Fleet:
    """UpdateEndpoint's RetainAllVariantProperties: each green variant named as a blue one keeps the blue one's weight
    and instance count, and the green fleet keeps the blue data capture unless ExcludeRetainedVariantProperties
    names DataCaptureConfig. Changes and returns `green`."""
    if blue is None or not request.retain_all_variant_properties:
        return green
    for name in green.weights:
        if name in blue.weights:
            green.weights[name] = blue.weights[name]
            green.instance_counts[name] = blue.instance_counts[name]
    if "DataCaptureConfig" not in request.exclude_retained_variant_properties:
        green.capture = blue.capture
    return green


@dataclass
class EndpointState:
    name: str
    blue: Fleet | None = None
    deployment: Deployment | None = None


class BlueGreenDeployments:
    """UpdateEndpoint's deployment, as a part of `LocalHosting` (which provides what is declared here)."""

    account: str
    region: str
    clock: Clock
    timeline: Timeline
    deployments: list[dict[str, Any]]
    _lock: threading.RLock
    _endpoints: dict[str, EndpointState]

    if TYPE_CHECKING:  # LocalHosting's own methods

        def client(self, service: str) -> Any: ...

        def _emit(self, detail_type: str, name: str) -> None: ...

        def _record_traffic(self, name: str) -> None: ...

        def _moto_endpoint(self, name: str) -> Any: ...

        def _config_counts(self, config_name: str) -> dict[str, int]: ...

        def _start_fleet(self, endpoint: str, config_name: str) -> Fleet: ...

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
            green = retain_properties(self._start_fleet(name, request.endpoint_config_name), state.blue, request)
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
