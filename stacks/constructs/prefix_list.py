"""The id of S3's AWS-managed prefix list in this region, read at deploy time (synth makes no AWS call)."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.constructs.retention import retention
from stacks.nag import acknowledge, exempt
from stacks.naming import keep_depends_on


class S3PrefixListLookup(Construct):
    """`prefix_list_id`: `pl-...` of `com.amazonaws.<region>.s3`, for security group egress to the S3 gateway.

    Security groups need the id, CloudFormation cannot look it up, and a context lookup would make synth
    need credentials; a one-call custom resource (its own role, encrypted log group) is the remaining way.
    """

    def __init__(self, scope: Construct, construct_id: str, *, log_key: kms.IKey, log_retention_days: int) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=log_key,
            retention=retention(log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,  # a deploy-time lookup's log is not evidence worth keeping
        )
        role = iam.Role(
            self,
            "Role",
            description="Reads the S3 prefix list id once per deployment",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        policy = iam.ManagedPolicy(
            self,
            "Policy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="DescribePrefixLists", actions=["ec2:DescribeManagedPrefixLists"], resources=["*"]
                ),
                iam.PolicyStatement(
                    sid="OwnLogGroup",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                ),
            ],
        )
        acknowledge(
            policy.node.default_child,
            "AwsSolutions-IAM5[Resource::*]",
            "ec2:DescribeManagedPrefixLists supports no resource-level permissions; it is read-only and the only "
            "EC2 action this role has.",
        )
        lookup = cr.AwsCustomResource(
            self,
            "Lookup",
            on_update=cr.AwsSdkCall(
                service="EC2",
                action="describeManagedPrefixLists",
                parameters={"Filters": [{"Name": "prefix-list-name", "Values": [f"com.amazonaws.{Aws.REGION}.s3"]}]},
                physical_resource_id=cr.PhysicalResourceId.of(f"s3-prefix-list-{Aws.REGION}"),
                output_paths=["PrefixLists.0.PrefixListId"],
            ),
            role=role,
            log_group=log_group,
            memory_size=128,
            install_latest_aws_sdk=False,
        )
        lookup.node.add_dependency(policy)
        self.prefix_list_id = Token.as_string(lookup.get_response_field("PrefixLists.0.PrefixListId"))
        self._acknowledge_provider(lookup)

    def _acknowledge_provider(self, lookup: cr.AwsCustomResource) -> None:
        """CDK's singleton provider function runs only when CloudFormation deploys this stack."""
        # The provider is a stack-level singleton, named by CDK with a fixed UUID.
        function = next(
            c for c in Stack.of(self).node.children if c.node.id.startswith("AWS679f53fac002430cb0da5b7982bd2287")
        )
        # The provider lists our role in DependsOn although a GetAtt orders them (cfn-lint W3005); what matters
        # is that its log permissions exist before it runs.
        keep_depends_on(function.node.default_child, self.node.find_child("Policy").node.default_child)
        only_at_deploy = "CDK's AwsCustomResource provider runs only when CloudFormation deploys this stack"
        acknowledge(
            function.node.default_child,
            "Serverless-LambdaTracing",
            f"{only_at_deploy}: a deploy-time lookup has no request path worth tracing.",
        )
        for finding, why in (
            ("lambda-no-reserved-concurrency", "CloudFormation invokes it once per deployment"),
            ("lambda-no-dlq", "CloudFormation waits on its response and fails the deploy if it fails"),
            ("lambda-outside-vpc", "it calls the EC2 API, which this private VPC has no endpoint for"),
        ):
            exempt(function, finding, f"{only_at_deploy}: {why}.")
