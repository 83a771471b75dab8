"""SageMaker's state-change events as EventBridge delivers them, built from the Describe* answers of the local AWS.

- "SageMaker Endpoint State Change" and "SageMaker Endpoint Deployment State Change" (`endpoint_event`), in the shape
  of the published samples under tests/events/aws/sagemaker/;
- "SageMaker Transform Job State Change" (`transform_job_event`): the DescribeTransformJob fields, timestamps in
  epoch milliseconds and Tags as a map, as the service's other job events carry them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sagecycle.rehearsal.event_shapes import envelope, millis


def _event_status(status: str) -> str:
    """API spelling -> the events' spelling: InService -> IN_SERVICE (the published samples use it)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", status).upper()


def endpoint_event(detail_type: str, describe: Mapping[str, Any], *, region: str, time: datetime) -> dict[str, Any]:
    """A "SageMaker Endpoint State Change" or "SageMaker Endpoint Deployment State Change" event for the endpoint
    `describe` (a DescribeEndpoint answer), in the shape of the published samples (tests/events/aws/sagemaker/)."""
    arn = str(describe["EndpointArn"])
    detail: dict[str, Any] = {
        "EndpointName": describe["EndpointName"],
        "EndpointArn": arn,
        "EndpointConfigName": describe.get("EndpointConfigName"),
        "ProductionVariants": millis(describe.get("ProductionVariants") or []),
        "EndpointStatus": _event_status(str(describe["EndpointStatus"])),
        "CreationTime": millis(describe.get("CreationTime")),
        "LastModifiedTime": millis(describe.get("LastModifiedTime")),
        "Tags": {t["Key"]: t["Value"] for t in describe.get("Tags") or []},
    }
    if describe.get("FailureReason"):
        detail["FailureReason"] = describe["FailureReason"]
    if describe.get("PendingDeploymentSummary"):
        detail["PendingDeploymentSummary"] = millis(describe["PendingDeploymentSummary"])
    return envelope(
        "aws.sagemaker", detail_type, detail, account=arn.split(":")[4], region=region, time=time, resources=[arn]
    )


def transform_job_event(
    describe: Mapping[str, Any], *, region: str, time: datetime, tags: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A "SageMaker Transform Job State Change" event for `describe` (a DescribeTransformJob answer)."""
    arn = str(describe["TransformJobArn"])
    detail = {k: millis(v) for k, v in describe.items() if k != "ResponseMetadata"}
    detail["Tags"] = dict(tags or {})
    return envelope(
        "aws.sagemaker",
        "SageMaker Transform Job State Change",
        detail,
        account=arn.split(":")[4],
        region=region,
        time=time,
        resources=[arn],
    )
