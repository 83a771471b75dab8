"""How a registry approval in the build account reaches the serving account (docs/two-accounts.md).

Build account: `ApprovalForwarding`, a rule on its default bus for this stage's model package group's
Approved and Rejected state changes, whose target is the serving account's approvals bus (through a role
that may put events on that one bus only).
Serving account: `ApprovalsBus`, a bus whose policy accepts exactly the build account's registry state
changes, and a rule on it that hands them to the promote function (which checks account, group and prefix
again, and describes the package before it deploys anything).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from contract.names import approvals_bus_name
from stacks.cross_account_policies import DETAIL_MODEL_PACKAGE, AccountPair, approvals_bus_statement

FORWARDED_STATUSES = ["Approved", "Rejected"]


def _package_pattern(pair: AccountPair, *, account: str | None = None) -> events.EventPattern:
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[DETAIL_MODEL_PACKAGE],
        account=[account] if account else None,
        detail={"ModelPackageGroupName": [pair.group], "ModelApprovalStatus": FORWARDED_STATUSES},
    )


class ApprovalForwarding(Construct):
    """Build account: this group's approvals go to the serving account's approvals bus."""

    def __init__(self, scope: Construct, construct_id: str, *, pair: AccountPair, dead_letters: sqs.IQueue) -> None:
        super().__init__(scope, construct_id)
        bus = events.EventBus.from_event_bus_arn(self, "ServingBus", pair.approvals_bus_arn)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description="Puts this registry's approvals on the serving account's approvals bus",
        )
        # A managed policy, not the role's inline default policy (HIPAA/NIST IAMNoInlinePolicy).
        iam.ManagedPolicy(
            self,
            "Policy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="PutOnServingApprovalsBus", actions=["events:PutEvents"], resources=[pair.approvals_bus_arn]
                )
            ],
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description="Registry approvals and rejections of this stage's group, to the serving account",
            event_pattern=_package_pattern(pair),
            # The target would add the same statement inline; the managed policy above already holds it.
            targets=[targets.EventBus(bus, role=self.role.without_policy_updates(), dead_letter_queue=dead_letters)],
        )


class ApprovalsBus(Construct):
    """Serving account: the bus the build account's approvals arrive on, and the route to promote."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pair: AccountPair,
        promote: lambda_.IFunction,
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=approvals_bus_name(pair.app, pair.stage))
        statement = approvals_bus_statement(pair)
        self.policy = events.CfnEventBusPolicy(
            self,
            "Policy",
            event_bus_name=self.bus.event_bus_name,
            statement_id=statement["Sid"],
            statement={k: v for k, v in statement.items() if k != "Sid"},
        )
        self.rule = events.Rule(
            self,
            "Rule",
            event_bus=self.bus,
            description="The build account's registry approvals, to the promote function",
            event_pattern=_package_pattern(pair, account=pair.build_account),
            targets=[
                targets.LambdaFunction(
                    promote,
                    dead_letter_queue=dead_letters,
                    retry_attempts=8,
                    max_event_age=Duration.hours(24),
                )
            ],
        )
