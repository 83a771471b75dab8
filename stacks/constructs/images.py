"""Container image URIs, resolved at synth time from the SageMaker SDK's offline tables."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=16)
def xgboost_image_uri(region: str, framework_version: str) -> str:
    """The SageMaker XGBoost framework container for a region, e.g. `...sagemaker-xgboost:3.2-0`."""
    from sagemaker.core import image_uris  # heavy import, only at synth

    return str(image_uris.retrieve("xgboost", region, version=framework_version))


def ecr_repository_arn(image_uri: str, partition: str = "aws") -> str:
    """`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG` -> the repository ARN the role may pull from."""
    host, _, path = image_uri.partition("/")
    account, _, rest = host.partition(".dkr.ecr.")
    region = rest.split(".", 1)[0]
    repository = path.split(":", 1)[0].split("@", 1)[0]
    return f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"
