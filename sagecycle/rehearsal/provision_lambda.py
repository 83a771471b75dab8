"""Provisioning Lambda, rehearsed in-process: the functions whose handler is one of ours
(`lambdas.<key>.handler.<fn>`) with their resolved environment, their event-invoke configs, SQS event source
mappings and resource-based permissions. `sagecycle.rehearsal.functions` runs them; each function is also created
in moto's Lambda (with its execution role in moto's IAM, its synthesized configuration and its handler's package as
code), so GetFunctionConfiguration and Invoke on the local AWS's server find it as Lambda would (Invoke then reaches
the rehearsal's runner: `Functions.serving_invokes`).

Each creator takes the provisioner (`sagecycle.rehearsal.stage`), the stack, the logical id and the resource, and
returns what Ref and Fn::GetAtt give for it, or None for a function that is not ours (counted as unrehearsed).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagecycle.rehearsal.stage_model import (
    INVALID_TEMPLATE,
    NOT_REHEARSED,
    PARTITION,
    FunctionDef,
    MappingDef,
    PermissionDef,
    Physical,
    RuleDef,
    TargetDef,
    TemplateError,
)
from sagecycle.rehearsal.templates import generated_name, hex_id

if TYPE_CHECKING:
    from sagecycle.rehearsal.stage import Provisioner


def lambda_function(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical | None:
    raw = resource.get("Properties", {})
    handler = raw.get("Handler")
    key = _rehearsable_handler(handler)
    if key is None:
        return None  # the CDK's providers and anything not ours: counted as unrehearsed
    props = p.props(resource)
    name = props.get("FunctionName") or generated_name(stack, logical_id, 64)
    arn = f"arn:{PARTITION}:lambda:{p.stage.region}:{p.stage.account}:function:{name}"
    variables = props.get("Environment", {}).get("Variables", {})
    environment = {k: p.resolver.string(v, f"environment variable {k}") for k, v in variables.items()}
    if key in p.stage.functions:
        raise p.resolver.fail(f"two functions run handler package lambdas.{key}", NOT_REHEARSED)
    p.stage.functions[key] = FunctionDef(
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
    _create_in_moto(p, stack, raw, props, p.stage.functions[key])
    return Physical(resource["Type"], name, {"Arn": arn})


def event_invoke_config(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical | None:
    props = p.props(resource)
    p.event_invoke_configs[str(props["FunctionName"])] = props
    return Physical(resource["Type"], hex_id("eic", stack, logical_id), {})


def event_source_mapping(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical | None:
    props = p.props(resource)
    source = str(props.get("EventSourceArn", ""))
    function = p.stage.function_by_arn(str(props["FunctionName"]))
    if not source.startswith(f"arn:{PARTITION}:sqs:") or function is None:
        return None  # streams, Kafka, or a function not rehearsed
    uuid = hex_id("esm", stack, logical_id, length=32).removeprefix("esm-")
    uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:32]}"
    p.stage.event_source_mappings.append(
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


def lambda_permission(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical | None:
    props = p.props(resource)
    function = p.stage.function_by_arn(str(props["FunctionName"]))
    if function is None:
        return None
    p.stage.permissions.append(
        PermissionDef(function.key, str(props["Action"]), str(props["Principal"]), props.get("SourceArn"))
    )
    return Physical(resource["Type"], generated_name(stack, logical_id), {})


def finish_functions(p: Provisioner) -> None:
    """Event-invoke configs onto their functions; rule targets onto function keys."""
    for reference, config in p.event_invoke_configs.items():
        function = p.stage.function_by_arn(reference)
        if function is None:
            continue
        updated = dict(function.__dict__)
        if "MaximumRetryAttempts" in config:
            updated["max_retry_attempts"] = int(config["MaximumRetryAttempts"])
        if "MaximumEventAgeInSeconds" in config:
            updated["max_event_age_s"] = int(config["MaximumEventAgeInSeconds"])
        p.stage.functions[function.key] = FunctionDef(**updated)
    rules = []
    for rule in p.stage.rules:
        targets = []
        for target in rule.targets:
            if target.kind == "lambda":
                function = p.stage.function_by_arn(target.arn)
                if function is None:
                    raise TemplateError(
                        f"{rule.stack} rule {rule.logical_id}: target {target.arn} is not rehearsed",
                        code=NOT_REHEARSED,
                        stack=rule.stack,
                        resource=rule.logical_id,
                    )
                target = TargetDef(**{**target.__dict__, "function": function.key})
            targets.append(target)
        rules.append(RuleDef(**{**rule.__dict__, "targets": tuple(targets)}))
    p.stage.rules[:] = rules


# Lambda's trust policy, for a role the template does not define (an imported one)
_LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def _create_in_moto(
    p: Provisioner, stack: str, raw: Mapping[str, Any], props: Mapping[str, Any], function: FunctionDef
) -> None:
    """The function in moto's Lambda, configured as synthesized; its role first (moto's Lambda requires it)."""
    if not props.get("Role"):
        raise TemplateError(
            f"{stack}/{function.logical_id}: an AWS::Lambda::Function needs a Role (CloudFormation requires one)",
            code=INVALID_TEMPLATE,
            stack=stack,
            resource=function.logical_id,
        )
    role_arn = str(props["Role"])
    role_path, _, role_name = role_arn.split(":role", 1)[1].rpartition("/")
    trust: Any = _LAMBDA_TRUST
    reference = raw.get("Role")
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        role = p.stage.templates[stack]["Resources"].get(reference["Fn::GetAtt"][0], {})
        trust = role.get("Properties", {}).get("AssumeRolePolicyDocument", trust)
    iam = p.client("iam")
    try:
        iam.get_role(RoleName=role_name)
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(RoleName=role_name, Path=f"{role_path}/", AssumeRolePolicyDocument=json.dumps(trust))
    spec: dict[str, Any] = {
        "FunctionName": function.name,
        "Runtime": str(props.get("Runtime", "python3.11")),
        "Role": role_arn,
        "Handler": function.handler,
        "Code": {"ZipFile": _package(function.handler)},
        "Timeout": function.timeout_s,
        "MemorySize": function.memory_mb,
        "Environment": {"Variables": dict(function.environment)},
    }
    if props.get("Architectures"):
        spec["Architectures"] = list(props["Architectures"])
    p.client("lambda").create_function(**spec)


def _package(handler: str) -> bytes:
    """The handler's package (lambdas/<key>/) as a zip: what the function's code is, for GetFunction."""
    import importlib.util

    spec = importlib.util.find_spec(handler.rsplit(".", 1)[0])
    assert spec is not None and spec.origin is not None  # _rehearsable_handler found it
    folder = Path(spec.origin).parent
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*.py")):
            archive.write(path, str(path.relative_to(folder.parents[1])))
    return buffer.getvalue()


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
