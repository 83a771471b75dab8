"""Reading cdk.out: templates in deployment order, CloudFormation's intrinsics resolved as CloudFormation does,
and what a reference that cannot be resolved says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sagecycle.rehearsal import LocalAws
from sagecycle.rehearsal.stage import provision_stage
from sagecycle.rehearsal.stage_model import INVALID_ASSEMBLY, INVALID_TEMPLATE, NOT_REHEARSED, UNRESOLVED, TemplateError
from sagecycle.rehearsal.templates import load_templates, present, tagged
from tests.rehearsal.conftest_stage import *  # noqa: F403 - the fixtures
from tests.rehearsal.conftest_stage import ACCOUNT, REGION, reset


def test_templates_load_in_deployment_order(cdk_out: Path) -> None:
    # GIVEN the cloud assembly's manifest
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    dependencies = {
        name: [d for d in artifact.get("dependencies", []) if not d.endswith(".assets")]
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    # WHEN the templates are loaded
    order = list(load_templates(cdk_out))
    # THEN every stack comes after the stacks it depends on, and every stack is there
    assert sorted(order) == sorted(dependencies)
    for stack, needs in dependencies.items():
        assert all(order.index(n) < order.index(stack) for n in needs), stack


def _tiny(resources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"Resources": resources, **extra}


def _function(variables: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": "probe",
            "Handler": "lambdas.ingest.handler.handler",
            "Runtime": "python3.12",
            # CloudFormation requires a role; the rehearsal creates it in moto's IAM, as moto's Lambda requires.
            "Role": "arn:aws:iam::123456789012:role/probe",
            "Environment": {"Variables": variables},
        },
    }


def test_intrinsics_resolve_as_cloudformation_does(local_aws: LocalAws) -> None:
    # GIVEN two small stacks: an export, a parameter, a condition and every intrinsic the rehearsal reads
    reset(local_aws)
    local_aws.client("ssm").put_parameter(Name="/probe/value", Value="from-ssm", Type="String")
    producer = _tiny(
        {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "probe-queue"}}},
        Outputs={"QueueArn": {"Value": {"Fn::GetAtt": ["Queue", "Arn"]}, "Export": {"Name": "probe-queue-arn"}}},
    )
    consumer = _tiny(
        {
            "Fn": _function(
                {
                    "SUB": {"Fn::Sub": "${Topic.TopicName}@${AWS::Region}/${!Literal}"},
                    "SUB_VARS": {"Fn::Sub": ["${x}-${AWS::AccountId}", {"x": {"Ref": "Flavour"}}]},
                    "SELECT": {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]},
                    "IMPORT": {"Fn::ImportValue": "probe-queue-arn"},
                    "OUTPUT": {"Fn::GetStackOutput": {"StackName": "producer", "OutputName": "QueueArn"}},
                    "DYNAMIC": "value={{resolve:ssm:/probe/value}}",
                    "IF": {"Fn::If": ["IsChocolate", "yes", "no"]},
                    "NOVALUE": {"Ref": "AWS::NoValue"},
                }
            ),
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "probe-topic"}},
            "Skipped": {"Type": "AWS::SNS::Topic", "Condition": "IsVanilla", "Properties": {"TopicName": "never"}},
        },
        Parameters={"Flavour": {"Type": "String", "Default": "chocolate"}},
        Conditions={
            "IsChocolate": {"Fn::Equals": [{"Ref": "Flavour"}, "chocolate"]},
            "IsVanilla": {"Fn::Not": [{"Condition": "IsChocolate"}]},
        },
    )
    # WHEN provisioned
    stage = provision_stage(local_aws, {"producer": producer, "consumer": consumer}, account=ACCOUNT, region=REGION)
    # THEN every value is what CloudFormation would pass
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:probe-queue"
    assert stage.function_environments["ingest"] == {
        "SUB": f"probe-topic@{REGION}/${{Literal}}",
        "SUB_VARS": f"chocolate-{ACCOUNT}",
        "SELECT": "b",
        "IMPORT": queue_arn,
        "OUTPUT": queue_arn,
        "DYNAMIC": "value=from-ssm",
        "IF": "yes",
    }
    assert [t["TopicArn"].rsplit(":", 1)[-1] for t in local_aws.client("sns").list_topics()["Topics"]] == [
        "probe-topic"
    ]


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"BAD": {"Ref": "Nowhere"}}, UNRESOLVED),
        ({"BAD": "{{resolve:ssm:/no/such/parameter}}"}, UNRESOLVED),
        ({"BAD": {"Fn::GetAtt": ["Topic", "NoSuchAttribute"]}}, UNRESOLVED),
        ({"BAD": {"Fn::ImportValue": "nobody-exports-this"}}, UNRESOLVED),
        ({"BAD": "{{resolve:secretsmanager:secret}}"}, NOT_REHEARSED),
    ],
)
def test_unresolvable_references_name_the_problem(local_aws: LocalAws, variables: dict[str, Any], code: str) -> None:
    # GIVEN a template whose reference cannot be resolved locally
    reset(local_aws)
    template = _tiny({"Fn": _function(variables), "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}}})
    # WHEN provisioned / THEN TemplateError with its code, naming the stack and the resource
    with pytest.raises(TemplateError) as raised:
        provision_stage(local_aws, {"solo": template}, account=ACCOUNT, region=REGION)
    assert (raised.value.code, raised.value.stack, raised.value.resource) == (
        code,
        "solo",
        "Fn (AWS::Lambda::Function)",
    )


def test_not_a_cloud_assembly(tmp_path: Path) -> None:
    # GIVEN a directory without manifest.json / WHEN loaded / THEN TemplateError: not an assembly
    with pytest.raises(TemplateError) as raised:
        load_templates(tmp_path)
    assert raised.value.code == INVALID_ASSEMBLY


def test_request_fields_are_the_given_properties_and_tags_only_when_there_are_some() -> None:
    # GIVEN resolved properties with two of three optional fields, and tags in both of CloudFormation's shapes
    props = {"KmsKeyId": "key", "DataCaptureConfig": {"EnableCapture": True}, "Other": 1}
    # WHEN turned into a request's fields
    fields = present(props, ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig"))
    # THEN only the given ones, as given, in the order asked; tags as a list, and no Tags key without tags
    assert list(fields.items()) == [("DataCaptureConfig", {"EnableCapture": True}), ("KmsKeyId", "key")]
    assert tagged({"Tags": [{"Key": "team", "Value": "ml"}]}) == {"Tags": [{"Key": "team", "Value": "ml"}]}
    assert tagged({"Tags": {"team": "ml"}}) == {"Tags": [{"Key": "team", "Value": "ml"}]}
    assert tagged({}) == {} and tagged({"Tags": []}) == {}


def test_a_function_without_a_role_is_refused_as_cloudformation_would(local_aws: LocalAws) -> None:
    # GIVEN a stack whose function names no role (CloudFormation requires one)
    reset(local_aws)
    function = _function({})
    del function["Properties"]["Role"]
    # WHEN provisioned
    with pytest.raises(TemplateError) as refused:
        provision_stage(local_aws, {"lonely": _tiny({"Fn": function})}, account=ACCOUNT, region=REGION)
    # THEN it is refused as an invalid template, naming the resource
    assert (refused.value.code, refused.value.stack, refused.value.resource) == (INVALID_TEMPLATE, "lonely", "Fn")
