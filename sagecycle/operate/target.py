"""Which AWS a command talks to, and the stage's resource names there.

The process's AWS clients are the functions' own (`lambdas.shared.runtime.client`), so the readers the functions
use (runs table, artifacts, deployments) work unchanged. `connect` points them at the target for the length of a
`with` block: the region, and with `--endpoint-url` every service at that URL (AWS_ENDPOINT_URL, which boto3
honours for all services); credentials come from boto3's normal chain. The account is STS's answer, and every
name is `contract.names`' for (app, stage, account, region).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from contract import names as cn
from sagecycle.environ import restored_environ
from sagecycle.operate.options import Common, UsageError

_VARIABLES: Final = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")


@dataclass(frozen=True)
class StageNames:
    """Every name of the stage the commands touch, from contract.names."""

    app: str
    stage: str
    account: str
    region: str
    endpoint_url: str | None = None

    @property
    def data_bucket(self) -> str:
        return cn.bucket_name(self.app, self.stage, "data", self.account, self.region)

    @property
    def model_bucket(self) -> str:
        return cn.bucket_name(self.app, self.stage, "models", self.account, self.region)

    @property
    def runs_table(self) -> str:
        return cn.table_name(self.app, self.stage, "runs")

    @property
    def champion_parameter(self) -> str:
        return cn.champion_parameter_name(self.app, self.stage)

    @property
    def model_package_group(self) -> str:
        return cn.model_package_group_name(self.app, self.stage)

    @property
    def endpoint(self) -> str:
        return cn.endpoint_name(self.app, self.stage)

    def function(self, key: str) -> str:
        return cn.function_name(self.app, self.stage, key)

    @property
    def alarm_names(self) -> tuple[str, ...]:
        """The alarms the contract names: the endpoint's, drift and model quality."""
        suffixes = (*cn.ENDPOINT_ALARMS.values(), cn.DRIFT_ALARM_SUFFIX, cn.QUALITY_ALARM_SUFFIX)
        return tuple(cn.alarm_name(self.app, self.stage, s) for s in suffixes)

    @property
    def alarm_prefix(self) -> str:
        """`<app>-<stage>-`: the contract's alarms, and the ones CloudFormation names after the stage's stacks."""
        return cn.alarm_name(self.app, self.stage, "")


def resolve_region(given: str | None) -> str:
    if given:
        return given
    import boto3

    region = boto3.session.Session().region_name
    if not region:
        raise UsageError("no-region", "no region: pass --region or set AWS_REGION")
    return region


@contextlib.contextmanager
def connect(options: Common) -> Iterator[StageNames]:
    """Point this process's AWS clients at the target; yields the stage's names. Restores the environment after."""
    from lambdas.shared.runtime import client, reset_caches

    region = resolve_region(options.region)
    try:
        with restored_environ(_VARIABLES):
            os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region
            if options.endpoint_url:
                os.environ["AWS_ENDPOINT_URL"] = options.endpoint_url
            reset_caches()  # clients made for another target must not be reused
            account = str(client("sts").get_caller_identity()["Account"])
            yield StageNames(options.app, options.stage, account, region, options.endpoint_url)
    finally:
        reset_caches()
