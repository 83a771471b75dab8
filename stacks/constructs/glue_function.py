"""One retraining-glue Lambda: its own role and policy, encrypted logs, tracing, bounded concurrency, a DLQ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.retention import retention
from stacks.nag import acknowledge, exempt
from stacks.naming import keep_depends_on

RUNTIME = lambda_.Runtime.PYTHON_3_14  # the latest Python runtime this CDK release knows
ARCHITECTURE = lambda_.Architecture.ARM_64
DEFAULT_TIMEOUT = Duration.seconds(60)

# Why the glue functions run outside the VPC, for cdk-nag and for the scanners that read cdk.out.
OUTSIDE_VPC_REASON = (
    "Outside the VPC on purpose: the glue functions call only AWS APIs (S3, DynamoDB, SageMaker, SSM, SNS, SQS, "
    "Lambda, CloudWatch) over TLS with IAM auth and touch no resource inside the VPC; in the isolated VPC they "
    "would need interface endpoints for every one of those services and gain nothing to protect."
)
UNSCOPED_ACTIONS = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "cloudwatch:PutMetricData",
)  # actions that support no resource-level permissions: the only ones allowed on "*"


def encrypted_queue(
    scope: Construct, construct_id: str, *, key: kms.IKey, topic: sns.ITopic, purpose: str, **kwargs: object
) -> sqs.Queue:
    """A KMS-encrypted, TLS-only dead-letter queue that alarms as soon as anything lands in it."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=Duration.days(14),
        **kwargs,  # type: ignore[arg-type]
    )
    for rule in ("AwsSolutions-SQS3", "Serverless-SQSRedrivePolicy"):
        acknowledge(queue.node.default_child, rule, f"This queue is itself the dead-letter queue of {purpose}.")
    alarm = queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum")
    alarm.create_alarm(
        scope,
        f"{construct_id}NotEmpty",
        alarm_description=f"Messages are waiting in the dead-letter queue of {purpose}: look, fix, redrive.",
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    ).add_alarm_action(actions.SnsAction(topic))
    return queue


class GlueFunction(Construct):
    """A thin handler over plain logic (lambdas/<key>/handler.py), wired the same way for every function.

    The role takes no automatic grants from CDK (`without_policy_updates`): every permission the function
    has is written out in its own customer-managed policy, reviewable in one place. The actions that support
    no resource-level permissions (X-Ray, PutMetricData on our namespace) sit in a second policy of their own,
    and only that policy's `*` is acknowledged: a statement on `*` in `statements` is refused at synth.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_name: str,
        handler_module: str,
        description: str,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        environment: Mapping[str, str],
        statements: Sequence[iam.PolicyStatement],
        unscoped_reasons: Mapping[str, str] | None = None,
        log_key: kms.IKey,
        dlq_key: kms.IKey,
        environment_key: kms.IKey,
        metric_namespace: str,
        topic: sns.ITopic,
        log_retention_days: int,
        timeout: Duration = DEFAULT_TIMEOUT,
        memory_mb: int = 512,
        reserved_concurrency: int = 2,
        async_retries: int = 2,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        for statement in statements:
            resources = statement.to_statement_json().get("Resource", [])
            if "*" in (resources if isinstance(resources, list) else [resources]):
                raise ValueError(
                    f"{function_name}: statement {statement.sid or '(no sid)'} is on '*'; scope it to its resources "
                    f"(only {', '.join(UNSCOPED_ACTIONS)} may be unscoped, and GlueFunction adds those itself)"
                )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            encryption_key=log_key,
            retention=retention(log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.dead_letters = encrypted_queue(
            self, "DeadLetters", key=dlq_key, topic=topic, purpose=f"the {function_name} function"
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=function_name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs the {function_name} function",
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="WriteOwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[f"{self.log_group.log_group_arn}:log-stream:*", self.log_group.log_group_arn],
                ),
                iam.PolicyStatement(
                    sid="DeadLetter", actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn]
                ),
                iam.PolicyStatement(
                    sid="DeadLetterKey",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[dlq_key.key_arn],
                ),
                *statements,
            ],
        )
        # X-Ray and PutMetricData support no resource-level permissions: a policy of their own, nothing else in it.
        self.unscoped_policy = iam.ManagedPolicy(
            self,
            "UnscopedPolicy",
            roles=[self.role],
            description=f"{function_name}: the actions that support no resource-level permissions, and only those",
            statements=[
                iam.PolicyStatement(
                    sid="Trace",
                    actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="PublishMetrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={"StringEquals": {"cloudwatch:namespace": metric_namespace}},
                ),
            ],
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"{handler_module}.handler",
            code=code,
            layers=[layer],
            role=self.role.without_policy_updates(),
            timeout=timeout,
            memory_size=memory_mb,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment=dict(environment),
            environment_encryption=environment_key,
            dead_letter_queue=self.dead_letters,
            retry_attempts=async_retries,
            max_event_age=Duration.hours(6),
        )
        # The function needs its managed policies in place before it runs; the role is ordered by GetAtt already.
        keep_depends_on(
            self.function.node.default_child, self.policy.node.default_child, self.unscoped_policy.node.default_child
        )
        cfn_policy = self.policy.node.default_child
        acknowledge(
            self.unscoped_policy.node.default_child,
            "AwsSolutions-IAM5[Resource::*]",
            "This policy holds only X-Ray's PutTraceSegments/PutTelemetryRecords and cloudwatch:PutMetricData "
            "(conditioned on our namespace), which support no resource-level permissions.",
        )
        acknowledge(
            cfn_policy,
            f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(self.log_group.node.default_child)}.Arn>"  # type: ignore[arg-type]
            ":log-stream:*]",
            "Lambda names its log streams at run time, inside this function's own log group.",
        )
        self._acknowledge_scoped_wildcards(statements, unscoped_reasons or {})
        acknowledge(
            self.function.node.find_child("EventInvokeConfig").node.default_child,
            "Serverless-LambdaAsyncFailureDestination",
            "Failed asynchronous invocations already go to the function's KMS-encrypted dead-letter queue (which "
            "HIPAA and NIST require); an on-failure destination would deliver every failure twice.",
        )
        exempt(self.function, "lambda-outside-vpc", OUTSIDE_VPC_REASON)

    def _acknowledge_scoped_wildcards(
        self, statements: Sequence[iam.PolicyStatement], unscoped_reasons: Mapping[str, str]
    ) -> None:
        """Each ARN that ends in a wildcard is scoped to one prefix we own; say which, finding by finding.

        A wildcard that is not a name prefix (`endpoint-config/*`) needs its own reason, by statement sid.
        """
        cfn_policy = self.policy.node.default_child
        for statement in statements:
            doc = statement.to_statement_json()
            resources = doc.get("Resource", [])
            for resource in resources if isinstance(resources, list) else [resources]:
                if not isinstance(resource, str) or "*" not in resource or resource == "*":
                    continue
                shown = resource.replace(Aws.ACCOUNT_ID, "<AWS::AccountId>")
                scope = resource.split(":::", 1)[-1] if ":s3:::" in resource else resource.rsplit(":", 1)[-1]
                sid = statement.sid or "(no sid)"
                if scope.endswith("/*") and "/" not in scope[:-2] and ":s3:::" not in resource:
                    if sid not in unscoped_reasons:
                        raise ValueError(f"{sid}: {scope} is not a name prefix; give its specific reason")
                    reason = f"{sid}: {unscoped_reasons[sid]}"
                else:
                    kind = "objects under the prefix" if ":s3:::" in resource else "SageMaker resources named"
                    reason = (
                        f"{sid}: only {kind} {scope!r}, which this project owns; names are made per run, "
                        "so they cannot be listed ahead of time."
                    )
                acknowledge(cfn_policy, f"AwsSolutions-IAM5[Resource::{shown}]", reason)
