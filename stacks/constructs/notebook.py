"""A SageMaker notebook instance that is private, encrypted, without root, and stops itself when idle."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Fn
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE_DIR = Path(__file__).resolve().parent / "notebook_lifecycle"
IDLE_SCRIPT = ROOT / "sagecycle" / "notebook_idle.py"
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"
# SageMaker's limits per lifecycle script: 16384 characters of base64 content, 5 minutes of runtime.
MAX_SCRIPT_CONTENT = 16384


def _payload(path: Path) -> str:
    """The file gzipped (mtime 0, so synth is deterministic) and base64-encoded in 76-character lines."""
    return base64.encodebytes(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)).decode("ascii").strip()


def on_start_script(*, idle_minutes: int, ignore_connections: bool, environment: Mapping[str, str]) -> str:
    """OnStart: installs the idle auto-stop (a systemd timer) and the quickstart notebook's environment file."""
    return (
        (LIFECYCLE_DIR / "on_start.sh")
        .read_text()
        .replace("__IDLE_MINUTES__", str(int(idle_minutes)))
        .replace("__AUTOSTOP_FLAGS__", "--ignore-connections" if ignore_connections else "")
        .replace("__IDLE_SCRIPT__", _payload(IDLE_SCRIPT))
        .replace("__ENVIRONMENT__", json.dumps(dict(environment), indent=1, sort_keys=True))
    )


def on_create_script() -> str:
    """OnCreate: puts the quickstart notebook onto the persistent volume, once."""
    return (LIFECYCLE_DIR / "on_create.sh").read_text().replace("__NOTEBOOK__", _payload(QUICKSTART))


class HardenedNotebook(Construct):
    """`CfnNotebookInstance` in a private subnet: KMS volume, no direct internet, no root, IMDSv2 only.

    Two lifecycle scripts, because each is limited to 16 KiB: OnCreate installs the quickstart notebook onto
    the persistent volume once; OnStart reinstalls the auto-stop on every start (the root volume is new).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        instance_type: str,
        volume_size_gb: int,
        platform_identifier: str,
        idle_minutes: int,
        ignore_connections: bool,
        role: iam.IRole,
        volume_key: kms.IKey,
        subnet_id: str,
        security_group_id: str,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.on_start = on_start_script(
            idle_minutes=idle_minutes, ignore_connections=ignore_connections, environment=environment
        )
        self.on_create = on_create_script()
        self.lifecycle = sagemaker.CfnNotebookInstanceLifecycleConfig(
            self,
            "Lifecycle",
            notebook_instance_lifecycle_config_name=name,
            on_create=[
                sagemaker.CfnNotebookInstanceLifecycleConfig.NotebookInstanceLifecycleHookProperty(
                    content=Fn.base64(self.on_create)
                )
            ],
            on_start=[
                sagemaker.CfnNotebookInstanceLifecycleConfig.NotebookInstanceLifecycleHookProperty(
                    content=Fn.base64(self.on_start)
                )
            ],
        )
        self.instance = sagemaker.CfnNotebookInstance(
            self,
            "Instance",
            notebook_instance_name=name,
            instance_type=instance_type,
            role_arn=role.role_arn,
            kms_key_id=volume_key.key_arn,
            subnet_id=subnet_id,
            security_group_ids=[security_group_id],
            direct_internet_access="Disabled",
            root_access="Disabled",
            instance_metadata_service_configuration=sagemaker.CfnNotebookInstance.InstanceMetadataServiceConfigurationProperty(
                minimum_instance_metadata_service_version="2"
            ),
            platform_identifier=platform_identifier,
            volume_size_in_gb=volume_size_gb,
            lifecycle_config_name=self.lifecycle.attr_notebook_instance_lifecycle_config_name,
        )
