"""The local stage is what cdk.out describes: every resource type provisioned from the templates, nothing listed
by hand (the templates' reading and intrinsics: test_templates.py)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from contract import names as cn
from sagecycle.rehearsal import LocalAws
from sagecycle.rehearsal.alarms import ALARM
from sagecycle.rehearsal.stage import REHEARSED_TYPES, provision_stage
from tests.rehearsal.conftest_stage import *  # noqa: F403 - the fixtures
from tests.rehearsal.conftest_stage import ACCOUNT, REGION, Rig, function_resource, make_rig, reset


def test_a_variable_and_an_alarm_added_to_the_templates_show_up(
    local_aws: LocalAws, templates: dict[str, dict[str, Any]], cdk_out: Path, tmp_path: Path
) -> None:
    # GIVEN templates edited as a developer would: a new variable on the ingest function (a literal and a
    # reference) and a new alarm in the Retraining stack
    variables = function_resource(templates, "ingest")["Properties"]["Environment"]["Variables"]
    variables["EXTRA_SETTING"] = "on"
    variables["EXTRA_ACCOUNT_ARN"] = {"Fn::Join": ["", ["arn:aws:iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
    stack = next(
        name for name, t in templates.items() if "ingest" in json.dumps(t) and "EventSourceMapping" in json.dumps(t)
    )
    templates[stack]["Resources"]["ExtraAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": "rehearsal-extra",
            "Namespace": "sagecycle",
            "MetricName": "Extra",
            "Dimensions": [{"Name": "Stage", "Value": "dev"}],
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 2,
            "DatapointsToAlarm": 1,
            "Threshold": 3,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        },
    }
    # WHEN the stage is provisioned from them
    rig = make_rig(local_aws, templates, cdk_out, tmp_path / "log")
    try:
        # THEN the function gets the variables, resolved, and sees them when it runs
        environment = rig.stage.function_environments["ingest"]
        assert environment["EXTRA_SETTING"] == "on"
        assert environment["EXTRA_ACCOUNT_ARN"] == f"arn:aws:iam::{ACCOUNT}:root"
        assert rig.functions.environment("ingest")["EXTRA_SETTING"] == "on"
        # ... and the alarm exists in the local CloudWatch with its fields, and is evaluated
        described = rig.client("cloudwatch").describe_alarms(AlarmNames=["rehearsal-extra"])["MetricAlarms"][0]
        assert (described["EvaluationPeriods"], described["DatapointsToAlarm"], described["Threshold"]) == (2, 1, 3.0)
        assert described["TreatMissingData"] == "notBreaching"
        rig.client("cloudwatch").put_metric_data(
            Namespace="sagecycle",
            MetricData=[
                {
                    "MetricName": "Extra",
                    "Dimensions": [{"Name": "Stage", "Value": "dev"}],
                    "Value": 4,
                    "Timestamp": rig.clock.now(),
                }
            ],
        )
        rig.clock.advance(60)
        rig.alarms.evaluate()
        assert rig.alarms.state("rehearsal-extra") == ALARM
    finally:
        rig.functions.close()


def _pattern(value: Any) -> str:
    """A regex for the resolved value: the template's literal text as is, every reference a captured group."""
    if isinstance(value, str):
        return re.escape(value)
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return re.escape(separator).join(_pattern(p) for p in parts)
    return "(.+?)"


def test_every_environment_is_the_synthesized_one_with_only_names_resolved(
    rig: Rig, templates: dict[str, dict[str, Any]]
) -> None:
    # GIVEN every local name and ARN of the stage (what a reference may resolve to)
    local = {ACCOUNT, REGION}
    for physical in rig.stage.resources.values():
        local.add(physical.ref)
        local.update(str(v) for v in physical.attrs.values())
    # WHEN the functions' synthesized environments are compared with the rehearsed ones
    functions = [
        r
        for t in templates.values()
        for r in t["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and str(r["Properties"].get("Handler", "")).startswith("lambdas.")
    ]
    assert sorted(rig.stage.function_environments) == sorted(
        r["Properties"]["Handler"].split(".")[1] for r in functions
    )
    for resource in functions:
        key = resource["Properties"]["Handler"].split(".")[1]
        synthesized = resource["Properties"]["Environment"]["Variables"]
        rehearsed = rig.stage.function_environments[key]
        # THEN the same variables; literal values unchanged; each reference replaced by a local name or ARN
        assert sorted(rehearsed) == sorted(synthesized), key
        for name, value in synthesized.items():
            match = re.fullmatch(_pattern(value), rehearsed[name], flags=re.S)
            assert match is not None, (key, name)
            assert all(group in local for group in match.groups()), (key, name, match.groups())


def test_unrehearsed_counts_every_resource_type_not_created(rig: Rig, templates: dict[str, dict[str, Any]]) -> None:
    # GIVEN every resource of every template
    counts = Counter(r["Type"] for t in templates.values() for r in t["Resources"].values())
    counts.pop("AWS::CDK::Metadata", None)
    # WHEN the provisioned stage counts what it created and what it did not
    # THEN each resource is either rehearsed or counted as unrehearsed, by type, and nothing else
    assert Counter(rig.stage.rehearsed) + Counter(rig.stage.unrehearsed) == counts
    assert set(rig.stage.rehearsed) <= REHEARSED_TYPES
    for kind in ("AWS::IAM::Role", "AWS::EC2::VPC", "AWS::CloudTrail::Trail", "AWS::CloudWatch::Dashboard"):
        assert rig.stage.unrehearsed.get(kind, 0) == counts[kind]
    # ... and what is counted as rehearsed exists in the local AWS
    assert len(rig.client("s3").list_buckets()["Buckets"]) == counts["AWS::S3::Bucket"]
    assert len(rig.client("dynamodb").list_tables()["TableNames"]) == counts["AWS::DynamoDB::Table"]
    assert len(rig.client("sqs").list_queues()["QueueUrls"]) == counts["AWS::SQS::Queue"] + 1  # + the inbox
    assert len(rig.client("sns").list_topics()["Topics"]) == counts["AWS::SNS::Topic"]
    alarms = rig.client("cloudwatch").describe_alarms(AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    assert len(alarms["MetricAlarms"]) + len(alarms["CompositeAlarms"]) == (
        counts["AWS::CloudWatch::Alarm"] + counts["AWS::CloudWatch::CompositeAlarm"]
    )
    assert len(rig.client("events").list_rules()["Rules"]) == counts["AWS::Events::Rule"]


def test_stateful_resources_keep_their_template_properties(rig: Rig) -> None:
    # GIVEN the provisioned stage
    names = rig.stage.names
    # WHEN its tables, buckets, queues and topics are described
    # THEN the tables have their key schema and TTL, buckets versioning and KMS, the new-data queue its redrive,
    # and every topic reaches the operators' inbox
    dynamodb, s3, sqs, sns = (rig.client(s) for s in ("dynamodb", "s3", "sqs", "sns"))
    runs = dynamodb.describe_table(TableName=names.runs_table)["Table"]
    assert [k["KeyType"] for k in runs["KeySchema"]] == ["HASH", "RANGE"]
    assert (
        dynamodb.describe_time_to_live(TableName=names.runs_table)["TimeToLiveDescription"]["TimeToLiveStatus"]
        == "ENABLED"
    )
    assert s3.get_bucket_versioning(Bucket=names.data_bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=names.data_bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rig.stage.buckets[names.data_bucket].eventbridge
    mapping = rig.stage.event_source_mappings[0]
    queue = rig.stage.queues[mapping.queue_arn]
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]["RedrivePolicy"]
    )
    assert redrive["deadLetterTargetArn"] in rig.stage.queues
    for topic in rig.stage.topics:
        endpoints = [s["Endpoint"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]]
        assert rig.stage.inbox_queue_arn in endpoints


def test_assets_and_the_endpoint_come_from_the_assembly(rig: Rig) -> None:
    # GIVEN the training settings the functions get
    settings = json.loads(rig.stage.function_environments["start_training"][cn.ENV_TRAINING_SETTINGS])
    bucket, _, key = settings["source_dir_s3_uri"].removeprefix("s3://").partition("/")
    # WHEN the model bucket and the endpoint are described
    # THEN the training source tarball is in the model bucket (the BucketDeployment's asset, from cdk.out)
    assert rig.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    # ... and the endpoint exists with the template's config; its model's data URL is the champion parameter's
    sagemaker = rig.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=rig.stage.names.endpoint_name)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    champion = rig.client("ssm").get_parameter(Name=rig.stage.names.champion_parameter)["Parameter"]["Value"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == champion
    deployment = rig.stage.endpoints[0].deployment_config or {}
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"


def test_bucket_deployments_copy_their_asset_from_the_assembly(local_aws: LocalAws, tmp_path: Path) -> None:
    # GIVEN an assembly whose stack deploys an asset directory (a model) under models/baseline/ of its bucket
    reset(local_aws)
    asset = tmp_path / "asset.abc123"
    asset.mkdir()
    (asset / "model.tar.gz").write_bytes(b"the first model")
    (tmp_path / "solo.assets.json").write_text(
        json.dumps(
            {
                "files": {
                    "abc123": {
                        "source": {"path": "asset.abc123", "packaging": "zip"},
                        "destinations": {"d": {"bucketName": "cdk-assets", "objectKey": "abc123.zip"}},
                    }
                }
            }
        )
    )
    template = {
        "Resources": {
            "Models": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "probe-models"}},
            "Deploy": {
                "Type": "Custom::CDKBucketDeployment",
                "Properties": {
                    "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
                    "SourceBucketNames": ["cdk-assets"],
                    "SourceObjectKeys": ["abc123.zip"],
                    "DestinationBucketName": {"Ref": "Models"},
                    "DestinationBucketKeyPrefix": "models/baseline/",
                },
            },
        }
    }
    # WHEN provisioned with the assembly / THEN the file is where the deployment puts it
    stage = provision_stage(local_aws, {"solo": template}, account=ACCOUNT, region=REGION, cdk_out=tmp_path)
    body = local_aws.client("s3").get_object(Bucket="probe-models", Key="models/baseline/model.tar.gz")["Body"].read()
    assert body == b"the first model"
    assert stage.rehearsed["Custom::CDKBucketDeployment"] == 1
    # ... and without the assembly it is counted as unrehearsed
    reset(local_aws)
    assert provision_stage(local_aws, {"solo": template}, account=ACCOUNT, region=REGION).unrehearsed == {
        "Custom::CDKBucketDeployment": 1
    }
