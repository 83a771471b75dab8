"""Endpoint stack: the champion by dynamic reference, canary rollouts, autoscaling, alarms and the dashboard."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from config.settings import load_config
from lambdas.shared import contract
from stacks.constructs.autoscaling import SERVICE_LINKED_ROLE
from stacks.constructs.endpoint import HostedEndpoint, hosting_revision
from stacks.constructs.endpoint_alarms import vcpus
from stacks.constructs.images import xgboost_image_uri
from stacks.model_stack import champion_parameter_name
from tests.infrastructure.conftest import Synthesized, cdk_context, synthesize
from tests.infrastructure.test_nag import PACKS, findings

CONCERN = "Endpoint"
SUBNET_A, SUBNET_B, SG = "subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60718", "sg-0c1d2e3f4a5b60718"


def _one(s: Synthesized, resource_type: str) -> dict[str, Any]:
    (resource,) = s.resources(CONCERN, resource_type).values()
    return resource["Properties"]


def _alarms(s: Synthesized) -> dict[str, dict[str, Any]]:
    """Every alarm of the stack by contract key, with its logical id under "_id"."""
    by_name = {v: k for k, v in contract.ENDPOINT_ALARMS.items()}
    out = {}
    for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
        for logical_id, res in s.resources(CONCERN, kind).items():
            suffix = res["Properties"]["AlarmName"].removeprefix(f"sagecycle-{s.config.stage}-endpoint-")
            out[by_name[suffix]] = {**res["Properties"], "_id": logical_id}
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _dashboard(s: Synthesized) -> dict[str, Any]:
    """The dashboard body as JSON, with CloudFormation tokens replaced by "<token>"."""
    parts = _one(s, "AWS::CloudWatch::Dashboard")["DashboardBody"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "<token>" for p in parts))


def _dashboard_metrics(s: Synthesized) -> list[list[Any]]:
    return [m for w in _dashboard(s)["widgets"] for m in w["properties"].get("metrics", [])]


@pytest.fixture(scope="module")
def serverless(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    cfg = load_config("dev", overrides={"endpoint": {"serverless": True}})
    return synthesize(cfg, tmp_path_factory.mktemp("cdk-serverless"))


# ------------------------------------------------------------------------------------------------ the model


def test_model_serves_the_champion_resolved_at_deploy_time(synthesized: Synthesized) -> None:
    # GIVEN the stage's Endpoint template
    cfg = synthesized.config
    # WHEN the stage is synthesized (once per session)
    # THEN the model data is a dynamic reference to the champion parameter, resolved by CloudFormation
    # AND CloudFormation names the model itself, so a replacement never collides with the old one
    synthesized.template(CONCERN).has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": Match.object_like(
                {
                    "ModelDataUrl": f"{{{{resolve:ssm:{champion_parameter_name(cfg)}}}}}",
                    "Image": xgboost_image_uri(cfg.region, cfg.training.xgboost_framework_version),
                }
            ),
            "ModelName": Match.absent(),
        },
    )


def test_template_holds_no_model_url_and_no_parameter(synthesized: Synthesized) -> None:
    # GIVEN the Endpoint template
    template = synthesized.raw[synthesized.config.stack_name(CONCERN)]
    text = json.dumps(template)
    # WHEN the stage is synthesized (once per session)
    # THEN no model location is baked in: the only s3:// URL is the capture destination
    assert "model.tar.gz" not in text and "-models-" not in text
    assert [s for s in _strings(template) if s.startswith("s3://")] == [
        f"s3://sagecycle-{synthesized.config.stage}-data-"
    ]
    # AND no CloudFormation parameter stands in for the champion (only CDK's bootstrap version)
    assert set(template.get("Parameters", {})) == {"BootstrapVersion"}


def test_model_is_network_isolated_and_loads_code_from_the_artifact(synthesized: Synthesized) -> None:
    # GIVEN the model
    model = _one(synthesized, "AWS::SageMaker::Model")
    # WHEN the stage is synthesized (once per session)
    # THEN it runs as the Model stack's execution role, isolated, with inference.py from the artifact's code/
    role_arn = "".join(_strings(model["ExecutionRoleArn"]))
    assert role_arn.endswith(f":role/sagecycle-{synthesized.config.stage}-sagemaker-execution")
    # AND it runs in the private network's two subnets behind the SageMaker security group
    assert synthesized.config.network.enabled
    synthesized.template(CONCERN).has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "EnableNetworkIsolation": True,
            "VpcConfig": {"Subnets": [Match.any_value(), Match.any_value()], "SecurityGroupIds": [Match.any_value()]},
            "PrimaryContainer": Match.object_like(
                {
                    "Environment": Match.object_like(
                        {
                            "SAGEMAKER_PROGRAM": "inference.py",
                            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",  # the seed client reads CSV back
                        }
                    )
                }
            ),
        },
    )


def test_two_baseline_builds_give_the_same_endpoint_template(prod: Synthesized, tmp_path: Path) -> None:
    # GIVEN prod synthesized with one baseline model.tar.gz, and again with a different one
    other = tmp_path / "baseline" / "model.tar.gz"
    other.parent.mkdir()
    other.write_bytes(b"a different baseline build")
    again = synthesize(prod.config, tmp_path / "cdk", baseline_model=other)
    name = prod.config.stack_name(CONCERN)
    # WHEN the Model stacks differ (their assets do)
    assert again.raw[prod.config.stack_name("Model")] != prod.raw[prod.config.stack_name("Model")]
    # THEN the Endpoint template is identical: a redeploy never changes which model is served
    assert again.raw[name] == prod.raw[name]


def test_hosting_revision_follows_what_the_endpoint_and_its_config_carry() -> None:
    # GIVEN the dev endpoint settings and the rollback alarms
    e = load_config("dev").endpoint
    names = ["a", "b"]

    def rev(**changes: Any) -> str:
        return hosting_revision(
            dataclasses.replace(e, **changes), variant_name="AllTraffic", rollback_alarm_names=names
        )

    # WHEN a setting of the endpoint config or the endpoint changes THEN the model is replaced too
    for change in ({"canary_wait_s": 601}, {"instance_type": "ml.c5.large"}, {"data_capture_sampling_percent": 5}):
        assert rev(**change) != rev(), change
    # AND autoscaling or alarm thresholds alone leave the model (and the endpoint) alone
    for change in ({"max_capacity": 5}, {"scale_in_cooldown_s": 900}, {"latency_slo_ms": 50}):
        assert rev(**change) == rev(), change


# ------------------------------------------------------------------------------------ config and endpoint


def test_endpoint_config_encrypts_volume_and_capture_with_the_data_key(synthesized: Synthesized) -> None:
    # GIVEN the endpoint config
    config = _one(synthesized, "AWS::SageMaker::EndpointConfig")
    # WHEN the stage is synthesized (once per session)
    # THEN its volumes and its captured data are encrypted with the Data stack's data key, the same one
    assert "DataKeyArn" in json.dumps(config["KmsKeyId"])
    synthesized.template(CONCERN).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {"KmsKeyId": config["KmsKeyId"], "DataCaptureConfig": Match.object_like({"KmsKeyId": config["KmsKeyId"]})},
    )


def test_data_capture_records_requests_and_responses_as_text(synthesized: Synthesized) -> None:
    # GIVEN the endpoint config
    capture = _one(synthesized, "AWS::SageMaker::EndpointConfig")["DataCaptureConfig"]
    # WHEN the stage is synthesized (once per session)
    # THEN both directions are captured at the configured rate, CSV and JSON kept as text
    synthesized.template(CONCERN).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "DataCaptureConfig": Match.object_like(
                {
                    "EnableCapture": True,
                    "InitialSamplingPercentage": synthesized.config.endpoint.data_capture_sampling_percent,
                    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                    "CaptureContentTypeHeader": {
                        "CsvContentTypes": ["text/csv"],
                        "JsonContentTypes": ["application/json", "application/jsonlines"],
                    },
                }
            )
        },
    )
    # AND into the data bucket's capture/ prefix, where the drift monitor reads
    parts = capture["DestinationS3Uri"]["Fn::Join"][1]
    assert parts[0] == f"s3://sagecycle-{synthesized.config.stage}-data-"
    assert parts[-1].endswith(f"-{synthesized.config.region}/{contract.PREFIX_CAPTURE}")


def test_variant_keeps_the_contract_name_and_configured_size(synthesized: Synthesized) -> None:
    # GIVEN the stage's endpoint settings
    e = synthesized.config.endpoint
    # WHEN the stage is synthesized (once per session)
    # THEN the one variant keeps the contract's name and the configured instances, and is not serverless
    synthesized.template(CONCERN).has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "VariantName": contract.VARIANT_NAME,
                        "InstanceType": e.instance_type,
                        "InitialInstanceCount": e.initial_instance_count,
                        "ServerlessConfig": Match.absent(),
                    }
                )
            ]
        },
    )


def test_endpoint_updates_by_canary_and_rolls_back_on_the_contract_alarms(synthesized: Synthesized) -> None:
    # GIVEN the endpoint
    cfg = synthesized.config
    e = cfg.endpoint
    (endpoint,) = synthesized.resources(CONCERN, "AWS::SageMaker::Endpoint").values()
    props = endpoint["Properties"]
    rollback = [
        contract.alarm_name(cfg.app_name, cfg.stage, contract.ENDPOINT_ALARMS[k]) for k in contract.ROLLBACK_ALARM_KEYS
    ]
    # WHEN the stage is synthesized (once per session)
    # THEN it has the contract's name and a blue/green canary policy from config
    assert props["EndpointName"] == contract.endpoint_name(cfg.app_name, cfg.stage)
    assert props["DeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": e.canary_percent},
                "WaitIntervalInSeconds": e.canary_wait_s,
            },
            "TerminationWaitInSeconds": e.termination_wait_s,
            "MaximumExecutionTimeoutInSeconds": e.deployment_timeout_s,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in rollback]},
    }
    # AND the rollback alarms are created before the endpoint that names them
    alarms = _alarms(synthesized)
    assert set(endpoint["DependsOn"]) >= {alarms[k]["_id"] for k in contract.ROLLBACK_ALARM_KEYS}


def test_endpoint_keeps_autoscaled_capacity_across_updates(synthesized: Synthesized) -> None:
    # GIVEN the endpoint
    # WHEN the stage is synthesized
    # THEN an update keeps the variant's autoscaled capacity, but not the old capture config
    synthesized.template(CONCERN).has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "RetainAllVariantProperties": True,
            "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DataCaptureConfig"}],
            "RetainDeploymentConfig": Match.absent(),
        },
    )


# ------------------------------------------------------------------------------------------- autoscaling


def test_autoscaling_tracks_invocations_per_instance(synthesized: Synthesized) -> None:
    # GIVEN the scalable target and its policy
    e = synthesized.config.endpoint
    (target,) = synthesized.resources(CONCERN, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    props = target["Properties"]
    policy = _one(synthesized, "AWS::ApplicationAutoScaling::ScalingPolicy")
    # WHEN the stage is synthesized (once per session)
    # THEN it scales the variant's instance count within the configured bounds
    assert (
        props["ResourceId"]
        == f"endpoint/{contract.endpoint_name('sagecycle', synthesized.config.stage)}/variant/AllTraffic"
    )
    assert props["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (props["MinCapacity"], props["MaxCapacity"]) == (e.min_capacity, e.max_capacity)
    # AND through the standard service-linked role: no role of our own
    assert "".join(_strings(props["RoleARN"])).endswith(f":role/{SERVICE_LINKED_ROLE}")
    assert synthesized.resources(CONCERN, "AWS::IAM::Role") == {}
    # AND it only starts once the endpoint exists
    (endpoint_id,) = synthesized.resources(CONCERN, "AWS::SageMaker::Endpoint")
    assert target["DependsOn"] == [endpoint_id]
    # AND it tracks the target derived from measured throughput, out fast and in slowly
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "TargetValue": e.invocations_per_instance_target,
        "ScaleInCooldown": e.scale_in_cooldown_s,
        "ScaleOutCooldown": e.scale_out_cooldown_s,
    }


def test_dev_scales_down_at_night_and_prod_never(dev: Synthesized, prod: Synthesized) -> None:
    # GIVEN dev's and prod's scalable targets
    e = dev.config.endpoint
    # WHEN the stage is synthesized (once per session)
    # THEN dev scales to its minimum in the evening and back up on weekday mornings
    assert _one(dev, "AWS::ApplicationAutoScaling::ScalableTarget")["ScheduledActions"] == [
        {
            "ScheduledActionName": "NightlyScaleDown",
            "Schedule": "cron(0 19 * * ? *)",
            "ScalableTargetAction": {"MinCapacity": e.min_capacity, "MaxCapacity": e.min_capacity},
        },
        {
            "ScheduledActionName": "MorningScaleUp",
            "Schedule": "cron(0 7 ? * MON-FRI *)",
            "ScalableTargetAction": {"MinCapacity": e.min_capacity, "MaxCapacity": e.max_capacity},
        },
    ]
    # AND prod never scales on a schedule
    prod.template(CONCERN).has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"ScheduledActions": Match.absent()}
    )


# ------------------------------------------------------------------------------------------------ alarms


def test_every_contract_alarm_exists_and_notifies_the_operators(synthesized: Synthesized) -> None:
    # GIVEN the stack's alarms
    alarms = _alarms(synthesized)
    # WHEN the stage is synthesized (once per session)
    # THEN there is one per contract key, each with one action: the Audit stack's operator topic
    assert set(alarms) == set(contract.ENDPOINT_ALARMS)
    for key, alarm in alarms.items():
        (action,) = alarm["AlarmActions"]
        assert "OperatorTopic" in json.dumps(action), key
    assert set(synthesized.stage.endpoint.alarms.alarms) == set(contract.ENDPOINT_ALARMS)


def _metric(alarm: dict[str, Any]) -> tuple[str, str, int, str]:
    return (
        alarm["Namespace"],
        alarm["MetricName"],
        alarm["Period"],
        alarm.get("Statistic") or alarm["ExtendedStatistic"],
    )


def _dimensions(s: Synthesized) -> list[dict[str, str]]:
    return [
        {"Name": "EndpointName", "Value": contract.endpoint_name("sagecycle", s.config.stage)},
        {"Name": "VariantName", "Value": contract.VARIANT_NAME},
    ]


def test_invocation_alarms_follow_the_config(synthesized: Synthesized) -> None:
    # GIVEN the alarms and the endpoint settings
    alarms, e = _alarms(synthesized), synthesized.config.endpoint
    # WHEN the stage is synthesized (once per session)
    # THEN 5xx: a per-minute sum over the threshold; quiet minutes are fine
    five = alarms["errors_5xx"]
    assert _metric(five) == ("AWS/SageMaker", "Invocation5XXErrors", 60, "Sum")
    assert (five["Threshold"], five["ComparisonOperator"]) == (e.max_5xx_per_minute, "GreaterThanThreshold")
    assert five["TreatMissingData"] == "notBreaching" and five["Dimensions"] == _dimensions(synthesized)
    # AND model latency: p99 against the SLO converted to microseconds
    latency = alarms["model_latency"]
    assert _metric(latency) == ("AWS/SageMaker", "ModelLatency", 60, "p99")
    assert latency["Threshold"] == e.latency_slo_ms * 1000
    assert _metric(alarms["overhead_latency"]) == ("AWS/SageMaker", "OverheadLatency", 60, "p99")
    assert 0 < alarms["overhead_latency"]["Threshold"] <= e.latency_slo_ms * 1000
    # AND the 4xx rate: errors over invocations in percent, no traffic is not an error
    rate = alarms["rate_4xx"]
    expression = next(m["Expression"] for m in rate["Metrics"] if "Expression" in m)
    assert re.sub(r"\s", "", expression) == "IF(invocations>0,100*FILL(errors,0)/invocations,0)"
    used = {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m}
    assert used == {"invocations": "Invocations", "errors": "Invocation4XXErrors"}
    assert (rate["Threshold"], rate["TreatMissingData"]) == (e.max_4xx_rate_percent, "notBreaching")


def test_silence_alarms_when_no_request_arrives(synthesized: Synthesized) -> None:
    # GIVEN the no-invocations alarm
    idle = _alarms(synthesized)["no_invocations"]
    # WHEN the stage is synthesized (once per session)
    # THEN it fires when fewer than one request arrives in every 5-minute period of the configured window,
    # and when no data arrives at all
    periods = synthesized.config.endpoint.no_invocations_alarm_minutes // 5
    assert _metric(idle) == ("AWS/SageMaker", "Invocations", 300, "Sum")
    assert (idle["Threshold"], idle["ComparisonOperator"]) == (1, "LessThanThreshold")
    assert (idle["EvaluationPeriods"], idle["DatapointsToAlarm"]) == (periods, periods)
    assert idle["TreatMissingData"] == "breaching"


def test_instance_alarms_watch_the_endpoint_namespace_with_cpu_normalised(synthesized: Synthesized) -> None:
    # GIVEN the instance alarms
    alarms, e = _alarms(synthesized), synthesized.config.endpoint
    # WHEN the stage is synthesized (once per session)
    # THEN CPU (summed over vCPUs by SageMaker) is divided by the vCPUs, so 80 means 80 % of the instance
    cpu = alarms["cpu"]
    expression = next(m["Expression"] for m in cpu["Metrics"] if "Expression" in m)
    assert expression == f"cpu / {vcpus(e.instance_type)}" and cpu["Threshold"] == 80
    (stat,) = [m["MetricStat"] for m in cpu["Metrics"] if "MetricStat" in m]
    assert stat["Metric"]["Namespace"] == "/aws/sagemaker/Endpoints"
    assert stat["Metric"]["Dimensions"] == _dimensions(synthesized)
    # AND memory and disk are percentages of the instance already
    for key, name in (("memory", "MemoryUtilization"), ("disk", "DiskUtilization")):
        assert _metric(alarms[key]) == ("/aws/sagemaker/Endpoints", name, 300, "Average")
        assert 0 < alarms[key]["Threshold"] < 100


def test_composite_alarm_is_errors_latency_or_silence(synthesized: Synthesized) -> None:
    # GIVEN the endpoint's alarms, by contract key and logical id
    alarms = _alarms(synthesized)
    # WHEN the stage is synthesized (once per session)
    # THEN the composite's rule names exactly the errors, both latencies and silence, joined by OR
    rule = json.dumps(alarms["unhealthy"]["AlarmRule"])
    members = {k for k, a in alarms.items() if k != "unhealthy" and a["_id"] in rule}
    assert members == {"errors_5xx", "model_latency", "overhead_latency", "no_invocations"}
    assert " OR " in rule and " AND " not in rule


def test_vcpus_by_instance_size() -> None:
    # GIVEN instance types of each size / WHEN their vCPUs are read / THEN large is 2, xlarge 4, Nxlarge 4N
    assert [vcpus(t) for t in ("ml.t3.medium", "ml.m5.large", "ml.c5.xlarge", "ml.m5.4xlarge")] == [2, 2, 4, 16]
    # AND a size it cannot tell is refused (stacks.constructs.endpoint_alarms raises a plain ValueError)
    with pytest.raises(ValueError):
        vcpus("ml.m5.metal")


# --------------------------------------------------------------------------------------------- dashboard


def test_dashboard_charts_traffic_latency_capacity_drift_and_training(synthesized: Synthesized) -> None:
    # GIVEN the stage's dashboard
    cfg = synthesized.config
    assert _one(synthesized, "AWS::CloudWatch::Dashboard")["DashboardName"] == f"sagecycle-{cfg.stage}"
    metrics = _dashboard_metrics(synthesized)
    charted = {(m[0], m[1], m[-1].get("stat")) for m in metrics if isinstance(m[0], str) and len(m) > 2}
    # WHEN the stage is synthesized (once per session)
    # THEN the endpoint's invocations, errors and both latencies at p50/p90/p99 are charted
    assert {("AWS/SageMaker", "Invocations", "Sum"), ("AWS/SageMaker", "Invocation4XXErrors", "Sum")} <= charted
    assert ("AWS/SageMaker", "Invocation5XXErrors", "Sum") in charted
    for name in ("ModelLatency", "OverheadLatency"):
        assert {("AWS/SageMaker", name, p) for p in ("p50", "p90", "p99")} <= charted
    # AND the instance count, as the per-minute sample count of the instances' CPU metric
    assert ("/aws/sagemaker/Endpoints", "CPUUtilization", "SampleCount") in charted
    # AND drift and retraining from our own namespace, per stage
    ours = {
        m[1] for m in metrics if m[0] == contract.METRIC_NAMESPACE and m[2:4] == [contract.METRIC_DIMENSION, cfg.stage]
    }
    assert {
        contract.METRIC_MAX_PSI,
        contract.METRIC_TRAINING_STARTED,
        contract.METRIC_CANDIDATE_APPROVED,
        contract.METRIC_CANDIDATE_REJECTED,
    } <= ours
    # AND the training jobs' objective metric, found by search over this stage's job names
    searches = [
        m[0]["expression"] for m in metrics if isinstance(m[0], dict) and "SEARCH" in m[0].get("expression", "")
    ]
    assert any("/aws/sagemaker/TrainingJobs" in s and f"sagecycle-{cfg.stage}" in s for s in searches)
    # AND every alarm's state
    (status,) = [w for w in _dashboard(synthesized)["widgets"] if w["type"] == "alarm"]
    assert len(status["properties"]["alarms"]) == len(contract.ENDPOINT_ALARMS)


# ------------------------------------------------------------------------------------------- serverless


def test_serverless_drops_what_sagemaker_refuses_for_serverless(serverless: Synthesized) -> None:
    # GIVEN dev with endpoint.serverless
    e = serverless.config.endpoint
    config = _one(serverless, "AWS::SageMaker::EndpointConfig")
    (variant,) = config["ProductionVariants"]
    # WHEN the stage is synthesized (once per session)
    # THEN the variant is serverless, without a volume key or data capture
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": e.serverless_memory_mb,
        "MaxConcurrency": e.serverless_max_concurrency,
    }
    assert "InstanceType" not in variant and "KmsKeyId" not in config and "DataCaptureConfig" not in config
    # AND the model runs neither network-isolated nor in a VPC (both unsupported for serverless)
    model = _one(serverless, "AWS::SageMaker::Model")
    assert model["EnableNetworkIsolation"] is False and "VpcConfig" not in model
    # AND there is no autoscaling and nothing retained across updates
    assert serverless.resources(CONCERN, "AWS::ApplicationAutoScaling::ScalableTarget") == {}
    assert _one(serverless, "AWS::SageMaker::Endpoint")["RetainAllVariantProperties"] is False
    # AND no alarm or chart for instance metrics, which serverless endpoints do not publish
    assert set(_alarms(serverless)) == set(contract.ENDPOINT_ALARMS) - {"cpu", "memory", "disk"}
    assert all(m[0] != "/aws/sagemaker/Endpoints" for m in _dashboard_metrics(serverless))


@pytest.mark.parametrize("pack_name", sorted(PACKS))
def test_serverless_endpoint_passes_the_nag_packs(serverless: Synthesized, pack_name: str) -> None:
    # GIVEN the serverless endpoint stack / WHEN the pack validates it / THEN nothing is reported
    assert findings(serverless.stage.endpoint, pack_name) == []


# ------------------------------------------------------------------------------------------ network hook


def _hosted(stack_id: str, **kwargs: Any) -> Template:
    stack = Stack(App(context=cdk_context()), stack_id, env={"region": "eu-west-1", "account": "123456789012"})
    settings = kwargs.pop("settings", load_config("dev").endpoint)
    HostedEndpoint(
        stack,
        "Hosting",
        endpoint_name="probe-dev-endpoint",
        variant_name=contract.VARIANT_NAME,
        settings=settings,
        execution_role=iam.Role.from_role_name(stack, "Role", "probe-role"),
        image_uri="123.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0",
        champion_parameter_name="/probe/dev/champion/model-data-url",
        capture_s3_uri="s3://probe-data/capture/",
        data_key=kms.Key(stack, "Key"),
        rollback_alarm_names=["a"],
        region="eu-west-1",
        **kwargs,
    )
    return Template.from_stack(stack)


def test_network_hook_puts_the_model_in_the_given_subnets() -> None:
    # GIVEN subnets and a security group from the Network stack
    # WHEN the hosted endpoint is built with them
    template = _hosted("Vpc", vpc_subnet_ids=[SUBNET_A, SUBNET_B], security_group_ids=[SG])
    # THEN the model runs in them, still network-isolated
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "EnableNetworkIsolation": True,
            "VpcConfig": {"Subnets": [SUBNET_A, SUBNET_B], "SecurityGroupIds": [SG]},
        },
    )


def test_network_hook_needs_subnets_and_security_groups_together() -> None:
    # GIVEN subnets without a security group
    # WHEN the hosted endpoint is built / THEN it is refused (HostedEndpoint raises a plain ValueError)
    with pytest.raises(ValueError):
        _hosted("Half", vpc_subnet_ids=[SUBNET_A])


def test_serverless_ignores_the_network_hook() -> None:
    # GIVEN serverless settings, with subnets and a security group
    settings = dataclasses.replace(load_config("dev").endpoint, serverless=True)
    # WHEN the hosted endpoint is built / THEN the model has no VPC config (serverless endpoints take none)
    template = _hosted("Serverless", settings=settings, vpc_subnet_ids=[SUBNET_A], security_group_ids=[SG])
    template.has_resource_properties("AWS::SageMaker::Model", {"VpcConfig": Match.absent()})
