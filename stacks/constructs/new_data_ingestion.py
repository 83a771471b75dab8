"""New data in: objects created under incoming/ reach the ingest function through a debouncing, encrypted queue.

data bucket incoming/ --EventBridge rule--> queue (batching window) --event-source mapping--> ingest
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.glue_function import GlueFunction, encrypted_queue
from stacks.nag import acknowledge

RULE_RETRY_ATTEMPTS = 8  # the same for every rule of the retraining glue (stacks/constructs/retraining_routes.py)


class NewDataIngestion(Construct):
    """`rule` (the pattern), `queue` (the debounce) and `dead_letters` (what ingest failed five times).

    The consumer's permissions are the caller's to grant (`GlueAccess.consume`): the function's role takes no
    automatic grant, so the event-source mapping's own grant does not land.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pattern: events.EventPattern,
        ingest: GlueFunction,
        debounce_seconds: int,
        key: kms.IKey,
        topic: sns.ITopic,
        rule_dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = encrypted_queue(self, "DeadLetters", key=key, topic=topic, purpose="the new-data queue")
        # Encrypted, TLS-only; visibility covers six ingest timeouts, as Lambda advises for SQS sources.
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            visibility_timeout=Duration.minutes(30),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=5),
        )
        self.rule = events.Rule(
            self, "Rule", description="Objects created under incoming/ in the data bucket", event_pattern=pattern
        )
        self.rule.add_target(
            targets.SqsQueue(self.queue, dead_letter_queue=rule_dead_letters, retry_attempts=RULE_RETRY_ATTEMPTS)
        )
        self.source = sources.SqsEventSource(
            self.queue,
            batch_size=100,
            max_batching_window=Duration.seconds(debounce_seconds),
            report_batch_item_failures=True,
            max_concurrency=2,
        )
        ingest.function.add_event_source(self.source)
        (mapping,) = [ch for ch in ingest.function.node.children if ch.node.id.startswith("SqsEventSource")]
        acknowledge(
            mapping.node.default_child,
            "Serverless-LambdaEventSourceMappingDestination",
            "SQS event sources take no on-failure destination; a message that fails five times moves to the "
            "queue's own KMS-encrypted dead-letter queue, which alarms when not empty.",
        )
