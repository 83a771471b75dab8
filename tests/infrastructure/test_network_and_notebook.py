"""Network, notebook and guardrails: the private VPC, its endpoints and groups, the hardened notebook, the perimeter."""

from __future__ import annotations

import base64
import gzip
import json
import re
import subprocess
from typing import Any

import pytest
from aws_cdk import App, Environment
from aws_cdk.assertions import Match, Template

from config.settings import INTERFACE_ENDPOINTS, load_config
from stacks.constructs.guardrails import LOCAL_STORAGE_FAMILIES, sagemaker_guardrail_statements
from stacks.constructs.notebook import MAX_SCRIPT_CONTENT
from stacks.constructs.vpce_perimeter import DATA_ACTIONS
from stacks.data_stack import DataStack
from tests.infrastructure.conftest import ROOT, Synthesized, cdk_context

# us-east-1 list prices the README's cost table assumes.
INTERFACE_ENDPOINT_HOURLY_PER_AZ = 0.01
HOURS_PER_MONTH = 730


def _props(s: Synthesized, concern: str, resource_type: str) -> list[dict[str, Any]]:
    return [r.get("Properties", {}) for r in s.resources(concern, resource_type).values()]


# ------------------------------------------------------------------------------------------------- network


def test_vpc_has_isolated_subnets_in_the_configured_zones_and_no_internet_path(synthesized: Synthesized) -> None:
    # GIVEN the Network stack
    network = synthesized.template("Network")
    # WHEN the stage is synthesized (once per session)
    # THEN one VPC, one isolated subnet per configured zone, no public IPs, no internet or NAT gateway
    network.resource_count_is("AWS::EC2::VPC", 1)
    network.resource_count_is("AWS::EC2::Subnet", len(synthesized.config.availability_zones))
    for zone in synthesized.config.availability_zones:
        network.has_resource_properties("AWS::EC2::Subnet", {"AvailabilityZone": zone, "MapPublicIpOnLaunch": False})
    network.all_resources_properties("AWS::EC2::Subnet", {"MapPublicIpOnLaunch": False})
    for absent in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EgressOnlyInternetGateway"):
        network.resource_count_is(absent, 0)
    # isolated subnets have only the local route (plus the S3 gateway's prefix list)
    network.resource_count_is("AWS::EC2::Route", 0)
    assert len(synthesized.stage.network.subnet_ids) == 2  # type: ignore[union-attr]


def test_flow_logs_capture_everything_into_an_encrypted_group_with_retention(synthesized: Synthesized) -> None:
    # GIVEN the Network stack WHEN its flow log is read
    network = synthesized.template("Network")
    network.has_resource_properties(
        "AWS::EC2::FlowLog",
        {"ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"},
    )
    # THEN its log group uses the Data stack's log key and the stage's retention, and is kept on delete
    kept = network.find_resources(
        "AWS::Logs::LogGroup",
        {
            "Properties": {
                "RetentionInDays": synthesized.config.data.log_retention_days,
                "KmsKeyId": Match.any_value(),
            },
            "DeletionPolicy": "Retain",
        },
    )
    ((flow_id, flow_group),) = [(k, v) for k, v in kept.items() if k.startswith("NetworkFlowLogs")]
    assert "LogKey" in json.dumps(flow_group["Properties"]["KmsKeyId"]), flow_id
    # ...and only VPC Flow Logs of this account may assume the delivery role
    network.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                            "Condition": Match.object_like({"StringEquals": {"aws:SourceAccount": Match.any_value()}}),
                        }
                    )
                ]
            }
        },
    )


def test_interface_endpoints_follow_the_stage_switches(synthesized: Synthesized) -> None:
    # GIVEN the stage's switches
    wanted = {name for name, on in synthesized.config.network.interface_endpoints.items() if on}
    network = synthesized.stage.network
    assert network is not None
    # WHEN the endpoints are synthesized THEN exactly the switched-on ones exist, private DNS on, plus the S3 gateway
    assert set(network.endpoint_ids) == wanted | {"s3"}
    endpoints = _props(synthesized, "Network", "AWS::EC2::VPCEndpoint")
    interface = [e for e in endpoints if e["VpcEndpointType"] == "Interface"]
    assert len(interface) == len(wanted)
    assert all(e["PrivateDnsEnabled"] is True and len(e["SecurityGroupIds"]) == 1 for e in interface)
    names = {e["ServiceName"] for e in interface}
    region = synthesized.config.region
    assert (f"aws.sagemaker.{region}.notebook" in names) == ("sagemaker_notebook" in wanted)
    assert f"com.amazonaws.{region}.sagemaker.api" in names and f"com.amazonaws.{region}.ecr.dkr" in names
    assert [e["VpcEndpointType"] for e in endpoints].count("Gateway") == 1


def test_dev_skips_the_notebook_endpoint_and_prod_has_all(dev: Synthesized, prod: Synthesized) -> None:
    # GIVEN both stages WHEN their endpoints are counted THEN dev saves the notebook endpoint, prod has all 11
    count = {s.config.stage: len(s.stage.network.endpoint_ids) - 1 for s in (dev, prod)}  # type: ignore[union-attr]
    assert count == {"dev": len(INTERFACE_ENDPOINTS) - 1, "prod": len(INTERFACE_ENDPOINTS)}


def test_s3_gateway_reaches_only_this_account_and_ecr_layers(synthesized: Synthesized) -> None:
    # GIVEN the S3 gateway endpoint's policy
    # WHEN the stage is synthesized (once per session)
    # THEN any S3 action on this account's buckets, and only reads of ECR's layer bucket besides
    synthesized.template("Network").has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "VpcEndpointType": "Gateway",
            "PolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Sid": "OwnAccountBuckets",
                            "Condition": {"StringEquals": {"aws:ResourceAccount": {"Ref": "AWS::AccountId"}}},
                        }
                    ),
                    Match.object_like(
                        {
                            "Sid": "EcrImageLayers",
                            "Action": "s3:GetObject",
                            "Resource": {"Fn::Join": ["", Match.array_with(["-starport-layer-bucket/*"])]},
                        }
                    ),
                ]
            },
        },
    )


def test_endpoint_group_admits_only_https_from_the_vpc(synthesized: Synthesized) -> None:
    # GIVEN the endpoints' security group, by its logical id
    # WHEN its rules are matched
    found = synthesized.template("Network").find_resources(
        "AWS::EC2::SecurityGroup",
        {
            "Properties": {
                "SecurityGroupIngress": [
                    {
                        "CidrIp": synthesized.config.network.vpc_cidr,
                        "Description": Match.any_value(),
                        "FromPort": 443,
                        "IpProtocol": "tcp",
                        "ToPort": 443,
                    }
                ],
                "SecurityGroupEgress": [Match.object_like({"CidrIp": "255.255.255.255/32"})],  # CDK's "none"
            }
        },
    )
    # THEN TCP 443 from the VPC's CIDR is the only way in, and nothing goes out
    assert any("EndpointSecurityGroup" in logical_id for logical_id in found), found


def test_sagemaker_group_reaches_only_endpoints_s3_and_its_peers(synthesized: Synthesized) -> None:
    # GIVEN the SageMaker security group and every separate rule in the Network stack
    resources = synthesized.raw[synthesized.config.stack_name("Network")]["Resources"]
    sg_id = next(k for k in resources if k.startswith("EndpointsSageMakerSecurityGroup") and "Ingress" not in k)
    sg = resources[sg_id]["Properties"]
    ref = {"Fn::GetAtt": [sg_id, "GroupId"]}
    egress = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupEgress"]
    ingress = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    # WHEN the stage is synthesized (once per session)
    # THEN inline egress is HTTPS to the VPC only (so CloudFormation adds no allow-all default)...
    assert sg["SecurityGroupEgress"] == [
        {
            "CidrIp": synthesized.config.network.vpc_cidr,
            "Description": "HTTPS to the interface endpoints",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    assert "SecurityGroupIngress" not in sg
    # ...plus HTTPS to S3's prefix list (looked up at deploy time) and everything to and from its own members
    to_s3 = next(e for e in egress if "DestinationPrefixListId" in e)
    assert (to_s3["IpProtocol"], to_s3["FromPort"], to_s3["ToPort"]) == ("tcp", 443, 443)
    assert "S3PrefixList" in to_s3["DestinationPrefixListId"]["Fn::GetAtt"][0]
    assert {"GroupId": ref, "DestinationSecurityGroupId": ref, "IpProtocol": "-1"}.items() <= next(
        e for e in egress if "DestinationSecurityGroupId" in e
    ).items()
    assert [(i["GroupId"], i["SourceSecurityGroupId"], i["IpProtocol"]) for i in ingress] == [(ref, ref, "-1")]
    # ...and no rule anywhere in the stack is open to the internet
    assert "0.0.0.0/0" not in json.dumps(resources) and "::/0" not in json.dumps(resources)


def test_s3_prefix_list_is_looked_up_for_this_region(synthesized: Synthesized) -> None:
    # GIVEN the deploy-time lookup WHEN its call is read THEN it asks for S3's managed prefix list in the region
    lookups = synthesized.resources("Network", "Custom::AWS")
    call = json.dumps(next(iter(lookups.values()))["Properties"]["Create"])
    assert "describeManagedPrefixLists" in call and "prefix-list-name" in call and ".s3" in call


def test_interface_endpoint_cost_matches_the_readme(dev: Synthesized, prod: Synthesized) -> None:
    # GIVEN each stage's interface endpoints, two zones and us-east-1 prices
    def monthly(s: Synthesized) -> float:
        interface = [e for e in _props(s, "Network", "AWS::EC2::VPCEndpoint") if e["VpcEndpointType"] == "Interface"]
        return round(
            len(interface) * len(s.config.availability_zones) * HOURS_PER_MONTH * INTERFACE_ENDPOINT_HOURLY_PER_AZ, 2
        )

    # WHEN priced per month (before data processed) THEN the README's figures hold
    assert (monthly(dev), monthly(prod)) == (146.0, 160.6)


# -------------------------------------------------------------------------------------------------- wiring


def test_network_and_notebook_stacks_follow_the_switches(dev: Synthesized, prod: Synthesized) -> None:
    # GIVEN dev (network and notebook on) and prod (network on, notebook off by default)
    # WHEN the stage is synthesized (once per session)
    # THEN the stacks exist accordingly, and the notebook depends on the network, which depends on the data stack
    assert dev.stage.network is not None and dev.stage.notebook is not None
    assert prod.stage.network is not None and prod.stage.notebook is None
    assert dev.stage.network in dev.stage.notebook.dependencies
    assert dev.stage.data in dev.stage.network.dependencies
    # ...and the Data stack depends on neither (it deploys first; the bucket perimeter needs no endpoint id)
    assert dev.stage.data.dependencies == []


# ------------------------------------------------------------------------------------------------ notebook


def test_notebook_instance_is_private_encrypted_and_rootless(dev: Synthesized) -> None:
    # GIVEN the dev notebook instance
    nb = dev.config.notebook
    instance = _props(dev, "Notebook", "AWS::SageMaker::NotebookInstance")[0]
    # WHEN the stage is synthesized (once per session)
    # THEN no direct internet, no root, IMDSv2 only, AL2023, the data key, a private subnet and the SageMaker group
    assert instance["DirectInternetAccess"] == "Disabled"
    assert instance["RootAccess"] == "Disabled"
    assert instance["InstanceMetadataServiceConfiguration"] == {"MinimumInstanceMetadataServiceVersion": "2"}
    assert instance["PlatformIdentifier"] == nb.platform_identifier == "notebook-al2023-v1"
    assert (instance["InstanceType"], instance["VolumeSizeInGB"]) == (nb.instance_type, nb.volume_size_gb)
    assert "DataKey" in json.dumps(instance["KmsKeyId"])
    assert "privateSubnet1" in json.dumps(instance["SubnetId"])
    assert "SageMakerSecurityGroup" in json.dumps(instance["SecurityGroupIds"])
    assert instance["NotebookInstanceName"] == f"{dev.config.app_name}-dev-notebook"


def _allow_statements(s: Synthesized, concern: str) -> list[dict[str, Any]]:
    """Statements of the stack's managed policies that grant (the guardrails only deny)."""
    policies = _props(s, concern, "AWS::IAM::ManagedPolicy")
    statements = [st for p in policies for st in p["PolicyDocument"]["Statement"]]
    return [st for st in statements if st["Effect"] == "Allow"]


def test_notebook_role_is_least_privilege(dev: Synthesized) -> None:
    # GIVEN the notebook role's own (allow) policy
    statements = {s["Sid"]: s for s in _allow_statements(dev, "Notebook")}
    text = json.dumps(statements)
    # WHEN the stage is synthesized (once per session)
    # THEN exactly these grants: data prefixes, the project's endpoints and jobs, the start function, itself, logs
    assert set(statements) == {
        "ReadDataPrefixes",
        "DropNewData",
        "ListDataPrefixes",
        "UseDataKeyThroughS3",
        "CallProjectEndpoints",
        "WatchProjectTrainingJobs",
        "ListTrainingJobs",
        "StartRetraining",
        "StopItselfWhenIdle",
        "NotebookLogGroup",
        "NotebookLogStreams",
    }
    assert all(s["Effect"] == "Allow" and "*" not in json.dumps(s["Action"]) for s in statements.values())
    reads = json.dumps(statements["ReadDataPrefixes"]["Resource"])
    assert all(f"/{p}*" in reads for p in ("train/", "validation/", "test/", "incoming/"))
    assert "/quarantine/" not in reads and "/capture/" not in reads
    assert statements["DropNewData"]["Resource"]["Fn::Join"][1][-1].endswith("/incoming/*")
    assert ":endpoint/sagecycle-dev-*" in json.dumps(statements["CallProjectEndpoints"]["Resource"])
    assert json.dumps(statements["StartRetraining"]["Resource"]).endswith(':function:sagecycle-dev-start-training"]]}')
    assert statements["UseDataKeyThroughS3"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    }
    assert statements["ListTrainingJobs"]["Resource"] == "*"  # no resource-level permissions; acknowledged
    assert "FullAccess" not in text
    # ...and the role carries no AWS managed policy at all
    roles = _props(dev, "Notebook", "AWS::IAM::Role")
    assert all("ManagedPolicyArns" not in r for r in roles)


def test_guardrails_are_attached_to_the_notebook_role(dev: Synthesized) -> None:
    # GIVEN the guardrail policy in the Notebook stack
    stack = dev.stage.notebook
    assert stack is not None
    cfn = stack.guardrails.policy.node.default_child
    guardrails = dev.resources("Notebook", "AWS::IAM::ManagedPolicy")[stack.resolve(cfn.logical_id)]["Properties"]
    # WHEN the stage is synthesized (once per session)
    # THEN it is attached to the notebook role and holds only denies
    assert guardrails["Roles"] == [{"Ref": next(iter(dev.resources("Notebook", "AWS::IAM::Role")))}]
    assert {s["Effect"] for s in guardrails["PolicyDocument"]["Statement"]} == {"Deny"}


def test_guardrails_deny_what_is_not_private_and_encrypted() -> None:
    # GIVEN the guardrail statements
    # WHEN they are rendered as IAM JSON
    statements = {s.sid: s.to_statement_json() for s in sagemaker_guardrail_statements()}
    creates = ["sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob", "sagemaker:CreateModel"]
    # THEN jobs and models need subnets, security groups and network isolation (the keys those actions support)
    assert statements["DenyJobsAndModelsOutsideVpcSubnets"]["Action"] == creates
    assert statements["DenyJobsAndModelsOutsideVpcSubnets"]["Condition"] == {"Null": {"sagemaker:VpcSubnets": "true"}}
    assert statements["DenyJobsAndModelsWithoutSecurityGroups"]["Condition"] == {
        "Null": {"sagemaker:VpcSecurityGroupIds": "true"}
    }
    assert statements["DenyJobsAndModelsWithoutNetworkIsolation"]["Condition"] == {
        "BoolIfExists": {"sagemaker:NetworkIsolation": "false"}
    }
    # ...volumes need a KMS key, except on instance families with local NVMe storage (which refuse one)
    volumes = statements["DenyUnencryptedVolumes"]
    assert "sagemaker:CreateTransformJob" in volumes["Action"] and "sagemaker:CreateModel" not in volumes["Action"]
    assert volumes["Condition"]["Null"] == {"sagemaker:VolumeKmsKey": "true"}
    assert "ml.g5.*" in volumes["Condition"]["ForAllValues:StringNotLike"]["sagemaker:InstanceTypes"]
    # ...and notebooks must disable root and direct internet access (omitting them means Enabled)
    assert statements["DenyNotebooksWithRootAccess"]["Condition"] == {
        "StringNotEqualsIfExists": {"sagemaker:RootAccess": "Disabled"}
    }
    assert statements["DenyEnablingRootAccess"]["Condition"] == {"StringEquals": {"sagemaker:RootAccess": "Enabled"}}
    assert statements["DenyNotebooksWithDirectInternetAccess"]["Condition"] == {
        "StringNotEqualsIfExists": {"sagemaker:DirectInternetAccess": "Disabled"}
    }
    assert all(s["Effect"] == "Deny" for s in statements.values())


def test_guardrails_can_leave_serverless_models_out() -> None:
    # GIVEN a serverless endpoint (SageMaker runs its model outside any VPC, without network isolation)
    statements = {s.sid: s.to_statement_json() for s in sagemaker_guardrail_statements(guard_models=False)}
    # WHEN models are left out THEN training and tuning are still held to the VPC and isolation rules
    for sid in ("DenyJobsAndModelsOutsideVpcSubnets", "DenyJobsAndModelsWithoutNetworkIsolation"):
        assert statements[sid]["Action"] == ["sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob"]


def test_guardrail_volume_exception_matches_the_job_builder() -> None:
    # GIVEN the job-spec builder, which leaves VolumeKmsKeyId out for local-storage families
    from lambdas.shared import jobspec

    # WHEN its local-storage families are set beside the guardrail's
    # THEN the guardrail exempts exactly those families, so no job the builder makes is denied
    assert set(LOCAL_STORAGE_FAMILIES) == set(jobspec._LOCAL_STORAGE_FAMILIES)


# ----------------------------------------------------------------------------------------------- lifecycle


def _lifecycle_content(s: Synthesized, hook: str) -> str:
    """The script as SageMaker receives it, with each CloudFormation token at its longest (a 12-digit account)."""
    config = _props(s, "Notebook", "AWS::SageMaker::NotebookInstanceLifecycleConfig")[0]
    content = config[hook][0]["Content"]["Fn::Base64"]
    if isinstance(content, str):
        return content
    assert set(content) == {"Fn::Join"}
    return "".join(p if isinstance(p, str) else "123456789012" for p in content["Fn::Join"][1])


def _payload(script: str) -> bytes:
    block = re.search(r"<<'PAYLOAD'[^\n]*\n(.*?)\nPAYLOAD\n", script, re.S)
    assert block, "the script embeds its payload in a quoted heredoc"
    return gzip.decompress(base64.b64decode(block.group(1)))


@pytest.mark.parametrize("hook", ["OnCreate", "OnStart"])
def test_lifecycle_scripts_fit_sagemakers_limit(dev: Synthesized, hook: str) -> None:
    # GIVEN each lifecycle script as synthesized WHEN base64-encoded as SageMaker stores it
    encoded = base64.b64encode(_lifecycle_content(dev, hook).encode())
    # THEN it fits the 16384-character limit with 15% to spare for future edits
    assert len(encoded) <= MAX_SCRIPT_CONTENT * 0.85, len(encoded)


@pytest.mark.parametrize("hook", ["OnCreate", "OnStart"])
def test_lifecycle_scripts_finish_well_within_five_minutes(dev: Synthesized, hook: str) -> None:
    # GIVEN each script WHEN its commands are read
    script = _lifecycle_content(dev, hook)
    # THEN it downloads and installs nothing (no internet here, and no slow package managers)...
    for slow in ("pip ", "conda ", "yum ", "dnf ", "curl ", "wget ", "git ", "nohup", "sleep "):
        assert slow not in script, slow
    # ...and every command that could wait is bounded
    for line in script.splitlines():
        if re.search(r"\b(systemctl|runuser)\b", line) and not line.lstrip().startswith("#"):
            assert "timeout 60" in line, line
    assert script.startswith("#!/bin/bash\n") and "set -euo pipefail" in script
    # ...and bash parses it
    checked = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_on_start_installs_the_idle_check_as_a_timer(dev: Synthesized) -> None:
    # GIVEN the OnStart script
    script = _lifecycle_content(dev, "OnStart")
    # WHEN the stage is synthesized (once per session)
    # THEN it carries notebook_idle.py byte for byte, installs it root-owned, runs it as ec2-user every 5 minutes
    assert _payload(script) == (ROOT / "sagecycle" / "notebook_idle.py").read_bytes()
    assert f"IDLE_MINUTES={dev.config.notebook.idle_minutes}\n" in script
    assert 'AUTOSTOP_FLAGS=""' in script  # open browser tabs keep the instance running by default
    assert "User=ec2-user" in script and "OnUnitActiveSec=5min" in script
    assert "StandardOutput=append:${LOG_FILE}" in script and "LOG_FILE=/var/log/sagecycle-autostop.log" in script
    assert "systemctl enable --now sagecycle-autostop.timer" in script
    # ...with the interpreter that has boto3 first, and the names the quickstart notebook reads
    assert script.index("JupyterSystemEnv/bin/python") < script.index("/usr/bin/python3")
    environment = json.loads(re.search(r"<<'ENV'\n(.*?)\nENV\n", script, re.S).group(1))  # type: ignore[union-attr]
    assert environment == {
        "SAGECYCLE_DATA_BUCKET": "sagecycle-dev-data-123456789012-us-east-1",
        "SAGECYCLE_ENDPOINT_NAME": "sagecycle-dev-endpoint",
        "SAGECYCLE_JOB_PREFIX": "sagecycle-dev",
        "SAGECYCLE_REGION": "us-east-1",
        "SAGECYCLE_START_TRAINING_FUNCTION": "sagecycle-dev-start-training",
    }


def test_on_create_installs_the_quickstart_notebook_once(dev: Synthesized) -> None:
    # GIVEN the OnCreate script
    # WHEN the stage is synthesized
    # THEN it carries the notebook byte for byte and never overwrites a user's copy
    script = _lifecycle_content(dev, "OnCreate")
    assert _payload(script) == (ROOT / "notebooks" / "quickstart.ipynb").read_bytes()
    assert "TARGET=/home/ec2-user/SageMaker/quickstart.ipynb" in script
    assert script.index('if [ -e "$TARGET" ]') < script.index("base64 -d")


# ----------------------------------------------------------------------------------------- bucket perimeter


@pytest.fixture(scope="module")
def restricted_data() -> dict[str, Any]:
    """The Data stack alone with restrict_buckets_to_vpce on (one extra synthesis of one stack)."""
    config = load_config("dev", overrides={"network": {"restrict_buckets_to_vpce": True}})
    stack = DataStack(App(context=cdk_context()), "Restricted", config=config, env=Environment(region=config.region))
    return Template.from_stack(stack).to_json()


def _perimeter_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::S3::BucketPolicy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "DenyOutsideOwnVpcEndpoints"
    ]


def test_buckets_are_open_to_any_network_by_default(synthesized: Synthesized) -> None:
    # GIVEN the default stages (restrict_buckets_to_vpce off)
    # WHEN the stage is synthesized
    # THEN no bucket carries the perimeter statement
    assert _perimeter_statements(synthesized.raw[synthesized.config.stack_name("Data")]) == []


def test_restricted_buckets_deny_object_access_outside_own_vpc_endpoints(
    restricted_data: dict[str, Any], dev: Synthesized
) -> None:
    # GIVEN the data and model buckets with the perimeter on
    # WHEN the stage is synthesized (once per session)
    statements = _perimeter_statements(restricted_data)
    assert len(statements) == 2  # data and model bucket; the access-log bucket is written by S3 itself
    for statement in statements:
        condition = statement["Condition"]
        # THEN object reads/writes/lists are denied unless they come through one of this account's endpoints...
        assert (statement["Effect"], statement["Principal"]) == ("Deny", {"AWS": "*"})
        assert sorted(statement["Action"]) == sorted(DATA_ACTIONS)
        assert condition["StringNotEqualsIfExists"]["aws:VpceAccount"] == {"Ref": "AWS::AccountId"}
        # ...AWS services (CloudTrail, S3 log delivery, events) and forward access sessions pass...
        assert condition["BoolIfExists"] == {"aws:PrincipalIsAWSService": "false", "aws:ViaAWSService": "false"}
        # ...as do the CDK deployment roles, the SageMaker execution role and roles tagged as exempt
        exempt = json.dumps(condition["ArnNotLikeIfExists"]["aws:PrincipalArn"])
        assert "cdk-*-cfn-exec-role-" in exempt and "cdk-*-deploy-role-" in exempt
        assert f":role/{dev.stage.model.execution.role_name}" in exempt
        assert condition["StringNotEqualsIfExists"]["aws:PrincipalTag/sagecycle:network-perimeter"] == "exempt"
    # ...and no endpoint id (a cross-stack reference to the Network stack) is needed
    assert "SourceVpce" not in json.dumps(restricted_data) and "GetStackOutput" not in json.dumps(restricted_data)
