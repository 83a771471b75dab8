"""Notebook: a private, hardened SageMaker notebook instance for exploring data and calling the endpoint."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config.settings import StageConfig
from lambdas.shared import contract
from stacks.constructs.guardrails import SageMakerGuardrails
from stacks.constructs.notebook import HardenedNotebook
from stacks.nag import acknowledge
from stacks.naming import bucket_name, nag_bucket_arn

# What the notebook may read in the data bucket, and where it may drop new data.
READ_PREFIXES = (contract.PREFIX_TRAIN, contract.PREFIX_VALIDATION, contract.PREFIX_TEST, contract.PREFIX_INCOMING)
WRITE_PREFIX = contract.PREFIX_INCOMING
NOTEBOOK_LOG_GROUP = "/aws/sagemaker/NotebookInstances"  # fixed by SageMaker, shared by the account's notebooks


def notebook_name(config: StageConfig) -> str:
    return f"{config.app_name}-{config.stage}-notebook"


class NotebookStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        data_key: kms.IKey,
        subnet_id: str,
        security_group: ec2.ISecurityGroup,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._config = config
        name = notebook_name(config)
        data_bucket = s3.Bucket.from_bucket_attributes(
            self, "DataBucket", bucket_name=bucket_name(config, "data"), encryption_key=data_key
        )
        arn = f"arn:{self.partition}:%s:{self.region}:{self.account}:%s"
        app, stage = config.app_name, config.stage
        project = contract.job_name_prefix(app, stage)  # training jobs and endpoints start with it
        start_function = contract.function_name(app, stage, "start_training")  # the one start function

        self.role = iam.Role(
            self,
            "Role",
            description=f"Assumed by the {name} notebook instance: data prefixes, the endpoint, a retraining",
            # IfExists: SageMaker may not send SourceAccount for notebook instances, but must match when it does.
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com").with_conditions(
                {"StringEqualsIfExists": {"aws:SourceAccount": self.account}}
            ),
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="Notebook: data prefixes, this project's endpoints and jobs, a retraining, its logs and stop",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadDataPrefixes",
                    actions=["s3:GetObject"],
                    resources=[data_bucket.arn_for_objects(f"{p}*") for p in READ_PREFIXES],
                ),
                iam.PolicyStatement(
                    sid="DropNewData",
                    actions=["s3:PutObject"],
                    resources=[data_bucket.arn_for_objects(f"{WRITE_PREFIX}*")],
                ),
                iam.PolicyStatement(
                    sid="ListDataPrefixes",
                    actions=["s3:ListBucket"],
                    resources=[data_bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in READ_PREFIXES]}},
                ),
                iam.PolicyStatement(
                    sid="UseDataKeyThroughS3",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[data_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}},
                ),
                iam.PolicyStatement(
                    sid="CallProjectEndpoints",
                    actions=["sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint"],
                    resources=[arn % ("sagemaker", f"endpoint/{project}-*")],
                ),
                iam.PolicyStatement(
                    sid="WatchProjectTrainingJobs",
                    actions=["sagemaker:DescribeTrainingJob"],
                    resources=[arn % ("sagemaker", f"training-job/{project}-*")],
                ),
                iam.PolicyStatement(sid="ListTrainingJobs", actions=["sagemaker:ListTrainingJobs"], resources=["*"]),
                iam.PolicyStatement(
                    sid="StartRetraining",
                    actions=["lambda:InvokeFunction"],
                    resources=[arn % ("lambda", f"function:{start_function}")],
                ),
                iam.PolicyStatement(
                    sid="StopItselfWhenIdle",
                    actions=["sagemaker:StopNotebookInstance"],
                    resources=[arn % ("sagemaker", f"notebook-instance/{name}")],
                ),
                iam.PolicyStatement(
                    sid="NotebookLogGroup",
                    actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                    resources=[arn % ("logs", f"log-group:{NOTEBOOK_LOG_GROUP}:*")],
                ),
                iam.PolicyStatement(
                    sid="NotebookLogStreams",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[arn % ("logs", f"log-group:{NOTEBOOK_LOG_GROUP}:log-stream:{name}/*")],
                ),
            ],
        )
        self._acknowledge_wildcards()
        self.guardrails = SageMakerGuardrails(self, "Guardrails", roles=[self.role])

        self.notebook = HardenedNotebook(
            self,
            "Notebook",
            name=name,
            instance_type=config.notebook.instance_type,
            volume_size_gb=config.notebook.volume_size_gb,
            platform_identifier=config.notebook.platform_identifier,
            idle_minutes=config.notebook.idle_minutes,
            ignore_connections=config.notebook.ignore_connections,
            role=self.role,
            volume_key=data_key,
            subnet_id=subnet_id,
            security_group_id=security_group.security_group_id,
            environment={
                "SAGECYCLE_REGION": config.region,
                "SAGECYCLE_DATA_BUCKET": data_bucket.bucket_name,
                "SAGECYCLE_ENDPOINT_NAME": contract.endpoint_name(app, stage),
                "SAGECYCLE_JOB_PREFIX": project,
                "SAGECYCLE_START_TRAINING_FUNCTION": start_function,
            },
        )
        # The instance must not start before its role can act (logs, the stop call).
        self.notebook.instance.node.add_dependency(self.policy)
        CfnOutput(self, "NotebookInstanceName", value=self.notebook.instance.attr_notebook_instance_name)
        CfnOutput(self, "NotebookRoleArn", value=self.role.role_arn)

    def _acknowledge_wildcards(self) -> None:
        """Each wildcard in the notebook's policy, with why it cannot be narrower."""
        config = self._config
        project = contract.job_name_prefix(config.app_name, config.stage)
        where = f"arn:<AWS::Partition>:%s:{self.region}:{config.account or '<AWS::AccountId>'}:%s"
        partition = self.partition
        if not partition.startswith("${Token"):
            where = where.replace("<AWS::Partition>", partition)
        data = nag_bucket_arn(config, "data", self)
        reasons = {
            **{
                f"Resource::{data}/{prefix}*": f"The notebook reads the {prefix} prefix of the data bucket, any object "
                "in it (new files arrive under new names)."
                for prefix in READ_PREFIXES
            },
            "Resource::*": "sagemaker:ListTrainingJobs supports no resource-level permissions; the notebook lists jobs "
            "to watch a retraining and can describe only the project's own.",
            f"Resource::{where % ('sagemaker', f'endpoint/{project}-*')}": "The project's endpoints are named "
            "<app>-<stage>-*; the notebook may call and describe those and no other project's.",
            f"Resource::{where % ('sagemaker', f'training-job/{project}-*')}": "Training job names carry a run id; "
            "the notebook may describe this project's jobs only.",
            f"Resource::{where % ('logs', f'log-group:{NOTEBOOK_LOG_GROUP}:*')}": "SageMaker fixes the notebook log "
            "group's name; the wildcard is the log-group ARN's own suffix.",
            f"Resource::{where % ('logs', f'log-group:{NOTEBOOK_LOG_GROUP}:log-stream:{notebook_name(config)}/*')}": (
                "SageMaker names this instance's streams <instance>/jupyter.log, <instance>/LifecycleConfigOnStart "
                "and so on; the wildcard covers those streams only."
            ),
        }
        cfn = self.policy.node.default_child
        for finding, reason in reasons.items():
            acknowledge(cfn, f"AwsSolutions-IAM5[{finding}]", reason)
