"""Assemble every stack of one stage from a validated config (app.py and the tests share this)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import App, Environment, Stack, Tags

from config.settings import StageConfig
from stacks.audit_stack import AuditStack
from stacks.constructs.sagemaker_role import NetworkScope
from stacks.data_stack import DataStack
from stacks.endpoint_stack import EndpointStack
from stacks.model_stack import ModelStack, champion_parameter_name
from stacks.network_stack import NetworkStack
from stacks.notebook_stack import NotebookStack
from stacks.packaging import build_lambda_bundle, build_powertools_layer, build_sourcedir
from stacks.retraining_stack import ModelFacts, PrivateNetwork, RetrainingStack


@dataclass
class Stage:
    config: StageConfig
    data: DataStack
    audit: AuditStack
    model: ModelStack
    retraining: RetrainingStack
    endpoint: EndpointStack | None  # where the stage serves (not in a build account)
    network: NetworkStack | None = None  # when config.network.enabled
    notebook: NotebookStack | None = None  # when config.notebook.enabled

    def stacks(self) -> list[Stack]:
        optional = [s for s in (self.endpoint, self.network, self.notebook) if s is not None]
        return [self.data, self.audit, self.model, self.retraining, *optional]


def build_stage(app: App, config: StageConfig, *, build_dir: Path, baseline_model: Path | None = None) -> Stage:
    """Every stack of one stage. build_dir receives synth-time artifacts (the scripts tarball)."""
    env = Environment(account=config.account, region=config.region)
    data = DataStack(
        app,
        config.stack_name("Data"),
        config=config,
        env=env,
        description=f"{config.app_name} {config.stage}: KMS keys and encrypted buckets (stateful)",
    )
    audit = AuditStack(
        app,
        config.stack_name("Audit"),
        config=config,
        log_key=data.keys.log_key,
        access_logs=data.access_logs,
        watched_buckets=[data.data_bucket, data.model_bucket],
        env=env,
        description=f"{config.app_name} {config.stage}: CloudTrail, security alarms, operator topic (stateful)",
    )
    network = notebook = None
    if config.network.enabled:
        network = NetworkStack(
            app,
            config.stack_name("Network"),
            config=config,
            log_key=data.keys.log_key,
            env=env,
            description=f"{config.app_name} {config.stage}: private VPC, VPC endpoints, flow logs, SageMaker group",
        )
    model = ModelStack(
        app,
        config.stack_name("Model"),
        config=config,
        data_key=data.keys.data_key,
        log_key=data.keys.log_key,
        network=NetworkScope(
            vpc_id=network.vpc.vpc_id,
            subnet_ids=tuple(network.subnet_ids),
            security_group_ids=(network.sagemaker_security_group.security_group_id,),
        )
        if network is not None
        else None,
        sourcedir=build_sourcedir(build_dir / "sourcedir"),
        baseline_model=baseline_model,
        env=env,
        description=f"{config.app_name} {config.stage}: SageMaker role, scripts, champion parameter, model registry",
    )
    model.add_stack_dependency(data, reason="buckets are referenced by name")
    if network is not None:
        model.add_stack_dependency(network, reason="the execution role attaches interfaces in its subnets only")
    private = (
        PrivateNetwork(
            subnet_ids=tuple(network.subnet_ids),
            security_group_ids=(network.sagemaker_security_group.security_group_id,),
        )
        if network is not None
        else None
    )
    retraining = RetrainingStack(
        app,
        config.stack_name("Retraining"),
        config=config,
        model=ModelFacts(
            image_uri=model.image_uri,
            execution_role_name=model.execution.role_name,
            sourcedir_name=model.sourcedir_name,
            champion_parameter=champion_parameter_name(config),
            model_package_group=f"{config.app_name}-{config.stage}",
        ),
        data_key=data.keys.data_key,
        log_key=data.keys.log_key,
        operator_topic=audit.operator_topic,
        network=private,
        lambda_bundle=build_lambda_bundle(build_dir / "lambdas"),
        powertools_layer=build_powertools_layer(build_dir / "powertools-layer"),
        env=env,
        description=f"{config.app_name} {config.stage}: retraining glue (ingest, start, promote, drift, alarms)",
    )
    retraining.add_stack_dependency(model, reason="the execution role, scripts and champion parameter")
    if config.notebook.enabled and network is not None:
        notebook = NotebookStack(
            app,
            config.stack_name("Notebook"),
            config=config,
            data_key=data.keys.data_key,
            subnet_id=network.subnet_ids[0],
            security_group=network.sagemaker_security_group,
            env=env,
            description=f"{config.app_name} {config.stage}: hardened notebook instance that stops itself when idle",
        )
        notebook.add_stack_dependency(data, reason="the data bucket is referenced by name")
    endpoint = None
    if config.accounts.serves:
        endpoint = EndpointStack(
            app,
            config.stack_name("Endpoint"),
            config=config,
            execution_role_name=model.execution.role_name,
            image_uri=model.image_uri,
            champion_parameter_name=champion_parameter_name(config),
            data_key=data.keys.data_key,
            operator_topic=audit.operator_topic,
            vpc_subnet_ids=list(private.subnet_ids) if private else None,
            security_group_ids=list(private.security_group_ids) if private else None,
            env=env,
            description=f"{config.app_name} {config.stage}: real-time endpoint, canary rollouts, autoscaling, alarms",
        )
        endpoint.add_stack_dependency(model, reason="the execution role and the champion parameter")
        endpoint.add_stack_dependency(audit, reason="the operators' topic")
        if network is not None:
            endpoint.add_stack_dependency(network, reason="the model runs in its subnets")
    if network is not None:
        retraining.add_stack_dependency(network, reason="training jobs and models run in its subnets")
    stage = Stage(
        config=config,
        data=data,
        audit=audit,
        model=model,
        retraining=retraining,
        endpoint=endpoint,
        network=network,
        notebook=notebook,
    )
    for stack in stage.stacks():
        Tags.of(stack).add("project", config.app_name)
        Tags.of(stack).add("stage", config.stage)
    return stage
