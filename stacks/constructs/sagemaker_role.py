"""The execution role SageMaker assumes for training jobs and hosted models: prefix-scoped, nothing more."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config.settings import StageConfig
from stacks.nag import acknowledge
from stacks.naming import nag_bucket_arn

# What the role may read and write, by bucket prefix.
DATA_READ_PREFIXES = ("train/", "validation/", "test/", "baseline/", "batch-input/")
DATA_WRITE_PREFIXES = ("capture/",)
MODEL_READ_PREFIXES = ("code/", "models/", "training-output/", "checkpoints/")
MODEL_WRITE_PREFIXES = ("training-output/", "checkpoints/", "transform-output/")


class SageMakerExecutionRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role_name: str,
        config: StageConfig,
        data_bucket: s3.IBucket,
        model_bucket: s3.IBucket,
        data_key: kms.IKey,
        image_repository_arn: str,
        in_vpc: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role_name = role_name
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            description="Assumed by SageMaker for this project's training jobs and models",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
        )
        # A customer-managed policy (not inline) so it shows up, versioned, in IAM and in audits.
        policy = iam.ManagedPolicy(self, "Policy", roles=[self.role])
        policy.add_statements(
            iam.PolicyStatement(
                sid="ReadTrainingData",
                actions=["s3:GetObject"],
                resources=[data_bucket.arn_for_objects(f"{p}*") for p in DATA_READ_PREFIXES],
            ),
            iam.PolicyStatement(
                sid="WriteCapturedRequests",
                actions=["s3:PutObject"],
                resources=[data_bucket.arn_for_objects(f"{p}*") for p in DATA_WRITE_PREFIXES],
            ),
            iam.PolicyStatement(
                sid="ReadCodeAndModels",
                actions=["s3:GetObject"],
                resources=[model_bucket.arn_for_objects(f"{p}*") for p in MODEL_READ_PREFIXES],
            ),
            iam.PolicyStatement(
                sid="WriteModelsAndCheckpoints",
                actions=["s3:PutObject", "s3:DeleteObject"],
                resources=[model_bucket.arn_for_objects(f"{p}*") for p in MODEL_WRITE_PREFIXES],
            ),
            iam.PolicyStatement(
                sid="ListOwnPrefixes",
                actions=["s3:ListBucket"],
                resources=[data_bucket.bucket_arn, model_bucket.bucket_arn],
                conditions={
                    "StringLike": {
                        "s3:prefix": sorted({f"{p}*" for p in DATA_READ_PREFIXES + MODEL_READ_PREFIXES} | {""})
                    }
                },
            ),
            iam.PolicyStatement(
                sid="UseDataKey",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:ReEncrypt*"],
                resources=[data_key.key_arn],
            ),
            iam.PolicyStatement(
                sid="GrantVolumeEncryptionToSageMaker",
                actions=["kms:CreateGrant"],
                resources=[data_key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
            iam.PolicyStatement(
                sid="WriteJobLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/*"],
            ),
            iam.PolicyStatement(
                sid="PublishJobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
            ),
            iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                sid="PullXgboostImage",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[image_repository_arn],
            ),
        )
        wildcard_reasons = {
            "Resource::*": "cloudwatch:PutMetricData and ecr:GetAuthorizationToken support no resource-level "
            "permissions; PutMetricData is limited to SageMaker's namespaces by condition.",
        }
        if in_vpc:
            # SageMaker attaches ENIs in our subnets; these EC2 actions support no resource-level scoping.
            policy.add_statements(
                iam.PolicyStatement(
                    sid="AttachToPrivateSubnets",
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:CreateNetworkInterfacePermission",
                        "ec2:DeleteNetworkInterface",
                        "ec2:DeleteNetworkInterfacePermission",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeVpcs",
                        "ec2:DescribeDhcpOptions",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeSecurityGroups",
                    ],
                    resources=["*"],
                )
            )
            wildcard_reasons["Resource::*"] += " The EC2 network-interface actions SageMaker needs to run in our "
            "private subnets support no resource-level permissions either."
        self.policy = policy
        cfn_policy = policy.node.default_child
        acknowledge(cfn_policy, "AwsSolutions-IAM5[Resource::*]", wildcard_reasons["Resource::*"])
        acknowledge(
            cfn_policy,
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "GenerateDataKey* covers GenerateDataKey and GenerateDataKeyWithoutPlaintext on the one data key.",
        )
        acknowledge(
            cfn_policy,
            "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
            "ReEncryptFrom/To on the one data key, which S3 bucket keys use when objects are copied.",
        )
        for purpose, prefixes in (
            ("data", DATA_READ_PREFIXES + DATA_WRITE_PREFIXES),
            ("models", MODEL_READ_PREFIXES + MODEL_WRITE_PREFIXES),
        ):
            for prefix in sorted(set(prefixes)):
                acknowledge(
                    cfn_policy,
                    f"AwsSolutions-IAM5[Resource::{nag_bucket_arn(config, purpose, self)}/{prefix}*]",
                    f"Objects under the one prefix {prefix} that SageMaker reads or writes for this project.",
                )
        acknowledge(
            cfn_policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            "/aws/sagemaker/*]",
            "SageMaker names its log groups /aws/sagemaker/TrainingJobs, /Endpoints/<name> and so on at run time.",
        )
