"""Reading cdk.out: the templates in deployment order, CloudFormation's intrinsics, and the names it would give.

- `load_templates` reads the cloud assembly's manifest (stacks in deployment order);
- `creation_order` orders a template's resources by dependency (Ref, Fn::GetAtt, Fn::Sub, DependsOn);
- `Resolver` resolves the intrinsics (Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::ImportValue, conditions, dynamic
  SSM references...) to the local stage's physical names and ARNs; a reference to a resource that is not created
  here gets the name CloudFormation would give it (`_placeholder`);
- `generated_name` and friends: `<stack>-<logical id>-<suffix>`, with a deterministic suffix;
- `present`, `tagged`, `tags`, `drop_none`: a template's properties turned into an API request's fields.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Final

from sagecycle.rehearsal.stage_model import (
    INVALID_ASSEMBLY,
    INVALID_TEMPLATE,
    NOT_REHEARSED,
    PARTITION,
    UNRESOLVED,
    URL_SUFFIX,
    LocalStage,
    Physical,
    TemplateError,
)

_NO_VALUE: Final = object()  # AWS::NoValue: the property is removed
_DYNAMIC_REF = re.compile(r"\{\{resolve:([a-z-]+):([^}]*)\}\}")
_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


def load_templates(cdk_out: Path) -> dict[str, dict[str, Any]]:
    """Stack name -> template, in deployment order (each stack after the stacks it depends on).

    Reads `manifest.json` of the cloud assembly: every `aws:cloudformation:stack` artifact and its template file.
    """
    manifest_path = cdk_out / "manifest.json"
    if not manifest_path.is_file():
        raise TemplateError(
            f"{cdk_out} has no manifest.json: not a cloud assembly (run the synth first)", code=INVALID_ASSEMBLY
        )
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
        raise TemplateError(
            f"the stacks depend on each other in a cycle: {error.args[1]}", code=INVALID_ASSEMBLY
        ) from None
    templates: dict[str, dict[str, Any]] = {}
    for name in order:
        props = stacks[name].get("properties", {})
        template_file = cdk_out / props.get("templateFile", f"{name}.template.json")
        stack_name = props.get("stackName", name)
        templates[stack_name] = json.loads(template_file.read_text(encoding="utf-8"))
    return templates


# -------------------------------------------------------------------------------------------- names and ARNs


def name_suffix(*parts: str, length: int = 12) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return base64.b32encode(digest).decode().rstrip("=")[:length]


def generated_name(stack: str, logical_id: str, max_len: int = 255, *, lower: bool = False) -> str:
    """The name CloudFormation gives a resource that names none: `<stack>-<logical id>-<suffix>`, truncated."""
    suffix = name_suffix(stack, logical_id)
    head = f"{stack}-{logical_id}"[: max_len - len(suffix) - 1]
    name = f"{head}-{suffix}"
    return name.lower() if lower else name


def sagemaker_name(stack: str, logical_id: str) -> str:
    """SageMaker's generated names: `<logical id>-<suffix>`, at most 63 characters."""
    suffix = name_suffix(stack, logical_id)
    return f"{logical_id[: 63 - len(suffix) - 1]}-{suffix}"


def hex_id(prefix: str, *parts: str, length: int = 17) -> str:
    return f"{prefix}-{hashlib.sha256('/'.join(parts).encode()).hexdigest()[:length]}"


# ------------------------------------------------------------------------------------------------ resolver


class Resolver:
    """CloudFormation's intrinsic functions over the local stage, for one stack at a time."""

    def __init__(self, stage: LocalStage, ssm_value: Callable[[str, bool], str]) -> None:
        self.stage = stage
        self.ssm_value = ssm_value
        self.stack = ""
        self.where = ""

    def fail(self, problem: str, code: str = UNRESOLVED) -> TemplateError:
        """The error for the resource being resolved (`where`), in the stack being resolved."""
        return TemplateError(f"{self.stack} {self.where}: {problem}", code=code, stack=self.stack, resource=self.where)

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
            f"{self.stack}/{name_suffix(self.stack, length=8).lower()}",
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
            raise self.fail(f"dynamic reference {{{{resolve:{service}:...}}}} is not rehearsed", NOT_REHEARSED)

        return _DYNAMIC_REF.sub(replace, text)

    def string(self, value: Any, what: str) -> str:
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, (int, float, str)):
            return str(resolved)
        raise self.fail(f"{what} must be a string, got {resolved!r}", INVALID_TEMPLATE)

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
                raise self.fail(f"Fn::Select index {position} out of range of {items!r}", INVALID_TEMPLATE)
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
        raise self.fail(f"{name} is not rehearsed", NOT_REHEARSED)

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
            {"Arn": f"arn:{PARTITION}:iam::{account}:role{path}{role}", "RoleId": hex_id("AROA", stack, logical_id)},
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
        group_id = hex_id("sg", stack, logical_id)
        return Physical(kind, group_id, {"GroupId": group_id, "VpcId": hex_id("vpc", stack)})
    prefixes = {
        "AWS::EC2::VPC": "vpc",
        "AWS::EC2::Subnet": "subnet",
        "AWS::EC2::RouteTable": "rtb",
        "AWS::EC2::VPCEndpoint": "vpce",
        "AWS::EC2::FlowLog": "fl",
    }
    if kind in prefixes:
        resource_id = hex_id(prefixes[kind], stack, logical_id)
        return Physical(kind, resource_id, {"VpcId": resource_id} if kind == "AWS::EC2::VPC" else {})
    if kind == "AWS::SageMaker::NotebookInstance":
        notebook = literal("NotebookInstanceName") or name
        return Physical(
            kind,
            f"arn:{PARTITION}:sagemaker:{region}:{account}:notebook-instance/{notebook.lower()}",
            {"NotebookInstanceName": notebook},
        )
    return Physical(kind, name, {})


# ------------------------------------------------------------------------------- order and request fields


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


def creation_order(template: Mapping[str, Any]) -> list[str]:
    resources = template.get("Resources", {})
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else list(depends)
        refs = _references(resource.get("Properties", {}), set()) | set(depends)
        sorter.add(logical_id, *(r for r in refs if r in resources and r != logical_id))
    return list(sorter.static_order())


def tags(props: Mapping[str, Any]) -> list[dict[str, str]]:
    tags = props.get("Tags", [])
    if isinstance(tags, dict):
        return [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags]


def drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


def present(props: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The properties among `keys` that the template gives, as given: a request's optional fields."""
    return {key: props[key] for key in keys if key in props}


def tagged(props: Mapping[str, Any]) -> dict[str, Any]:
    """`{"Tags": [...]}` when the template tags the resource, else nothing (an API refuses an empty tag list)."""
    found = tags(props)
    return {"Tags": found} if found else {}
