"""Assemble every stack of one stage from a validated config (app.py and the tests share this)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import App, Environment, Stack, Tags

from config.settings import StageConfig
from sagecycle.packaging import build_sourcedir
from stacks.audit_stack import AuditStack
from stacks.data_stack import DataStack
from stacks.model_stack import ModelStack


@dataclass
class Stage:
    config: StageConfig
    data: DataStack
    audit: AuditStack
    model: ModelStack

    def stacks(self) -> list[Stack]:
        return [self.data, self.audit, self.model]


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
    model = ModelStack(
        app,
        config.stack_name("Model"),
        config=config,
        data_key=data.keys.data_key,
        sourcedir=build_sourcedir(build_dir / "sourcedir"),
        baseline_model=baseline_model,
        env=env,
        description=f"{config.app_name} {config.stage}: SageMaker role, scripts, champion parameter, model registry",
    )
    model.add_stack_dependency(data, reason="buckets are referenced by name")
    stage = Stage(config=config, data=data, audit=audit, model=model)
    for stack in stage.stacks():
        Tags.of(stack).add("project", config.app_name)
        Tags.of(stack).add("stage", config.stage)
    return stage
