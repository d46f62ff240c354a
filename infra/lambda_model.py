"""One model served by one Lambda function, behind a published version and a `live` alias;
with jobs, the alias also polls the model's queue, and with batches S3 may invoke it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from functions import HANDLER
from infra import policies
from infra.bundles import CodeBucket, Zip
from infra.job_queue import JobQueue
from layers.budget import DEFAULT_TMP_BYTES
from model_runtime.versions.label import VersionLabel
from stacks.schema import AsyncConfig, CanaryConfig, LambdaConfig

ALIAS = "live"


@dataclass
class S3Model:
    """The model is downloaded from `uri` at cold start; the role may read `key_prefix` only."""

    bucket_arn: pulumi.Input[str]
    key_prefix: str
    uri: pulumi.Input[str]
    kms_key_arn: str | None = None


@dataclass
class Batches:
    """JSONL files under `<prefix>/in/` in the data bucket, run `chunk_lines` at a time."""

    prefix: str
    chunk_lines: int


@dataclass
class Jobs:
    """The model's jobs: its queue, and its prefix of the stack's data bucket (the role may
    touch only that, and the batch prefix)."""

    config: AsyncConfig
    queue: JobQueue
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    prefix: str
    batches: Batches | None = None
    # The stack's KMS key, when the bucket and queue are encrypted with it.
    kms_key_arn: str | None = None


@dataclass
class LambdaModelArgs:
    function_name: str
    config: LambdaConfig
    code: Zip
    runtime_layer_arn: pulumi.Input[str]
    # A layer zip mounted under /opt (env MODEL_DIR), or an S3 location (env MODEL_URI).
    model: Zip | S3Model
    model_dir: str
    log_retention_days: int
    # Where zips over Lambda's direct-upload limit are uploaded first.
    code_bucket: CodeBucket
    # What every version this deploy publishes says it serves (its description).
    label: VersionLabel | None = None
    environment: dict[str, str] = field(default_factory=dict)
    jobs: Jobs | None = None
    canary: CanaryConfig | None = None
    # /tmp, as packaging sized it (infra.bundles: the stack's value, or from the artifact).
    ephemeral_storage_mb: int = DEFAULT_TMP_BYTES // 1_048_576
    # CodeDeploy moves `live` (infra/alias_deployments.py): a deploy only publishes.
    codedeploy_moves_alias: bool = False


class LambdaModel(pulumi.ComponentResource):
    function: aws.lambda_.Function
    alias: aws.lambda_.Alias
    log_group: aws.cloudwatch.LogGroup
    role: aws.iam.Role
    provisioned: aws.lambda_.ProvisionedConcurrencyConfig | None
    jobs: Jobs | None
    # What lets the data bucket invoke the alias (with batches).
    s3_permission: aws.lambda_.Permission | None

    def __init__(
        self, name: str, args: LambdaModelArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("inferstack:index:LambdaModel", name, None, opts)
        self._name = name
        config = args.config
        # Named like Lambda's default group, and created first, so the function never
        # creates an unmanaged group without retention.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{args.function_name}",
            retention_in_days=args.log_retention_days,
            opts=self._child(),
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=policies.service_trust("lambda.amazonaws.com"),
            opts=self._child(),
        )
        role_policy = self._create_role_policy(args.model, args.jobs)
        layers = [args.runtime_layer_arn]
        environment: dict[str, pulumi.Input[str]] = dict(args.environment)
        if args.jobs is not None:
            environment.update(_jobs_environment(args.jobs))
        if isinstance(args.model, S3Model):
            environment["MODEL_URI"] = args.model.uri
        else:
            layers.append(self._create_model_layer(args, args.model).arn)
            environment["MODEL_DIR"] = args.model_dir
        code = args.code_bucket.source(args.code)
        self.function = aws.lambda_.Function(
            name,
            name=args.function_name,
            role=self.role.arn,
            runtime=config.runtime,
            handler=HANDLER,
            code=code.code,
            s3_bucket=code.s3_bucket,
            s3_key=code.s3_key,
            layers=layers,
            architectures=[config.architecture],
            memory_size=config.memory_mb,
            timeout=config.timeout_s,
            ephemeral_storage=aws.lambda_.FunctionEphemeralStorageArgs(
                size=args.ephemeral_storage_mb
            ),
            reserved_concurrent_executions=config.reserved_concurrency,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
            # Lambda copies the description into each version it publishes: the label.
            description=args.label.description() if args.label is not None else None,
            # Every change publishes a new version; the alias moves to it.
            publish=True,
            opts=self._child(depends_on=[self.log_group, role_policy]),
        )
        self._create_versions_policy()
        self.alias = self._create_alias(args.canary, args.codedeploy_moves_alias)
        self.provisioned = self._create_provisioned_concurrency(config)
        self.jobs = args.jobs
        self.s3_permission = None
        if args.jobs is not None:
            self._create_queue_mapping(args.jobs, role_policy)
            if args.jobs.batches is not None:
                self.s3_permission = self._create_s3_permission(args.jobs.bucket_arn)
        self.register_outputs(
            {
                "function_name": self.function.name,
                "alias_arn": self.alias.arn,
                "log_group": self.log_group.name,
            }
        )

    def _create_alias(self, canary: CanaryConfig | None, codedeploy: bool) -> aws.lambda_.Alias:
        """`live` on the version this deploy published; with a canary, on the canary's
        `live_version`, weighted towards the new one (none when the deploy published
        nothing new: a version cannot weigh against itself). When CodeDeploy moves it, on
        the first version only: later versions and weights are CodeDeploy's, and a
        deploy that set them would undo its deployments and rollbacks."""
        if canary is None:
            ignored = ["functionVersion", "routingConfig"] if codedeploy else None
            return aws.lambda_.Alias(
                f"{self._name}-{ALIAS}",
                name=ALIAS,
                function_name=self.function.name,
                function_version=self.function.version,
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignored),
            )
        live = str(canary.live_version)

        def weights(new: str) -> aws.lambda_.AliasRoutingConfigArgs | None:
            if new == live:
                return None
            return aws.lambda_.AliasRoutingConfigArgs(
                additional_version_weights={new: canary.weight / 100}
            )

        return aws.lambda_.Alias(
            f"{self._name}-{ALIAS}",
            name=ALIAS,
            function_name=self.function.name,
            function_version=live,
            routing_config=self.function.version.apply(weights),
            opts=self._child(),
        )

    def _create_versions_policy(self) -> aws.iam.RolePolicy:
        """`/v2/models/{m}/versions/{v}/...` reaches the `live` alias; the function finds
        the published version labelled `v` and invokes it (model_runtime.versions)."""
        qualified = pulumi.Output.concat(self.function.arn, ":*")
        return aws.iam.RolePolicy(
            f"{self._name}-versions-policy",
            role=self.role.id,
            policy=policies.document(
                policies.allow(["lambda:ListVersionsByFunction"], [self.function.arn]),
                policies.allow(["lambda:InvokeFunction"], [qualified]),
            ),
            opts=self._child(),
        )

    def _child(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

    def _create_role_policy(self, model: Zip | S3Model, jobs: Jobs | None) -> aws.iam.RolePolicy:
        statements = [policies.write_log_group(self.log_group.arn)]
        # The stack's one KMS key: read for an S3-delivered model; read and write (new
        # data keys) for the data bucket and the queue.
        kms_key, kms_actions = None, []
        if isinstance(model, S3Model):
            statements.append(policies.read_prefix(model.bucket_arn, model.key_prefix))
            if model.kms_key_arn is not None:
                kms_key, kms_actions = model.kms_key_arn, ["kms:Decrypt"]
        if jobs is not None:
            statements += _jobs_statements(jobs)
            if jobs.kms_key_arn is not None:
                kms_key, kms_actions = jobs.kms_key_arn, ["kms:Decrypt", "kms:GenerateDataKey"]
        if kms_key is not None:
            statements.append(policies.allow(kms_actions, [kms_key]))
        return aws.iam.RolePolicy(
            f"{self._name}-policy",
            role=self.role.id,
            policy=policies.document(*statements),
            opts=self._child(),
        )

    def _create_model_layer(self, args: LambdaModelArgs, zip_: Zip) -> aws.lambda_.LayerVersion:
        code = args.code_bucket.source(zip_)
        return aws.lambda_.LayerVersion(
            f"{self._name}-model",
            layer_name=f"{args.function_name}-model",
            code=code.code,
            s3_bucket=code.s3_bucket,
            s3_key=code.s3_key,
            compatible_runtimes=[args.config.runtime],
            compatible_architectures=[args.config.architecture],
            opts=self._child(),
        )

    def _create_provisioned_concurrency(
        self, config: LambdaConfig
    ) -> aws.lambda_.ProvisionedConcurrencyConfig | None:
        if config.provisioned is None:
            return None
        # Under autoscaling the amount moves at run time; the declared value is the floor
        # to start from, and later deploys must not reset it.
        ignore = ["provisioned_concurrent_executions"] if config.provisioned.autoscaled else None
        return aws.lambda_.ProvisionedConcurrencyConfig(
            f"{self._name}-provisioned",
            function_name=self.function.name,
            qualifier=self.alias.name,
            provisioned_concurrent_executions=config.provisioned.min,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore),
        )

    def _create_queue_mapping(
        self, jobs: Jobs, role_policy: aws.iam.RolePolicy
    ) -> aws.lambda_.EventSourceMapping:
        config = jobs.config
        scaling = (
            None
            if config.max_concurrency is None
            else aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=config.max_concurrency
            )
        )
        return aws.lambda_.EventSourceMapping(
            f"{self._name}-jobs-mapping",
            event_source_arn=jobs.queue.queue.arn,
            # The alias, like the API: a deploy moves both to the new version at once.
            function_name=self.alias.arn,
            batch_size=config.batch_size,
            maximum_batching_window_in_seconds=config.max_batching_window_s,
            # The handler returns the messages that failed; the others are deleted.
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=scaling,
            # Lambda checks the role's SQS permissions when the mapping is created.
            opts=self._child(depends_on=[role_policy]),
        )

    def _create_s3_permission(self, bucket_arn: pulumi.Input[str]) -> aws.lambda_.Permission:
        # Bucket ARNs carry no account: source_account keeps another account's bucket of
        # the same name from invoking the function (the confused-deputy case).
        account = self.function.arn.apply(lambda arn: arn.split(":")[4])
        return aws.lambda_.Permission(
            f"{self._name}-batch-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            qualifier=self.alias.name,
            principal="s3.amazonaws.com",
            source_arn=bucket_arn,
            source_account=account,
            opts=self._child(),
        )


def _jobs_environment(jobs: Jobs) -> dict[str, pulumi.Input[str]]:
    """What the runtime reads to find its jobs (model_runtime/events/settings.py)."""
    environment: dict[str, pulumi.Input[str]] = {
        "INFERSTACK_JOBS_BUCKET": jobs.bucket_name,
        "INFERSTACK_JOBS_PREFIX": jobs.prefix,
        "INFERSTACK_JOBS_QUEUE_URL": jobs.queue.queue.url,
        "INFERSTACK_JOBS_MAX_RECEIVES": str(jobs.config.max_receives),
    }
    if jobs.batches is not None:
        environment["INFERSTACK_BATCH_PREFIX"] = jobs.batches.prefix
        environment["INFERSTACK_BATCH_CHUNK_LINES"] = str(jobs.batches.chunk_lines)
    return environment


def _jobs_statements(jobs: Jobs) -> list[policies.Statement]:
    """The queue, and the model's own prefixes of the data bucket: nothing of another model."""
    bucket = jobs.bucket_arn
    statements = [
        policies.work_queue(jobs.queue.queue.arn),
        policies.read_write_prefix(bucket, jobs.prefix),
    ]
    # Listed: the last chunk worker lists the run's finished chunks in work/; and a job id,
    # an input_uri or a summary that is not there yet must read as missing (404), not as
    # access denied (403).
    listed = [jobs.prefix]
    if jobs.batches is not None:
        prefix = jobs.batches.prefix
        statements += [
            # Inputs are the user's: read, never written.
            policies.read_prefix(bucket, f"{prefix}/in"),
            policies.read_write_prefix(bucket, f"{prefix}/work"),
            policies.read_write_prefix(bucket, f"{prefix}/out"),
        ]
        listed += [f"{prefix}/in", f"{prefix}/work", f"{prefix}/out"]
    statements.append(policies.list_prefixes(bucket, listed))
    return statements
