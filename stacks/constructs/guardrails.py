"""IAM deny statements that keep SageMaker resources private and encrypted, whatever else a role is allowed.

Condition keys as the Service Authorization Reference lists them for SageMaker. A key is used only with
actions that support it: one an action does not support is absent, and a Deny on "absent" would always fire.
- sagemaker:VpcSubnets, sagemaker:VpcSecurityGroupIds, sagemaker:NetworkIsolation: CreateTrainingJob,
  CreateHyperParameterTuningJob, CreateModel (a transform job inherits VPC and isolation from its model);
- sagemaker:VolumeKmsKey, sagemaker:InstanceTypes: CreateTrainingJob, CreateHyperParameterTuningJob,
  CreateTransformJob (CreateModel has no volume);
- sagemaker:RootAccess ("Enabled" / "Disabled"): CreateNotebookInstance, UpdateNotebookInstance;
- sagemaker:DirectInternetAccess ("Enabled" / "Disabled"): CreateNotebookInstance.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam
from constructs import Construct

TRAINING = ("sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob")
JOBS_AND_MODELS = (*TRAINING, "sagemaker:CreateModel")  # the actions with VPC and network-isolation keys
WITH_VOLUMES = (*TRAINING, "sagemaker:CreateTransformJob")  # the actions with a volume KMS key
# Instance families with local NVMe storage reject a volume KMS key (SageMaker encrypts those disks itself);
# the same list as lambdas/shared/jobspec.py, which leaves VolumeKmsKeyId out for them.
LOCAL_STORAGE_FAMILIES = ("g5", "g6", "g6e", "p5", "p5e", "p5en", "inf2", "trn1", "trn1n")


def sagemaker_guardrail_statements(*, guard_models: bool = True) -> list[iam.PolicyStatement]:
    """Deny creating jobs or models outside a VPC, without network isolation or without a volume KMS key,
    and notebook instances with root or direct internet access. Attach them to any role that creates these.

    Args:
        guard_models: False leaves CreateModel out of the VPC and isolation rules; only for serverless
            endpoints, whose models SageMaker runs outside any VPC and without network isolation.
    """
    in_vpc = list(JOBS_AND_MODELS if guard_models else TRAINING)
    return [
        iam.PolicyStatement(
            sid="DenyJobsAndModelsOutsideVpcSubnets",
            effect=iam.Effect.DENY,
            actions=in_vpc,
            resources=["*"],
            conditions={"Null": {"sagemaker:VpcSubnets": "true"}},
        ),
        iam.PolicyStatement(
            sid="DenyJobsAndModelsWithoutSecurityGroups",
            effect=iam.Effect.DENY,
            actions=in_vpc,
            resources=["*"],
            conditions={"Null": {"sagemaker:VpcSecurityGroupIds": "true"}},
        ),
        iam.PolicyStatement(
            sid="DenyJobsAndModelsWithoutNetworkIsolation",
            effect=iam.Effect.DENY,
            actions=in_vpc,
            resources=["*"],
            # IfExists: an absent flag (the API default, false) is denied as well.
            conditions={"BoolIfExists": {"sagemaker:NetworkIsolation": "false"}},
        ),
        iam.PolicyStatement(
            sid="DenyUnencryptedVolumes",
            effect=iam.Effect.DENY,
            actions=list(WITH_VOLUMES),
            resources=["*"],
            conditions={
                "Null": {"sagemaker:VolumeKmsKey": "true"},
                # ...unless every instance has local NVMe storage, which SageMaker encrypts and which refuses a key.
                "ForAllValues:StringNotLike": {
                    "sagemaker:InstanceTypes": [f"ml.{family}.*" for family in LOCAL_STORAGE_FAMILIES]
                },
            },
        ),
        iam.PolicyStatement(
            sid="DenyNotebooksWithRootAccess",
            effect=iam.Effect.DENY,
            actions=["sagemaker:CreateNotebookInstance"],
            resources=["*"],
            # IfExists: omitting RootAccess means the API default, Enabled.
            conditions={"StringNotEqualsIfExists": {"sagemaker:RootAccess": "Disabled"}},
        ),
        iam.PolicyStatement(
            sid="DenyEnablingRootAccess",
            effect=iam.Effect.DENY,
            actions=["sagemaker:UpdateNotebookInstance"],
            resources=["*"],
            conditions={"StringEquals": {"sagemaker:RootAccess": "Enabled"}},
        ),
        iam.PolicyStatement(
            sid="DenyNotebooksWithDirectInternetAccess",
            effect=iam.Effect.DENY,
            actions=["sagemaker:CreateNotebookInstance"],
            resources=["*"],
            # IfExists: omitting DirectInternetAccess means the API default, Enabled.
            conditions={"StringNotEqualsIfExists": {"sagemaker:DirectInternetAccess": "Disabled"}},
        ),
    ]


class SageMakerGuardrails(Construct):
    """The guardrail statements as one customer-managed policy (`self.policy`), attached to `roles`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, roles: Sequence[iam.IRole], guard_models: bool = True
    ) -> None:
        super().__init__(scope, construct_id)
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="Deny SageMaker jobs, models and notebooks that are not private and encrypted",
            statements=sagemaker_guardrail_statements(guard_models=guard_models),
            roles=list(roles),
        )
