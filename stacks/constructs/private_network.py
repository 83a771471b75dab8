"""A VPC with private isolated subnets only (no internet or NAT gateway) whose flow logs go to an encrypted group."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from stacks.constructs.retention import retention
from stacks.nag import exempt
from stacks.naming import keep_depends_on


class PrivateNetwork(Construct):
    """Isolated subnets in the given zones; all traffic (accepted and rejected) logged with retention and KMS."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cidr: str,
        availability_zones: Sequence[str],
        log_key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        # Zones are given, not looked up: synth stays offline and deterministic.
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            availability_zones=list(availability_zones),
            nat_gateways=0,
            create_internet_gateway=False,
            enable_dns_hostnames=True,  # private DNS names of the interface endpoints
            enable_dns_support=True,
            restrict_default_security_group=True,  # nothing may fall back on the default group's open rules
            subnet_configuration=[
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            ],
        )
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        for subnet in self.vpc.isolated_subnets:
            cfn_subnet = subnet.node.default_child
            assert isinstance(cfn_subnet, CfnResource)
            # cfn-lint W3010 prefers Fn::GetAZs; the zones are chosen in config on purpose (no lookup at synth).
            cfn_subnet.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3010"]}})
        cleaner = Stack.of(self).node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        if cleaner is not None:
            self._encrypt_cleaner_logs(cleaner, log_key, log_retention_days)

        self.flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=log_key,
            retention=retention(log_retention_days),
            # Network evidence outlives the network: a deleted stack keeps its flow logs until they expire.
            removal_policy=RemovalPolicy.RETAIN,
        )
        # The delivery role may be assumed by VPC Flow Logs for this account's flow logs only (confused deputy).
        self.flow_log_role = iam.Role(
            self,
            "FlowLogsRole",
            description="VPC Flow Logs delivers this VPC's records to its encrypted log group",
            assumed_by=iam.ServicePrincipal("vpc-flow-logs.amazonaws.com").with_conditions(
                {
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{Aws.PARTITION}:ec2:{Aws.REGION}:{Aws.ACCOUNT_ID}:vpc-flow-log/*"
                    },
                }
            ),
        )
        # A customer-managed policy (not inline), scoped to the one log group.
        iam.ManagedPolicy(
            self,
            "FlowLogsDelivery",
            roles=[self.flow_log_role],
            statements=[
                iam.PolicyStatement(
                    sid="DeliverToOwnLogGroup",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    resources=[self.flow_log_group.log_group_arn],
                )
            ],
        )
        self.flow_log = ec2.CfnFlowLog(
            self,
            "FlowLog",
            resource_id=self.vpc.vpc_id,
            resource_type="VPC",
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_group_name=self.flow_log_group.log_group_name,
            deliver_logs_permission_arn=self.flow_log_role.role_arn,
            max_aggregation_interval=60,
        )

    def _encrypt_cleaner_logs(self, cleaner: IConstruct, log_key: kms.IKey, log_retention_days: int) -> None:
        """CDK's default-group cleaner (a raw provider function) logs to a KMS-encrypted group of ours.

        Left alone it would log to `/aws/lambda/<name>`, created on first write without a key. Its role's
        AWS basic execution policy lets it write to any of its account's log groups, this one included. cdk-nag
        does not inspect raw `CfnResource` functions, so its findings are written for the other scanners only.
        """
        handler = cleaner.node.find_child("Handler")
        assert isinstance(handler, CfnResource)
        # It lists its role in DependsOn although a GetAtt already orders them (cfn-lint W3005).
        keep_depends_on(handler)
        self.cleaner_log_group = logs.LogGroup(
            self,
            "DefaultGroupCleanerLogs",
            encryption_key=log_key,
            retention=retention(log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        handler.add_property_override("LoggingConfig", {"LogGroup": self.cleaner_log_group.log_group_name})
        only_at_deploy = "CDK's default-security-group cleaner runs only when CloudFormation deploys this stack"
        for finding, why in (
            ("lambda-no-reserved-concurrency", "CloudFormation invokes it once per deployment"),
            ("lambda-no-dlq", "CloudFormation waits on its response and fails the deploy if it fails"),
            ("lambda-outside-vpc", "it calls the EC2 API, which this private VPC has no endpoint for"),
        ):
            exempt(handler, finding, f"{only_at_deploy}: {why}.", nag=False)
