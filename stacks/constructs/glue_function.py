"""One retraining-glue Lambda: its own role and policy, encrypted logs, tracing, bounded concurrency, a DLQ."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jsii
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


class GluePolicyError(ValueError):
    """A statement the glue policy refuses at synth; `code` says which rule it broke.

    The message starts with the code: raised inside a CDK grant method, the error crosses jsii as a RuntimeError
    that keeps only the message.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code  # "on-star" | "no-sid" | "wide-grant" | "unreasoned-wildcard"


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


@dataclass(frozen=True)
class GlueRuntime:
    """What every glue function of a stage shares: the code bundle, the layer, the keys, the operators' topic."""

    code: lambda_.Code
    layer: lambda_.ILayerVersion
    log_key: kms.IKey  # the function's log group
    dlq_key: kms.IKey  # the function's dead-letter queue
    environment_key: kms.IKey  # the function's environment variables
    metric_namespace: str  # the one namespace PutMetricData is allowed on
    topic: sns.ITopic  # where the dead-letter alarm notifies
    log_retention_days: int


class GlueFunction(Construct):
    """A thin handler over plain logic (lambdas/<key>/handler.py), wired the same way for every function.

    The role takes no automatic grants from CDK (`without_policy_updates`): every permission the function
    has is written out in its own customer-managed policy, reviewable in one place, by statement id. Callers
    add to it with CDK's grant methods (`key.grant(fn.grantee("UseDataKey"), ...)`) or `add_statements`. The
    actions that support no resource-level permissions (X-Ray, PutMetricData on our namespace) sit in a second
    policy of their own, and only that policy's `*` is acknowledged: a statement on `*` is refused at synth.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_name: str,
        handler_module: str,
        description: str,
        runtime: GlueRuntime,
        environment: Mapping[str, str],
        timeout: Duration = DEFAULT_TIMEOUT,
        memory_mb: int = 512,
        reserved_concurrency: int = 2,
        async_retries: int = 2,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.function_name = function_name
        self._sids: set[str] = set()
        log_key, dlq_key = runtime.log_key, runtime.dlq_key
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            encryption_key=log_key,
            retention=retention(runtime.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.dead_letters = encrypted_queue(
            self, "DeadLetters", key=dlq_key, topic=runtime.topic, purpose=f"the {function_name} function"
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
            ],
        )
        self._sids |= {"WriteOwnLogs", "DeadLetter", "DeadLetterKey"}
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
                    conditions={"StringEquals": {"cloudwatch:namespace": runtime.metric_namespace}},
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
            code=runtime.code,
            layers=[runtime.layer],
            role=self.role.without_policy_updates(),
            timeout=timeout,
            memory_size=memory_mb,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment=dict(environment),
            environment_encryption=runtime.environment_key,
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
        acknowledge(
            self.function.node.find_child("EventInvokeConfig").node.default_child,
            "Serverless-LambdaAsyncFailureDestination",
            "Failed asynchronous invocations already go to the function's KMS-encrypted dead-letter queue (which "
            "HIPAA and NIST require); an on-failure destination would deliver every failure twice.",
        )
        exempt(self.function, "lambda-outside-vpc", OUTSIDE_VPC_REASON)

    def grantee(self, sid: str) -> iam.IGrantable:
        """This function as the grantee of one CDK grant, whose statement lands in its policy named `sid`.

        A grant that also grants on a KMS key (a topic's, a queue's) adds that statement as `<sid>Key`.
        """
        return _NamedGrantee(self, sid)

    def add_statements(
        self, *statements: iam.PolicyStatement, unscoped_reasons: Mapping[str, str] | None = None
    ) -> None:
        """Statements CDK has no grant method for, or whose grant method would grant more than the code calls.

        Every statement needs its own sid; a resource that is a name prefix (`<prefix>*`) is acknowledged for
        AwsSolutions-IAM5 with the prefix; any other wildcard needs its reason in `unscoped_reasons`, by sid.
        """
        for statement in statements:
            self._add(statement)
        self._acknowledge_scoped_wildcards(statements, unscoped_reasons or {})

    def _add(self, statement: iam.PolicyStatement) -> None:
        sid = statement.sid
        if not sid or sid in self._sids:
            raise GluePolicyError(
                "no-sid", f"{self.function_name}: every statement needs a sid of its own, got {sid!r}"
            )
        resources = statement.to_statement_json().get("Resource", [])
        if "*" in (resources if isinstance(resources, list) else [resources]):
            raise GluePolicyError(
                "on-star",
                f"{self.function_name}: statement {sid} is on '*'; scope it to its resources "
                f"(only {', '.join(UNSCOPED_ACTIONS)} may be unscoped, and GlueFunction adds those itself)",
            )
        self._sids.add(sid)
        self.policy.add_statements(statement)

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
                        raise GluePolicyError(
                            "unreasoned-wildcard", f"{sid}: {scope} is not a name prefix; give its specific reason"
                        )
                    reason = f"{sid}: {unscoped_reasons[sid]}"
                else:
                    kind = "objects under the prefix" if ":s3:::" in resource else "SageMaker resources named"
                    reason = (
                        f"{sid}: only {kind} {scope!r}, which this project owns; names are made per run, "
                        "so they cannot be listed ahead of time."
                    )
                acknowledge(cfn_policy, f"AwsSolutions-IAM5[Resource::{shown}]", reason)


@jsii.implements(iam.IPrincipal)
class _NamedGrantee:
    """A glue function's role as CDK's grant methods see it, for one grant.

    CDK would put a grant's statement in the role's default inline policy; this puts it in the function's own
    managed policy instead, with a statement id, so that every permission is reviewable by name in one place.
    A grant whose statement has a wildcard resource is refused: a grant method that widens is written out.
    """

    def __init__(self, glue: GlueFunction, sid: str) -> None:
        self._glue = glue
        self._sid = sid
        self._added = 0

    @property
    def grant_principal(self) -> iam.IPrincipal:
        return self

    @property
    def assume_role_action(self) -> str:
        return self._glue.role.assume_role_action

    @property
    def policy_fragment(self) -> iam.PrincipalPolicyFragment:
        return self._glue.role.policy_fragment

    @property
    def principal_account(self) -> str | None:
        # The role's own account, so that a grant on a resource of this account stays in the role's policy.
        return self._glue.role.principal_account

    def add_to_principal_policy(self, statement: iam.PolicyStatement) -> iam.AddToPrincipalPolicyResult:
        doc = statement.to_statement_json()
        actions = doc.get("Action", [])
        on_key = all(str(a).startswith("kms:") for a in (actions if isinstance(actions, list) else [actions]))
        sid = f"{self._sid}Key" if self._added and on_key else self._sid
        name = self._glue.function_name
        if self._added > 1 or (self._added and not on_key):
            raise GluePolicyError("wide-grant", f"{name}: the grant named {self._sid} adds more than one statement")
        if "*" in json.dumps(Stack.of(self._glue).resolve(doc.get("Resource"))):
            raise GluePolicyError("wide-grant", f"{name}: the grant named {self._sid} has a wildcard resource")
        self._glue._add(statement.copy(sid=sid))
        self._added += 1
        return iam.AddToPrincipalPolicyResult(statement_added=True, policy_dependable=self._glue.policy)
