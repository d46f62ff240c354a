"""One model's job queue (SQS), with the dead-letter queue its failed messages end in."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from stacks.schema import AsyncConfig

# SQS's longest retention: a failed job stays inspectable for two weeks. AWS advises a
# dead-letter queue retention longer than the source queue's, since a message keeps its
# original enqueue time when it is moved.
DEAD_LETTER_RETENTION_S = 14 * 24 * 3600
# SQS's default; a job no function took in four days is not going to be wanted.
QUEUE_RETENTION_S = 4 * 24 * 3600


@dataclass
class JobQueueArgs:
    # The queues are named after the function that polls them.
    function_name: str
    config: AsyncConfig
    function_timeout_s: int
    # A KMS key id, ARN or alias for SSE-KMS; None: SQS-managed encryption (SSE-SQS).
    kms_key_id: str | None = None


class JobQueue(pulumi.ComponentResource):
    queue: aws.sqs.Queue
    dead_letter: aws.sqs.Queue

    def __init__(
        self, name: str, args: JobQueueArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("inferstack:index:JobQueue", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kms = args.kms_key_id
        # The provider refuses sqs_managed_sse_enabled beside kms_master_key_id: one of
        # them is sent (None is not).
        sqs_managed = True if kms is None else None
        self.dead_letter = aws.sqs.Queue(
            f"{name}-dlq",
            name=f"{args.function_name}-dlq",
            message_retention_seconds=DEAD_LETTER_RETENTION_S,
            sqs_managed_sse_enabled=sqs_managed,
            kms_master_key_id=kms,
            opts=child,
        )
        redrive = pulumi.Output.json_dumps(
            # maxReceiveCount must be a number in the policy, not a string.
            {
                "deadLetterTargetArn": self.dead_letter.arn,
                "maxReceiveCount": args.config.max_receives,
            }
        )
        self.queue = aws.sqs.Queue(
            f"{name}-jobs",
            name=f"{args.function_name}-jobs",
            visibility_timeout_seconds=args.config.visibility_timeout_s(args.function_timeout_s),
            message_retention_seconds=QUEUE_RETENTION_S,
            redrive_policy=redrive,
            sqs_managed_sse_enabled=sqs_managed,
            kms_master_key_id=kms,
            opts=child,
        )
        self.register_outputs(
            {"queue_url": self.queue.url, "dead_letter_queue_url": self.dead_letter.url}
        )
