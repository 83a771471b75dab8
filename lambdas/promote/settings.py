"""Promote's settings, from the function's environment (the stacks set it; contract/names.py names it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from lambdas.shared.contract import (
    ENV_ACCOUNT_ROLE,
    ENV_CHAMPION_PARAMETER,
    ENV_ENDPOINT_NAME,
    ENV_MODEL_PACKAGE_GROUP,
    ENV_OPERATOR_TOPIC_ARN,
    ENV_PACKAGE_APPROVAL,
    ENV_PEER_ACCOUNT,
    ENV_ROLLBACK_ALARMS,
    ENV_RUNS_TABLE,
    ENV_STAGE,
)
from lambdas.shared.deployments import previous_parameter
from lambdas.shared.function_settings import retrain_policy, training_settings
from lambdas.shared.jobspec import TrainingSpecSettings
from lambdas.shared.policy import RetrainPolicy
from lambdas.shared.runtime import ConfigError, env_arn, env_str, env_str_list

ACCOUNT_ROLES: Final = ("single", "build", "serving")
APPROVALS: Final = ("automatic", "manual")


@dataclass(frozen=True)
class Settings:
    stage: str
    runs_table: str
    operator_topic_arn: str
    champion_parameter: str
    model_package_group: str
    endpoint_name: str
    rollback_alarms: tuple[str, ...]
    training: TrainingSpecSettings
    policy: RetrainPolicy
    role: str = "single"  # config accounts.role
    peer_account: str | None = None  # build: the serving account; serving: the build account it trusts
    approval: str = "automatic"  # how a candidate that passes is registered

    @property
    def previous_parameter(self) -> str:
        return previous_parameter(self.champion_parameter)

    @property
    def writes_packages(self) -> bool:
        """A serving account's packages are the build account's: it reads them, never changes them."""
        return self.role != "serving"

    @property
    def deploys_candidates(self) -> bool:
        """Single account: an approved candidate goes to the endpoint. Build: it waits in the registry."""
        return self.role == "single" and self.approval == "automatic"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        role = environ.get(ENV_ACCOUNT_ROLE, "single")
        approval = environ.get(ENV_PACKAGE_APPROVAL, "automatic")
        if role not in ACCOUNT_ROLES:
            raise ConfigError(
                f"{ENV_ACCOUNT_ROLE} {role!r} is not one of {', '.join(ACCOUNT_ROLES)}", code="not-a-choice"
            )
        if approval not in APPROVALS:
            raise ConfigError(
                f"{ENV_PACKAGE_APPROVAL} {approval!r} is not one of {', '.join(APPROVALS)}", code="not-a-choice"
            )
        peer = environ.get(ENV_PEER_ACCOUNT) or None
        if (role == "single") != (peer is None) or (peer is not None and not (peer.isdigit() and len(peer) == 12)):
            raise ConfigError(
                f"{ENV_PEER_ACCOUNT} must be a 12-digit account exactly when {ENV_ACCOUNT_ROLE} is not single",
                code="invalid-peer-account",
            )
        return cls(
            stage=env_str(ENV_STAGE, environ),
            runs_table=env_str(ENV_RUNS_TABLE, environ),
            operator_topic_arn=env_arn(ENV_OPERATOR_TOPIC_ARN, "sns", environ),
            champion_parameter=env_str(ENV_CHAMPION_PARAMETER, environ),
            model_package_group=env_str(ENV_MODEL_PACKAGE_GROUP, environ),
            endpoint_name=env_str(ENV_ENDPOINT_NAME, environ),
            rollback_alarms=env_str_list(ENV_ROLLBACK_ALARMS, environ),
            training=training_settings(environ),
            policy=retrain_policy(environ),
            role=role,
            peer_account=peer,
            approval=approval,
        )
