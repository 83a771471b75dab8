"""The private paths to AWS: an S3 gateway endpoint, switchable interface endpoints, and their security groups."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.constructs.prefix_list import S3PrefixListLookup
from stacks.nag import acknowledge

# config.settings.INTERFACE_ENDPOINTS name -> the AWS service behind it.
INTERFACE_SERVICES: Mapping[str, ec2.InterfaceVpcEndpointAwsService] = {
    "sagemaker_api": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "sagemaker_runtime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "sagemaker_notebook": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_NOTEBOOK,
    "sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "ecr_api": ec2.InterfaceVpcEndpointAwsService.ECR,
    "ecr_dkr": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "events": ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
}
HTTPS = ec2.Port.tcp(443)


class VpcEndpoints(Construct):
    """Endpoints plus the two security groups that use them.

    `endpoint_security_group` guards the interface endpoints: HTTPS in from the VPC, nothing out.
    `sagemaker_security_group` is for training jobs, models and the notebook: HTTPS out to the VPC (the
    endpoints) and to S3 (its prefix list), and all traffic among its own members for distributed training.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        vpc_cidr: str,
        subnets: ec2.SubnetSelection,
        enabled: Mapping[str, bool],
        log_key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=vpc,
            description="Interface endpoints: HTTPS from inside the VPC only",
            allow_all_outbound=False,
        )
        # The literal CIDR (not the VPC's token) so reviewers and cdk-nag see exactly what is admitted.
        self.endpoint_security_group.add_ingress_rule(ec2.Peer.ipv4(vpc_cidr), HTTPS, "HTTPS from the VPC")

        self.s3_gateway = vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[subnets])
        self._limit_s3_gateway_to_this_account()
        self.endpoint_ids: dict[str, str] = {"s3": self.s3_gateway.vpc_endpoint_id}
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        for name, service in INTERFACE_SERVICES.items():
            if not enabled.get(name, False):
                continue
            endpoint = vpc.add_interface_endpoint(
                _construct_id(name),
                service=service,
                subnets=subnets,
                security_groups=[self.endpoint_security_group],
                private_dns_enabled=True,
                open=False,  # the group above already admits HTTPS from the VPC, and nothing wider
            )
            self.interface_endpoints[name] = endpoint
            self.endpoint_ids[name] = endpoint.vpc_endpoint_id

        self.s3_prefix_list_id = S3PrefixListLookup(
            self, "S3PrefixList", log_key=log_key, log_retention_days=log_retention_days
        ).prefix_list_id
        self.sagemaker_security_group = ec2.SecurityGroup(
            self,
            "SageMakerSecurityGroup",
            vpc=vpc,
            description="SageMaker training, models and notebook: HTTPS to endpoints and S3, peers among themselves",
            allow_all_outbound=False,
        )
        sg = self.sagemaker_security_group
        # An inline rule (a literal CIDR): with egress declared on the group itself, CloudFormation never adds
        # its default allow-all egress. In an isolated VPC, HTTPS inside the VPC reaches only the endpoints.
        sg.add_egress_rule(ec2.Peer.ipv4(vpc_cidr), HTTPS, "HTTPS to the interface endpoints")
        sg.add_egress_rule(ec2.Peer.prefix_list(self.s3_prefix_list_id), HTTPS, "HTTPS to S3 via the gateway endpoint")
        # Distributed training: hosts of one job talk on any port (and IPsec when inter-container encryption is on).
        peers_in = ec2.CfnSecurityGroupIngress(
            self,
            "PeersIngress",
            group_id=sg.security_group_id,
            source_security_group_id=sg.security_group_id,
            ip_protocol="-1",
            description="Peers of a distributed training job",
        )
        ec2.CfnSecurityGroupEgress(
            self,
            "PeersEgress",
            group_id=sg.security_group_id,
            destination_security_group_id=sg.security_group_id,
            ip_protocol="-1",
            description="Peers of a distributed training job",
        )
        for rule in ("HIPAA.Security-EC2RestrictedCommonPorts", "NIST.800.53.R5-EC2RestrictedCommonPorts"):
            acknowledge(
                peers_in,
                rule,
                "The source is this same security group (hosts of one distributed training job), not an address "
                "range; SageMaker needs every port open between them.",
            )

    def _limit_s3_gateway_to_this_account(self) -> None:
        """Through this endpoint, only this account's buckets and ECR's image layers (AWS-owned) are reachable."""
        self.s3_gateway.add_to_policy(
            iam.PolicyStatement(
                sid="OwnAccountBuckets",
                principals=[iam.AnyPrincipal()],
                actions=["s3:*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:ResourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        self.s3_gateway.add_to_policy(
            iam.PolicyStatement(
                sid="EcrImageLayers",
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject"],
                resources=[f"arn:{Aws.PARTITION}:s3:::prod-{Aws.REGION}-starport-layer-bucket/*"],
            )
        )


def _construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
