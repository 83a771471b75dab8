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
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from config.function_inputs import SENTINEL_ACCOUNT, training_spec
from config.settings import INGEST_TIMEOUT_S, StageConfig, retrain_policy_document
from lambdas.shared import contract as c
from lambdas.shared.jobspec import TrainingSpecSettings, VpcSettings
from stacks.constructs.approvals import ApprovalForwarding, ApprovalsBus
from stacks.constructs.glue_access import GlueAccess, GlueTargets
from stacks.constructs.glue_function import ARCHITECTURE, RUNTIME, GlueFunction, GlueRuntime, encrypted_queue
from stacks.constructs.guardrails import SageMakerGuardrails
from stacks.constructs.new_data_ingestion import NewDataIngestion
from stacks.constructs.retraining_alarms import RetrainingAlarms
from stacks.constructs.retraining_routes import GlueFunctions, RetrainingRoutes, event_pattern, event_patterns
from stacks.constructs.vpce_perimeter import PERIMETER_EXEMPT_TAG, PERIMETER_EXEMPT_VALUE
from stacks.naming import account_pair, bucket_name, table_name


@dataclass(frozen=True)
class PrivateNetwork:
    """Where training jobs and models run (tokens from the Network stack)."""

    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


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


def training_settings(
    config: StageConfig, model: ModelFacts, partition: str, network: PrivateNetwork | None = None
) -> TrainingSpecSettings:
    """The job-spec settings the Lambdas build every SageMaker request from (sentinel account and key).

    config.function_inputs.training_spec builds them (the one builder synth's own checks use too); this passes
    what the Model and Network stacks decided.
    """
    return training_spec(
        config,
        image_uri=model.image_uri,
        execution_role_name=model.execution_role_name,
        sourcedir_name=model.sourcedir_name,
        partition=partition,
        vpc=VpcSettings(
            subnet_ids=_SENTINEL_SUBNETS[: len(network.subnet_ids)],
            security_group_ids=_SENTINEL_GROUPS[: len(network.security_group_ids)],
        )
        if network
        else None,
    )


def retrain_policy(config: StageConfig) -> dict[str, Any]:
    """RETRAIN_POLICY as the functions receive it: config.settings.retrain_policy_document, the one builder."""
    return retrain_policy_document(config)


class RetrainingStack(Stack):
    """The five glue functions (`start`, `ingest`, `promote`, `drift`, `responder`), what they may do (`access`),
    how events reach them (`new_data`, `routes`), the alarms that retrain (`alarms`), and with a private network
    the `guardrails` on the roles that create SageMaker jobs and models.
    """

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
        self.training_settings = settings = training_settings(config, model, self.partition, network)
        self.data_bucket = bucket_name(config, "data")
        self.model_bucket = bucket_name(config, "models")
        targets = GlueTargets(
            data_bucket=self.data_bucket,
            model_bucket=self.model_bucket,
            runs_table=table_name(config, "runs"),
            idempotency_table=table_name(config, "idempotency"),
            champion_parameter=model.champion_parameter,
            execution_role_name=model.execution_role_name,
            model_package_group=model.model_package_group,
            endpoint_name=c.endpoint_name(app, stage),
            job_prefix=c.job_name_prefix(app, stage),
            rollback_alarm_names=tuple(settings.endpoint.rollback_alarm_names),
        )

        # ---- the functions ------------------------------------------------------------------------------------
        runtime = GlueRuntime(
            code=lambda_.Code.from_asset(str(lambda_bundle)),
            layer=lambda_.LayerVersion(
                self,
                "Powertools",
                code=lambda_.Code.from_asset(str(powertools_layer)),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description="Powertools for AWS Lambda at the version this project pins and tests with",
            ),
            log_key=log_key,
            dlq_key=data_key,
            environment_key=data_key,
            metric_namespace=c.METRIC_NAMESPACE,
            topic=operator_topic,
            log_retention_days=config.data.log_retention_days,
        )
        common = _common_environment(config, targets, operator_topic)
        deploying = {
            c.ENV_TRAINING_SETTINGS: _deployed_settings(settings, data_key, network),
            c.ENV_ENDPOINT_NAME: targets.endpoint_name,
            c.ENV_ROLLBACK_ALARMS: json.dumps(list(targets.rollback_alarm_names)),
        }
        accounts = config.accounts
        pair = account_pair(config)
        if accounts.role != "single" or accounts.effective_approval != "automatic":
            promote_env = {c.ENV_ACCOUNT_ROLE: accounts.role, c.ENV_PACKAGE_APPROVAL: accounts.effective_approval}
            if pair is not None:
                promote_env[c.ENV_PEER_ACCOUNT] = (
                    pair.serving_account if accounts.role == "build" else pair.build_account
                )
        else:
            promote_env = {}
        # A build account trains and registers; a serving account deploys, watches and rolls back.
        self.start: GlueFunction | None = None
        self.ingest: GlueFunction | None = None
        self.drift: GlueFunction | None = None
        self.responder: GlueFunction | None = None
        if accounts.builds:
            self._build_functions(app, stage, runtime, common, deploying, targets, config)
        self.promote = GlueFunction(
            self,
            "Promote",
            function_name=c.function_name(app, stage, "promote"),
            handler_module="lambdas.promote.handler",
            description="Compares a finished candidate with the champion; registers, deploys, promotes or rejects",
            runtime=runtime,
            environment={**common, **deploying, c.ENV_MODEL_PACKAGE_GROUP: model.model_package_group, **promote_env},
            timeout=Duration.minutes(2),
            reserved_concurrency=1,  # decisions about one endpoint are serialized
        )
        if accounts.serves:
            self._serving_functions(app, stage, runtime, common, deploying)
        functions = tuple(
            fn for fn in (self.start, self.ingest, self.promote, self.drift, self.responder) if fn is not None
        )

        # ---- what each function may do (tests/infrastructure/test_security_baseline.py lists every statement) ---
        self.access = access = GlueAccess(
            self, "Access", targets=targets, data_key=data_key, operator_topic=operator_topic
        )
        for fn in functions:
            access.use_data_key(fn)
            access.use_runs_table(fn)
        deployer = self.promote if accounts.serves else None  # promote deploys only where the endpoint is
        for f in _present(self.start, self.ingest, self.promote, self.responder):
            access.notify_operators(f)
        for f in _present(self.ingest, self.promote, self.drift, self.responder):
            access.read_models(f)
        for f in _present(self.ingest, self.drift, self.responder):
            access.read_champion(f)
        for f in _present(self.start, deployer, self.responder):
            access.pass_execution_role(f)
        for f in _present(deployer, self.responder):
            access.deploy_to_endpoint(f)
        if self.start is not None and self.ingest is not None:
            access.use_idempotency_table(self.start)
            access.start_training_jobs(self.start)
            access.move_incoming_data(self.ingest)
            access.invoke_start(self.ingest, self.start)
        if accounts.builds:
            access.judge_candidates(self.promote)
        elif pair is not None:
            access.deploy_approved_packages(self.promote, pair)
        access.set_champion(self.promote)
        if self.drift is not None:
            access.read_capture(self.drift)

        # ---- how events reach them ----------------------------------------------------------------------------
        patterns = event_patterns(config, Aws.ACCOUNT_ID)
        rule_dead_letters = encrypted_queue(
            self, "RuleDeadLetters", key=data_key, topic=operator_topic, purpose="the EventBridge rules"
        )
        self.new_data = None
        if self.ingest is not None:
            self.new_data = NewDataIngestion(
                self,
                "NewData",
                pattern=event_pattern(patterns["NewData"]),
                ingest=self.ingest,
                debounce_seconds=config.retraining.debounce_seconds,
                key=data_key,
                topic=operator_topic,
                rule_dead_letters=rule_dead_letters,
            )
            access.consume(self.ingest, self.new_data.queue)
        self.routes = RetrainingRoutes(
            self,
            "Routes",
            patterns=patterns,
            schedules=config.retraining,
            functions=GlueFunctions(
                promote=self.promote,
                start=self.start,
                drift=self.drift,
                responder=self.responder,
                # this account's registry: a build stage's, or a single stage's under manual approval
                own_approvals=accounts.role == "build"
                or (accounts.role == "single" and accounts.effective_approval == "manual"),
            ),
            dead_letters=rule_dead_letters,
        )
        # The drift and quality alarms watch what the endpoint's traffic measures: where the endpoint is.
        self.alarms = (
            RetrainingAlarms(
                self,
                "Alarms",
                app_name=app,
                stage=stage,
                settings=config.retraining,
                lower_is_better=config.training.objective != "binary:logistic",
                topic=operator_topic,
            )
            if accounts.serves
            else None
        )
        # Two accounts: the build registry's approvals travel to the serving account's approvals bus.
        self.approvals: ApprovalForwarding | ApprovalsBus | None = None
        if pair is not None and accounts.role == "build":
            self.approvals = ApprovalForwarding(self, "Approvals", pair=pair, dead_letters=rule_dead_letters)
        elif pair is not None:
            self.approvals = ApprovalsBus(
                self, "Approvals", pair=pair, promote=self.promote.function, dead_letters=rule_dead_letters
            )

        # ---- the network perimeter ----------------------------------------------------------------------------
        if config.network.restrict_buckets_to_vpce:
            # The glue functions call S3 from Lambda's network (the VPC has no SQS/SNS/DynamoDB endpoints);
            # IAM scopes them to their prefixes, and the perimeter exempts them by tag.
            for fn in functions:
                Tags.of(fn.role).add(PERIMETER_EXEMPT_TAG, PERIMETER_EXEMPT_VALUE)
        if network is not None:
            # The roles that create SageMaker jobs and models cannot create them outside the private network,
            # without isolation or without a volume key, whatever their other statements say.
            self.guardrails = SageMakerGuardrails(
                self,
                "Guardrails",
                roles=[f.role for f in _present(self.start, self.promote, self.responder)],
                guard_models=not config.endpoint.serverless,
            )

    def _build_functions(
        self,
        app: str,
        stage: str,
        runtime: GlueRuntime,
        common: dict[str, str],
        deploying: dict[str, str],
        targets: GlueTargets,
        config: StageConfig,
    ) -> None:
        """start-training and ingest: where the data and the training jobs are."""
        self.start = GlueFunction(
            self,
            "StartTraining",
            function_name=c.function_name(app, stage, "start_training"),
            handler_module="lambdas.start_training.handler",
            description="The one start function: new data, schedule and alarms become at most one training job",
            runtime=runtime,
            environment={
                **common,
                c.ENV_IDEMPOTENCY_TABLE: targets.idempotency_table,
                c.ENV_TRAINING_SETTINGS: deploying[c.ENV_TRAINING_SETTINGS],
            },
            reserved_concurrency=1,  # one decision at a time; the lock is the real guard
        )
        self.ingest = GlueFunction(
            self,
            "Ingest",
            function_name=c.function_name(app, stage, "ingest"),
            handler_module="lambdas.ingest.handler",
            description="Checks each new file against the champion's schema; quarantines or promotes it",
            runtime=runtime,
            environment={**common, c.ENV_START_FUNCTION: self.start.function.function_name},
            # Sized from retraining.max_file_mb: CPU to check the largest file in time (config.settings).
            timeout=Duration.seconds(INGEST_TIMEOUT_S),
            memory_mb=config.retraining.ingest_memory_mb,
            reserved_concurrency=2,
        )

    def _serving_functions(
        self, app: str, stage: str, runtime: GlueRuntime, common: dict[str, str], deploying: dict[str, str]
    ) -> None:
        """drift-monitor and alarm-responder: where the endpoint and its traffic are."""
        self.drift = GlueFunction(
            self,
            "DriftMonitor",
            function_name=c.function_name(app, stage, "drift_monitor"),
            handler_module="lambdas.drift_monitor.handler",
            description="PSI of captured requests against the champion's baseline, per feature",
            runtime=runtime,
            environment=common,
            timeout=Duration.minutes(10),
            memory_mb=1024,
            reserved_concurrency=1,
        )
        self.responder = GlueFunction(
            self,
            "AlarmResponder",
            function_name=c.function_name(app, stage, "alarm_responder"),
            handler_module="lambdas.alarm_responder.handler",
            description="Endpoint health alarms outside a deployment: a notice with context, rollback if allowed",
            runtime=runtime,
            environment={**common, **deploying},
            reserved_concurrency=1,
        )


def _present(*functions: GlueFunction | None) -> list[GlueFunction]:
    return [f for f in functions if f is not None]


def _common_environment(config: StageConfig, targets: GlueTargets, topic: sns.ITopic) -> dict[str, str]:
    """The variables every glue function reads (lambdas/shared/contract.py names them)."""
    return {
        c.ENV_STAGE: config.stage,
        c.ENV_DATA_BUCKET: targets.data_bucket,
        c.ENV_MODEL_BUCKET: targets.model_bucket,
        c.ENV_OPERATOR_TOPIC_ARN: topic.topic_arn,
        c.ENV_CHAMPION_PARAMETER: targets.champion_parameter,
        c.ENV_RUNS_TABLE: targets.runs_table,
        c.ENV_RETRAIN_POLICY: json.dumps(retrain_policy(config), separators=(",", ":")),
        "POWERTOOLS_SERVICE_NAME": f"{config.app_name}-{config.stage}",
        "POWERTOOLS_METRICS_NAMESPACE": c.METRIC_NAMESPACE,
    }


def _deployed_settings(settings: TrainingSpecSettings, data_key: kms.IKey, network: PrivateNetwork | None) -> str:
    """TRAINING_SETTINGS with the sentinels replaced by tokens (a Python string with tokens renders as Fn::Join)."""
    text = settings.to_json().replace(settings.kms_key_arn, data_key.key_arn)
    if network is not None:
        for sentinel, token in (
            *zip(_SENTINEL_SUBNETS, network.subnet_ids, strict=False),
            *zip(_SENTINEL_GROUPS, network.security_group_ids, strict=False),
        ):
            text = text.replace(sentinel, token)
    return text.replace(SENTINEL_ACCOUNT, Aws.ACCOUNT_ID)
