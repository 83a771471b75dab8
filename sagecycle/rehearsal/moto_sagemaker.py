"""moto's SageMaker, extended in-process so that endpoints and training jobs behave as SageMaker's do.

moto 5 answers CreateEndpoint with an endpoint that is InService at once, has no UpdateEndpoint, and records a
CreateTrainingJob as Completed. `install_moto_extensions()` changes moto's own backend and response classes:

- UpdateEndpoint exists (`SageMakerResponse.update_endpoint` -> `SageMakerModelBackend.update_endpoint`), with
  SageMaker's checks and error codes: an unknown endpoint or config, an endpoint that is not InService ("Cannot
  update in-progress endpoint"), a DeploymentConfig that is not one SageMaker accepts, and blue/green variants
  that do not keep their names (deployment guardrails need the same variant names).
- CreateEndpoint refuses an existing name, as SageMaker does (moto silently replaces it).
- DeleteEndpoint refuses an endpoint that is Creating or Updating.
- When a manager is registered for the account and Region (`LocalHosting` registers itself), CreateEndpoint leaves
  the endpoint `Creating` and UpdateEndpoint leaves it `Updating` with a `PendingDeploymentSummary` and the
  `LastDeploymentConfig`; the manager is told and does the work (`EndpointRequest`). Without a manager the
  update takes effect at once, in moto's manner, so tests that use plain moto keep working.
- When a training manager is registered (`LocalTraining`), CreateTrainingJob leaves the job `InProgress`
  (`Starting`), keeps the job's own MetricDefinitions (moto replaces them), and tells the manager.
- CreateTransformJob checks what SageMaker checks (a unique name, an existing model, MaxPayloadInMB in [0, 100] and
  MaxConcurrentTransforms * MaxPayloadInMB <= 100) and refuses what the local transform does not rehearse (a
  manifest data source, RecordIO/TFRecord splitting, chunked payloads, DataProcessing filters). When a transform
  manager is registered (`LocalTransform`), the job stays `InProgress` with no start or end time and the manager is
  told; without one it is Completed at once, moto's way. ListTransformJobs sorts as SageMaker does (SortBy
  CreationTime, SortOrder Descending by default) before it pages.

Every read and change of an endpoint or job goes through `LOCK`, so DescribeEndpoint never sees half a
transition while the hosting, in another thread, moves an endpoint on.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sagecycle.rehearsal import ACCOUNT  # moto's account

if TYPE_CHECKING:
    from sagecycle.rehearsal.clock import Clock
    from sagecycle.rehearsal.timeline import Timeline

Emit = Callable[[dict[str, Any]], Any]
LOCK = threading.RLock()

TRAFFIC_ROUTING_TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
CAPACITY_TYPES = ("INSTANCE_COUNT", "CAPACITY_PERCENT")
IN_PROGRESS_STATES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
# API reference, BlueGreenUpdatePolicy / TrafficRoutingConfig / AutoRollbackConfig.
WAIT_INTERVAL_RANGE = (0, 3600)
TERMINATION_WAIT_RANGE = (0, 3600)
MAX_EXECUTION_TIMEOUT_RANGE = (600, 14400)
MAX_ROLLBACK_ALARMS = 10
# API reference, CreateTransformJob / TransformInput.
MAX_TRANSFORM_PAYLOAD_MB = 100
TRANSFORM_SPLIT_TYPES = ("None", "Line")


@dataclass(frozen=True)
class EndpointRequest:
    """What CreateEndpoint, UpdateEndpoint or DeleteEndpoint asked of an endpoint, for its manager."""

    kind: Literal["create", "update", "delete"]
    account: str
    region: str
    endpoint_name: str
    endpoint_config_name: str
    previous_config_name: str | None = None
    deployment_config: dict[str, Any] | None = None
    retain_all_variant_properties: bool = False
    exclude_retained_variant_properties: tuple[str, ...] = ()
    requested_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class EndpointManager(Protocol):
    """Who does an endpoint's work once the API has accepted the request (`LocalHosting`)."""

    def now(self) -> datetime: ...

    def endpoint_requested(self, request: EndpointRequest) -> None: ...


class TrainingManager(Protocol):
    """Who runs a training job once CreateTrainingJob has recorded it (`LocalTraining`)."""

    def now(self) -> datetime: ...

    def training_job_created(self, account: str, region: str, job_name: str) -> None: ...


class TransformManager(Protocol):
    """Who runs a batch transform job once CreateTransformJob has recorded it (`LocalTransform`)."""

    def now(self) -> datetime: ...

    def transform_job_created(self, account: str, region: str, job_name: str) -> None: ...


_endpoint_managers: dict[tuple[str, str], EndpointManager] = {}
_training_managers: dict[tuple[str, str], TrainingManager] = {}
_transform_managers: dict[tuple[str, str], TransformManager] = {}
_installed = False


def _register(kind: str, managers: dict[tuple[str, str], Any], account: str, region: str, manager: Any) -> None:
    with LOCK:
        if (account, region) in managers and managers[(account, region)] is not manager:
            raise RuntimeError(f"another {kind} manager already serves {account}/{region}")
        managers[(account, region)] = manager


def _unregister(managers: dict[tuple[str, str], Any], account: str, region: str, manager: Any) -> None:
    with LOCK:
        if managers.get((account, region)) is manager:
            del managers[(account, region)]


def register_endpoint_manager(account: str, region: str, manager: EndpointManager) -> None:
    _register("endpoint", _endpoint_managers, account, region, manager)


def unregister_endpoint_manager(account: str, region: str, manager: EndpointManager) -> None:
    _unregister(_endpoint_managers, account, region, manager)


def register_training_manager(account: str, region: str, manager: TrainingManager) -> None:
    _register("training", _training_managers, account, region, manager)


def unregister_training_manager(account: str, region: str, manager: TrainingManager) -> None:
    _unregister(_training_managers, account, region, manager)


def register_transform_manager(account: str, region: str, manager: TransformManager) -> None:
    _register("transform", _transform_managers, account, region, manager)


def unregister_transform_manager(account: str, region: str, manager: TransformManager) -> None:
    _unregister(_transform_managers, account, region, manager)


class LocalManager:
    """What the local managers (`LocalHosting`, `LocalTraining`, `LocalTransform`) share: the local AWS they serve,
    their work directory, the simulated clock, the timeline, and the events they emit. Each registers itself for
    its account and Region with its own kind's `register_*_manager`.

    Args:
        aws: the local AWS (`sagecycle.rehearsal.LocalAws`): `.client(service)`, `.region`.
        work_dir: the manager's files (what each writes there, its own docstring says).
        clock: the simulated clock; every timestamp reads it.
        timeline: the lifecycle timeline.
        emit: receives every event the manager emits (the EventBus's `put`); None drops them.
        account: the local account (moto's).
    """

    def __init__(
        self, aws: Any, work_dir: Path, clock: Clock, timeline: Timeline, emit: Emit | None = None, *,
        account: str = ACCOUNT,
    ) -> None:  # fmt: skip
        install_moto_extensions()
        self.aws = aws
        self.region = str(aws.region)
        self.account = account
        self.work_dir = Path(work_dir)
        self.clock = clock
        self.timeline = timeline
        self.emit = emit
        self.events: list[dict[str, Any]] = []  # every event emitted, in order

    def now(self) -> datetime:
        return self.clock.now()

    def publish(self, event: dict[str, Any]) -> dict[str, Any]:
        """Keeps `event` and hands it to `emit`."""
        self.events.append(event)
        if self.emit is not None:
            self.emit(event)
        return event

    def job_snapshot(self, jobs: Literal["training_jobs", "transform_jobs"], name: str) -> tuple[Any, dict[str, str]]:
        """A job's Describe* answer as moto has it now, and its tags as a map (what its state-change event carries)."""
        with LOCK:
            job = getattr(backend(self.account, self.region), jobs)[name]
            return copy.deepcopy(job.response_object), {t["Key"]: t["Value"] for t in job.tags or []}


def backend(account: str, region: str) -> Any:
    """moto's SageMaker backend for one account and Region (the server runs in this process)."""
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[account][region]


def naive_utc(moment: datetime) -> datetime:
    """moto keeps naive UTC datetimes; the rehearsal's clock gives aware ones."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _error(message: str) -> Exception:
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message=message)


def _endpoint_arn(backend_: Any, name: str) -> str:
    from moto.sagemaker.models import FakeEndpoint

    return str(FakeEndpoint.arn_formatter(name, backend_.account_id, backend_.region_name))


def _config_arn(backend_: Any, name: str) -> str:
    from moto.sagemaker.models import FakeEndpointConfig

    return str(FakeEndpointConfig.arn_formatter(name, backend_.account_id, backend_.region_name))


def validate_deployment_config(deployment: Mapping[str, Any]) -> None:
    """SageMaker's checks on an UpdateEndpoint DeploymentConfig (ValidationException on the first broken rule)."""
    blue_green = deployment.get("BlueGreenUpdatePolicy")
    if deployment.get("RollingUpdatePolicy") is not None:
        if blue_green is not None:
            raise _error("Only one update policy may be specified in DeploymentConfig.")
        raise _error("RollingUpdatePolicy is not rehearsed locally; use BlueGreenUpdatePolicy.")
    if blue_green is not None:
        routing = blue_green.get("TrafficRoutingConfiguration")
        if not isinstance(routing, Mapping):
            raise _error("BlueGreenUpdatePolicy.TrafficRoutingConfiguration is required.")
        kind = routing.get("Type")
        if kind not in TRAFFIC_ROUTING_TYPES:
            raise _error(
                f"Value '{kind}' at 'deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration.type' "
                f"failed to satisfy constraint: Member must satisfy enum value set: {list(TRAFFIC_ROUTING_TYPES)}"
            )
        wait = routing.get("WaitIntervalInSeconds")
        if not isinstance(wait, int) or not WAIT_INTERVAL_RANGE[0] <= wait <= WAIT_INTERVAL_RANGE[1]:
            raise _error(f"WaitIntervalInSeconds must be an integer in {list(WAIT_INTERVAL_RANGE)}, got {wait!r}.")
        step_key = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}.get(str(kind))
        if step_key is not None:
            step = routing.get(step_key)
            if not isinstance(step, Mapping):
                raise _error(f"{step_key} is required when the traffic routing type is {kind}.")
            if step.get("Type") not in CAPACITY_TYPES or not isinstance(step.get("Value"), int) or step["Value"] < 1:
                raise _error(f"{step_key} must have a Type in {list(CAPACITY_TYPES)} and a positive integer Value.")
            if step["Type"] == "CAPACITY_PERCENT" and step["Value"] > (50 if kind == "CANARY" else 100):
                raise _error(f"{step_key} must be at most 50% of the variant's capacity, got {step['Value']}%.")
        termination = blue_green.get("TerminationWaitInSeconds", 0)
        if (
            not isinstance(termination, int)
            or not TERMINATION_WAIT_RANGE[0] <= termination <= TERMINATION_WAIT_RANGE[1]
        ):
            raise _error(f"TerminationWaitInSeconds must be in {list(TERMINATION_WAIT_RANGE)}, got {termination!r}.")
        timeout = blue_green.get("MaximumExecutionTimeoutInSeconds")
        if timeout is not None:
            low, high = MAX_EXECUTION_TIMEOUT_RANGE
            if not isinstance(timeout, int) or not low <= timeout <= high:
                raise _error(f"MaximumExecutionTimeoutInSeconds must be in [{low}, {high}], got {timeout!r}.")
            if timeout <= wait + termination:
                raise _error(
                    "MaximumExecutionTimeoutInSeconds must be larger than the total waiting time specified in "
                    "TerminationWaitInSeconds and WaitIntervalInSeconds."
                )
    alarms = (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
    if len(alarms) > MAX_ROLLBACK_ALARMS:
        raise _error(f"AutoRollbackConfiguration allows at most {MAX_ROLLBACK_ALARMS} alarms, got {len(alarms)}.")
    for alarm in alarms:
        if not isinstance(alarm, Mapping) or not alarm.get("AlarmName"):
            raise _error("Every AutoRollbackConfiguration alarm needs an AlarmName.")


def _endpoint_request(
    backend_: Any,
    manager: EndpointManager | None,
    kind: Literal["create", "update", "delete"],
    endpoint_name: str,
    endpoint_config_name: str,
    **more: Any,
) -> EndpointRequest:
    """What an endpoint call asked, for the manager of `backend_`'s account and Region (at the manager's time)."""
    return EndpointRequest(
        kind=kind,
        account=backend_.account_id,
        region=backend_.region_name,
        endpoint_name=endpoint_name,
        endpoint_config_name=endpoint_config_name,
        requested_at=manager.now() if manager is not None else datetime.now(UTC),
        **more,
    )


def _update_endpoint(
    self: Any,
    endpoint_name: str,
    endpoint_config_name: str,
    retain_all_variant_properties: bool | None = None,
    exclude_retained_variant_properties: list[dict[str, str]] | None = None,
    deployment_config: dict[str, Any] | None = None,
    retain_deployment_config: bool | None = None,
) -> str:
    """SageMakerModelBackend.update_endpoint: validates, then Updating for the manager (or at once without one)."""
    with LOCK:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            raise _error(f'Could not find endpoint "{_endpoint_arn(self, endpoint_name)}".')
        config = self.endpoint_configs.get(endpoint_config_name)
        if config is None:
            raise _error(f'Could not find endpoint configuration "{_config_arn(self, endpoint_config_name)}".')
        if endpoint.endpoint_status in IN_PROGRESS_STATES:
            raise _error(f'Cannot update in-progress endpoint "{endpoint.arn}".')
        if endpoint.endpoint_status != "InService":
            raise _error(
                f'Cannot update endpoint "{endpoint.arn}" in status {endpoint.endpoint_status}: '
                "DeleteEndpoint is the only operation that can be performed on a failed endpoint."
            )
        if retain_deployment_config and deployment_config is None:
            deployment_config = copy.deepcopy(getattr(endpoint, "last_deployment_config", None))
        if deployment_config:
            validate_deployment_config(deployment_config)
            before = {v["VariantName"] for v in endpoint.production_variants}
            after = {v["VariantName"] for v in config.production_variants}
            if before != after:
                raise _error(
                    "Deployment guardrails need the new endpoint configuration to keep the variant names of the "
                    f"current one: {sorted(before)} != {sorted(after)}."
                )
        excluded = tuple(str(item.get("VariantPropertyType")) for item in (exclude_retained_variant_properties or []))
        manager = _endpoint_managers.get((self.account_id, self.region_name))
        now = naive_utc(manager.now()) if manager is not None else None
        request = _endpoint_request(
            self,
            manager,
            "update",
            endpoint_name,
            endpoint_config_name,
            previous_config_name=endpoint.endpoint_config_name,
            deployment_config=copy.deepcopy(deployment_config) if deployment_config else None,
            retain_all_variant_properties=bool(retain_all_variant_properties),
            exclude_retained_variant_properties=excluded,
        )
        endpoint.failure_reason = None
        if deployment_config:
            endpoint.last_deployment_config = copy.deepcopy(deployment_config)
        if manager is None:  # moto's way: the change is done when the call returns
            switch_config(self, endpoint, config, retain_all=bool(retain_all_variant_properties), excluded=excluded)
            return str(endpoint.arn)
        endpoint.endpoint_status = "Updating"
        endpoint.last_modified_time = now
        endpoint.pending_deployment_summary = {
            "EndpointConfigName": endpoint_config_name,
            "StartTime": now,
            "ProductionVariants": [
                {**variant, "VariantStatus": []}
                for variant in endpoint._process_production_variants(config.production_variants)
            ],
        }
    manager.endpoint_requested(request)
    return str(endpoint.arn)


def switch_config(
    backend_: Any, endpoint: Any, config: Any, *, retain_all: bool = False, excluded: tuple[str, ...] = ()
) -> None:
    """Points `endpoint` at `config`: its variants (instance counts and weights kept with RetainAll) and capture."""
    with LOCK:
        variants = endpoint._process_production_variants(config.production_variants)
        if retain_all:
            current = {v["VariantName"]: v for v in endpoint.production_variants}
            for variant in variants:
                kept = current.get(variant["VariantName"])
                if kept is None:
                    continue
                for key in ("CurrentInstanceCount", "DesiredInstanceCount", "CurrentWeight", "DesiredWeight"):
                    if key in kept:
                        variant[key] = kept[key]
        endpoint.production_variants = variants
        if not retain_all or "DataCaptureConfig" in excluded:
            endpoint.data_capture_config = copy.deepcopy(config.data_capture_config)
        endpoint.endpoint_config_name = config.endpoint_config_name
        endpoint.pending_deployment_summary = None
        endpoint.endpoint_status = "InService"


def _wrap_create_endpoint(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: list[dict[str, str]]) -> Any:
        with LOCK:
            if endpoint_name in self.endpoints:
                raise _error(f'Cannot create already existing endpoint "{_endpoint_arn(self, endpoint_name)}".')
            endpoint = original(self, endpoint_name=endpoint_name, endpoint_config_name=endpoint_config_name, tags=tags)
            endpoint.pending_deployment_summary = None
            endpoint.last_deployment_config = None
            manager = _endpoint_managers.get((self.account_id, self.region_name))
            if manager is None:
                return endpoint
            now = naive_utc(manager.now())
            endpoint.endpoint_status = "Creating"
            endpoint.creation_time = endpoint.last_modified_time = now
            request = _endpoint_request(self, manager, "create", endpoint_name, endpoint_config_name)
        manager.endpoint_requested(request)
        return endpoint

    return create_endpoint


def _wrap_delete_endpoint(original: Callable[..., Any]) -> Callable[..., Any]:
    def delete_endpoint(self: Any, endpoint_name: str) -> None:
        with LOCK:
            endpoint = self.endpoints.get(endpoint_name)
            if endpoint is not None and endpoint.endpoint_status in IN_PROGRESS_STATES:
                raise _error(f'Cannot update in-progress endpoint "{endpoint.arn}".')
            config_name = endpoint.endpoint_config_name if endpoint is not None else ""
            original(self, endpoint_name)
            manager = _endpoint_managers.get((self.account_id, self.region_name))
            if manager is None:
                return
            request = _endpoint_request(self, manager, "delete", endpoint_name, config_name)
        manager.endpoint_requested(request)

    return delete_endpoint


def _wrap_describe(original: Callable[..., Any]) -> Callable[..., Any]:
    def describe(self: Any, *args: Any, **kwargs: Any) -> Any:
        with LOCK:  # a snapshot: the response is serialized after the lock is released
            return copy.deepcopy(original(self, *args, **kwargs))

    return describe


def _refuse_existing_job(jobs: Mapping[str, Any], name: str, kind: Literal["training", "transform"]) -> None:
    """SageMaker's refusal of a second job of one name in an account and Region (moto replaces the first)."""
    if name in jobs:
        raise _error(
            f"{kind.capitalize()} job names must be unique within an AWS account and region, and a {kind} job with "
            f"this name already exists ({jobs[name].arn})"
        )


def _take_over(managers: Mapping[tuple[str, str], Any], backend_: Any, job: Any) -> Any:
    """The manager of `backend_`'s account and Region (None: moto's own way); a job it takes is created at its time."""
    manager = managers.get((backend_.account_id, backend_.region_name))
    if manager is not None:
        job.creation_time = job.last_modified_time = naive_utc(manager.now())
    return manager


def _wrap_create_training_job(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_training_job(self: Any, training_job_name: str, **kwargs: Any) -> Any:
        with LOCK:
            _refuse_existing_job(self.training_jobs, training_job_name, "training")
            definitions = copy.deepcopy((kwargs.get("algorithm_specification") or {}).get("MetricDefinitions"))
            job = original(self, training_job_name=training_job_name, **kwargs)
            if definitions is not None:
                job.algorithm_specification["MetricDefinitions"] = definitions
            else:
                job.algorithm_specification.pop("MetricDefinitions", None)
            manager = _take_over(_training_managers, self, job)
            if manager is None:
                return job
            now = job.creation_time
            job.training_job_status = "InProgress"
            job.secondary_status = "Starting"
            job.training_start_time = None
            job.training_end_time = None
            job.final_metric_data_list = []
            job.secondary_status_transitions = [
                {"Status": "Starting", "StartTime": now, "StatusMessage": "Launching requested ML instances"}
            ]
        manager.training_job_created(self.account_id, self.region_name, training_job_name)
        return job

    return create_training_job


def validate_transform_job(params: Mapping[str, Any]) -> None:
    """SageMaker's checks on CreateTransformJob, and refusals of what the local transform does not rehearse."""
    payload = params.get("max_payload_in_mb")
    if payload is not None and not 0 <= int(payload) <= MAX_TRANSFORM_PAYLOAD_MB:
        raise _error(f"MaxPayloadInMB must be in [0, {MAX_TRANSFORM_PAYLOAD_MB}], got {payload}.")
    concurrent = params.get("max_concurrent_transforms")
    if concurrent and payload and int(concurrent) * int(payload) > MAX_TRANSFORM_PAYLOAD_MB:
        raise _error(
            f"MaxConcurrentTransforms * MaxPayloadInMB must not exceed {MAX_TRANSFORM_PAYLOAD_MB} MB, got "
            f"{concurrent} * {payload}."
        )
    if payload is not None and int(payload) == 0:
        raise _error(
            "MaxPayloadInMB 0 (HTTP chunked encoding) is not rehearsed locally: the XGBoost container does not "
            "support it."
        )
    source = ((params.get("transform_input") or {}).get("DataSource") or {}).get("S3DataSource") or {}
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise _error(f"S3DataType {source.get('S3DataType')} is not rehearsed locally; use S3Prefix.")
    split = (params.get("transform_input") or {}).get("SplitType", "None")
    if split not in TRANSFORM_SPLIT_TYPES:
        raise _error(f"SplitType {split} is not rehearsed locally; use one of {list(TRANSFORM_SPLIT_TYPES)}.")
    processing = params.get("data_processing") or {}
    if any(processing.get(k, d) != d for k, d in (("InputFilter", "$"), ("OutputFilter", "$"), ("JoinSource", "None"))):
        raise _error("DataProcessing (input/output filters, JoinSource) is not rehearsed locally.")


def _wrap_create_transform_job(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_transform_job(self: Any, transform_job_name: str, **kwargs: Any) -> Any:
        with LOCK:
            _refuse_existing_job(self.transform_jobs, transform_job_name, "transform")
            self.describe_model(kwargs.get("model_name"))  # SageMaker refuses a model that does not exist
            validate_transform_job(kwargs)
            job = original(self, transform_job_name=transform_job_name, **kwargs)
            # Fields SageMaker leaves out rather than sending empty.
            job.failure_reason = job.labeling_job_arn = job.auto_ml_job_arn = None
            manager = _take_over(_transform_managers, self, job)
            if manager is None:
                return job
            job.transform_job_status = "InProgress"
            job.transform_start_time = job.transform_end_time = None
        manager.transform_job_created(self.account_id, self.region_name, transform_job_name)
        return job

    return create_transform_job


def _list_transform_jobs(self: Any) -> Any:
    """SageMakerResponse.list_transform_jobs: moto's filters, then SageMaker's sort (default newest first), paged."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import AWSValidationException

    sort_by = self._get_param("SortBy", "CreationTime")
    sort_order = self._get_param("SortOrder", "Descending")
    if sort_by not in ("Name", "CreationTime", "Status") or sort_order not in ("Ascending", "Descending"):
        raise AWSValidationException(f"Invalid SortBy {sort_by!r} or SortOrder {sort_order!r}.")
    max_results = self._get_int_param("MaxResults") or 10
    if not 1 <= max_results <= 100:
        raise AWSValidationException(f"MaxResults must be in [1, 100], got {max_results}.")
    with LOCK:
        found = self.sagemaker_backend.list_transform_jobs(
            next_token=None,
            max_results=None,
            creation_time_after=self._get_param("CreationTimeAfter"),
            creation_time_before=self._get_param("CreationTimeBefore"),
            last_modified_time_after=self._get_param("LastModifiedTimeAfter"),
            last_modified_time_before=self._get_param("LastModifiedTimeBefore"),
            name_contains=self._get_param("NameContains"),
            status_equals=self._get_param("StatusEquals"),
        )["TransformJobSummaries"]
    key = {"Name": "TransformJobName", "CreationTime": "CreationTime", "Status": "TransformJobStatus"}[sort_by]
    found.sort(key=lambda summary: summary[key], reverse=sort_order == "Descending")
    start = int(self._get_param("NextToken") or 0)
    page = [{k: v for k, v in s.items() if v is not None} for s in found[start : start + max_results]]
    answer: dict[str, Any] = {"TransformJobSummaries": page}
    if start + max_results < len(found):
        answer["NextToken"] = str(start + max_results)
    return ActionResult(answer)


def _response_update_endpoint(self: Any) -> Any:
    from moto.core.responses import ActionResult

    arn = self.sagemaker_backend.update_endpoint(
        endpoint_name=self._get_param("EndpointName"),
        endpoint_config_name=self._get_param("EndpointConfigName"),
        retain_all_variant_properties=self._get_param("RetainAllVariantProperties"),
        exclude_retained_variant_properties=self._get_param("ExcludeRetainedVariantProperties"),
        deployment_config=self._get_param("DeploymentConfig"),
        retain_deployment_config=self._get_param("RetainDeploymentConfig"),
    )
    return ActionResult({"EndpointArn": arn})


def install_moto_extensions() -> None:
    """Adds UpdateEndpoint and SageMaker's endpoint, training-job and transform-job life cycles to moto (idempotent).

    Patches moto's classes, so it works whenever it is called before the first request it should change;
    call it before `ThreadedMotoServer.start()` to be sure.
    """
    global _installed
    with LOCK:
        if _installed:
            return
        from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
        from moto.sagemaker.responses import SageMakerResponse

        backend_cls: Any = SageMakerModelBackend
        backend_cls.update_endpoint = _update_endpoint
        backend_cls.create_endpoint = _wrap_create_endpoint(SageMakerModelBackend.create_endpoint)
        backend_cls.delete_endpoint = _wrap_delete_endpoint(SageMakerModelBackend.delete_endpoint)
        backend_cls.describe_endpoint = _wrap_describe(SageMakerModelBackend.describe_endpoint)
        backend_cls.describe_training_job = _wrap_describe(SageMakerModelBackend.describe_training_job)
        backend_cls.create_training_job = _wrap_create_training_job(SageMakerModelBackend.create_training_job)
        backend_cls.create_transform_job = _wrap_create_transform_job(SageMakerModelBackend.create_transform_job)
        backend_cls.describe_transform_job = _wrap_describe(SageMakerModelBackend.describe_transform_job)
        response_cls: Any = SageMakerResponse
        response_cls.update_endpoint = _response_update_endpoint
        response_cls.list_transform_jobs = _list_transform_jobs
        # New attributes become DescribeEndpoint fields (moto camel-cases an object's attributes); None is left out.
        endpoint_cls: Any = FakeEndpoint
        endpoint_cls.pending_deployment_summary = None
        endpoint_cls.last_deployment_config = None
        _installed = True
