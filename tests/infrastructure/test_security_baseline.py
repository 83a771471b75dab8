"""The security baseline as a policy-as-code scanner reads cdk.out, and the tests that keep it from eroding.

- every function's environment is encrypted with the stage's key, and every function logs to a KMS log group
  declared in its own template (CDK's helper functions included);
- SageMaker attaches network interfaces in the stage's VPC and private subnets only;
- every finding CDK cannot fix is written into the resource's Metadata for checkov and cfn_nag, with a reason;
- every bucket, topic and queue policy denies requests without TLS;
- every IAM statement of the glue functions names exactly its resources, and the one acknowledgment of `*`
  sits on a policy that holds nothing but the actions that support no resource-level permissions.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from lambdas.shared import contract as c
from stacks.constructs.glue_access import (
    DATA_KEY_ACTIONS,
    IDEMPOTENCY_ACTIONS,
    QUEUE_CONSUMER_ACTIONS,
    RUNS_ACTIONS,
)
from stacks.constructs.glue_function import (
    OUTSIDE_VPC_REASON,
    UNSCOPED_ACTIONS,
    GlueFunction,
    GluePolicyError,
    GlueRuntime,
)
from stacks.constructs.sagemaker_role import NETWORK_INTERFACE_ACTIONS, NetworkScope, SageMakerExecutionRole
from stacks.nag import FINDINGS, exempt
from tests.infrastructure.conftest import Synthesized, cdk_context
from tests.infrastructure.test_nag import findings

CONCERNS = ("Data", "Audit", "Model", "Retraining", "Endpoint", "Network", "Notebook")


def _templates(s: Synthesized) -> dict[str, dict[str, Any]]:
    """Every stack's template, by concern (the optional stacks only where the stage has them)."""
    return {c: s.raw[s.config.stack_name(c)] for c in CONCERNS if s.config.stack_name(c) in s.raw}


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def _output_of(value: Any) -> str | None:
    """The output name a cross-stack reference reads (`Fn::GetStackOutput` or `Fn::ImportValue`)."""
    if isinstance(value, dict) and "Fn::GetStackOutput" in value:
        return str(value["Fn::GetStackOutput"]["OutputName"])
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        return json.dumps(value["Fn::ImportValue"])
    return None


# ------------------------------------------------------------------------------------------ encryption


def test_every_function_logs_to_a_kms_encrypted_group_of_its_own_template(synthesized: Synthesized) -> None:
    # GIVEN every Lambda function of every stack, CDK's helpers included
    # WHEN the stage is synthesized (once per session)
    functions = 0
    for concern, template in _templates(synthesized).items():
        groups = _of_type(template, "AWS::Logs::LogGroup")
        for name, fn in _of_type(template, "AWS::Lambda::Function").items():
            functions += 1
            # THEN it names its log group (none is left for Lambda to create unencrypted on first write)
            ref = fn["Properties"].get("LoggingConfig", {}).get("LogGroup", {})
            assert isinstance(ref, dict) and ref.get("Ref") in groups, (concern, name)
            # AND that group is encrypted with a customer-managed key
            assert "KmsKeyId" in groups[ref["Ref"]]["Properties"], (concern, name)
    assert functions >= 6  # five glue functions and the scripts copier, at least


def test_every_log_group_is_kms_encrypted_and_expires(synthesized: Synthesized) -> None:
    # GIVEN every stack of the stage
    for concern in _templates(synthesized):
        template = synthesized.template(concern)
        # WHEN its log groups are matched against "no key" and "never expires"
        unencrypted = template.find_resources("AWS::Logs::LogGroup", {"Properties": {"KmsKeyId": Match.absent()}})
        forever = template.find_resources("AWS::Logs::LogGroup", {"Properties": {"RetentionInDays": Match.absent()}})
        # THEN none matches: every group is encrypted with a customer-managed key and expires
        assert unencrypted == {} and forever == {}, concern


def test_every_function_environment_is_encrypted_with_the_stage_data_key(synthesized: Synthesized) -> None:
    # GIVEN every function that has environment variables (the glue functions, the scripts copier)
    # WHEN the stage is synthesized (once per session)
    with_environment = 0
    for concern, template in _templates(synthesized).items():
        for name, fn in _of_type(template, "AWS::Lambda::Function").items():
            props = fn["Properties"]
            if not props.get("Environment", {}).get("Variables"):
                continue
            with_environment += 1
            # THEN the stage's customer-managed data key encrypts them (the Data stack's key, by reference)
            key = _output_of(props.get("KmsKeyArn"))
            assert key is not None and "DataKeyArn" in key, (concern, name, props.get("KmsKeyArn"))
    assert with_environment == len(c.FUNCTIONS) + 1


# --------------------------------------------------------------------------------------------- network


def _execution_statements(s: Synthesized) -> dict[str, dict[str, Any]]:
    policies = s.resources("Model", "AWS::IAM::ManagedPolicy")
    return {st["Sid"]: st for p in policies.values() for st in p["Properties"]["PolicyDocument"]["Statement"]}


def test_sagemaker_network_interfaces_are_pinned_to_the_stage_vpc_and_subnets(synthesized: Synthesized) -> None:
    # GIVEN the execution role's statements, and the Network stack's VPC and subnets as the Model stack reads them
    assert synthesized.config.network.enabled
    statements = _execution_statements(synthesized)
    n_subnets = len(synthesized.config.availability_zones)
    # WHEN the stage is synthesized (once per session)
    # THEN every network-interface action is allowed on conditions that name the VPC and its subnets
    synthesized.template("Model").has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Sid": "NetworkInterfacesInPrivateSubnets",
                            "Effect": "Allow",
                            "Action": list(NETWORK_INTERFACE_ACTIONS),
                            "Resource": Match.any_value(),
                            "Condition": {"ArnEquals": {"ec2:Vpc": Match.any_value(), "ec2:Subnet": Match.any_value()}},
                        }
                    ]
                )
            }
        },
    )
    # AND those are this account's interfaces, in the Network stack's VPC and its private subnets
    interfaces = statements["NetworkInterfacesInPrivateSubnets"]
    assert json.dumps(interfaces["Resource"]).endswith(':network-interface/*"]]}')
    pinned = interfaces["Condition"]["ArnEquals"]
    assert ":vpc/" in json.dumps(pinned["ec2:Vpc"]) and re.search(r"NetworkVpc[0-9A-F]{8}", str(_output_of_any(pinned)))
    assert len(pinned["ec2:Subnet"]) == n_subnets
    assert all(":subnet/" in json.dumps(s) and "privateSubnet" in json.dumps(s) for s in pinned["ec2:Subnet"])
    # AND CreateNetworkInterface takes only those subnets and our one security group, in that VPC
    use = statements["UsePrivateSubnetsAndGroup"]
    assert use["Action"] == "ec2:CreateNetworkInterface"
    assert use["Condition"] == {"ArnEquals": {"ec2:Vpc": pinned["ec2:Vpc"]}}
    subnets = [r for r in use["Resource"] if ":subnet/" in json.dumps(r)]
    groups = [r for r in use["Resource"] if ":security-group/" in json.dumps(r)]
    assert sorted(map(json.dumps, subnets)) == sorted(map(json.dumps, pinned["ec2:Subnet"]))
    assert len(groups) == 1 and len(use["Resource"]) == n_subnets + 1
    # AND no other statement grants a create/delete network-interface action
    granting = {sid for sid, st in statements.items() if set(_actions(st)) & set(NETWORK_INTERFACE_ACTIONS)}
    assert granting == {"UsePrivateSubnetsAndGroup", "NetworkInterfacesInPrivateSubnets"}


def _output_of_any(value: Any) -> list[str]:
    """Every cross-stack output a value reads."""
    found: list[str] = []
    if isinstance(value, dict):
        output = _output_of(value)
        found += [output] if output else [x for v in value.values() for x in _output_of_any(v)]
    elif isinstance(value, list):
        found += [x for v in value for x in _output_of_any(v)]
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return actions if isinstance(actions, list) else [actions]


def test_without_a_network_the_execution_role_has_no_ec2_permission(tmp_path: Any) -> None:
    # GIVEN a stage without the private network
    # WHEN it is synthesized
    from config.settings import load_config
    from tests.infrastructure.conftest import synthesize

    s = synthesize(
        load_config("dev", overrides={"network": {"enabled": False}, "notebook": {"enabled": False}}), tmp_path
    )
    # THEN the SageMaker role may do nothing in EC2
    assert not any(a.startswith("ec2:") for st in _execution_statements(s).values() for a in _actions(st))


# ------------------------------------------------------------------------------------ scanner metadata


def _skips(resource: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    meta = resource.get("Metadata", {})
    checkov = {e["id"]: e["comment"] for e in meta.get("checkov", {}).get("skip", [])}
    cfn_nag = {e["id"]: e["reason"] for e in meta.get("cfn_nag", {}).get("rules_to_suppress", [])}
    return checkov, cfn_nag


def test_glue_functions_say_why_they_run_outside_the_vpc_where_scanners_read_it(synthesized: Synthesized) -> None:
    # GIVEN the glue functions
    functions = synthesized.resources("Retraining", "AWS::Lambda::Function")
    assert len(functions) == len(c.FUNCTIONS)
    # WHEN the stage is synthesized (once per session)
    # THEN each runs outside a VPC and says why, in the Metadata checkov and cfn_nag read
    for name, fn in functions.items():
        checkov, cfn_nag = _skips(fn)
        assert checkov == {"CKV_AWS_117": OUTSIDE_VPC_REASON}, name
        assert cfn_nag == {"W89": OUTSIDE_VPC_REASON}, name
        assert "VpcConfig" not in fn["Properties"], name


def test_cdk_helper_functions_document_what_cdk_cannot_fix(synthesized: Synthesized) -> None:
    # GIVEN CDK's own functions: the scripts copier, the default-group cleaner, the prefix-list lookup
    # WHEN the stage is synthesized (once per session)
    helpers = {
        concern: {
            k: v
            for k, v in _of_type(template, "AWS::Lambda::Function").items()
            if "ReservedConcurrentExecutions" not in v["Properties"]
        }
        for concern, template in _templates(synthesized).items()
    }
    assert {k: len(v) for k, v in helpers.items() if v} == {"Model": 1, "Network": 2}
    for concern, functions in helpers.items():
        for name, fn in functions.items():
            # THEN each says, with a reason, why it has no DLQ, no reserved concurrency and no VPC
            checkov, cfn_nag = _skips(fn)
            assert set(checkov) == {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"}, (concern, name)
            assert set(cfn_nag) == {"W89", "W92"}, (concern, name)
            assert all("runs only when CloudFormation deploys" in r for r in [*checkov.values(), *cfn_nag.values()])


def test_access_log_bucket_documents_why_it_cannot_log_to_itself(synthesized: Synthesized) -> None:
    # GIVEN the access-log bucket, by its pinned logical id
    bucket = synthesized.resources("Data", "AWS::S3::Bucket")["AccessLogBucket"]
    # WHEN the stage is synthesized (once per session)
    # THEN the scanners read why it has no access log and uses SSE-S3
    checkov, cfn_nag = _skips(bucket)
    assert set(checkov) == {"CKV_AWS_18", "CKV_AWS_145"} and set(cfn_nag) == {"W35"}
    assert checkov["CKV_AWS_18"] == cfn_nag["W35"] and "cannot log a bucket to itself" in cfn_nag["W35"]
    assert "only SSE-S3" in checkov["CKV_AWS_145"]


def test_exemptions_need_a_known_finding_and_a_specific_reason() -> None:
    # GIVEN a bucket in a probe stack
    stack = Stack(App(), "Probe")
    bucket = s3.CfnBucket(stack, "Bucket")
    # WHEN/THEN an unknown finding or a throwaway reason is refused, and leaves no Metadata behind
    # (stacks.nag raises a plain ValueError, with no code to tell the two apart)
    with pytest.raises(ValueError):
        exempt(bucket, "s3-is-fine", "a reason long enough to pass the length rule")
    with pytest.raises(ValueError):
        exempt(bucket, "s3-no-access-log", "not needed", nag=False)
    assert bucket.get_metadata("checkov") is None and bucket.get_metadata("cfn_nag") is None
    # AND a valid exemption lands in the template, merged with metadata already there
    bucket.add_metadata("checkov", {"skip": [{"id": "CKV_AWS_21", "comment": "versioning is elsewhere, on purpose"}]})
    exempt(bucket, "s3-no-access-log", "this probe is the access-log target and cannot log to itself")
    meta = Template.from_stack(stack).to_json()["Resources"]["Bucket"]["Metadata"]
    assert [e["id"] for e in meta["checkov"]["skip"]] == ["CKV_AWS_21", *FINDINGS["s3-no-access-log"].checkov]
    assert [e["id"] for e in meta["cfn_nag"]["rules_to_suppress"]] == ["W35"]


# ----------------------------------------------------------------------------------------- TLS only


def assert_bucket_is_tls_only(template: Template, bucket: str) -> None:
    """The bucket's policy denies every S3 action without TLS, and below TLS 1.2, on the bucket and its objects."""
    resources = [{"Fn::GetAtt": [bucket, "Arn"]}, {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]}]
    for condition in ({"Bool": {"aws:SecureTransport": "false"}}, {"NumericLessThan": {"s3:TlsVersion": 1.2}}):
        template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": bucket},
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            {
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Action": "s3:*",
                                "Condition": condition,
                                "Resource": resources,
                            }
                        ]
                    )
                },
            },
        )


def test_every_bucket_policy_denies_requests_without_tls(synthesized: Synthesized) -> None:
    # GIVEN every bucket of every stack
    # WHEN the stage is synthesized
    # THEN its policy denies plain HTTP and TLS below 1.2
    buckets = 0
    for concern, raw in _templates(synthesized).items():
        template = synthesized.template(concern)
        for bucket in _of_type(raw, "AWS::S3::Bucket"):
            buckets += 1
            assert_bucket_is_tls_only(template, bucket)
    assert buckets == 4  # data, models, access logs, trail


def test_every_topic_and_queue_policy_denies_requests_without_tls(synthesized: Synthesized) -> None:
    # GIVEN every topic and queue of every stack
    # WHEN the stage is synthesized
    # THEN its policy denies requests without TLS
    topics = queues = 0
    for concern, raw in _templates(synthesized).items():
        template = synthesized.template(concern)
        for topic in _of_type(raw, "AWS::SNS::Topic"):
            topics += 1
            template.has_resource_properties(
                "AWS::SNS::TopicPolicy",
                {
                    "Topics": [{"Ref": topic}],
                    "PolicyDocument": {
                        "Statement": Match.array_with(
                            [
                                Match.object_like(
                                    {
                                        "Effect": "Deny",
                                        "Principal": "*",
                                        "Action": "sns:Publish",
                                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                        "Resource": {"Ref": topic},
                                    }
                                )
                            ]
                        )
                    },
                },
            )
        for queue in _of_type(raw, "AWS::SQS::Queue"):
            queues += 1
            template.has_resource_properties(
                "AWS::SQS::QueuePolicy",
                {
                    "Queues": [{"Ref": queue}],
                    "PolicyDocument": {
                        "Statement": Match.array_with(
                            [
                                {
                                    "Effect": "Deny",
                                    "Principal": {"AWS": "*"},
                                    "Action": "sqs:*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                    "Resource": {"Fn::GetAtt": [queue, "Arn"]},
                                }
                            ]
                        )
                    },
                },
            )
    # one operator topic; a DLQ per function, the rules' DLQ, the new-data queue and its DLQ (and prod's e-mail DLQ)
    assert topics == 1 and queues >= len(c.FUNCTIONS) + 3


def test_the_tls_check_fails_for_a_bucket_that_allows_plain_http() -> None:
    # GIVEN a bucket whose policy has every statement but the TLS-only ones
    stack = Stack(App(), "Probe")
    bucket = s3.Bucket(stack, "Plain", enforce_ssl=False)
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects("*")],
            conditions={"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        )
    )
    template = Template.from_stack(stack)
    logical_id = stack.resolve(bucket.node.default_child.logical_id)  # type: ignore[union-attr]
    # WHEN/THEN the check that every real bucket passes rejects it (CDK's assertion error crosses jsii as this type)
    with pytest.raises(RuntimeError):
        assert_bucket_is_tls_only(template, logical_id)


# ---------------------------------------------------------------------------------------------- IAM


def _symbol(value: Any, config: Any) -> Any:
    """A statement's Resource as readable names: our literals, and symbols for tokens (KEY, TOPIC, GetAtt:X)."""
    if isinstance(value, list):
        return sorted(str(_symbol(v, config)) for v in value)
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return "GetAtt:" + re.sub(r"[0-9A-F]{8}$", "", value["Fn::GetAtt"][0])
        if value == {"Ref": "AWS::AccountId"}:
            return "ACCOUNT"
        output = _output_of(value)
        if output is not None:
            for key, symbol in (("DataKeyArn", "DATA_KEY"), ("LogKeyArn", "LOG_KEY"), ("OperatorTopic", "TOPIC")):
                if key in output:
                    return symbol
            return f"OUTPUT:{output}"
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(str(_symbol(p, config)) for p in parts)
    return value


def _glue_expected(config: Any) -> dict[str, dict[str, list[str]]]:
    """Every statement of every glue function's scoped policy: sid -> its resources."""
    app, stage, region = config.app_name, config.stage, config.region
    account = "ACCOUNT"  # the stacks name resources with the deploy-time account, even where config has one
    data = f"arn:aws:s3:::{app}-{stage}-data-{account}-{region}"
    models = f"arn:aws:s3:::{app}-{stage}-models-{account}-{region}"
    arn = f"{region}:{account}"
    runs = [f"arn:aws:dynamodb:{arn}:table/{app}-{stage}-runs"]
    champion = f"arn:aws:ssm:{arn}:parameter/{app}/{stage}/champion/model-data-url"
    jobs = [f"arn:aws:sagemaker:{arn}:hyper-parameter-tuning-job/{app}-{stage}-*"]
    jobs.append(f"arn:aws:sagemaker:{arn}:training-job/{app}-{stage}-*")
    notify = {"NotifyOperators": ["TOPIC"], "NotifyOperatorsKey": ["LOG_KEY"]}
    models_read = [f"{models}/models/*", f"{models}/training-output/*"]
    deploy = [
        f"arn:aws:sagemaker:{arn}:endpoint-config/{app}-{stage}-*",
        f"arn:aws:sagemaker:{arn}:endpoint/{app}-{stage}-endpoint",
        f"arn:aws:sagemaker:{arn}:model/{app}-{stage}-*",
    ]
    describe = [f"arn:aws:sagemaker:{arn}:endpoint-config/*", f"arn:aws:sagemaker:{arn}:model/*"]
    pass_role = [f"arn:aws:iam::{account}:role/{app}-{stage}-sagemaker-execution"]

    def own(fn: str) -> dict[str, list[str]]:
        logs = f"GetAtt:{fn}Logs"
        return {
            "WriteOwnLogs": sorted([logs, f"{logs}:log-stream:*"]),
            "DeadLetter": [f"GetAtt:{fn}DeadLetters"],
            "DeadLetterKey": ["DATA_KEY"],
            "UseDataKey": ["DATA_KEY"],
            "RunsTable": runs,
        }

    alarms = [
        f"arn:aws:cloudwatch:{arn}:alarm:{c.alarm_name(app, stage, c.ENDPOINT_ALARMS[k])}"
        for k in c.ROLLBACK_ALARM_KEYS
    ]
    return {
        "StartTraining": own("StartTraining")
        | notify
        | {
            "IdempotencyTable": [f"arn:aws:dynamodb:{arn}:table/{app}-{stage}-idempotency"],
            "StartOurTrainingJobs": jobs,
            "PassExecutionRole": pass_role,
        },
        "Ingest": own("Ingest")
        | notify
        | {
            "MoveIncomingFiles": [f"{data}/incoming/*"],
            "WriteQuarantineAndTrain": [f"{data}/quarantine/*", f"{data}/train/*"],
            "DiscardBadCopies": [f"{data}/quarantine/*", f"{data}/train/*"],
            "ListOwnPrefixes": [data],
            "ReadFallbackSchema": [f"{data}/baseline/*"],
            "ReadModelArtifacts": models_read,
            "ReadChampion": [champion, f"{champion}/previous"],
            "StartTraining": ["GetAtt:StartTrainingFunction"],
            "ConsumeNewDataQueue": ["GetAtt:NewDataQueue"],
        },
        "Promote": own("Promote")
        | notify
        | {
            "ReadModelArtifacts": models_read,
            "ListModelArtifacts": [models],
            "WriteModelMetrics": [f"{models}/training-output/*"],
            "ReadRollbackAlarms": sorted(alarms),
            "DescribeHosting": describe,
            "SetChampion": [champion, f"{champion}/previous"],
            "RegisterCandidates": [
                f"arn:aws:sagemaker:{arn}:model-package-group/{app}-{stage}",
                f"arn:aws:sagemaker:{arn}:model-package/{app}-{stage}/*",
            ],
            "ReadTrainingJobs": jobs,
            "DeployToOurEndpoint": deploy,
            "PassExecutionRole": pass_role,
        },
        "DriftMonitor": own("DriftMonitor")
        | {
            "ReadCapture": [f"{data}/capture/*"],
            "ListCapture": [data],
            "ReadModelArtifacts": models_read,
            "ReadChampion": [champion, f"{champion}/previous"],
        },
        "AlarmResponder": own("AlarmResponder")
        | notify
        | {
            "ReadChampion": [champion, f"{champion}/previous"],
            "DeployToOurEndpoint": deploy,
            "DescribeHosting": describe,
            "PassExecutionRole": pass_role,
            "ReadModelArtifacts": models_read,
        },
    }


def _glue_policies(s: Synthesized) -> dict[str, dict[str, Any]]:
    """The glue functions' managed policies by construct path (`<Function>Policy`, `<Function>UnscopedPolicy`)."""
    stack = s.stage.retraining
    found = {}
    for fn in ("StartTraining", "Ingest", "Promote", "DriftMonitor", "AlarmResponder"):
        glue = stack.node.find_child(fn)
        for part in ("Policy", "UnscopedPolicy"):
            cfn = glue.node.find_child(part).node.default_child
            found[f"{fn}{part}"] = s.resources("Retraining", "AWS::IAM::ManagedPolicy")[stack.resolve(cfn.logical_id)]  # type: ignore[union-attr]
    return found


def test_every_glue_statement_names_exactly_its_resources(synthesized: Synthesized) -> None:
    # GIVEN each glue function's scoped policy, statement by statement
    # WHEN the stage is synthesized (once per session)
    policies = _glue_policies(synthesized)
    for fn, expected in _glue_expected(synthesized.config).items():
        statements = policies[f"{fn}Policy"]["Properties"]["PolicyDocument"]["Statement"]
        actual = {st["Sid"]: _symbol(st["Resource"], synthesized.config) for st in statements}
        actual = {sid: r if isinstance(r, list) else [r] for sid, r in actual.items()}
        # THEN every statement is there with exactly its resources, and nothing else is
        assert actual == {sid: sorted(r) for sid, r in expected.items()}, fn
        assert all(st["Effect"] == "Allow" for st in statements)


def _statement(s: Synthesized, fn: str, sid: str) -> dict[str, Any]:
    (found,) = [
        st for st in _glue_policies(s)[f"{fn}Policy"]["Properties"]["PolicyDocument"]["Statement"] if st["Sid"] == sid
    ]
    return found


GRANTED = {
    # (function, sid): the actions CDK's grant method was given, exactly (no wildcard action a grant_* adds)
    **{
        (fn, "UseDataKey"): DATA_KEY_ACTIONS
        for fn in ("StartTraining", "Ingest", "Promote", "DriftMonitor", "AlarmResponder")
    },
    **{
        (fn, "RunsTable"): RUNS_ACTIONS
        for fn in ("StartTraining", "Ingest", "Promote", "DriftMonitor", "AlarmResponder")
    },
    **{(fn, "NotifyOperators"): ("sns:Publish",) for fn in ("StartTraining", "Ingest", "Promote", "AlarmResponder")},
    **{
        (fn, "NotifyOperatorsKey"): ("kms:Decrypt", "kms:GenerateDataKey")
        for fn in ("StartTraining", "Ingest", "Promote", "AlarmResponder")
    },
    ("StartTraining", "IdempotencyTable"): IDEMPOTENCY_ACTIONS,
    ("Ingest", "ConsumeNewDataQueue"): QUEUE_CONSUMER_ACTIONS,
}


def test_statements_made_by_cdk_grants_hold_exactly_the_actions_the_code_calls(synthesized: Synthesized) -> None:
    # GIVEN the statements GlueAccess makes through CDK's grant methods
    # WHEN the stage is synthesized (once per session)
    for (fn, sid), actions in GRANTED.items():
        statement = _statement(synthesized, fn, sid)
        # THEN each allows exactly the actions given to the grant, none of the wider ones grant_* would add
        assert sorted(_actions(statement)) == sorted(actions), (fn, sid)
        assert not any(a.endswith("*") for a in _actions(statement)), (fn, sid)


def test_ingest_discards_only_named_versions_of_its_copies(synthesized: Synthesized) -> None:
    # GIVEN the ingest statement that lets it remove a copy that failed verification
    discard = _statement(synthesized, "Ingest", "DiscardBadCopies")
    # WHEN the stage is synthesized (once per session)
    # THEN it deletes versions only: a plain DeleteObject on train/ would put a delete marker over a good file
    assert _actions(discard) == ["s3:DeleteObjectVersion"] and "Condition" not in discard
    # AND no ingest statement may delete anything in train/ or quarantine/ but by version
    for st in _glue_policies(synthesized)["IngestPolicy"]["Properties"]["PolicyDocument"]["Statement"]:
        resources = json.dumps(st["Resource"])
        if "/train/" in resources or "/quarantine/" in resources:
            assert {a for a in _actions(st) if "Delete" in a} <= {"s3:DeleteObjectVersion"}, st["Sid"]


def test_glue_bucket_listings_are_limited_to_the_prefixes_they_read(synthesized: Synthesized) -> None:
    # GIVEN every glue statement that lists a bucket (so that S3 says NoSuchKey, not AccessDenied, for a miss)
    # WHEN the stage is synthesized (once per session)
    expected = {
        ("Ingest", "ListOwnPrefixes"): ["incoming/*", "train/*", "quarantine/*"],
        ("Promote", "ListModelArtifacts"): ["models/*", "training-output/*"],
        ("DriftMonitor", "ListCapture"): ["capture/*"],
    }
    listing = {
        (fn, st["Sid"]): st
        for fn in ("StartTraining", "Ingest", "Promote", "DriftMonitor", "AlarmResponder")
        for st in _glue_policies(synthesized)[f"{fn}Policy"]["Properties"]["PolicyDocument"]["Statement"]
        if "s3:ListBucket" in _actions(st)
    }
    assert set(listing) == set(expected)
    for where, prefixes in expected.items():
        # THEN each lists only its own prefixes, and lists nothing else
        assert _actions(listing[where]) == ["s3:ListBucket"], where
        assert listing[where]["Condition"] == {"StringLike": {"s3:prefix": prefixes}}, where


def test_glue_unscoped_policies_hold_only_the_actions_without_resource_level_permissions(
    synthesized: Synthesized,
) -> None:
    # GIVEN each glue function's unscoped policy (the one policy whose "*" is acknowledged)
    # WHEN the stage is synthesized (once per session)
    # THEN it holds X-Ray's two actions and PutMetricData on our namespace, and nothing else
    for name, policy in _glue_policies(synthesized).items():
        if not name.endswith("UnscopedPolicy"):
            continue
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert sorted(a for st in statements for a in _actions(st)) == sorted(UNSCOPED_ACTIONS), name
        assert {st["Sid"]: st.get("Condition") for st in statements} == {
            "Trace": None,
            "PublishMetrics": {"StringEquals": {"cloudwatch:namespace": c.METRIC_NAMESPACE}},
        }


def _probe_runtime(stack: Stack) -> GlueRuntime:
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    return GlueRuntime(
        code=lambda_.Code.from_inline("def handler(event, context): return None"),
        layer=lambda_.LayerVersion.from_layer_version_arn(
            stack, "Layer", "arn:aws:lambda:us-east-1:123456789012:layer:probe:1"
        ),
        log_key=key,
        dlq_key=key,
        environment_key=key,
        metric_namespace=c.METRIC_NAMESPACE,
        topic=sns.Topic(stack, "Topic", master_key=key, enforce_ssl=True),
        log_retention_days=30,
    )


def _probe_glue(stack: Stack) -> GlueFunction:
    glue = GlueFunction(
        stack,
        "Probe",
        function_name="probe-fn",
        handler_module="lambdas.ingest.handler",
        description="probe",
        runtime=_probe_runtime(stack),
        environment={"STAGE": "dev"},
        timeout=Duration.seconds(10),
    )
    glue.add_statements(iam.PolicyStatement(sid="ReadOne", actions=["s3:GetObject"], resources=["arn:aws:s3:::b/k"]))
    return glue


def _probe_stack() -> Stack:
    return Stack(App(context=cdk_context()), "Probe", env={"region": "us-east-1", "account": "123456789012"})


def test_a_glue_statement_on_star_is_refused_at_synth() -> None:
    # GIVEN a glue function
    glue = _probe_glue(_probe_stack())
    # WHEN it is given a statement on "*"
    # THEN synth stops, and the error says which rule the statement broke
    with pytest.raises(GluePolicyError) as refused:
        glue.add_statements(iam.PolicyStatement(sid="Sneaky", actions=["s3:GetObject"], resources=["*"]))
    assert refused.value.code == "on-star"


def test_a_glue_statement_without_a_sid_of_its_own_is_refused() -> None:
    # GIVEN a glue function whose policy already has a statement ReadOne
    glue = _probe_glue(_probe_stack())
    # WHEN a second statement takes the same sid, or none / THEN both are refused: every permission has a name
    for sid in ("ReadOne", None):
        with pytest.raises(GluePolicyError) as refused:
            glue.add_statements(iam.PolicyStatement(sid=sid, actions=["s3:PutObject"], resources=["arn:aws:s3:::b/k"]))
        assert refused.value.code == "no-sid"


def test_a_cdk_grant_lands_in_the_function_policy_under_its_sid() -> None:
    # GIVEN a glue function and an encrypted topic of the same stack
    stack = _probe_stack()
    glue = _probe_glue(stack)
    topic = sns.Topic(stack, "Notices", master_key=kms.Key(stack, "NoticesKey", enable_key_rotation=True))
    # WHEN CDK's grant method grants publishing, with exactly the two key actions SNS needs
    topic.grants.actions(glue.grantee("Notify"), ["sns:Publish"], key_actions=["kms:GenerateDataKey", "kms:Decrypt"])
    template = Template.from_stack(stack)
    # THEN the statements are in the function's managed policy, named, and no inline policy was made for them
    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Sid": "Notify", "Action": "sns:Publish", "Resource": {"Ref": Match.any_value()}}
                        ),
                        Match.object_like(
                            {
                                "Sid": "NotifyKey",
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                                "Resource": {"Fn::GetAtt": [Match.string_like_regexp("^NoticesKey"), "Arn"]},
                            }
                        ),
                    ]
                )
            },
            "Roles": [{"Ref": Match.string_like_regexp("^ProbeRole")}],
        },
    )
    assert template.find_resources("AWS::IAM::Policy") == {}


def test_a_cdk_grant_that_widens_to_a_wildcard_is_refused() -> None:
    # GIVEN a glue function and a function it could invoke
    stack = _probe_stack()
    glue = _probe_glue(stack)
    # WHEN CDK's grant_invoke is used (it grants "<arn>:*", every version and alias, besides the function)
    with pytest.raises(RuntimeError) as refused:
        glue.function.grant_invoke(glue.grantee("InvokeSelf"))
    # THEN the grant is refused: a grant method that widens is written out as a statement instead (the
    # GluePolicyError crosses jsii as a RuntimeError that keeps only the message, which starts "<code>: ")
    assert str(refused.value).partition(": ")[0] == "wide-grant"


def test_a_star_added_to_a_glue_policy_later_is_a_nag_finding() -> None:
    # GIVEN a glue function that passes AwsSolutions as built
    stack = _probe_stack()
    glue = _probe_glue(stack)
    iam5 = [f for f in findings(stack, "AwsSolutions") if "IAM5" in f and "Resource::*" in f]
    assert iam5 == []
    # WHEN a statement on "*" slips into its scoped policy after construction
    glue.policy.add_statements(iam.PolicyStatement(sid="Sneaky", actions=["s3:GetObject"], resources=["*"]))
    # THEN AwsSolutions-IAM5 reports it: the only acknowledgment of "*" sits on the unscoped policy
    iam5 = [f for f in findings(stack, "AwsSolutions") if "IAM5" in f and "Resource::*" in f]
    assert iam5 and all("Probe/Policy/Resource" in f for f in iam5), iam5


def test_a_star_added_to_the_execution_role_policy_later_is_a_nag_finding() -> None:
    # GIVEN the SageMaker execution role in a probe stack, in a VPC
    stack = Stack(App(context=cdk_context()), "Probe", env={"region": "us-east-1", "account": "123456789012"})
    from config.settings import load_config

    key = kms.Key(stack, "Key", enable_key_rotation=True)
    bucket = s3.Bucket.from_bucket_name(stack, "B", "sagecycle-dev-data-123456789012-us-east-1")
    role = SageMakerExecutionRole(
        stack,
        "Execution",
        role_name="probe-execution",
        config=load_config("dev"),
        data_bucket=bucket,
        model_bucket=s3.Bucket.from_bucket_name(stack, "M", "sagecycle-dev-models-123456789012-us-east-1"),
        data_key=key,
        image_repository_arn="arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-xgboost",
        network=NetworkScope(vpc_id="vpc-0123", subnet_ids=("subnet-a", "subnet-b"), security_group_ids=("sg-1",)),
    )
    before = [f for f in findings(stack, "AwsSolutions") if "IAM5" in f and "Resource::*" in f]
    # WHEN a statement on "*" slips into its scoped policy
    role.policy.add_statements(iam.PolicyStatement(sid="Sneaky", actions=["s3:GetObject"], resources=["*"]))
    # THEN it is reported (the acknowledgment of "*" covers the unscoped policy only)
    after = [f for f in findings(stack, "AwsSolutions") if "IAM5" in f and "Resource::*" in f]
    assert before == [] and after and all("Execution/Policy/Resource" in f for f in after), after
