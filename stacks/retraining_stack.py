"""Retraining: the glue that turns new data, a schedule and alarms into one safe training job and a decision.

data bucket incoming/ --EventBridge--> queue (debounce) --> ingest --> start-training --> SageMaker
schedule ----------------------------------------------------------> start-training
drift / model-quality alarms --EventBridge-------------------------> start-training
training job state change --EventBridge--> promote --> registry, endpoint update, champion
endpoint state change --EventBridge------> promote (champion only once InService)
schedule --> drift-monitor --> MaxPSI metric --> drift alarm
endpoint health alarms --EventBridge--> alarm-responder --> notice (+ rollback when allowed)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Aws, Duration, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from config.settings import INGEST_TIMEOUT_S, StageConfig, retrain_policy_document, training_spec_fields
from lambdas.shared import contract as c
from lambdas.shared.events import TERMINAL_TRAINING_STATES, TERMINAL_TUNING_STATES
from lambdas.shared.jobspec import TrainingSpecSettings, VpcSettings
from stacks.constructs.glue_function import GlueFunction, encrypted_queue
from stacks.constructs.guardrails import SageMakerGuardrails
from stacks.constructs.vpce_perimeter import PERIMETER_EXEMPT_TAG, PERIMETER_EXEMPT_VALUE
from stacks.nag import acknowledge
from stacks.naming import bucket_name, table_name

# Settings are validated at synth, but the account and the data key's ARN are only known at deploy: the JSON
# carries sentinels that an Fn::Sub replaces, so the Lambda gets real ARNs and synth still checks the shapes.
_SENTINEL_ACCOUNT = "000000000000"
_SENTINEL_KEY_ID = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class PrivateNetwork:
    """Where training jobs and models run (tokens from the Network stack)."""

    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


# Where the glue functions read models: registered and champion models, and candidates a training job left.
GLUE_MODEL_PREFIXES = (c.PREFIX_MODELS, c.PREFIX_TRAINING_OUTPUT)

_SENTINEL_SUBNETS = tuple(f"subnet-{i:017d}" for i in range(16))
_SENTINEL_GROUPS = tuple(f"sg-{i:017d}" for i in range(5))


@dataclass(frozen=True)
class ModelFacts:
    """What the Model stack decided, by value (names, not tokens)."""

    image_uri: str
    execution_role_name: str
    sourcedir_name: str
    champion_parameter: str
    model_package_group: str


def _any_case(statuses: frozenset[str]) -> list[dict[str, str]]:
    """The statuses the handler acts on, in any casing (the handler normalises them the same way)."""
    return [{"equals-ignore-case": s} for s in sorted(statuses)]


def event_patterns(config: StageConfig, account: str) -> dict[str, dict[str, Any]]:
    """Every EventBridge pattern this stack routes on, by rule; tests match them against AWS's sample events.

    Each pattern is no stricter than the handler's own re-check: what the handler would act on always arrives,
    and fields SageMaker may send as `null` or leave out are not matched on at all.
    """
    app, stage = config.app_name, config.stage
    return {
        "NewData": {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {
                "bucket": {"name": [f"{app}-{stage}-data-{account}-{config.region}"]},
                "object": {"key": [{"prefix": c.PREFIX_INCOMING}]},
            },
        },
        "RetrainAlarms": {
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {
                "alarmName": [
                    c.alarm_name(app, stage, c.DRIFT_ALARM_SUFFIX),
                    c.alarm_name(app, stage, c.QUALITY_ALARM_SUFFIX),
                ],
                "state": {"value": ["ALARM"]},
            },
        },
        # A tuning job's children are not candidates, but the rule lets them through: SageMaker sends
        # `TuningJobArn` set, `null` or not at all, and `{"exists": false}` does not match `null`. The promote
        # function re-checks every finished job (TuningJobArn, else DescribeTrainingJob for a child's name).
        "TrainingFinished": {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Training Job State Change"],
            "detail": {
                "TrainingJobName": [{"prefix": f"{c.job_name_prefix(app, stage)}-"}],
                "TrainingJobStatus": _any_case(TERMINAL_TRAINING_STATES),
            },
        },
        "TuningFinished": {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker HyperParameter Tuning Job State Change"],
            "detail": {
                "HyperParameterTuningJobName": [{"prefix": f"{c.job_name_prefix(app, stage)}-"}],
                "HyperParameterTuningJobStatus": _any_case(TERMINAL_TUNING_STATES),
            },
        },
        "EndpointChanged": {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Endpoint State Change", "SageMaker Endpoint Deployment State Change"],
            "detail": {"EndpointName": [c.endpoint_name(app, stage)]},
        },
        "EndpointUnhealthy": {
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {
                "alarmName": [c.alarm_name(app, stage, c.ENDPOINT_ALARMS["unhealthy"])],
                "state": {"value": ["ALARM"]},
            },
        },
    }


def training_settings(
    config: StageConfig, model: ModelFacts, partition: str, network: PrivateNetwork | None = None
) -> TrainingSpecSettings:
    """The job-spec settings the Lambdas build every SageMaker request from (sentinel account and key).

    What the stage decides comes from config.settings.training_spec_fields, the values synth already ran through
    the functions' parsers; this adds only the names, ARNs and URIs the stacks know.
    """
    app, stage = config.app_name, config.stage
    models = f"{app}-{stage}-models-{_SENTINEL_ACCOUNT}-{config.region}"
    return TrainingSpecSettings(
        image_uri=model.image_uri,
        role_arn=f"arn:{partition}:iam::{_SENTINEL_ACCOUNT}:role/{model.execution_role_name}",
        data_bucket=f"{app}-{stage}-data-{_SENTINEL_ACCOUNT}-{config.region}",
        model_bucket=models,
        source_dir_s3_uri=f"s3://{models}/{c.PREFIX_CODE}{model.sourcedir_name}",
        kms_key_arn=f"arn:{partition}:kms:{config.region}:{_SENTINEL_ACCOUNT}:key/{_SENTINEL_KEY_ID}",
        train_prefix=c.PREFIX_TRAIN,
        validation_prefix=c.PREFIX_VALIDATION,
        test_prefix=c.PREFIX_TEST,
        model_output_prefix=c.PREFIX_TRAINING_OUTPUT,
        checkpoint_s3_uri=f"s3://{models}/{c.PREFIX_CHECKPOINTS}" if config.training.use_spot else None,
        vpc=VpcSettings(
            subnet_ids=_SENTINEL_SUBNETS[: len(network.subnet_ids)],
            security_group_ids=_SENTINEL_GROUPS[: len(network.security_group_ids)],
        )
        if network
        else None,
        **training_spec_fields(config),
    )


def retrain_policy(config: StageConfig) -> dict[str, Any]:
    """RETRAIN_POLICY as the functions receive it: config.settings.retrain_policy_document, the one builder."""
    return retrain_policy_document(config)


class RetrainingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        model: ModelFacts,
        data_key: kms.IKey,
        log_key: kms.IKey,
        operator_topic: sns.ITopic,
        network: PrivateNetwork | None,
        lambda_bundle: Path,
        powertools_layer: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        app, stage = config.app_name, config.stage
        settings = training_settings(config, model, self.partition, network)
        self.training_settings = settings
        # Tokens embedded in a Python string render as one Fn::Join at synth.
        settings_env = settings.to_json().replace(settings.kms_key_arn, data_key.key_arn)
        if network is not None:
            for sentinel, token in (
                *zip(_SENTINEL_SUBNETS, network.subnet_ids, strict=False),
                *zip(_SENTINEL_GROUPS, network.security_group_ids, strict=False),
            ):
                settings_env = settings_env.replace(sentinel, token)
        settings_env = settings_env.replace(_SENTINEL_ACCOUNT, Aws.ACCOUNT_ID)
        self.data_bucket = bucket_name(config, "data")
        self.model_bucket = bucket_name(config, "models")
        runs = table_name(config, "runs")
        idempotency = table_name(config, "idempotency")
        arn = self._arn
        common_env = {
            c.ENV_STAGE: stage,
            c.ENV_DATA_BUCKET: self.data_bucket,
            c.ENV_MODEL_BUCKET: self.model_bucket,
            c.ENV_OPERATOR_TOPIC_ARN: operator_topic.topic_arn,
            c.ENV_CHAMPION_PARAMETER: model.champion_parameter,
            c.ENV_RUNS_TABLE: runs,
            c.ENV_RETRAIN_POLICY: json.dumps(retrain_policy(config), separators=(",", ":")),
            "POWERTOOLS_SERVICE_NAME": f"{app}-{stage}",
            "POWERTOOLS_METRICS_NAMESPACE": c.METRIC_NAMESPACE,
        }
        code = lambda_.Code.from_asset(str(lambda_bundle))
        layer = lambda_.LayerVersion(
            self,
            "Powertools",
            code=lambda_.Code.from_asset(str(powertools_layer)),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_14],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="Powertools for AWS Lambda at the version this project pins and tests with",
        )

        # ---- statements shared by several functions ---------------------------------------------------------
        data_objects = f"arn:{self.partition}:s3:::{self.data_bucket}"
        model_objects = f"arn:{self.partition}:s3:::{self.model_bucket}"
        champion_param = arn("ssm", f"parameter{model.champion_parameter}")
        use_data_key = iam.PolicyStatement(
            sid="UseDataKey",
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            resources=[data_key.key_arn],
        )
        publish = iam.PolicyStatement(
            sid="NotifyOperators", actions=["sns:Publish"], resources=[operator_topic.topic_arn]
        )
        publish_key = iam.PolicyStatement(
            sid="NotifyOperatorsKey", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[log_key.key_arn]
        )
        runs_rw = iam.PolicyStatement(
            sid="RunsTable",
            actions=[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
            ],
            resources=[arn("dynamodb", f"table/{runs}")],
        )
        read_champion = iam.PolicyStatement(
            sid="ReadChampion",
            actions=["ssm:GetParameter"],
            resources=[champion_param, f"{champion_param}/previous"],
        )
        read_models = iam.PolicyStatement(
            sid="ReadModelArtifacts",
            actions=["s3:GetObject"],
            resources=[f"{model_objects}/{p}*" for p in GLUE_MODEL_PREFIXES],
        )
        pass_role = iam.PolicyStatement(
            sid="PassExecutionRole",
            actions=["iam:PassRole"],
            resources=[f"arn:{self.partition}:iam::{Aws.ACCOUNT_ID}:role/{model.execution_role_name}"],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
        endpoint_arn = arn("sagemaker", f"endpoint/{c.endpoint_name(app, stage)}")
        prefix = c.job_name_prefix(app, stage)
        deploy = iam.PolicyStatement(
            sid="DeployToOurEndpoint",
            actions=[
                "sagemaker:CreateModel",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DescribeModel",
                "sagemaker:AddTags",
            ],
            resources=[
                endpoint_arn,
                arn("sagemaker", f"endpoint-config/{prefix}-*"),
                arn("sagemaker", f"model/{prefix}-*"),
            ],
        )
        # The endpoint's first model and config are named by CloudFormation, not with our prefix: describing
        # (read-only) any of them is what lets promote and the responder see what the endpoint serves.
        describe_hosting = iam.PolicyStatement(
            sid="DescribeHosting",
            actions=["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
            resources=[arn("sagemaker", "endpoint-config/*"), arn("sagemaker", "model/*")],
        )
        describe_reason = {
            "DescribeHosting": "read-only DescribeEndpointConfig/DescribeModel on any config and model of this "
            "account and region, because CloudFormation names the endpoint's first ones without our prefix."
        }
        fn_args: dict[str, Any] = {
            "code": code,
            "layer": layer,
            "log_key": log_key,
            "dlq_key": data_key,
            "environment_key": data_key,
            "metric_namespace": c.METRIC_NAMESPACE,
            "topic": operator_topic,
            "log_retention_days": config.data.log_retention_days,
        }

        # ---- start-training: the one start function ---------------------------------------------------------
        self.start = GlueFunction(
            self,
            "StartTraining",
            function_name=c.function_name(app, stage, "start_training"),
            handler_module="lambdas.start_training.handler",
            description="The one start function: new data, schedule and alarms become at most one training job",
            environment={
                **common_env,
                c.ENV_IDEMPOTENCY_TABLE: idempotency,
                c.ENV_TRAINING_SETTINGS: settings_env,
            },
            statements=[
                runs_rw,
                iam.PolicyStatement(
                    sid="IdempotencyTable",
                    actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    resources=[arn("dynamodb", f"table/{idempotency}")],
                ),
                iam.PolicyStatement(
                    sid="StartOurTrainingJobs",
                    actions=[
                        "sagemaker:CreateTrainingJob",
                        "sagemaker:CreateHyperParameterTuningJob",
                        "sagemaker:DescribeTrainingJob",
                        "sagemaker:DescribeHyperParameterTuningJob",
                        "sagemaker:AddTags",
                    ],
                    resources=[
                        arn("sagemaker", f"training-job/{prefix}-*"),
                        arn("sagemaker", f"hyper-parameter-tuning-job/{prefix}-*"),
                    ],
                ),
                pass_role,
                use_data_key,
                publish,
                publish_key,
            ],
            reserved_concurrency=1,  # one decision at a time; the lock is the real guard
            **fn_args,
        )

        # ---- ingest: incoming/ -> quarantine/ or train/ -------------------------------------------------------
        self.ingest = GlueFunction(
            self,
            "Ingest",
            function_name=c.function_name(app, stage, "ingest"),
            handler_module="lambdas.ingest.handler",
            description="Checks each new file against the champion's schema; quarantines or promotes it",
            environment={**common_env, c.ENV_START_FUNCTION: self.start.function.function_name},
            statements=[
                iam.PolicyStatement(
                    sid="MoveIncomingFiles",
                    # Versioned reads and deletes: ingest removes exactly the version it checked, never a newer one.
                    actions=[
                        "s3:GetObject",
                        "s3:GetObjectVersion",
                        "s3:GetObjectTagging",
                        "s3:GetObjectVersionTagging",
                        "s3:DeleteObject",
                        "s3:DeleteObjectVersion",
                    ],
                    resources=[f"{data_objects}/{c.PREFIX_INCOMING}*"],
                ),
                iam.PolicyStatement(
                    sid="WriteQuarantineAndTrain",
                    actions=["s3:PutObject", "s3:GetObject", "s3:PutObjectTagging"],
                    resources=[f"{data_objects}/{c.PREFIX_QUARANTINE}*", f"{data_objects}/{c.PREFIX_TRAIN}*"],
                ),
                iam.PolicyStatement(
                    # A copy that fails verification loses the version it made (lambdas/ingest/logic.py
                    # _discard_copy); only a named version, so no delete marker can hide an earlier good file.
                    sid="DiscardBadCopies",
                    actions=["s3:DeleteObjectVersion"],
                    resources=[f"{data_objects}/{c.PREFIX_QUARANTINE}*", f"{data_objects}/{c.PREFIX_TRAIN}*"],
                ),
                iam.PolicyStatement(
                    # Without ListBucket S3 answers 403, not 404, for an object an earlier delivery already moved.
                    sid="ListOwnPrefixes",
                    actions=["s3:ListBucket"],
                    resources=[data_objects],
                    conditions={
                        "StringLike": {
                            "s3:prefix": [f"{p}*" for p in (c.PREFIX_INCOMING, c.PREFIX_TRAIN, c.PREFIX_QUARANTINE)]
                        }
                    },
                ),
                iam.PolicyStatement(
                    sid="ReadFallbackSchema",
                    actions=["s3:GetObject"],
                    resources=[f"{data_objects}/{c.PREFIX_BASELINE}*"],
                ),
                read_models,
                read_champion,
                runs_rw,
                iam.PolicyStatement(
                    sid="StartTraining",
                    actions=["lambda:InvokeFunction"],
                    resources=[self.start.function.function_arn],
                ),
                use_data_key,
                publish,
                publish_key,
            ],
            # Sized from retraining.max_file_mb: CPU to check the largest file in time (config.settings).
            timeout=Duration.seconds(INGEST_TIMEOUT_S),
            memory_mb=config.retraining.ingest_memory_mb,
            reserved_concurrency=2,
            **fn_args,
        )
        ingest_dlq = encrypted_queue(
            self, "NewDataDeadLetters", key=data_key, topic=operator_topic, purpose="the new-data queue"
        )
        # Encrypted, TLS-only; visibility covers six ingest timeouts, as Lambda advises for SQS sources.
        self.new_data_queue = sqs.Queue(
            self,
            "NewDataQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=data_key,
            enforce_ssl=True,
            visibility_timeout=Duration.minutes(30),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=ingest_dlq, max_receive_count=5),
        )
        self.ingest.function.add_event_source(
            sources.SqsEventSource(
                self.new_data_queue,
                batch_size=100,
                max_batching_window=Duration.seconds(config.retraining.debounce_seconds),
                report_batch_item_failures=True,
                max_concurrency=2,
            )
        )
        esm = next(ch for ch in self.ingest.function.node.children if ch.node.id.startswith("SqsEventSource"))
        acknowledge(
            esm.node.default_child,
            "Serverless-LambdaEventSourceMappingDestination",
            "SQS event sources take no on-failure destination; a message that fails five times moves to the "
            "queue's own KMS-encrypted dead-letter queue, which alarms when not empty.",
        )
        self.ingest.policy.add_statements(
            iam.PolicyStatement(
                sid="ConsumeNewDataQueue",
                actions=[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                ],
                resources=[self.new_data_queue.queue_arn],
            )
        )

        # ---- promote ------------------------------------------------------------------------------------------
        self.promote = GlueFunction(
            self,
            "Promote",
            function_name=c.function_name(app, stage, "promote"),
            handler_module="lambdas.promote.handler",
            description="Compares a finished candidate with the champion; registers, deploys, promotes or rejects",
            environment={
                **common_env,
                c.ENV_TRAINING_SETTINGS: settings_env,
                c.ENV_ENDPOINT_NAME: c.endpoint_name(app, stage),
                c.ENV_MODEL_PACKAGE_GROUP: model.model_package_group,
                c.ENV_ROLLBACK_ALARMS: json.dumps(list(settings.endpoint.rollback_alarm_names)),
            },
            statements=[
                read_models,
                iam.PolicyStatement(
                    # Without ListBucket S3 answers 403 (AccessDenied), not 404 (NoSuchKey), for a model that is
                    # not there: with it, a missing model reads as missing, not as a refused permission.
                    sid="ListModelArtifacts",
                    actions=["s3:ListBucket"],
                    resources=[model_objects],
                    conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in GLUE_MODEL_PREFIXES]}},
                ),
                iam.PolicyStatement(
                    # evaluation.json beside the candidate's model.tar.gz, for the package's ModelMetrics
                    sid="WriteModelMetrics",
                    actions=["s3:PutObject"],
                    resources=[f"{model_objects}/{c.PREFIX_TRAINING_OUTPUT}*"],
                ),
                iam.PolicyStatement(
                    # UpdateEndpoint with AutoRollbackConfiguration reads the alarms it names.
                    sid="ReadRollbackAlarms",
                    actions=["cloudwatch:DescribeAlarms"],
                    resources=[
                        f"arn:{self.partition}:cloudwatch:{self.region}:{Aws.ACCOUNT_ID}:alarm:{name}"
                        for name in settings.endpoint.rollback_alarm_names
                    ],
                ),
                describe_hosting,
                iam.PolicyStatement(
                    sid="SetChampion",
                    actions=["ssm:GetParameter", "ssm:PutParameter"],
                    resources=[champion_param, f"{champion_param}/previous"],
                ),
                iam.PolicyStatement(
                    sid="RegisterCandidates",
                    actions=[
                        "sagemaker:CreateModelPackage",
                        "sagemaker:UpdateModelPackage",
                        "sagemaker:DescribeModelPackage",
                        "sagemaker:ListModelPackages",
                        "sagemaker:AddTags",
                    ],
                    resources=[
                        arn("sagemaker", f"model-package-group/{model.model_package_group}"),
                        arn("sagemaker", f"model-package/{model.model_package_group}/*"),
                    ],
                ),
                iam.PolicyStatement(
                    sid="ReadTrainingJobs",
                    actions=["sagemaker:DescribeTrainingJob", "sagemaker:DescribeHyperParameterTuningJob"],
                    resources=[
                        arn("sagemaker", f"training-job/{prefix}-*"),
                        arn("sagemaker", f"hyper-parameter-tuning-job/{prefix}-*"),
                    ],
                ),
                deploy,
                pass_role,
                runs_rw,
                use_data_key,
                publish,
                publish_key,
            ],
            timeout=Duration.minutes(2),
            reserved_concurrency=1,  # decisions about one endpoint are serialized
            unscoped_reasons=describe_reason,
            **fn_args,
        )

        # ---- drift monitor ------------------------------------------------------------------------------------
        self.drift = GlueFunction(
            self,
            "DriftMonitor",
            function_name=c.function_name(app, stage, "drift_monitor"),
            handler_module="lambdas.drift_monitor.handler",
            description="PSI of captured requests against the champion's baseline, per feature",
            environment=common_env,
            statements=[
                iam.PolicyStatement(
                    sid="ReadCapture",
                    actions=["s3:GetObject"],
                    resources=[f"{data_objects}/{c.PREFIX_CAPTURE}*"],
                ),
                iam.PolicyStatement(
                    sid="ListCapture",
                    actions=["s3:ListBucket"],
                    resources=[data_objects],
                    conditions={"StringLike": {"s3:prefix": [f"{c.PREFIX_CAPTURE}*"]}},
                ),
                read_models,
                read_champion,
                runs_rw,
                use_data_key,
            ],
            timeout=Duration.minutes(10),
            memory_mb=1024,
            reserved_concurrency=1,
            **fn_args,
        )

        # ---- alarm responder ----------------------------------------------------------------------------------
        self.responder = GlueFunction(
            self,
            "AlarmResponder",
            function_name=c.function_name(app, stage, "alarm_responder"),
            handler_module="lambdas.alarm_responder.handler",
            description="Endpoint health alarms outside a deployment: a notice with context, rollback if allowed",
            environment={
                **common_env,
                c.ENV_TRAINING_SETTINGS: settings_env,
                c.ENV_ENDPOINT_NAME: c.endpoint_name(app, stage),
                c.ENV_ROLLBACK_ALARMS: json.dumps(list(settings.endpoint.rollback_alarm_names)),
            },
            statements=[
                read_champion,
                deploy,
                describe_hosting,
                pass_role,
                runs_rw,
                read_models,
                use_data_key,
                publish,
                publish_key,
            ],
            reserved_concurrency=1,
            unscoped_reasons=describe_reason,
            **fn_args,
        )

        if config.network.restrict_buckets_to_vpce:
            # The glue functions call S3 from Lambda's network (the VPC has no SQS/SNS/DynamoDB endpoints);
            # IAM scopes them to their prefixes, and the perimeter exempts them by tag.
            for fn in (self.ingest, self.start, self.promote, self.drift, self.responder):
                Tags.of(fn.role).add(PERIMETER_EXEMPT_TAG, PERIMETER_EXEMPT_VALUE)
        if network is not None:
            # The roles that create SageMaker jobs and models cannot create them outside the private network,
            # without isolation or without a volume key, whatever their other statements say.
            self.guardrails = SageMakerGuardrails(
                self,
                "Guardrails",
                roles=[self.start.role, self.promote.role, self.responder.role],
                guard_models=not config.endpoint.serverless,
            )
        self._routes(config, operator_topic, data_key)
        self._drift_and_quality_alarms(config, operator_topic)

    # ---- helpers ------------------------------------------------------------------------------------------------
    def _arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{Aws.ACCOUNT_ID}:{resource}"

    def _routes(self, config: StageConfig, topic: sns.ITopic, data_key: kms.IKey) -> None:
        patterns = event_patterns(config, Aws.ACCOUNT_ID)
        rule_dlq = encrypted_queue(self, "RuleDeadLetters", key=data_key, topic=topic, purpose="the EventBridge rules")
        retry = {"dead_letter_queue": rule_dlq, "retry_attempts": 8, "max_event_age": Duration.hours(12)}

        rule_dlq_retry = {"dead_letter_queue": rule_dlq, "retry_attempts": 8}
        events.Rule(
            self,
            "NewData",
            description="Objects created under incoming/ in the data bucket",
            event_pattern=self._pattern(patterns["NewData"]),
        ).add_target(targets.SqsQueue(self.new_data_queue, **rule_dlq_retry))  # type: ignore[arg-type]
        # (construct id, description, pattern or schedule, function): every Lambda route retries and dead-letters
        # the same way.
        routes: list[tuple[str, str, events.EventPattern | events.Schedule, GlueFunction]] = [
            (
                "RetrainAlarms",
                "Drift or model-quality alarm: retrain",
                self._pattern(patterns["RetrainAlarms"]),
                self.start,
            ),
            (
                "Schedule",
                "Scheduled retraining, only when new accepted data has arrived",
                events.Schedule.expression(config.retraining.schedule),
                self.start,
            ),
            (
                "TrainingFinished",
                "Our training jobs reached a terminal state",
                self._pattern(patterns["TrainingFinished"]),
                self.promote,
            ),
            (
                "TuningFinished",
                "Our tuning jobs reached a terminal state",
                self._pattern(patterns["TuningFinished"]),
                self.promote,
            ),
            (
                "EndpointChanged",
                "Our endpoint changed state: a deployment finished or rolled back",
                self._pattern(patterns["EndpointChanged"]),
                self.promote,
            ),
            (
                "DriftSchedule",
                "Scheduled drift check of captured requests",
                events.Schedule.expression(config.retraining.drift_schedule),
                self.drift,
            ),
            (
                "EndpointUnhealthy",
                "The endpoint's composite health alarm fired",
                self._pattern(patterns["EndpointUnhealthy"]),
                self.responder,
            ),
        ]
        for construct_id, description, trigger, fn in routes:
            is_schedule = isinstance(trigger, events.Schedule)
            events.Rule(
                self,
                construct_id,
                description=description,
                schedule=trigger if is_schedule else None,  # type: ignore[arg-type]
                event_pattern=None if is_schedule else trigger,  # type: ignore[arg-type]
            ).add_target(targets.LambdaFunction(fn.function, **retry))  # type: ignore[arg-type]

    @staticmethod
    def _pattern(p: dict[str, Any]) -> events.EventPattern:
        return events.EventPattern(source=p["source"], detail_type=p["detail-type"], detail=p["detail"])

    def _drift_and_quality_alarms(self, config: StageConfig, topic: sns.ITopic) -> None:
        app, stage = config.app_name, config.stage
        dims = {c.METRIC_DIMENSION: stage}
        drift = cloudwatch.Alarm(
            self,
            "DriftAlarm",
            alarm_name=c.alarm_name(app, stage, c.DRIFT_ALARM_SUFFIX),
            alarm_description=f"A feature's PSI against the champion's baseline is above "
            f"{config.retraining.drift_psi_threshold}: the input distribution moved; retraining starts.",
            metric=cloudwatch.Metric(
                namespace=c.METRIC_NAMESPACE,
                metric_name=c.METRIC_MAX_PSI,
                dimensions_map=dims,
                statistic="Maximum",
                period=Duration.hours(1),
            ),
            threshold=config.retraining.drift_psi_threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        lower_is_better = config.training.objective != "binary:logistic"
        quality = cloudwatch.Alarm(
            self,
            "QualityAlarm",
            alarm_name=c.alarm_name(app, stage, c.QUALITY_ALARM_SUFFIX),
            alarm_description="The champion's metric on labelled live traffic (published by your ground-truth "
            "job as sagecycle/LiveModelQuality) crossed the promotion floor; retraining starts.",
            metric=cloudwatch.Metric(
                namespace=c.METRIC_NAMESPACE,
                metric_name=c.METRIC_LIVE_QUALITY,
                dimensions_map=dims,
                statistic="Average",
                period=Duration.hours(6),
            ),
            threshold=config.retraining.metric_floor,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
            if lower_is_better
            else cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (drift, quality):
            alarm.add_alarm_action(actions.SnsAction(topic))
        self.drift_alarm, self.quality_alarm = drift, quality
