"""Model: what training and hosting share — the execution role, the scripts, the champion, the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Annotations, CfnOutput, CfnResource, RemovalPolicy, Stack, Tags
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from config.settings import StageConfig
from lambdas.shared.contract import BASELINE_MODEL_KEY, PREFIX_CODE
from stacks.constructs.images import ecr_repository_arn, xgboost_image_uri
from stacks.constructs.retention import retention
from stacks.constructs.sagemaker_role import NetworkScope, SageMakerExecutionRole
from stacks.constructs.vpce_perimeter import PERIMETER_EXEMPT_TAG, PERIMETER_EXEMPT_VALUE
from stacks.cross_account_policies import model_package_group_policy
from stacks.nag import acknowledge, exempt
from stacks.naming import account_pair, bucket_name, keep_depends_on, model_package_group_name, nag_bucket_arn

CODE_PREFIX = PREFIX_CODE


def champion_parameter_name(config: StageConfig) -> str:
    return f"/{config.app_name}/{config.stage}/champion/model-data-url"


class ModelStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        data_key: kms.IKey,
        log_key: kms.IKey,
        network: NetworkScope | None,
        sourcedir: Path,
        baseline_model: Path | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._config = config
        # Buckets by their deterministic names: no cross-stack token ends up inside IAM resources.
        data_bucket = s3.Bucket.from_bucket_attributes(
            self, "DataBucket", bucket_name=bucket_name(config, "data"), encryption_key=data_key
        )
        model_bucket = s3.Bucket.from_bucket_attributes(
            self, "ModelBucket", bucket_name=bucket_name(config, "models"), encryption_key=data_key
        )
        self.data_bucket, self.model_bucket = data_bucket, model_bucket
        self.image_uri = xgboost_image_uri(config.region, config.training.xgboost_framework_version)

        self.execution = SageMakerExecutionRole(
            self,
            "Execution",
            role_name=f"{config.app_name}-{config.stage}-sagemaker-execution",
            config=config,
            data_bucket=data_bucket,
            model_bucket=model_bucket,
            data_key=data_key,
            image_repository_arn=ecr_repository_arn(self.image_uri, self.partition),
            network=network,
        )

        # The copier's log group is ours, KMS-encrypted; both deployments share CDK's one copier function.
        self.deployment_logs = logs.LogGroup(
            self,
            "DeploymentLogs",
            encryption_key=log_key,
            retention=retention(config.data.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )

        # Script-mode sources, content-hashed: old tarballs stay (prune=False) for jobs that still name them.
        self.code_deployment = s3deploy.BucketDeployment(
            self,
            "Scripts",
            sources=[s3deploy.Source.asset(str(sourcedir.parent))],
            destination_bucket=model_bucket,
            destination_key_prefix=CODE_PREFIX,
            prune=False,
            retain_on_delete=True,
            memory_limit=256,
            log_group=self.deployment_logs,
        )
        self.sourcedir_name = sourcedir.name
        self.sourcedir_s3_uri = f"s3://{model_bucket.bucket_name}/{CODE_PREFIX}{sourcedir.name}"

        if baseline_model is not None:
            s3deploy.BucketDeployment(
                self,
                "BaselineModel",
                sources=[s3deploy.Source.asset(str(baseline_model.parent), exclude=["*", f"!{baseline_model.name}"])],
                destination_bucket=model_bucket,
                destination_key_prefix=str(Path(BASELINE_MODEL_KEY).parent) + "/",
                prune=False,
                retain_on_delete=True,
                memory_limit=256,
                log_group=self.deployment_logs,
            )
        else:
            Annotations.of(self).add_warning_v2(
                "sagecycle:no-baseline-model",
                "No model.tar.gz was found: run `make model` before deploying, or the endpoint has nothing to serve.",
            )

        # The first champion lives at a fixed key (BASELINE_MODEL_KEY), so the parameter's template value never
        # changes and a later `cdk deploy` can never overwrite a champion that retraining has promoted since.
        self.champion = ssm.StringParameter(
            self,
            "Champion",
            parameter_name=champion_parameter_name(config),
            description="S3 URL of the model.tar.gz in service; set by the promote function after a safe rollout",
            string_value=f"s3://{model_bucket.bucket_name}/{BASELINE_MODEL_KEY}",
        )

        # The registry lives where models are built; a serving account reads the build account's.
        pair = account_pair(config)
        self.model_package_group = (
            sagemaker.CfnModelPackageGroup(
                self,
                "Registry",
                model_package_group_name=model_package_group_name(config),
                model_package_group_description="Every candidate trained here, approved or rejected with the reason",
                # A build account's registry: the serving account's promote role may read its packages, no more.
                model_package_group_policy=model_package_group_policy(pair) if pair else None,
            )
            if config.accounts.builds
            else None
        )

        self._acknowledge_deployment_helper(environment_key=data_key)
        if config.network.restrict_buckets_to_vpce:
            # The copier runs in Lambda's network, not ours: exempt it from the bucket perimeter by tag.
            copier = next(c for c in self.node.children if c.node.id.startswith("Custom::CDKBucketDeployment"))
            Tags.of(copier.node.find_child("ServiceRole")).add(PERIMETER_EXEMPT_TAG, PERIMETER_EXEMPT_VALUE)
        CfnOutput(self, "ExecutionRoleArn", value=self.execution.role.role_arn)
        CfnOutput(self, "ChampionParameter", value=self.champion.parameter_name)
        CfnOutput(self, "SourceDirUri", value=self.sourcedir_s3_uri)

    def _acknowledge_deployment_helper(self, *, environment_key: kms.IKey) -> None:
        """BucketDeployment's singleton copier runs only during deployments, invoked by CloudFormation alone.

        CDK offers no props for its role, concurrency, DLQ or tracing, so each finding is acknowledged here and
        written into the function's template metadata for the scanners that read cdk.out. Its one environment
        variable (the CA bundle path) is encrypted with the stage's key, like every function's.
        """
        copier = next(c for c in self.node.children if c.node.id.startswith("Custom::CDKBucketDeployment"))
        function = copier.node.default_child
        assert isinstance(function, CfnResource)
        function.add_property_override("KmsKeyArn", environment_key.key_arn)
        role = copier.node.find_child("ServiceRole")
        role_policy = role.node.find_child("DefaultPolicy").node.default_child
        log_group = copier.node.try_find_child("LogGroup")
        account = self._config.account or "<AWS::AccountId>"
        only_at_deploy = "CDK's BucketDeployment copier runs only when CloudFormation deploys this stack"
        acknowledge(
            role.node.default_child,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            f"{only_at_deploy}; the AWS basic execution policy only lets it write its own logs.",
        )
        for action in (
            "kms:GenerateDataKey*",
            "kms:ReEncrypt*",
            "s3:Abort*",
            "s3:DeleteObject*",
            "s3:GetBucket*",
            "s3:GetObject*",
            "s3:List*",
        ):
            acknowledge(
                role_policy,
                f"AwsSolutions-IAM5[Action::{action}]",
                f"{only_at_deploy}; CDK's grantReadWrite on the model bucket expands to {action}.",
            )
        keep_depends_on(function, role_policy)
        acknowledge(
            role_policy,
            f"AwsSolutions-IAM5[Resource::{nag_bucket_arn(self._config, 'models', self)}/*]",
            f"{only_at_deploy}; it copies the scripts and the baseline model into the model bucket.",
        )
        acknowledge(
            role_policy,
            f"AwsSolutions-IAM5[Resource::arn:{self.partition}:s3:::cdk-hnb659fds-assets-{account}-{self.region}/*]",
            f"{only_at_deploy}; it reads the content-hashed asset from the CDK bootstrap bucket.",
        )
        for rule in ("HIPAA.Security-IAMNoInlinePolicy", "NIST.800.53.R5-IAMNoInlinePolicy"):
            acknowledge(role_policy, rule, f"{only_at_deploy}; CDK attaches its grants as the role's inline policy.")
        for rule, why in (
            ("AwsSolutions-L1", "CDK pins the copier's runtime to the one its bundled AWS CLI layer supports"),
            ("Serverless-LambdaLatestVersion", "CDK pins the copier's runtime to its bundled AWS CLI layer"),
            ("Serverless-LambdaTracing", "a deploy-time copy has no request path worth tracing"),
        ):
            acknowledge(function, rule, f"{only_at_deploy}: {why}.")
        for finding, why in (
            ("lambda-no-reserved-concurrency", "CloudFormation invokes it once per deployment"),
            ("lambda-no-dlq", "CloudFormation waits on its response and fails the deploy if it fails"),
            ("lambda-outside-vpc", "it copies between two S3 buckets and touches no data in the VPC"),
        ):
            exempt(function, finding, f"{only_at_deploy}: {why}.")
        if log_group is not None:
            raise AssertionError("the copier must log to DeploymentLogs (KMS), not to a log group of CDK's making")
