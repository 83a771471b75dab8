"""`sagecycle approve PACKAGE` / `sagecycle reject PACKAGE`: set a model package's approval in the registry.

Only packages of the stage's own model package group are touched; any other is refused (exit 1) before anything
changes. A package that does not exist is a usage error (exit 2). The approval description says who decided
why (`--reason`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Final

from botocore.exceptions import ClientError

from lambdas.shared.runtime import client, error_code
from sagecycle.operate import options, render
from sagecycle.operate.target import StageNames, connect

STATUSES: Final = {"approve": "Approved", "reject": "Rejected"}
DESCRIPTION_MAX: Final = 1024  # ApprovalDescription's length limit


def build_parser(verb: str) -> argparse.ArgumentParser:
    p = options.parser(verb, f"Set a model package's approval to {STATUSES[verb]}.")
    p.add_argument("package", help="the model package ARN (or name) in the stage's model package group")
    p.add_argument("--reason", default=f"{verb}d by an operator (sagecycle {verb})", help="the approval description")
    return p


def describe(names: StageNames, package: str) -> dict[str, Any]:
    try:
        return dict(client("sagemaker").describe_model_package(ModelPackageName=package))
    except ClientError as error:
        if error_code(error) == "ValidationException":
            raise options.UsageError("no-such-package", f"model package {package} does not exist") from None
        raise


def set_approval(verb: str, args: argparse.Namespace) -> int:
    common = options.common(args)
    status = STATUSES[verb]
    with connect(common) as names:
        described = describe(names, args.package)
        group = described.get("ModelPackageGroupName")
        arn = str(described["ModelPackageArn"])
        if group != names.model_package_group:
            raise options.Refused(
                "foreign-package",
                f"{arn} belongs to model package group {group!r}, not this stage's {names.model_package_group!r}",
            )
        before = described.get("ModelApprovalStatus")
        client("sagemaker").update_model_package(
            ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=args.reason[:DESCRIPTION_MAX]
        )
    result = {"package": arn, "group": group, "from": before, "to": status, "reason": args.reason}
    rows = [("package", arn), ("group", group), ("was", before), ("now", status), ("reason", args.reason)]
    return render.answer(common, result, f"{verb}: {status}", rows, ok=True)


def main_approve(argv: Sequence[str] | None = None) -> int:
    return options.run("approve", lambda: build_parser("approve"), lambda a: set_approval("approve", a), argv)


def main_reject(argv: Sequence[str] | None = None) -> int:
    return options.run("reject", lambda: build_parser("reject"), lambda a: set_approval("reject", a), argv)
