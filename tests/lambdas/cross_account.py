"""What moto lacks for two accounts, added as AWS documents it (and nothing more lenient).

moto keeps one SageMaker backend per account and resolves a package ARN only in the caller's account, and it
has no model package group resource policies. In AWS, DescribeModelPackage on another account's package ARN
is answered from that account's registry when the group's resource policy allows the caller (and refused
with AccessDeniedException otherwise). `GroupPolicies` holds the policies the build stack sets (the very
documents of stacks/cross_account_policies.py) and answers cross-account DescribeModelPackage by them.
The caller is identified by its account and by the role the test assumed for it (STS AssumeRole).
"""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest
from moto.core.exceptions import ServiceException
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends

from lambdas.shared.packages import account_of, group_of


class AccessDenied(ServiceException):
    code = "AccessDeniedException"


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class GroupPolicies:
    def __init__(self) -> None:
        self.policies: dict[tuple[str, str], dict[str, Any]] = {}
        self.caller_role_arn: dict[str, str] = {}  # account -> the role its calls are made as

    def put(self, account: str, group: str, policy: dict[str, Any]) -> None:
        self.policies[(account, group)] = policy

    def allows(self, owner: str, package_arn: str, caller_account: str, action: str) -> bool:
        policy = self.policies.get((owner, group_of(package_arn)))
        principal = self.caller_role_arn.get(caller_account)
        if policy is None or principal is None:
            return False
        for statement in policy["Statement"]:
            if statement.get("Effect") != "Allow" or principal not in _listed(statement["Principal"]["AWS"]):
                continue
            if action in _listed(statement["Action"]) and any(
                fnmatch.fnmatchcase(package_arn, pattern) for pattern in _listed(statement["Resource"])
            ):
                return True
        return False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = SageMakerModelBackend.describe_model_package
        policies = self

        def describe(backend: SageMakerModelBackend, model_package_name: str) -> Any:
            owner = account_of(model_package_name) if model_package_name.startswith("arn:") else backend.account_id
            if owner == backend.account_id:
                return original(backend, model_package_name)
            if not policies.allows(owner, model_package_name, backend.account_id, "sagemaker:DescribeModelPackage"):
                raise AccessDenied(f"not authorized to perform sagemaker:DescribeModelPackage on {model_package_name}")
            return original(sagemaker_backends[owner][backend.region_name], model_package_name)

        monkeypatch.setattr(SageMakerModelBackend, "describe_model_package", describe)
