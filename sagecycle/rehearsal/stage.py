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

This module walks the templates and dispatches each resource type to its creator; the rest lives by concern:
- `stage_model`: `LocalStage` and the definitions it keeps (functions, rules, queues, alarms...), `TemplateError`;
- `templates`: reading cdk.out, resolving the intrinsics, CloudFormation's generated names;
- `provision_storage` (KMS, S3, DynamoDB, SSM), `provision_messaging` (SQS, SNS, EventBridge),
  `provision_sagemaker`, `provision_alarms` (CloudWatch), `provision_lambda` (functions, mappings, permissions).
The model's names and `load_templates` are importable from here too, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from sagecycle.rehearsal import (
    provision_alarms,
    provision_lambda,
    provision_messaging,
    provision_sagemaker,
    provision_storage,
)
from sagecycle.rehearsal.stage_model import (
    INBOX_QUEUE,
    PARTITION,
    URL_SUFFIX,
    AlarmDef,
    AwsLike,
    BucketDef,
    EndpointDef,
    FunctionDef,
    LocalStage,
    MappingDef,
    PermissionDef,
    Physical,
    QueueDef,
    RuleDef,
    StageNames,
    TargetDef,
    TemplateError,
    TopicDef,
)
from sagecycle.rehearsal.templates import Resolver, creation_order, generated_name, load_templates

__all__ = [  # what callers import from here; each lives in the module named above
    "INBOX_QUEUE",
    "PARTITION",
    "REHEARSED_TYPES",
    "URL_SUFFIX",
    "AlarmDef",
    "AwsLike",
    "BucketDef",
    "EndpointDef",
    "FunctionDef",
    "LocalStage",
    "MappingDef",
    "PermissionDef",
    "Physical",
    "Provisioner",
    "QueueDef",
    "RuleDef",
    "StageNames",
    "TargetDef",
    "TemplateError",
    "TopicDef",
    "generated_name",
    "load_templates",
    "provision_stage",
]


def _clients(url: str, region: str) -> Callable[[str], Any]:
    import boto3

    cache: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in cache:
            cache[service] = boto3.client(service, endpoint_url=url, region_name=region)
        return cache[service]

    return client


class Provisioner:
    """Creates one stage: walks each template in creation order and hands each resource to its type's creator."""

    def __init__(self, stage: LocalStage, cdk_out: Path | None) -> None:
        self.stage = stage
        self.cdk_out = cdk_out
        self.client = _clients(stage.url, stage.region)
        self.resolver = Resolver(stage, self.ssm_value)
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
            for logical_id in creation_order(template):
                resource = template["Resources"][logical_id]
                self.resolver.where = f"{logical_id} ({resource.get('Type')})"
                if "Condition" in resource and not self.resolver.condition(resource["Condition"]):
                    continue
                self.create(stack, logical_id, resource)
        provision_lambda.finish_functions(self)
        provision_messaging.subscribe_inbox(self)

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


_CREATORS: dict[str, Callable[[Provisioner, str, str, Mapping[str, Any]], Physical | None]] = {
    "AWS::KMS::Key": provision_storage.kms_key,
    "AWS::KMS::Alias": provision_storage.kms_alias,
    "AWS::S3::Bucket": provision_storage.s3_bucket,
    "Custom::CDKBucketDeployment": provision_storage.bucket_deployment,
    "AWS::DynamoDB::Table": provision_storage.dynamodb_table,
    "AWS::SQS::Queue": provision_messaging.sqs_queue,
    "AWS::SNS::Topic": provision_messaging.sns_topic,
    "AWS::SSM::Parameter": provision_storage.ssm_parameter,
    "AWS::SageMaker::ModelPackageGroup": provision_sagemaker.model_package_group,
    "AWS::SageMaker::Model": provision_sagemaker.sagemaker_model,
    "AWS::SageMaker::EndpointConfig": provision_sagemaker.endpoint_config,
    "AWS::SageMaker::Endpoint": provision_sagemaker.endpoint,
    "AWS::CloudWatch::Alarm": provision_alarms.metric_alarm,
    "AWS::CloudWatch::CompositeAlarm": provision_alarms.composite_alarm,
    "AWS::Events::Rule": provision_messaging.events_rule,
    "AWS::Lambda::Function": provision_lambda.lambda_function,
    "AWS::Lambda::EventInvokeConfig": provision_lambda.event_invoke_config,
    "AWS::Lambda::EventSourceMapping": provision_lambda.event_source_mapping,
    "AWS::Lambda::Permission": provision_lambda.lambda_permission,
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
    Provisioner(stage, cdk_out).run()
    return stage
