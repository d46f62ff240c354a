"""Jobs and batches: the data bucket, each model's queues, the event source mapping, S3's
notification and permission, and what the function is told, under Pulumi's mock runtime
(`pulumi.runtime.set_mocks`, through `infra.evaluate`).

local has jobs and batches on `digits` (SSE-SQS, AES256), prod on `digits-int8` (KMS:
AWS's managed keys, a batching window and a maximum concurrency), dev none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from infra.evaluate import ACCOUNT_ID, Evaluation, Registered
from infra.stack_loader import load_stack
from stacks.schema import (
    ArtifactStoreConfig,
    AsyncConfig,
    BatchConfig,
    LambdaConfig,
    ModelConfig,
    StackConfig,
)

QUEUE = "aws:sqs/queue:Queue"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
PERMISSION = "aws:lambda/permission:Permission"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def data_bucket(stack: Evaluation) -> Registered:
    (bucket,) = [
        b
        for b in stack.of_type("aws:s3/bucket:Bucket")
        if b.name == f"inferstack-{stack.stack}-jobs"
    ]
    return bucket


def alias_of(stack: Evaluation, model: str) -> Registered:
    name = f"inferstack-{stack.stack}-{model}"
    (alias,) = [a for a in stack.of_type("aws:lambda/alias:Alias") if a.name == f"{name}-live"]
    return alias


def of_bucket(stack: Evaluation, type_: str, bucket: Registered) -> list[Registered]:
    return [r for r in stack.of_type(type_) if r.inputs["bucket"] == bucket.id]


def s3_permissions(stack: Evaluation) -> list[Registered]:
    return [p for p in stack.of_type(PERMISSION) if p.inputs["principal"] == "s3.amazonaws.com"]


def with_jobs(config: StackConfig, *models: ModelConfig, **fields: Any) -> StackConfig:
    return config.model_copy(update={"models": list(models), **fields})


def test_each_stack_declares_jobs_only_for_its_async_models(stack: Evaluation) -> None:
    config = load_stack(stack.stack)
    kinds = [
        "inferstack:index:JobStore",
        "inferstack:index:JobQueue",
        QUEUE,
        MAPPING,
        NOTIFICATION,
    ]
    found = {kind: len(stack.of_type(kind)) for kind in kinds}
    if stack.stack == "dev":
        assert config.async_models == []
        assert found == dict.fromkeys(kinds, 0)
        assert s3_permissions(stack) == []
        assert "jobsBucket" not in stack.outputs and "jobs" not in stack.outputs
        return
    # One async model, with batches, in local and prod.
    (model,) = config.async_models
    assert model.batch is not None
    assert found == {
        "inferstack:index:JobStore": 1,
        "inferstack:index:JobQueue": 1,
        QUEUE: 2,
        MAPPING: 1,
        NOTIFICATION: 1,
    }
    assert len(s3_permissions(stack)) == 1


@pytest.mark.parametrize("name", ["local", "prod"])
def test_queue_and_dead_letter_queue(evaluations: dict[str, Evaluation], name: str) -> None:
    stack = evaluations[name]
    config = load_stack(name)
    (model,) = config.async_models
    assert model.async_ is not None and model.lambda_ is not None
    function = f"inferstack-{name}-{model.name}"
    queue = stack.named(f"{function}-jobs")
    dead_letter = stack.named(f"{function}-dlq")
    assert queue.inputs["name"] == f"{function}-jobs"
    assert dead_letter.inputs["name"] == f"{function}-dlq"
    # AWS: six times the function timeout plus the batching window.
    visibility = 6 * model.lambda_.timeout_s + model.async_.max_batching_window_s
    assert queue.inputs["visibilityTimeoutSeconds"] == visibility
    assert visibility == model.async_.visibility_timeout_s(model.lambda_.timeout_s)
    assert model.lambda_.timeout_s <= visibility <= 43200
    assert queue.inputs["messageRetentionSeconds"] == 4 * 24 * 3600
    assert dead_letter.inputs["messageRetentionSeconds"] == 14 * 24 * 3600
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive == {
        "deadLetterTargetArn": dead_letter.outputs["arn"],
        "maxReceiveCount": model.async_.max_receives,
    }
    # A number, not a string: the provider's note on maxReceiveCount.
    assert isinstance(redrive["maxReceiveCount"], int)
    assert "redrivePolicy" not in dead_letter.inputs
    for each in (queue, dead_letter):
        if name == "local":  # AES256 stack: SQS-managed keys
            assert each.inputs["sqsManagedSseEnabled"] is True
            assert "kmsMasterKeyId" not in each.inputs
        else:  # aws:kms without a key of its own: AWS's managed key for SQS
            assert each.inputs["kmsMasterKeyId"] == "alias/aws/sqs"
            assert "sqsManagedSseEnabled" not in each.inputs


@pytest.mark.parametrize("name", ["local", "prod"])
def test_the_mapping_polls_the_queue_for_the_live_alias(
    evaluations: dict[str, Evaluation], name: str
) -> None:
    stack = evaluations[name]
    (model,) = load_stack(name).async_models
    assert model.async_ is not None
    function = f"inferstack-{name}-{model.name}"
    (mapping,) = stack.of_type(MAPPING)
    assert mapping.inputs["eventSourceArn"] == stack.named(f"{function}-jobs").outputs["arn"]
    alias = alias_of(stack, model.name)
    assert mapping.inputs["functionName"] == alias.outputs["arn"]
    assert alias.outputs["arn"].endswith(f":function:{function}:live")
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["batchSize"] == model.async_.batch_size
    assert mapping.inputs["maximumBatchingWindowInSeconds"] == model.async_.max_batching_window_s
    if model.async_.max_concurrency is None:
        assert "scalingConfig" not in mapping.inputs
    else:
        assert mapping.inputs["scalingConfig"] == {
            "maximumConcurrency": model.async_.max_concurrency
        }
    # AWS checks the role's SQS permissions when the mapping is created.
    assert mapping.depends_on(stack.named(f"{function}-policy"))
    assert mapping.depends_on(alias)


def test_prod_batches_large_and_caps_concurrency(evaluations: dict[str, Evaluation]) -> None:
    (mapping,) = evaluations["prod"].of_type(MAPPING)
    assert mapping.inputs["batchSize"] == 100
    assert mapping.inputs["maximumBatchingWindowInSeconds"] == 5
    assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": 20}
    (mapping,) = evaluations["local"].of_type(MAPPING)
    assert "scalingConfig" not in mapping.inputs


@pytest.mark.parametrize("name", ["local", "prod"])
def test_one_notification_invokes_each_batch_model_for_its_in_prefix(
    evaluations: dict[str, Evaluation], name: str
) -> None:
    stack = evaluations[name]
    (model,) = load_stack(name).async_models
    bucket = data_bucket(stack)
    (notification,) = of_bucket(stack, NOTIFICATION, bucket)
    (permission,) = s3_permissions(stack)
    assert notification.depends_on(permission)
    (entry,) = notification.inputs["lambdaFunctions"]
    assert entry["events"] == ["s3:ObjectCreated:*"]
    assert entry["filterPrefix"] == f"batches/{model.name}/in/"
    assert entry["filterSuffix"] == ".jsonl"
    assert entry["lambdaFunctionArn"] == alias_of(stack, model.name).outputs["arn"]
    # Nothing else is notified: out/ and work/ are written by the function itself.
    assert set(notification.inputs) <= {"bucket", "lambdaFunctions"}


@pytest.mark.parametrize("name", ["local", "prod"])
def test_only_the_data_bucket_of_this_account_may_invoke_the_alias(
    evaluations: dict[str, Evaluation], name: str
) -> None:
    stack = evaluations[name]
    (model,) = load_stack(name).async_models
    (permission,) = s3_permissions(stack)
    assert permission.inputs["action"] == "lambda:InvokeFunction"
    assert permission.inputs["function"] == f"inferstack-{name}-{model.name}"
    assert permission.inputs["qualifier"] == "live"
    assert permission.inputs["sourceArn"] == data_bucket(stack).outputs["arn"]
    # The confused-deputy guard: a bucket ARN names no account.
    assert permission.inputs["sourceAccount"] == ACCOUNT_ID


@pytest.mark.parametrize("name", ["local", "prod"])
def test_results_expire_and_work_files_go_after_a_day(
    evaluations: dict[str, Evaluation], name: str
) -> None:
    stack = evaluations[name]
    (model,) = load_stack(name).async_models
    assert model.async_ is not None
    days = model.async_.result_retention_days
    (lifecycle,) = of_bucket(stack, LIFECYCLE, data_bucket(stack))
    rules = {rule["filter"]["prefix"]: rule for rule in lifecycle.inputs["rules"]}
    assert all(rule["status"] == "Enabled" for rule in rules.values())
    expiring = {
        prefix: rule["expiration"]["days"] for prefix, rule in rules.items() if "expiration" in rule
    }
    assert expiring == {
        f"jobs/{model.name}/": days,
        f"batches/{model.name}/out/": days,
        f"batches/{model.name}/work/": 1,
    }
    assert rules[""]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    assert "expiration" not in rules[""]


@pytest.mark.parametrize("name", ["local", "prod"])
def test_the_data_bucket_is_not_versioned_and_goes_with_the_stack(
    evaluations: dict[str, Evaluation], name: str
) -> None:
    stack = evaluations[name]
    bucket = data_bucket(stack)
    assert of_bucket(stack, "aws:s3/bucketVersioning:BucketVersioning", bucket) == []
    assert bucket.inputs["forceDestroy"] is load_stack(name).artifact_store.force_destroy
    assert not bucket.options.retain_on_delete


@pytest.mark.parametrize("name", ["local", "prod"])
def test_the_function_is_told_its_queue_bucket_and_prefixes(
    evaluations: dict[str, Evaluation], name: str
) -> None:
    stack = evaluations[name]
    (model,) = load_stack(name).async_models
    assert model.async_ is not None and model.batch is not None
    function_name = f"inferstack-{name}-{model.name}"
    (function,) = [
        f
        for f in stack.of_type("aws:lambda/function:Function")
        if f.inputs["name"] == function_name
    ]
    variables = function.inputs["environment"]["variables"]
    queue = stack.named(f"{function_name}-jobs")
    assert function.depends_on(queue)
    jobs = {key: value for key, value in variables.items() if key.startswith("INFERSTACK_")}
    assert jobs == {
        "INFERSTACK_JOBS_BUCKET": stack.outputs["jobsBucket"],
        "INFERSTACK_JOBS_PREFIX": f"jobs/{model.name}",
        "INFERSTACK_JOBS_QUEUE_URL": queue.outputs["url"],
        "INFERSTACK_JOBS_MAX_RECEIVES": str(model.async_.max_receives),
        "INFERSTACK_BATCH_PREFIX": f"batches/{model.name}",
        "INFERSTACK_BATCH_CHUNK_LINES": str(model.batch.chunk_lines),
    }
    # The models without jobs are told nothing of them.
    for other in stack.of_type("aws:lambda/function:Function"):
        if other is not function:
            assert not any(
                k.startswith("INFERSTACK_") for k in other.inputs["environment"]["variables"]
            )


def test_outputs_name_the_queues_jobs_url_and_batch_prefix(
    evaluations: dict[str, Evaluation],
) -> None:
    for name, model in (("local", "digits"), ("prod", "digits-int8")):
        outputs = evaluations[name].outputs
        function = f"inferstack-{name}-{model}"
        bucket = data_bucket(evaluations[name]).outputs["bucket"]
        assert outputs["jobsBucket"] == bucket
        assert outputs["jobs"] == {
            model: {
                "queueUrl": evaluations[name].named(f"{function}-jobs").outputs["url"],
                "deadLetterQueueUrl": evaluations[name].named(f"{function}-dlq").outputs["url"],
                "jobsUrl": f"{outputs['url']}/v2/models/{model}/jobs",
                "batchPrefix": f"s3://{bucket}/batches/{model}/in/",
            }
        }
        assert outputs["jobs"][model]["queueUrl"].endswith(f"/{ACCOUNT_ID}/{function}-jobs")


def test_jobs_without_batches_get_no_notification_or_batch_grants(
    run_program: Callable[[StackConfig, str], Evaluation],
) -> None:
    model = ModelConfig(name="digits", lambda_=LambdaConfig(), async_=AsyncConfig())
    evaluation = run_program(with_jobs(load_stack("local"), model), "nobatch")
    assert not evaluation.of_type(NOTIFICATION)
    assert s3_permissions(evaluation) == []
    assert len(evaluation.of_type(MAPPING)) == 1
    policy = json.loads(evaluation.named("inferstack-nobatch-digits-policy").inputs["policy"])
    resources = [r for s in policy["Statement"] for r in s["Resource"]]
    assert not [r for r in resources if "/batches/" in r]
    actions = {tuple(s["Action"]) for s in policy["Statement"]}
    assert ("s3:GetObject", "s3:PutObject") in actions
    (listing,) = [s for s in policy["Statement"] if s["Action"] == ["s3:ListBucket"]]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["jobs/digits/*"]}}
    (function,) = evaluation.of_type("aws:lambda/function:Function")
    variables = function.inputs["environment"]["variables"]
    assert "INFERSTACK_JOBS_QUEUE_URL" in variables
    assert "INFERSTACK_BATCH_PREFIX" not in variables
    assert "batchPrefix" not in evaluation.outputs["jobs"]["digits"]


def test_two_batch_models_share_one_notification_and_see_only_their_own(
    run_program: Callable[[StackConfig, str], Evaluation],
) -> None:
    models = [
        ModelConfig(
            name=name,
            delivery=delivery,
            lambda_=LambdaConfig(),
            async_=AsyncConfig(result_retention_days=days),
            batch=BatchConfig(),
        )
        for name, delivery, days in (("digits", "layer", 3), ("digits-int8", "s3", 9))
    ]
    evaluation = run_program(with_jobs(load_stack("local"), *models), "two")
    assert len(evaluation.of_type("aws:s3/bucket:Bucket")) == 2  # one data bucket
    (notification,) = evaluation.of_type(NOTIFICATION)
    entries = {e["filterPrefix"]: e for e in notification.inputs["lambdaFunctions"]}
    assert set(entries) == {"batches/digits/in/", "batches/digits-int8/in/"}
    for model in ("digits", "digits-int8"):
        alias = alias_of(evaluation, model).outputs["arn"]
        assert entries[f"batches/{model}/in/"]["lambdaFunctionArn"] == alias
    assert len({e["id"] for e in entries.values()}) == 2
    assert all(notification.depends_on(p) for p in s3_permissions(evaluation))
    assert len(s3_permissions(evaluation)) == 2
    (lifecycle,) = of_bucket(evaluation, LIFECYCLE, data_bucket(evaluation))
    rules = {
        r["filter"]["prefix"]: r["expiration"]["days"]
        for r in lifecycle.inputs["rules"]
        if "expiration" in r
    }
    assert rules["jobs/digits/"] == 3 and rules["jobs/digits-int8/"] == 9
    assert rules["batches/digits/out/"] == 3 and rules["batches/digits-int8/out/"] == 9
    # Neither role names the other's queue or prefixes.
    for model, other in (("digits", "digits-int8"), ("digits-int8", "digits")):
        policy = evaluation.named(f"inferstack-two-{model}-policy").inputs["policy"]
        statements = json.loads(policy)["Statement"]
        resources = [r for s in statements for r in s["Resource"]]
        conditions = json.dumps([s.get("Condition") for s in statements])
        other_queue = evaluation.named(f"inferstack-two-{other}-jobs").outputs["arn"]
        assert other_queue not in resources
        for prefix in (f"/jobs/{other}/", f"/batches/{other}/"):
            assert not [r for r in resources if prefix in r], (model, prefix)
        assert f"batches/{other}/" not in conditions
        mapping_of = [
            m
            for m in evaluation.of_type(MAPPING)
            if m.inputs["functionName"] == alias_of(evaluation, model).outputs["arn"]
        ]
        (mapping,) = mapping_of
        own_queue = evaluation.named(f"inferstack-two-{model}-jobs").outputs["arn"]
        assert mapping.inputs["eventSourceArn"] == own_queue


def test_a_stack_key_encrypts_queues_and_bucket_and_the_role_may_use_it(
    run_program: Callable[[StackConfig, str], Evaluation],
) -> None:
    model = ModelConfig(
        name="digits-int8",
        delivery="s3",
        lambda_=LambdaConfig(),
        async_=AsyncConfig(),
        batch=BatchConfig(),
    )
    store = ArtifactStoreConfig(encryption="aws:kms", kms_key_arn=KEY)
    evaluation = run_program(with_jobs(load_stack("dev"), model, artifact_store=store), "kms")
    for queue in evaluation.of_type(QUEUE):
        assert queue.inputs["kmsMasterKeyId"] == KEY
        assert "sqsManagedSseEnabled" not in queue.inputs
    bucket = data_bucket(evaluation)
    (encryption,) = of_bucket(
        evaluation,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        bucket,
    )
    (rule,) = encryption.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": KEY,
    }
    policy = json.loads(evaluation.named("inferstack-kms-digits-int8-policy").inputs["policy"])
    kms = [s for s in policy["Statement"] if s["Action"][0].startswith("kms:")]
    # One statement: reading the model and reading and writing jobs use the same key.
    assert kms == [
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [KEY]}
    ]


def test_localstack_gets_an_sqs_endpoint_only_with_jobs() -> None:
    from infra.providers import services_used

    local = load_stack("local")
    assert "sqs" in services_used(local)
    plain = [m.model_copy(update={"async_": None, "batch": None}) for m in local.models]
    assert "sqs" not in services_used(local.model_copy(update={"models": plain}))
