"""The execution role SageMaker assumes for training jobs and hosted models: prefix-scoped, nothing more."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


# The EC2 actions SageMaker takes with this role to attach a job's or a model's network interfaces.
NETWORK_INTERFACE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
)
# Read-only EC2 calls SageMaker makes to check the VpcConfig; they support no resource-level permissions.
NETWORK_DESCRIBE_ACTIONS = (
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
)


@dataclass(frozen=True)
class NetworkScope:
    """The private network SageMaker attaches jobs and models to (tokens from the Network stack)."""

    vpc_id: str
    subnet_ids: Sequence[str]
    security_group_ids: Sequence[str]


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
        network: NetworkScope | None,
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
        # Customer-managed policies (not inline) so they show up, versioned, in IAM and in audits. Every statement
        # of `Policy` names its resources; the actions that support no resource-level permissions sit alone in
        # `UnscopedPolicy`, the only policy whose `*` is acknowledged.
        policy = iam.ManagedPolicy(self, "Policy", roles=[self.role])
        unscoped = iam.ManagedPolicy(
            self,
            "UnscopedPolicy",
            roles=[self.role],
            description=f"{role_name}: the actions that support no resource-level permissions, and only those",
        )
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
                sid="PullXgboostImage",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[image_repository_arn],
            ),
        )
        unscoped.add_statements(
            iam.PolicyStatement(
                sid="PublishJobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
            ),
            iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        )
        unscoped_reason = (
            "This policy holds only actions that support no resource-level permissions: cloudwatch:PutMetricData "
            "(limited to SageMaker's namespaces by condition) and ecr:GetAuthorizationToken"
        )
        if network is not None:
            self._network_statements(policy, unscoped, network)
            unscoped_reason += ", and the read-only EC2 Describe calls SageMaker makes to check a VpcConfig"
        self.policy, self.unscoped_policy = policy, unscoped
        cfn_policy = policy.node.default_child
        acknowledge(unscoped.node.default_child, "AwsSolutions-IAM5[Resource::*]", unscoped_reason + ".")
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

    def _network_statements(
        self, policy: iam.ManagedPolicy, unscoped: iam.ManagedPolicy, network: NetworkScope
    ) -> None:
        """SageMaker attaches network interfaces in our private subnets only, never in another VPC.

        CreateNetworkInterface names the subnet and the security group as resources: ours, by ARN. The interface
        itself gets its id at creation, so it is `network-interface/*`, pinned by the condition keys every
        network-interface action carries: `ec2:Vpc` (this VPC) and `ec2:Subnet` (its private subnets).
        """

        def ec2(resource: str) -> str:
            return f"arn:{Aws.PARTITION}:ec2:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"

        vpc = ec2(f"vpc/{network.vpc_id}")
        subnets = [ec2(f"subnet/{s}") for s in network.subnet_ids]
        groups = [ec2(f"security-group/{g}") for g in network.security_group_ids]
        policy.add_statements(
            iam.PolicyStatement(
                sid="UsePrivateSubnetsAndGroup",
                actions=["ec2:CreateNetworkInterface"],
                resources=[*subnets, *groups],
                conditions={"ArnEquals": {"ec2:Vpc": vpc}},
            ),
            iam.PolicyStatement(
                sid="NetworkInterfacesInPrivateSubnets",
                actions=list(NETWORK_INTERFACE_ACTIONS),
                resources=[ec2("network-interface/*")],
                conditions={"ArnEquals": {"ec2:Vpc": vpc, "ec2:Subnet": subnets}},
            ),
        )
        unscoped.add_statements(
            iam.PolicyStatement(sid="DescribeNetwork", actions=list(NETWORK_DESCRIBE_ACTIONS), resources=["*"])
        )
        acknowledge(
            policy.node.default_child,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]",
            "A network interface gets its id when SageMaker creates it; ec2:Vpc and ec2:Subnet conditions pin every "
            "interface action to this stage's VPC and private subnets.",
        )
