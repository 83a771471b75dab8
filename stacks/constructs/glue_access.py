"""What the retraining glue functions may touch, one method per permission, each named by its statement id.

CDK's grant methods are used where they grant exactly the actions the code calls (`key.grant`, `table.grant`,
`queue.grant`, `topic.grants.actions`). Where a grant method would grant more, the statement is written out,
and the line above it says what the grant method would have added. The tables, parameters and buckets are
found by name, as everywhere in this stack: no cross-stack reference but the keys and the operators' topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.shared import contract as c
from stacks.constructs.glue_function import GlueFunction
from stacks.cross_account_policies import AccountPair, serving_promote_statements

# Where the glue functions read models: registered and champion models, and candidates a training job left.
GLUE_MODEL_PREFIXES = (c.PREFIX_MODELS, c.PREFIX_TRAINING_OUTPUT)

RUNS_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query")
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
DATA_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
QUEUE_CONSUMER_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
)

# The endpoint's first model and config are named by CloudFormation, not with our prefix: describing (read-only)
# any of them is what lets promote and the responder see what the endpoint serves.
DESCRIBE_HOSTING_REASON = {
    "DescribeHosting": "read-only DescribeEndpointConfig/DescribeModel on any config and model of this "
    "account and region, because CloudFormation names the endpoint's first ones without our prefix."
}


# The build account's data key is created there: its id is not known here, so the statement names the account's
# keys and its conditions do the scoping (only through S3 in the region, only for the build model bucket's objects).
CROSS_ACCOUNT_KEY_REASON = {
    "DecryptBuildJobOutputsThroughS3": "the build account's key id is not known to the serving stack; "
    "kms:ViaService (S3 in this region) and the S3 encryption context (the build model bucket) scope the "
    "decrypt, and the key's own policy grants this role alone."
}


@dataclass(frozen=True)
class GlueTargets:
    """What the glue functions act on, by name."""

    data_bucket: str
    model_bucket: str
    runs_table: str
    idempotency_table: str
    champion_parameter: str  # "/app/stage/..."; its previous value is "<name>/previous"
    execution_role_name: str
    model_package_group: str
    endpoint_name: str
    job_prefix: str  # our training, tuning, model and endpoint-config names start with "<job_prefix>-"
    rollback_alarm_names: tuple[str, ...]


class GlueAccess(Construct):
    """The permissions of the glue functions: `access.read_models(fn)` adds the statement `ReadModelArtifacts`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        targets: GlueTargets,
        data_key: kms.IKey,
        operator_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.targets = t = targets
        self._data_key = data_key
        self._topic = operator_topic
        self._stack = Stack.of(self)
        # The deploy-time account, even where the config names one (the rehearsal deploys into moto's).
        self._runs = dynamodb.Table.from_table_arn(self, "Runs", self._arn("dynamodb", f"table/{t.runs_table}"))
        self._idempotency = dynamodb.Table.from_table_arn(
            self, "Idempotency", self._arn("dynamodb", f"table/{t.idempotency_table}")
        )
        self._data = f"arn:{self._stack.partition}:s3:::{t.data_bucket}"
        self._models = f"arn:{self._stack.partition}:s3:::{t.model_bucket}"
        champion = self._arn("ssm", f"parameter{t.champion_parameter}")
        self._champion = [champion, f"{champion}/previous"]

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:{self._stack.partition}:{service}:{self._stack.region}:{Aws.ACCOUNT_ID}:{resource}"

    # ---- through CDK's grant methods ---------------------------------------------------------------------------
    def use_data_key(self, fn: GlueFunction) -> None:
        # grant_encrypt_decrypt would add kms:ReEncrypt* and kms:GenerateDataKey* (AwsSolutions-IAM5)
        self._data_key.grant(fn.grantee("UseDataKey"), *DATA_KEY_ACTIONS)

    def notify_operators(self, fn: GlueFunction) -> None:
        # grants.publish would allow kms:GenerateDataKey* on the topic's key (AwsSolutions-IAM5)
        sns.TopicGrants.from_topic(self._topic).actions(
            fn.grantee("NotifyOperators"), ["sns:Publish"], key_actions=["kms:GenerateDataKey", "kms:Decrypt"]
        )

    def use_runs_table(self, fn: GlueFunction) -> None:
        # grant_read_write_data would add Scan, BatchGet/BatchWrite, ConditionCheckItem and the stream reads
        self._runs.grant(fn.grantee("RunsTable"), *RUNS_ACTIONS)

    def use_idempotency_table(self, fn: GlueFunction) -> None:
        self._idempotency.grant(fn.grantee("IdempotencyTable"), *IDEMPOTENCY_ACTIONS)

    def consume(self, fn: GlueFunction, queue: sqs.IQueue) -> None:
        # grant_consume_messages would add sqs:GetQueueUrl and a second kms:Decrypt on the data key (UseDataKey)
        queue.grant(fn.grantee("ConsumeNewDataQueue"), *QUEUE_CONSUMER_ACTIONS)

    # ---- written out ---------------------------------------------------------------------------------------------
    def invoke_start(self, fn: GlueFunction, start: GlueFunction) -> None:
        # grant_invoke would add "<arn>:*", every version and alias (AwsSolutions-IAM5); we call the function itself
        fn.add_statements(
            iam.PolicyStatement(
                sid="StartTraining", actions=["lambda:InvokeFunction"], resources=[start.function.function_arn]
            )
        )

    def read_champion(self, fn: GlueFunction) -> None:
        # StringParameter.grant_read would add ssm:GetParameters, GetParameterHistory and DescribeParameters
        fn.add_statements(
            iam.PolicyStatement(sid="ReadChampion", actions=["ssm:GetParameter"], resources=self._champion)
        )

    def set_champion(self, fn: GlueFunction) -> None:
        # grant_read as above; grant_write would make two statements of this one (one per parameter)
        fn.add_statements(
            iam.PolicyStatement(
                sid="SetChampion", actions=["ssm:GetParameter", "ssm:PutParameter"], resources=self._champion
            )
        )

    def read_models(self, fn: GlueFunction) -> None:
        # Buckets are found by name, and Bucket.grant_read would add s3:GetObject*, GetBucket*, List* (IAM5)
        fn.add_statements(
            iam.PolicyStatement(
                sid="ReadModelArtifacts",
                actions=["s3:GetObject"],
                resources=[f"{self._models}/{p}*" for p in GLUE_MODEL_PREFIXES],
            )
        )

    def pass_execution_role(self, fn: GlueFunction) -> None:
        # Role.grant_pass_role has no iam:PassedToService condition
        fn.add_statements(
            iam.PolicyStatement(
                sid="PassExecutionRole",
                actions=["iam:PassRole"],
                resources=[
                    f"arn:{self._stack.partition}:iam::{Aws.ACCOUNT_ID}:role/{self.targets.execution_role_name}"
                ],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )

    def deploy_to_endpoint(self, fn: GlueFunction) -> None:
        """Models and endpoint configs with our prefix, onto our endpoint; and describing what it serves."""
        prefix = self.targets.job_prefix
        fn.add_statements(
            iam.PolicyStatement(
                sid="DeployToOurEndpoint",
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DescribeModel",
                    "sagemaker:AddTags",
                ],
                resources=[
                    self._arn("sagemaker", f"endpoint/{self.targets.endpoint_name}"),
                    self._arn("sagemaker", f"endpoint-config/{prefix}-*"),
                    self._arn("sagemaker", f"model/{prefix}-*"),
                ],
            ),
            iam.PolicyStatement(
                sid="DescribeHosting",
                actions=["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
                resources=[self._arn("sagemaker", "endpoint-config/*"), self._arn("sagemaker", "model/*")],
            ),
            unscoped_reasons=DESCRIBE_HOSTING_REASON,
        )

    def start_training_jobs(self, fn: GlueFunction) -> None:
        fn.add_statements(
            iam.PolicyStatement(
                sid="StartOurTrainingJobs",
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:AddTags",
                ],
                resources=self._jobs(),
            )
        )

    def move_incoming_data(self, fn: GlueFunction) -> None:
        """incoming/ -> quarantine/ or train/, by version; the baseline schema as a fallback."""
        data = self._data
        copies = [f"{data}/{c.PREFIX_QUARANTINE}*", f"{data}/{c.PREFIX_TRAIN}*"]
        fn.add_statements(
            iam.PolicyStatement(
                sid="MoveIncomingFiles",
                # Versioned reads and deletes: ingest removes exactly the version it checked, never a newer one.
                actions=[
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "s3:GetObjectTagging",
                    "s3:GetObjectVersionTagging",
                    "s3:DeleteObject",
                    "s3:DeleteObjectVersion",
                ],
                resources=[f"{data}/{c.PREFIX_INCOMING}*"],
            ),
            iam.PolicyStatement(
                sid="WriteQuarantineAndTrain",
                actions=["s3:PutObject", "s3:GetObject", "s3:PutObjectTagging"],
                resources=copies,
            ),
            # A copy that fails verification loses the version it made (lambdas/ingest/logic.py _discard_copy);
            # only a named version, so no delete marker can hide an earlier good file.
            iam.PolicyStatement(sid="DiscardBadCopies", actions=["s3:DeleteObjectVersion"], resources=copies),
            # Without ListBucket S3 answers 403, not 404, for an object an earlier delivery already moved.
            self._list("ListOwnPrefixes", self._data, (c.PREFIX_INCOMING, c.PREFIX_TRAIN, c.PREFIX_QUARANTINE)),
            iam.PolicyStatement(
                sid="ReadFallbackSchema", actions=["s3:GetObject"], resources=[f"{data}/{c.PREFIX_BASELINE}*"]
            ),
        )

    def judge_candidates(self, fn: GlueFunction) -> None:
        """Read finished jobs, write the candidate's metrics beside it, register it, read the rollback alarms."""
        group = self.targets.model_package_group
        fn.add_statements(
            # Without ListBucket S3 answers 403 (AccessDenied), not 404 (NoSuchKey), for a model that is not there.
            self._list("ListModelArtifacts", self._models, GLUE_MODEL_PREFIXES),
            # evaluation.json beside the candidate's model.tar.gz, for the package's ModelMetrics
            iam.PolicyStatement(
                sid="WriteModelMetrics",
                actions=["s3:PutObject"],
                resources=[f"{self._models}/{c.PREFIX_TRAINING_OUTPUT}*"],
            ),
            self._read_rollback_alarms(),
            iam.PolicyStatement(
                sid="RegisterCandidates",
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:UpdateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:ListModelPackages",
                    "sagemaker:AddTags",
                ],
                resources=[
                    self._arn("sagemaker", f"model-package-group/{group}"),
                    self._arn("sagemaker", f"model-package/{group}/*"),
                ],
            ),
            iam.PolicyStatement(
                sid="ReadTrainingJobs",
                actions=["sagemaker:DescribeTrainingJob", "sagemaker:DescribeHyperParameterTuningJob"],
                resources=self._jobs(),
            ),
        )

    def deploy_approved_packages(self, fn: GlueFunction, pair: AccountPair) -> None:
        """Serving account: read the build account's approved packages and their job outputs (the promote role's
        half of each cross-account grant), copy the artifact into models/approved/ here, deploy it guarded."""
        fn.add_statements(
            *(iam.PolicyStatement.from_json(statement) for statement in serving_promote_statements(pair)),
            iam.PolicyStatement(
                sid="CopyApprovedModels", actions=["s3:PutObject"], resources=[f"{self._models}/{c.PREFIX_APPROVED}*"]
            ),
            self._list("ListModelArtifacts", self._models, GLUE_MODEL_PREFIXES),
            self._read_rollback_alarms(),
            unscoped_reasons=CROSS_ACCOUNT_KEY_REASON,
        )

    def read_capture(self, fn: GlueFunction) -> None:
        fn.add_statements(
            iam.PolicyStatement(
                sid="ReadCapture", actions=["s3:GetObject"], resources=[f"{self._data}/{c.PREFIX_CAPTURE}*"]
            ),
            self._list("ListCapture", self._data, (c.PREFIX_CAPTURE,)),
        )

    def _read_rollback_alarms(self) -> iam.PolicyStatement:
        """UpdateEndpoint with AutoRollbackConfiguration reads the alarms it names."""
        stack = self._stack
        return iam.PolicyStatement(
            sid="ReadRollbackAlarms",
            actions=["cloudwatch:DescribeAlarms"],
            resources=[
                f"arn:{stack.partition}:cloudwatch:{stack.region}:{Aws.ACCOUNT_ID}:alarm:{name}"
                for name in self.targets.rollback_alarm_names
            ],
        )

    def _jobs(self) -> list[str]:
        prefix = self.targets.job_prefix
        return [
            self._arn("sagemaker", f"training-job/{prefix}-*"),
            self._arn("sagemaker", f"hyper-parameter-tuning-job/{prefix}-*"),
        ]

    @staticmethod
    def _list(sid: str, bucket: str, prefixes: Sequence[str]) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=sid,
            actions=["s3:ListBucket"],
            resources=[bucket],
            conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
        )
