"""Network: the private VPC that training jobs, models and the notebook run in, and its paths to AWS services."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs import Construct

from config.settings import StageConfig
from stacks.constructs.private_network import PrivateNetwork
from stacks.constructs.vpc_endpoints import VpcEndpoints


class NetworkStack(Stack):
    """What SageMaker consumers need, as attributes.

    - `subnet_ids` (`subnets` as a selection): the isolated subnets, one per zone;
    - `sagemaker_security_group`: for training jobs, transform jobs, models and the notebook;
    - `endpoint_ids`: VPC endpoint ids by `INTERFACE_ENDPOINTS` name, plus `s3` (the gateway).
    """

    @property
    def availability_zones(self) -> list[str]:
        """The configured zones: with a concrete account, CDK would otherwise look them up at synth (credentials,
        a lookup role), which neither CI nor `make synth` has; the config already names two zones of the region."""
        return self._zones

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, log_key: kms.IKey, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._zones = list(config.availability_zones)
        network = PrivateNetwork(
            self,
            "Network",
            cidr=config.network.vpc_cidr,
            availability_zones=config.availability_zones,
            log_key=log_key,
            log_retention_days=config.data.log_retention_days,
        )
        endpoints = VpcEndpoints(
            self,
            "Endpoints",
            vpc=network.vpc,
            vpc_cidr=config.network.vpc_cidr,
            subnets=network.subnets,
            enabled=config.network.interface_endpoints,
            log_key=log_key,
            log_retention_days=config.data.log_retention_days,
        )
        self.vpc = network.vpc
        self.subnets = network.subnets
        self.subnet_ids: list[str] = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids
        self.sagemaker_security_group = endpoints.sagemaker_security_group
        self.endpoint_ids = endpoints.endpoint_ids
        self.s3_gateway_endpoint_id = endpoints.s3_gateway.vpc_endpoint_id

        CfnOutput(self, "VpcId", value=self.vpc.vpc_id)
        CfnOutput(self, "SubnetIds", value=Fn.join(",", self.subnet_ids))
        CfnOutput(self, "SageMakerSecurityGroupId", value=self.sagemaker_security_group.security_group_id)
        CfnOutput(self, "S3GatewayEndpointId", value=self.s3_gateway_endpoint_id)
