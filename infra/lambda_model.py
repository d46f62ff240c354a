"""One model served by one Lambda function, behind a published version and a `live` alias."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from functions import HANDLER
from infra import policies
from infra.bundles import CodeBucket, Zip
from stacks.schema import LambdaConfig

ALIAS = "live"


@dataclass
class S3Model:
    """The model is downloaded from `uri` at cold start; the role may read `key_prefix` only."""

    bucket_arn: pulumi.Input[str]
    key_prefix: str
    uri: pulumi.Input[str]
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
    environment: dict[str, str] = field(default_factory=dict)


class LambdaModel(pulumi.ComponentResource):
    function: aws.lambda_.Function
    alias: aws.lambda_.Alias
    log_group: aws.cloudwatch.LogGroup
    role: aws.iam.Role
    provisioned: aws.lambda_.ProvisionedConcurrencyConfig | None

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
        role_policy = self._create_role_policy(args.model)
        layers = [args.runtime_layer_arn]
        environment: dict[str, pulumi.Input[str]] = dict(args.environment)
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
                size=config.ephemeral_storage_mb
            ),
            reserved_concurrent_executions=config.reserved_concurrency,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
            # Every change publishes a new version; the alias moves to it.
            publish=True,
            opts=self._child(depends_on=[self.log_group, role_policy]),
        )
        self.alias = aws.lambda_.Alias(
            f"{name}-{ALIAS}",
            name=ALIAS,
            function_name=self.function.name,
            function_version=self.function.version,
            opts=self._child(),
        )
        self.provisioned = self._create_provisioned_concurrency(config)
        self.register_outputs(
            {
                "function_name": self.function.name,
                "alias_arn": self.alias.arn,
                "log_group": self.log_group.name,
            }
        )

    def _child(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

    def _create_role_policy(self, model: Zip | S3Model) -> aws.iam.RolePolicy:
        statements = [policies.write_log_group(self.log_group.arn)]
        if isinstance(model, S3Model):
            statements.append(policies.read_prefix(model.bucket_arn, model.key_prefix))
            if model.kms_key_arn is not None:
                statements.append(policies.allow(["kms:Decrypt"], [model.kms_key_arn]))
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
