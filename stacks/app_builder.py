"""Assemble every stack of one stage from a validated config (app.py and the tests share this)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, Environment, Stack, Tags

from config.settings import StageConfig
from stacks.audit_stack import AuditStack
from stacks.data_stack import DataStack


@dataclass
class Stage:
    config: StageConfig
    data: DataStack
    audit: AuditStack

    def stacks(self) -> list[Stack]:
        return [self.data, self.audit]


def build_stage(app: App, config: StageConfig) -> Stage:
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
    stage = Stage(config=config, data=data, audit=audit)
    for stack in stage.stacks():
        Tags.of(stack).add("project", config.app_name)
        Tags.of(stack).add("stage", config.stage)
    return stage
