"""The local stage: what `cdk.out` describes, created with boto3 against the rehearsal's moto server.

Nothing here lists a bucket, a queue or an alarm by hand. `load_templates` reads the cloud assembly's manifest
(stacks in deployment order), and `provision_stage` walks each template's resources in dependency order (Ref,
Fn::GetAtt, Fn::Sub, DependsOn), resolves CloudFormation's intrinsics to the local physical names and ARNs, and
creates the resource types the lifecycle needs through the service APIs, with the properties the template gives:

- S3 buckets (versioning, default encryption, public access block, ownership, lifecycle, tags; whether the
  bucket sends its events to EventBridge is kept for the event bus), DynamoDB tables (key schema, billing,
  SSE, TTL, point-in-time recovery), SQS queues (redrive, retention, visibility, KMS), SNS topics, KMS keys
  and aliases, SSM parameters, SageMaker model package groups, the SageMaker Model / EndpointConfig /
  Endpoint (so the local hosting sees them through the sagemaker API), CloudWatch metric and composite alarms
  (every field), EventBridge rules with their targets, and `Custom::CDKBucketDeployment` (the asset in
  cdk.out copied into its bucket, as the deployment's provider would).
- Lambda functions whose handler is one of ours (`lambdas.<key>.handler.<fn>`) are rehearsed in-process by
  `sagecycle.rehearsal.functions`: the stage keeps their resolved definition and environment, their event
  source mappings, event-invoke configs and permissions.
- Everything else (IAM, networking, log groups, CloudTrail, dashboards, autoscaling, notebooks, the CDK's own
  provider functions) is counted in `LocalStage.unrehearsed`, by resource type, for the report.

moto's CloudFormation cannot deploy these templates (tags, policies, alarms), hence this reader. Names that
CloudFormation would generate (a resource without an explicit name) are generated the same way,
`<stack>-<logical id>-<suffix>`, with a deterministic suffix.

An operators' inbox (an SQS queue, not in any template) is subscribed to every topic, so notices can be read
back. A reference that cannot be resolved raises `TemplateError` naming the stack, the resource and the reason.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Final, Protocol

from contract import names as cn

PARTITION: Final = "aws"
URL_SUFFIX: Final = "amazonaws.com"
INBOX_QUEUE: Final = "rehearsal-operators-inbox"  # the operators' inbox: not in any template
_NO_VALUE: Final = object()  # AWS::NoValue: the property is removed
_DYNAMIC_REF = re.compile(r"\{\{resolve:([a-z-]+):([^}]*)\}\}")
_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


class TemplateError(ValueError):
    """A template cannot be rehearsed as written; the message names the stack, the resource and the problem."""


class AwsLike(Protocol):
    """What the stage needs from the local AWS: its endpoint URL (sagecycle.rehearsal.LocalAws has it)."""

    url: str


# ------------------------------------------------------------------------------------------------ templates


def load_templates(cdk_out: Path) -> dict[str, dict[str, Any]]:
    """Stack name -> template, in deployment order (each stack after the stacks it depends on).

    Reads `manifest.json` of the cloud assembly: every `aws:cloudformation:stack` artifact and its template file.
    """
    manifest_path = cdk_out / "manifest.json"
    if not manifest_path.is_file():
        raise TemplateError(f"{cdk_out} has no manifest.json: not a cloud assembly (run the synth first)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    artifacts: dict[str, Any] = manifest.get("artifacts", {})
    stacks = {
        name: artifact for name, artifact in artifacts.items() if artifact.get("type") == "aws:cloudformation:stack"
    }
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for name, artifact in stacks.items():
        sorter.add(name, *(d for d in artifact.get("dependencies", []) if d in stacks))
    try:
        order = list(sorter.static_order())
    except CycleError as error:
        raise TemplateError(f"the stacks depend on each other in a cycle: {error.args[1]}") from None
    templates: dict[str, dict[str, Any]] = {}
    for name in order:
        props = stacks[name].get("properties", {})
        template_file = cdk_out / props.get("templateFile", f"{name}.template.json")
        stack_name = props.get("stackName", name)
        templates[stack_name] = json.loads(template_file.read_text(encoding="utf-8"))
    return templates


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
        raise TemplateError(f"the stage should name exactly one {what}; found {found or 'none'}")
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


# -------------------------------------------------------------------------------------------- names and ARNs


def _suffix(*parts: str, length: int = 12) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return base64.b32encode(digest).decode().rstrip("=")[:length]


def generated_name(stack: str, logical_id: str, max_len: int = 255, *, lower: bool = False) -> str:
    """The name CloudFormation gives a resource that names none: `<stack>-<logical id>-<suffix>`, truncated."""
    suffix = _suffix(stack, logical_id)
    head = f"{stack}-{logical_id}"[: max_len - len(suffix) - 1]
    name = f"{head}-{suffix}"
    return name.lower() if lower else name


def _sagemaker_name(stack: str, logical_id: str) -> str:
    """SageMaker's generated names: `<logical id>-<suffix>`, at most 63 characters."""
    suffix = _suffix(stack, logical_id)
    return f"{logical_id[: 63 - len(suffix) - 1]}-{suffix}"


def _hex_id(prefix: str, *parts: str, length: int = 17) -> str:
    return f"{prefix}-{hashlib.sha256('/'.join(parts).encode()).hexdigest()[:length]}"


# ------------------------------------------------------------------------------------------------ resolver


class _Resolver:
    """CloudFormation's intrinsic functions over the local stage, for one stack at a time."""

    def __init__(self, stage: LocalStage, ssm_value: Callable[[str, bool], str]) -> None:
        self.stage = stage
        self.ssm_value = ssm_value
        self.stack = ""
        self.where = ""

    def fail(self, problem: str) -> TemplateError:
        return TemplateError(f"{self.stack} {self.where}: {problem}")

    @property
    def template(self) -> dict[str, Any]:
        return self.stage.templates[self.stack]

    # -- references
    def physical(self, logical_id: str, stack: str | None = None) -> Physical:
        stack = stack or self.stack
        found = self.stage.resources.get((stack, logical_id))
        if found is not None:
            return found
        resources = self.stage.templates[stack].get("Resources", {})
        if logical_id not in resources:
            raise self.fail(f"reference to {logical_id!r}, which is not a resource of {stack}")
        # Not created (yet): an unrehearsed type gets the name CloudFormation would give it.
        placeholder = _placeholder(self.stage, stack, logical_id, resources[logical_id])
        self.stage.resources[(stack, logical_id)] = placeholder
        return placeholder

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": self.stage.account,
            "AWS::Region": self.stage.region,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": self.stack,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{self.stage.region}:{self.stage.account}:stack/"
            f"{self.stack}/{_suffix(self.stack, length=8).lower()}",
            "AWS::NoValue": _NO_VALUE,
            "AWS::NotificationARNs": [],
        }
        if name in pseudo:
            return pseudo[name]
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            return self.parameter(name, parameters[name])
        return self.physical(name).ref

    def parameter(self, name: str, spec: Mapping[str, Any]) -> Any:
        if "Default" not in spec:
            raise self.fail(f"parameter {name} has no default and the rehearsal passes none")
        default = spec["Default"]
        if str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
            return self.ssm_value(str(default), False)
        return default

    def get_att(self, logical_id: str, attribute: str, stack: str | None = None) -> Any:
        physical = self.physical(logical_id, stack)
        if attribute in physical.attrs:
            return physical.attrs[attribute]
        raise self.fail(f"Fn::GetAtt {logical_id}.{attribute}: {physical.type} has no such attribute here")

    def output(self, stack: str, output_name: str) -> Any:
        if stack not in self.stage.templates:
            raise self.fail(f"Fn::GetStackOutput names stack {stack!r}, which is not in the assembly")
        outputs = self.stage.templates[stack].get("Outputs", {})
        if output_name not in outputs:
            raise self.fail(f"stack {stack} has no output {output_name!r}")
        saved = self.stack, self.where
        self.stack, self.where = stack, f"output {output_name}"
        try:
            return self.resolve(outputs[output_name]["Value"])
        finally:
            self.stack, self.where = saved

    def import_value(self, export_name: str) -> Any:
        for stack, template in self.stage.templates.items():
            for output_name, output in template.get("Outputs", {}).items():
                export = output.get("Export", {}).get("Name")
                if export is None:
                    continue
                saved = self.stack
                self.stack = stack
                try:
                    resolved = self.resolve(export)
                finally:
                    self.stack = saved
                if resolved == export_name:
                    return self.output(stack, output_name)
        raise self.fail(f"Fn::ImportValue {export_name!r}: no stack exports it")

    # -- values
    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                if key == "Ref":
                    return self.ref(str(arg))
                if key.startswith("Fn::") or key == "Condition":
                    return self.function(key, arg)
            out: dict[str, Any] = {}
            for key, item in value.items():
                resolved = self.resolve(item)
                if resolved is not _NO_VALUE:
                    out[key] = resolved
            return out
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not _NO_VALUE]
        if isinstance(value, str) and "{{resolve:" in value:
            return self.dynamic(value)
        return value

    def dynamic(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            service, reference = match.group(1), match.group(2)
            if service in ("ssm", "ssm-secure"):
                name = reference.split(":")[0] if not reference.startswith("arn:") else reference
                return self.ssm_value(name, service == "ssm-secure")
            raise self.fail(f"dynamic reference {{{{resolve:{service}:...}}}} is not rehearsed")

        return _DYNAMIC_REF.sub(replace, text)

    def string(self, value: Any, what: str) -> str:
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, (int, float, str)):
            return str(resolved)
        raise self.fail(f"{what} must be a string, got {resolved!r}")

    def function(self, name: str, arg: Any) -> Any:
        if name == "Fn::GetAtt":
            logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
            return self.get_att(logical_id, attribute)
        if name == "Fn::Join":
            separator, items = arg
            return str(separator).join(self.string(i, "Fn::Join item") for i in self.resolve(items))
        if name == "Fn::Sub":
            return self.sub(arg)
        if name == "Fn::Select":
            index, items = arg
            items = self.resolve(items)
            position = int(self.resolve(index))
            if not isinstance(items, list) or not 0 <= position < len(items):
                raise self.fail(f"Fn::Select index {position} out of range of {items!r}")
            return items[position]
        if name == "Fn::Split":
            separator, source = arg
            return self.string(source, "Fn::Split source").split(separator)
        if name == "Fn::ImportValue":
            return self.import_value(self.string(arg, "Fn::ImportValue name"))
        if name == "Fn::GetStackOutput":
            spec = self.resolve(arg)
            return self.output(spec["StackName"], spec["OutputName"])
        if name == "Fn::Base64":
            return base64.b64encode(self.string(arg, "Fn::Base64 input").encode()).decode()
        if name == "Fn::GetAZs":
            return [f"{self.stage.region}{zone}" for zone in "abc"]
        if name == "Fn::FindInMap":
            mapping, key, attribute = (self.resolve(a) for a in arg[:3])
            return self.template["Mappings"][mapping][key][attribute]
        if name == "Fn::If":
            condition, when_true, when_false = arg
            return self.resolve(when_true if self.condition(condition) else when_false)
        if name in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"):
            return self.logic(name, arg)
        if name == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        raise self.fail(f"{name} is not rehearsed")

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            body = match.group(1)
            if body.startswith("!"):
                return "${" + body[1:] + "}"
            if body in variables:
                return str(variables[body])
            if "." in body and not body.startswith("AWS::"):
                logical_id, attribute = body.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(body))

        return _SUB_VAR.sub(replace, self.dynamic(text) if "{{resolve:" in text else text)

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions", {})
        if name not in conditions:
            raise self.fail(f"condition {name!r} is not defined")
        return bool(self.resolve(conditions[name]))

    def logic(self, name: str, arg: Any) -> bool:
        if name == "Condition":
            return self.condition(str(arg))
        if name == "Fn::Equals":
            left, right = (self.resolve(a) for a in arg)
            return bool(left == right)
        if name == "Fn::Not":
            return not self.resolve(arg[0])
        if name == "Fn::And":
            return all(self.resolve(a) for a in arg)
        return any(self.resolve(a) for a in arg)


# ------------------------------------------------------------------------ placeholders for unrehearsed types


def _placeholder(stage: LocalStage, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    """Ref and the usual attributes of a resource that is not created here, as CloudFormation would name it.

    Only names: a reference to an unrehearsed resource (a role ARN in a model, a subnet in a VPC config) must
    resolve, but nothing behind it exists locally.
    """
    kind = resource.get("Type", "")
    props = resource.get("Properties", {})
    account, region = stage.account, stage.region

    def literal(key: str) -> str | None:
        value = props.get(key)
        return value if isinstance(value, str) else None

    name = generated_name(stack, logical_id, 64)
    if kind == "AWS::IAM::Role":
        role = literal("RoleName") or name
        path = literal("Path") or "/"
        return Physical(
            kind,
            role,
            {"Arn": f"arn:{PARTITION}:iam::{account}:role{path}{role}", "RoleId": _hex_id("AROA", stack, logical_id)},
        )
    if kind == "AWS::IAM::ManagedPolicy":
        policy = literal("ManagedPolicyName") or name
        arn = f"arn:{PARTITION}:iam::{account}:policy/{policy}"
        return Physical(kind, arn, {"PolicyArn": arn})
    if kind == "AWS::Logs::LogGroup":
        group = literal("LogGroupName") or name
        return Physical(kind, group, {"Arn": f"arn:{PARTITION}:logs:{region}:{account}:log-group:{group}:*"})
    if kind == "AWS::Lambda::LayerVersion":
        layer = literal("LayerName") or name
        return Physical(kind, f"arn:{PARTITION}:lambda:{region}:{account}:layer:{layer}:1", {})
    if kind == "AWS::Lambda::Function":
        function = literal("FunctionName") or name
        return Physical(kind, function, {"Arn": f"arn:{PARTITION}:lambda:{region}:{account}:function:{function}"})
    if kind == "AWS::CloudTrail::Trail":
        trail = literal("TrailName") or name
        return Physical(kind, trail, {"Arn": f"arn:{PARTITION}:cloudtrail:{region}:{account}:trail/{trail}"})
    if kind == "AWS::EC2::SecurityGroup":
        group_id = _hex_id("sg", stack, logical_id)
        return Physical(kind, group_id, {"GroupId": group_id, "VpcId": _hex_id("vpc", stack)})
    prefixes = {
        "AWS::EC2::VPC": "vpc",
        "AWS::EC2::Subnet": "subnet",
        "AWS::EC2::RouteTable": "rtb",
        "AWS::EC2::VPCEndpoint": "vpce",
        "AWS::EC2::FlowLog": "fl",
    }
    if kind in prefixes:
        resource_id = _hex_id(prefixes[kind], stack, logical_id)
        return Physical(kind, resource_id, {"VpcId": resource_id} if kind == "AWS::EC2::VPC" else {})
    if kind == "AWS::SageMaker::NotebookInstance":
        notebook = literal("NotebookInstanceName") or name
        return Physical(
            kind,
            f"arn:{PARTITION}:sagemaker:{region}:{account}:notebook-instance/{notebook.lower()}",
            {"NotebookInstanceName": notebook},
        )
    return Physical(kind, name, {})


# ------------------------------------------------------------------------------------------------ provision


def _clients(url: str, region: str) -> Callable[[str], Any]:
    import boto3

    cache: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in cache:
            cache[service] = boto3.client(service, endpoint_url=url, region_name=region)
        return cache[service]

    return client


def _references(value: Any, found: set[str]) -> set[str]:
    """Logical IDs a template value refers to in its own stack (Ref, Fn::GetAtt, ${...} of Fn::Sub)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str) and not item.startswith("AWS::"):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item.split(".")[0] if isinstance(item, str) else str(item[0]))
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                for name in _SUB_VAR.findall(text):
                    if not name.startswith(("!", "AWS::")):
                        found.add(name.split(".")[0])
                if not isinstance(item, str):
                    _references(item[1], found)
            else:
                _references(item, found)
    elif isinstance(value, list):
        for item in value:
            _references(item, found)
    return found


def _creation_order(template: Mapping[str, Any]) -> list[str]:
    resources = template.get("Resources", {})
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else list(depends)
        refs = _references(resource.get("Properties", {}), set()) | set(depends)
        sorter.add(logical_id, *(r for r in refs if r in resources and r != logical_id))
    return list(sorter.static_order())


def _tags(props: Mapping[str, Any]) -> list[dict[str, str]]:
    tags = props.get("Tags", [])
    if isinstance(tags, dict):
        return [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags]


def _drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


class _Provisioner:
    def __init__(self, stage: LocalStage, cdk_out: Path | None) -> None:
        self.stage = stage
        self.cdk_out = cdk_out
        self.client = _clients(stage.url, stage.region)
        self.resolver = _Resolver(stage, self.ssm_value)
        self.event_invoke_configs: dict[str, dict[str, Any]] = {}  # function name -> config

    def ssm_value(self, name: str, decrypt: bool) -> str:
        from botocore.exceptions import ClientError

        try:
            parameter = self.client("ssm").get_parameter(Name=name, WithDecryption=decrypt)["Parameter"]
        except ClientError:
            raise self.resolver.fail(f"dynamic reference to SSM parameter {name!r}, which does not exist") from None
        return str(parameter["Value"])

    def count(self, table: dict[str, int], kind: str) -> None:
        table[kind] = table.get(kind, 0) + 1

    def run(self) -> None:
        for stack, template in self.stage.templates.items():
            self.resolver.stack = stack
            for logical_id in _creation_order(template):
                resource = template["Resources"][logical_id]
                self.resolver.where = f"{logical_id} ({resource.get('Type')})"
                if "Condition" in resource and not self.resolver.condition(resource["Condition"]):
                    continue
                self.create(stack, logical_id, resource)
        self.finish_functions()
        self.subscribe_inbox()

    # -- dispatch
    def create(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> None:
        kind = str(resource.get("Type", ""))
        if kind == "AWS::CDK::Metadata":
            return
        creator = _CREATORS.get(kind)
        physical = creator(self, stack, logical_id, resource) if creator else None
        if physical is None:
            self.count(self.stage.unrehearsed, kind)
            return
        self.stage.resources[(stack, logical_id)] = physical
        self.count(self.stage.rehearsed, kind)

    def props(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        resolved = self.resolver.resolve(resource.get("Properties", {}))
        return dict(resolved) if isinstance(resolved, dict) else {}

    # -- KMS
    def kms_key(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        kms = self.client("kms")
        request = _drop_none(
            {
                "Description": props.get("Description"),
                "KeyUsage": props.get("KeyUsage"),
                "KeySpec": props.get("KeySpec"),
                "Tags": [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in _tags(props)] or None,
            }
        )
        if "KeyPolicy" in props:
            request["Policy"] = json.dumps(props["KeyPolicy"])
        metadata = kms.create_key(**request)["KeyMetadata"]
        if props.get("EnableKeyRotation"):
            rotation = (
                {"RotationPeriodInDays": int(props["RotationPeriodInDays"])} if "RotationPeriodInDays" in props else {}
            )
            kms.enable_key_rotation(KeyId=metadata["KeyId"], **rotation)
        return Physical(resource["Type"], metadata["KeyId"], {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]})

    def kms_alias(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        target = str(props["TargetKeyId"]).split("/")[-1]
        self.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=target)
        return Physical(resource["Type"], props["AliasName"], {})

    # -- S3
    def s3_bucket(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        s3 = self.client("s3")
        name = props.get("BucketName") or generated_name(stack, logical_id, 63, lower=True)
        if self.stage.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.stage.region})
        versioning = props.get("VersioningConfiguration", {}).get("Status")
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
        encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
        if encryption:
            rules = []
            for rule in encryption:
                default = rule.get("ServerSideEncryptionByDefault", {})
                rules.append(
                    _drop_none(
                        {
                            "ApplyServerSideEncryptionByDefault": _drop_none(
                                {
                                    "SSEAlgorithm": default.get("SSEAlgorithm"),
                                    "KMSMasterKeyID": default.get("KMSMasterKeyID"),
                                }
                            ),
                            "BucketKeyEnabled": rule.get("BucketKeyEnabled"),
                        }
                    )
                )
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        lifecycle = props.get("LifecycleConfiguration", {}).get("Rules")
        if lifecycle:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in lifecycle]}
            )
            self.stage.notes.append(f"s3://{name}: lifecycle rules stored, not applied (nothing expires locally)")
        if props.get("LoggingConfiguration"):
            self.stage.notes.append(f"s3://{name}: server access logging not rehearsed")
        if _tags(props):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(props)})
        eventbridge = bool(
            props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {}).get("EventBridgeEnabled")
        )
        arn = f"arn:{PARTITION}:s3:::{name}"
        self.stage.buckets[name] = BucketDef(name, arn, eventbridge, versioning == "Enabled", stack, logical_id)
        region = self.stage.region
        return Physical(
            resource["Type"],
            name,
            {
                "Arn": arn,
                "DomainName": f"{name}.s3.{URL_SUFFIX}",
                "RegionalDomainName": f"{name}.s3.{region}.{URL_SUFFIX}",
                "DualStackDomainName": f"{name}.s3.dualstack.{region}.{URL_SUFFIX}",
                "WebsiteURL": f"http://{name}.s3-website-{region}.{URL_SUFFIX}",
            },
        )

    def bucket_deployment(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical | None:
        """CDK's BucketDeployment: the asset's files, from cdk.out, copied under the destination prefix."""
        if self.cdk_out is None:
            return None
        props = self.props(resource)
        if props.get("SourceMarkers") and any(props["SourceMarkers"]):
            raise self.resolver.fail(
                "a BucketDeployment with deploy-time markers (Source.data/jsonData) is not rehearsed"
            )
        if props.get("Extract") is False:
            raise self.resolver.fail("a BucketDeployment with extract=False is not rehearsed")
        assets = json.loads((self.cdk_out / f"{stack}.assets.json").read_text(encoding="utf-8")).get("files", {})
        by_key = {
            destination["objectKey"]: file["source"]
            for file in assets.values()
            for destination in file.get("destinations", {}).values()
        }
        s3 = self.client("s3")
        bucket = props["DestinationBucketName"]
        prefix = props.get("DestinationBucketKeyPrefix", "")
        for key in props.get("SourceObjectKeys", []):
            source = by_key.get(key)
            if source is None:
                raise self.resolver.fail(f"asset {key} is not in {stack}.assets.json")
            for name, body in _asset_files(self.cdk_out / source["path"], source.get("packaging", "file")):
                s3.put_object(Bucket=bucket, Key=f"{prefix}{name}", Body=body)
        return Physical(resource["Type"], generated_name(stack, logical_id), {})

    # -- DynamoDB
    def dynamodb_table(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        dynamodb = self.client("dynamodb")
        name = props.get("TableName") or generated_name(stack, logical_id)
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        for key in ("ProvisionedThroughput", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
            if key in props:
                request[key] = props[key]
        if request["BillingMode"] == "PROVISIONED" and "ProvisionedThroughput" not in request:
            raise self.resolver.fail("a PROVISIONED table needs ProvisionedThroughput")
        sse = props.get("SSESpecification")
        if sse:
            request["SSESpecification"] = _drop_none(
                {
                    "Enabled": sse.get("SSEEnabled"),
                    "SSEType": sse.get("SSEType"),
                    "KMSMasterKeyId": sse.get("KMSMasterKeyId"),
                }
            )
        if "DeletionProtectionEnabled" in props:
            request["DeletionProtectionEnabled"] = bool(props["DeletionProtectionEnabled"])
        if _tags(props):
            request["Tags"] = _tags(props)
        description = dynamodb.create_table(**request)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
            self.stage.notes.append(f"table {name}: TTL on {ttl['AttributeName']} stored; moto deletes nothing")
        if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        attrs = {"Arn": description["TableArn"]}
        if description.get("LatestStreamArn"):
            attrs["StreamArn"] = description["LatestStreamArn"]
        return Physical(resource["Type"], name, attrs)

    # -- SQS / SNS
    def sqs_queue(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        sqs = self.client("sqs")
        fifo = bool(props.get("FifoQueue"))
        name = props.get("QueueName") or (
            generated_name(stack, logical_id, 75) + ".fifo" if fifo else generated_name(stack, logical_id, 80)
        )
        attributes: dict[str, str] = {}
        for key in (
            "DelaySeconds",
            "MaximumMessageSize",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
            "VisibilityTimeout",
            "KmsMasterKeyId",
            "KmsDataKeyReusePeriodSeconds",
            "FifoQueue",
            "ContentBasedDeduplication",
            "SqsManagedSseEnabled",
            "DeduplicationScope",
            "FifoThroughputLimit",
        ):
            if key in props:
                value = props[key]
                attributes[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        for key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if key in props:
                attributes[key] = json.dumps(props[key])
        request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if _tags(props):
            request["tags"] = {t["Key"]: t["Value"] for t in _tags(props)}
        url = sqs.create_queue(**request)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.stage.queues[arn] = QueueDef(
            name=name,
            url=url,
            arn=arn,
            visibility_timeout_s=int(props.get("VisibilityTimeout", 30)),
            redrive=props.get("RedrivePolicy"),
            stack=stack,
            logical_id=logical_id,
        )
        return Physical(resource["Type"], url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def sns_topic(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        sns = self.client("sns")
        fifo = bool(props.get("FifoTopic"))
        name = props.get("TopicName") or (
            generated_name(stack, logical_id, 251) + ".fifo" if fifo else generated_name(stack, logical_id, 256)
        )
        attributes = {key: str(props[key]) for key in ("DisplayName", "KmsMasterKeyId", "FifoTopic") if key in props}
        request: dict[str, Any] = {"Name": name, "Attributes": attributes}
        if _tags(props):
            request["Tags"] = _tags(props)
        arn = sns.create_topic(**request)["TopicArn"]
        for subscription in props.get("Subscription", []):
            sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
        self.stage.topics[arn] = TopicDef(name, arn, stack, logical_id)
        return Physical(resource["Type"], arn, {"TopicArn": arn, "TopicName": name})

    def subscribe_inbox(self) -> None:
        """The operators' inbox: one queue subscribed to every topic, so every notice can be read back."""
        sqs, sns = self.client("sqs"), self.client("sns")
        url = sqs.create_queue(QueueName=INBOX_QUEUE)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for topic in self.stage.topics:
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        self.stage.inbox_queue_url, self.stage.inbox_queue_arn = url, arn

    # -- SSM, SageMaker
    def ssm_parameter(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        name = props.get("Name") or f"CFN-{logical_id}-{_suffix(stack, logical_id)}"
        request = _drop_none(
            {
                "Name": name,
                "Value": str(props["Value"]),
                "Type": props.get("Type", "String"),
                "Description": props.get("Description"),
                "AllowedPattern": props.get("AllowedPattern"),
                "Tier": props.get("Tier"),
                "DataType": props.get("DataType"),
                "Tags": _tags(props) or None,
            }
        )
        self.client("ssm").put_parameter(**request)
        return Physical(resource["Type"], name, {"Type": request["Type"], "Value": request["Value"]})

    def model_package_group(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        name = props.get("ModelPackageGroupName") or generated_name(stack, logical_id, 63)
        request = _drop_none(
            {
                "ModelPackageGroupName": name,
                "ModelPackageGroupDescription": props.get("ModelPackageGroupDescription"),
                "Tags": _tags(props) or None,
            }
        )
        arn = self.client("sagemaker").create_model_package_group(**request)["ModelPackageGroupArn"]
        return Physical(resource["Type"], arn, {"ModelPackageGroupArn": arn, "ModelPackageGroupName": name})

    def sagemaker_model(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        name = props.get("ModelName") or _sagemaker_name(stack, logical_id)
        request: dict[str, Any] = {"ModelName": name, "ExecutionRoleArn": props["ExecutionRoleArn"]}
        for key in (
            "PrimaryContainer",
            "Containers",
            "VpcConfig",
            "EnableNetworkIsolation",
            "InferenceExecutionConfig",
        ):
            if key in props:
                request[key] = props[key]
        if _tags(props):
            request["Tags"] = _tags(props)
        arn = self.client("sagemaker").create_model(**request)["ModelArn"]
        return Physical(resource["Type"], arn, {"ModelName": name})

    def endpoint_config(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        name = props.get("EndpointConfigName") or _sagemaker_name(stack, logical_id)
        request: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": props["ProductionVariants"]}
        for key in ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ShadowProductionVariants"):
            if key in props:
                request[key] = props[key]
        if _tags(props):
            request["Tags"] = _tags(props)
        arn = self.client("sagemaker").create_endpoint_config(**request)["EndpointConfigArn"]
        return Physical(resource["Type"], arn, {"EndpointConfigName": name})

    def endpoint(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        name = props.get("EndpointName") or _sagemaker_name(stack, logical_id)
        request: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": props["EndpointConfigName"]}
        if "DeploymentConfig" in props:
            request["DeploymentConfig"] = props["DeploymentConfig"]
        if _tags(props):
            request["Tags"] = _tags(props)
        arn = self.client("sagemaker").create_endpoint(**request)["EndpointArn"]
        config = self.client("sagemaker").describe_endpoint_config(EndpointConfigName=props["EndpointConfigName"])
        models = tuple(v["ModelName"] for v in config["ProductionVariants"])
        self.stage.endpoints.append(
            EndpointDef(name, arn, props["EndpointConfigName"], models, props.get("DeploymentConfig"))
        )
        return Physical(resource["Type"], arn, {"EndpointName": name})

    # -- CloudWatch
    def metric_alarm(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        name = props.get("AlarmName") or generated_name(stack, logical_id)
        request: dict[str, Any] = {"AlarmName": name}
        for key in (
            "AlarmDescription",
            "ActionsEnabled",
            "AlarmActions",
            "OKActions",
            "InsufficientDataActions",
            "MetricName",
            "Namespace",
            "Statistic",
            "ExtendedStatistic",
            "Dimensions",
            "Period",
            "Unit",
            "EvaluationPeriods",
            "DatapointsToAlarm",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "EvaluateLowSampleCountPercentile",
            "Metrics",
            "ThresholdMetricId",
        ):
            if key in props:
                request[key] = props[key]
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in request:
                request[key] = int(request[key])
        if "Threshold" in request:
            request["Threshold"] = float(request["Threshold"])
        if _tags(props):
            request["Tags"] = _tags(props)
        cloudwatch = self.client("cloudwatch")
        cloudwatch.put_metric_alarm(**request)
        # A new alarm starts in INSUFFICIENT_DATA on CloudWatch (moto starts it in OK).
        cloudwatch.set_alarm_state(
            AlarmName=name, StateValue="INSUFFICIENT_DATA", StateReason="Unchecked: Initial alarm creation"
        )
        arn = f"arn:{PARTITION}:cloudwatch:{self.stage.region}:{self.stage.account}:alarm:{name}"
        self.stage.alarms.append(AlarmDef(name, arn, "metric", stack, logical_id, request))
        return Physical(resource["Type"], name, {"Arn": arn})

    def composite_alarm(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        name = props.get("AlarmName") or generated_name(stack, logical_id)
        request: dict[str, Any] = {"AlarmName": name, "AlarmRule": props["AlarmRule"]}
        for key in (
            "AlarmDescription",
            "ActionsEnabled",
            "AlarmActions",
            "OKActions",
            "InsufficientDataActions",
            "ActionsSuppressor",
            "ActionsSuppressorWaitPeriod",
            "ActionsSuppressorExtensionPeriod",
        ):
            if key in props:
                request[key] = props[key]
        if _tags(props):
            request["Tags"] = _tags(props)
        _put_composite_alarm(self.stage, request)
        arn = f"arn:{PARTITION}:cloudwatch:{self.stage.region}:{self.stage.account}:alarm:{name}"
        self.stage.alarms.append(AlarmDef(name, arn, "composite", stack, logical_id, request))
        return Physical(resource["Type"], name, {"Arn": arn})

    # -- EventBridge
    def events_rule(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
        props = self.props(resource)
        events = self.client("events")
        name = props.get("Name") or generated_name(stack, logical_id, 64)
        request = _drop_none(
            {
                "Name": name,
                "Description": props.get("Description"),
                "State": props.get("State", "ENABLED"),
                "ScheduleExpression": props.get("ScheduleExpression"),
                "EventBusName": props.get("EventBusName"),
                "EventPattern": json.dumps(props["EventPattern"]) if "EventPattern" in props else None,
                "Tags": _tags(props) or None,
            }
        )
        arn = events.put_rule(**request)["RuleArn"]
        targets = []
        for target in props.get("Targets", []):
            targets.append(self.target(target))
            api_target = _drop_none(
                {
                    "Id": target["Id"],
                    "Arn": target["Arn"],
                    "Input": target.get("Input"),
                    "InputPath": target.get("InputPath"),
                    "InputTransformer": target.get("InputTransformer"),
                    "RetryPolicy": target.get("RetryPolicy"),
                    "DeadLetterConfig": target.get("DeadLetterConfig"),
                }
            )
            events.put_targets(Rule=name, EventBusName=props.get("EventBusName", "default"), Targets=[api_target])
        self.stage.rules.append(
            RuleDef(
                name=name,
                arn=arn,
                stack=stack,
                logical_id=logical_id,
                state=request["State"],
                pattern=props.get("EventPattern"),
                schedule=props.get("ScheduleExpression"),
                targets=tuple(targets),
                description=props.get("Description", ""),
            )
        )
        return Physical(resource["Type"], name, {"Arn": arn})

    def target(self, target: Mapping[str, Any]) -> TargetDef:
        arn = str(target["Arn"])
        service = arn.split(":")[2] if arn.startswith("arn:") else ""
        kinds = {"lambda": "lambda", "sqs": "sqs", "sns": "sns"}
        if service not in kinds:
            raise self.resolver.fail(f"rule target {arn} ({service or 'not an ARN'}) is not rehearsed")
        retry = target.get("RetryPolicy", {})
        return TargetDef(
            id=str(target["Id"]),
            arn=arn,
            kind=kinds[service],
            function=None,  # filled in once every function is known
            input=target.get("Input"),
            input_path=target.get("InputPath"),
            input_transformer=target.get("InputTransformer"),
            dead_letter_arn=target.get("DeadLetterConfig", {}).get("Arn"),
            max_retry_attempts=retry.get("MaximumRetryAttempts"),
            max_event_age_s=retry.get("MaximumEventAgeInSeconds"),
        )

    # -- Lambda (in-process)
    def lambda_function(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical | None:
        raw = resource.get("Properties", {})
        handler = raw.get("Handler")
        key = _rehearsable_handler(handler)
        if key is None:
            return None  # the CDK's providers and anything not ours: counted as unrehearsed
        props = self.props(resource)
        name = props.get("FunctionName") or generated_name(stack, logical_id, 64)
        arn = f"arn:{PARTITION}:lambda:{self.stage.region}:{self.stage.account}:function:{name}"
        variables = props.get("Environment", {}).get("Variables", {})
        environment = {k: self.resolver.string(v, f"environment variable {k}") for k, v in variables.items()}
        if key in self.stage.functions:
            raise self.resolver.fail(f"two functions run handler package lambdas.{key}")
        self.stage.functions[key] = FunctionDef(
            key=key,
            name=name,
            arn=arn,
            handler=str(handler),
            stack=stack,
            logical_id=logical_id,
            timeout_s=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment=environment,
            dead_letter_arn=props.get("DeadLetterConfig", {}).get("TargetArn"),
            reserved_concurrency=props.get("ReservedConcurrentExecutions"),
        )
        return Physical(resource["Type"], name, {"Arn": arn})

    def event_invoke_config(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical | None:
        props = self.props(resource)
        self.event_invoke_configs[str(props["FunctionName"])] = props
        return Physical(resource["Type"], _hex_id("eic", stack, logical_id), {})

    def event_source_mapping(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical | None:
        props = self.props(resource)
        source = str(props.get("EventSourceArn", ""))
        function = self.stage.function_by_arn(str(props["FunctionName"]))
        if not source.startswith(f"arn:{PARTITION}:sqs:") or function is None:
            return None  # streams, Kafka, or a function not rehearsed
        uuid = _hex_id("esm", stack, logical_id, length=32).removeprefix("esm-")
        uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:32]}"
        self.stage.event_source_mappings.append(
            MappingDef(
                uuid=uuid,
                queue_arn=source,
                function=function.key,
                batch_size=int(props.get("BatchSize", 10)),
                max_batching_window_s=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                enabled=bool(props.get("Enabled", True)),
                max_concurrency=props.get("ScalingConfig", {}).get("MaximumConcurrency"),
            )
        )
        return Physical(resource["Type"], uuid, {"Id": uuid})

    def lambda_permission(self, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical | None:
        props = self.props(resource)
        function = self.stage.function_by_arn(str(props["FunctionName"]))
        if function is None:
            return None
        self.stage.permissions.append(
            PermissionDef(function.key, str(props["Action"]), str(props["Principal"]), props.get("SourceArn"))
        )
        return Physical(resource["Type"], generated_name(stack, logical_id), {})

    def finish_functions(self) -> None:
        """Event-invoke configs onto their functions; rule targets onto function keys."""
        for reference, config in self.event_invoke_configs.items():
            function = self.stage.function_by_arn(reference)
            if function is None:
                continue
            updated = dict(function.__dict__)
            if "MaximumRetryAttempts" in config:
                updated["max_retry_attempts"] = int(config["MaximumRetryAttempts"])
            if "MaximumEventAgeInSeconds" in config:
                updated["max_event_age_s"] = int(config["MaximumEventAgeInSeconds"])
            self.stage.functions[function.key] = FunctionDef(**updated)
        rules = []
        for rule in self.stage.rules:
            targets = []
            for target in rule.targets:
                if target.kind == "lambda":
                    function = self.stage.function_by_arn(target.arn)
                    if function is None:
                        raise TemplateError(
                            f"{rule.stack} rule {rule.logical_id}: target {target.arn} is not rehearsed"
                        )
                    target = TargetDef(**{**target.__dict__, "function": function.key})
                targets.append(target)
            rules.append(RuleDef(**{**rule.__dict__, "targets": tuple(targets)}))
        self.stage.rules[:] = rules


def _rehearsable_handler(handler: Any) -> str | None:
    """`lambdas.<key>.handler.<fn>` -> key, when the module exists in this checkout."""
    import importlib.util

    if not isinstance(handler, str) or not handler.startswith("lambdas."):
        return None
    module = handler.rsplit(".", 1)[0]
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except ModuleNotFoundError:
        return None
    return module.split(".")[1]


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A lifecycle rule in CloudFormation's shape -> the S3 API's shape."""
    api: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule.get("Status", "Enabled")}
    api["Filter"] = {"Prefix": rule["Prefix"]} if "Prefix" in rule else {"Prefix": ""}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return api


def _asset_files(path: Path, packaging: str) -> Iterable[tuple[str, bytes]]:
    """(relative name, bytes) of a cdk.out asset: a directory, or a zip file when packaged as one."""
    if path.is_dir():
        for item in sorted(path.rglob("*")):
            if item.is_file():
                yield item.relative_to(path).as_posix(), item.read_bytes()
        return
    if packaging == "file" and path.suffix == ".zip":
        with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield info.filename, archive.read(info)
        return
    yield path.name, path.read_bytes()


def _put_composite_alarm(stage: LocalStage, request: Mapping[str, Any]) -> None:
    """PutCompositeAlarm, through moto's own backend: moto's server has the model but no route for it."""
    from moto.backends import get_backend

    backend = get_backend("cloudwatch")[stage.account][stage.region]
    backend.put_metric_alarm(
        name=request["AlarmName"],
        namespace="",
        metric_name="",
        comparison_operator="",
        evaluation_periods=0,
        period=0,
        threshold=0.0,
        statistic="",
        description=request.get("AlarmDescription", ""),
        dimensions=[],
        alarm_actions=list(request.get("AlarmActions", [])),
        ok_actions=list(request.get("OKActions", [])),
        insufficient_data_actions=list(request.get("InsufficientDataActions", [])),
        actions_enabled=bool(request.get("ActionsEnabled", True)),
        rule=request["AlarmRule"],
        tags=list(request.get("Tags", [])),
    )
    backend.set_alarm_state(request["AlarmName"], "Unchecked: Initial alarm creation", "{}", "INSUFFICIENT_DATA")


_CREATORS: dict[str, Callable[[_Provisioner, str, str, Mapping[str, Any]], Physical | None]] = {
    "AWS::KMS::Key": _Provisioner.kms_key,
    "AWS::KMS::Alias": _Provisioner.kms_alias,
    "AWS::S3::Bucket": _Provisioner.s3_bucket,
    "Custom::CDKBucketDeployment": _Provisioner.bucket_deployment,
    "AWS::DynamoDB::Table": _Provisioner.dynamodb_table,
    "AWS::SQS::Queue": _Provisioner.sqs_queue,
    "AWS::SNS::Topic": _Provisioner.sns_topic,
    "AWS::SSM::Parameter": _Provisioner.ssm_parameter,
    "AWS::SageMaker::ModelPackageGroup": _Provisioner.model_package_group,
    "AWS::SageMaker::Model": _Provisioner.sagemaker_model,
    "AWS::SageMaker::EndpointConfig": _Provisioner.endpoint_config,
    "AWS::SageMaker::Endpoint": _Provisioner.endpoint,
    "AWS::CloudWatch::Alarm": _Provisioner.metric_alarm,
    "AWS::CloudWatch::CompositeAlarm": _Provisioner.composite_alarm,
    "AWS::Events::Rule": _Provisioner.events_rule,
    "AWS::Lambda::Function": _Provisioner.lambda_function,
    "AWS::Lambda::EventInvokeConfig": _Provisioner.event_invoke_config,
    "AWS::Lambda::EventSourceMapping": _Provisioner.event_source_mapping,
    "AWS::Lambda::Permission": _Provisioner.lambda_permission,
}
REHEARSED_TYPES: Final = frozenset(_CREATORS)


def provision_stage(
    aws: AwsLike,
    templates: Mapping[str, dict[str, Any]],
    *,
    account: str,
    region: str,
    cdk_out: Path | None = None,
) -> LocalStage:
    """Create the stage the templates describe in the local AWS at `aws.url`; returns what was created.

    `templates` is stack name -> template in deployment order (`load_templates`); a test may edit them first.
    `cdk_out` (the assembly the templates came from) lets `Custom::CDKBucketDeployment` copy its assets;
    without it those deployments are counted as unrehearsed.
    """
    stage = LocalStage(account=account, region=region, url=aws.url, templates=dict(templates))
    _Provisioner(stage, cdk_out).run()
    return stage
