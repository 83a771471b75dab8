"""What the local stage holds: the record `provision_stage` fills and every other part of the rehearsal reads.

`LocalStage` keeps each created resource (`Physical`: what Ref and Fn::GetAtt return) by stack and logical id,
and the definitions the rehearsal acts on: functions, rules and their targets, event source mappings, queues,
topics, buckets, alarms, permissions and endpoints; `StageNames` reads back the names the functions are given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from contract import names as cn

PARTITION: Final = "aws"
URL_SUFFIX: Final = "amazonaws.com"
INBOX_QUEUE: Final = "rehearsal-operators-inbox"  # the operators' inbox: not in any template


# TemplateError codes: what kind of problem, for callers and tests (the message is for people).
UNRESOLVED: Final = "UnresolvedReference"  # a reference, export, output, parameter or condition that is not there
NOT_REHEARSED: Final = "NotRehearsed"  # valid CloudFormation the rehearsal does not reproduce
INVALID_TEMPLATE: Final = "InvalidTemplate"  # a value CloudFormation itself would refuse
INVALID_ASSEMBLY: Final = "InvalidAssembly"  # not a cloud assembly, or stacks that depend on each other in a cycle


class TemplateError(ValueError):
    """A template cannot be rehearsed as written; the message names the stack, the resource and the problem.

    `code` is one of the constants above; `stack` and `resource` say where, when one resource is at fault.
    """

    def __init__(self, message: str, *, code: str = INVALID_TEMPLATE, stack: str = "", resource: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.stack = stack
        self.resource = resource


class AwsLike(Protocol):
    """What the stage needs from the local AWS: its endpoint URL (sagecycle.rehearsal.LocalAws has it)."""

    url: str


# ---------------------------------------------------------------------------------------------- what exists


@dataclass
class Physical:
    """A created (or, for unrehearsed types, a named) resource: what Ref and Fn::GetAtt return."""

    type: str
    ref: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FunctionDef:
    """A Lambda function of ours, rehearsed in-process. `key` is the `lambdas.<key>` package of its handler."""

    key: str
    name: str
    arn: str
    handler: str
    stack: str
    logical_id: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]
    dead_letter_arn: str | None
    max_retry_attempts: int = 2  # Lambda's default for asynchronous invocation
    max_event_age_s: int = 21600  # Lambda's default: 6 hours
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class TargetDef:
    """One rule target: `kind` is "lambda", "sqs" or "sns"; `function` is the function key for Lambda."""

    id: str
    arn: str
    kind: str
    function: str | None = None
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None
    dead_letter_arn: str | None = None
    max_retry_attempts: int | None = None
    max_event_age_s: int | None = None


@dataclass(frozen=True)
class RuleDef:
    name: str
    arn: str
    stack: str
    logical_id: str
    state: str
    pattern: dict[str, Any] | None
    schedule: str | None
    targets: tuple[TargetDef, ...]
    description: str = ""


@dataclass(frozen=True)
class MappingDef:
    """An SQS event source mapping: the Lambda poller delivers the queue to `function` in batches."""

    uuid: str
    queue_arn: str
    function: str
    batch_size: int
    max_batching_window_s: int
    report_batch_item_failures: bool
    enabled: bool
    max_concurrency: int | None = None


@dataclass(frozen=True)
class QueueDef:
    name: str
    url: str
    arn: str
    visibility_timeout_s: int
    redrive: dict[str, Any] | None
    stack: str
    logical_id: str


@dataclass(frozen=True)
class TopicDef:
    name: str
    arn: str
    stack: str
    logical_id: str


@dataclass(frozen=True)
class BucketDef:
    name: str
    arn: str
    eventbridge: bool  # the bucket sends its events to EventBridge (NotificationConfiguration)
    versioned: bool
    stack: str
    logical_id: str


@dataclass(frozen=True)
class AlarmDef:
    """A CloudWatch alarm as created: `kind` "metric" or "composite"; `definition` is the PutMetricAlarm /
    PutCompositeAlarm request, every field the template gives."""

    name: str
    arn: str
    kind: str
    stack: str
    logical_id: str
    definition: dict[str, Any]


@dataclass(frozen=True)
class PermissionDef:
    """A resource-based policy statement on a function (AWS::Lambda::Permission)."""

    function: str  # key
    action: str
    principal: str
    source_arn: str | None


@dataclass(frozen=True)
class EndpointDef:
    name: str
    arn: str
    config_name: str
    model_names: tuple[str, ...]
    deployment_config: dict[str, Any] | None


@dataclass(frozen=True)
class StageNames:
    """The names the functions are given (their synthesized environment), read back for the scenario."""

    data_bucket: str
    model_bucket: str
    runs_table: str
    idempotency_table: str
    champion_parameter: str
    model_package_group: str
    endpoint_name: str
    operators_topic_arn: str
    inbox_queue_url: str


@dataclass
class LocalStage:
    account: str
    region: str
    url: str
    templates: dict[str, dict[str, Any]]
    resources: dict[tuple[str, str], Physical] = field(default_factory=dict)
    functions: dict[str, FunctionDef] = field(default_factory=dict)
    rules: list[RuleDef] = field(default_factory=list)
    event_source_mappings: list[MappingDef] = field(default_factory=list)
    queues: dict[str, QueueDef] = field(default_factory=dict)  # by ARN
    topics: dict[str, TopicDef] = field(default_factory=dict)  # by ARN
    buckets: dict[str, BucketDef] = field(default_factory=dict)  # by name
    alarms: list[AlarmDef] = field(default_factory=list)
    permissions: list[PermissionDef] = field(default_factory=list)
    endpoints: list[EndpointDef] = field(default_factory=list)
    rehearsed: dict[str, int] = field(default_factory=dict)
    unrehearsed: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # template properties kept but not enforced locally
    inbox_queue_url: str = ""
    inbox_queue_arn: str = ""
    _names: StageNames | None = None

    @property
    def function_environments(self) -> dict[str, dict[str, str]]:
        """Function key -> its synthesized `Environment.Variables`, references resolved to the local stage."""
        return {key: dict(f.environment) for key, f in self.functions.items()}

    def function_by_arn(self, arn: str) -> FunctionDef | None:
        bare = arn.split(":function:")[-1].split(":")[0] if ":function:" in arn else arn
        for function in self.functions.values():
            if bare in (function.name, function.arn):
                return function
        return None

    def queue_by_url(self, url: str) -> QueueDef | None:
        return next((q for q in self.queues.values() if q.url == url), None)

    def alarm(self, name: str) -> AlarmDef:
        for alarm in self.alarms:
            if alarm.name == name:
                return alarm
        raise KeyError(f"no alarm named {name!r} in the stage")

    @property
    def names(self) -> StageNames:
        if self._names is None:
            self._names = _stage_names(self)
        return self._names


def _one(values: Iterable[str], what: str) -> str:
    found = sorted(set(values))
    if len(found) != 1:
        raise TemplateError(f"the stage should name exactly one {what}; found {found or 'none'}", code=INVALID_TEMPLATE)
    return found[0]


def _stage_names(stage: LocalStage) -> StageNames:
    """The names as the functions see them: one value per contract variable across every function."""
    envs = list(stage.function_environments.values())

    def env(name: str, fallback: Iterable[str] = ()) -> str:
        values = [e[name] for e in envs if name in e]
        return _one(values or fallback, name)

    groups = [
        p.ref.rsplit("/", 1)[-1] for p in stage.resources.values() if p.type == "AWS::SageMaker::ModelPackageGroup"
    ]
    return StageNames(
        data_bucket=env(cn.ENV_DATA_BUCKET),
        model_bucket=env(cn.ENV_MODEL_BUCKET),
        runs_table=env(cn.ENV_RUNS_TABLE),
        idempotency_table=env(cn.ENV_IDEMPOTENCY_TABLE),
        champion_parameter=env(cn.ENV_CHAMPION_PARAMETER),
        model_package_group=env(cn.ENV_MODEL_PACKAGE_GROUP, groups),
        endpoint_name=env(cn.ENV_ENDPOINT_NAME, [e.name for e in stage.endpoints]),
        operators_topic_arn=env(cn.ENV_OPERATOR_TOPIC_ARN),
        inbox_queue_url=stage.inbox_queue_url,
    )
