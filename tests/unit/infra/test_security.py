"""Security properties, checked over every resource each stack registers.

The programs run under Pulumi's mock runtime (`pulumi.runtime.set_mocks`, through
`infra.evaluate`); the properties are read from the inputs the program sends, which are
what a real `pulumi up` would send to AWS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.evaluate import Evaluation, Registered
from infra.stack_loader import load_stack
from stacks.schema import LOG_RETENTION_DAYS, ModelConfig

POLICY_INPUTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:iam/role:Role": "assumeRolePolicy",
}


# The only Allow statements on resource "*": actions IAM cannot scope to a resource
# (their Service Authorization Reference entry has no resource type), each with why it
# is granted at all.
WILDCARD_RESOURCE_ACTIONS = {
    "logs:DescribeLogGroups": (
        "API Gateway's account logging role: part of AmazonAPIGatewayPushToCloudWatchLogs, "
        "which API Gateway checks when the account setting is written"
    ),
}
# AWS's managed policy for API Gateway's CloudWatch role, action for action.
PUSH_TO_CLOUDWATCH_LOGS = {
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
}


def statements(stack: Evaluation) -> Iterator[tuple[Registered, dict[str, Any]]]:
    for resource in stack.resources:
        key = POLICY_INPUTS.get(resource.type)
        if key is None:
            continue
        document = json.loads(resource.inputs[key])
        for statement in document["Statement"]:
            yield resource, statement


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_no_managed_policies_or_other_policy_resources(stack: Evaluation) -> None:
    """Every permission is an inline document this suite can read."""
    assert not stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    for role in stack.of_type("aws:iam/role:Role"):
        assert not role.inputs.get("managedPolicyArns")


def test_no_allow_statement_has_a_wildcard_action_or_resource(stack: Evaluation) -> None:
    checked = 0
    for resource, statement in statements(stack):
        if statement["Effect"] != "Allow" or resource.type == "aws:iam/role:Role":
            continue
        checked += 1
        actions = as_list(statement["Action"])
        for action in actions:
            assert "*" not in action, f"{resource.name}: wildcard action {action}"
        resources = as_list(statement["Resource"])
        if resources == ["*"]:
            # Only the actions IAM cannot scope, alone in their statement.
            unscopable = set(actions) - set(WILDCARD_RESOURCE_ACTIONS)
            assert not unscopable, f"{resource.name}: resource '*' for {sorted(unscopable)}"
            continue
        for arn in resources:
            assert arn != "*", f"{resource.name}: resource '*'"
            # Wildcards only inside a named scope (log streams of a group, keys under a
            # prefix): never in the service, region or account part.
            assert arn.startswith("arn:aws:"), arn
            service, region, account = arn.split(":")[2:5]
            assert "*" not in service + region + account, f"{resource.name}: {arn}"
    assert checked > 0


def test_the_api_gateway_logging_role_has_what_aws_requires_on_inferstacks_groups(
    stack: Evaluation,
) -> None:
    config = load_stack(stack.stack)
    name = f"inferstack-{stack.stack}-api"
    if not config.manages_account_logging_role:
        assert not stack.of_type("aws:apigateway/account:Account")
        return
    role = stack.named(f"{name}-logging-role")
    (account,) = stack.of_type("aws:apigateway/account:Account")
    assert account.inputs["cloudwatchRoleArn"] == role.outputs["arn"]
    policy = stack.named(f"{name}-logging-policy")
    assert account.depends_on(policy)
    document = json.loads(policy.inputs["policy"])
    granted = {a: as_list(s["Resource"]) for s in document["Statement"] for a in s["Action"]}
    assert set(granted) == PUSH_TO_CLOUDWATCH_LOGS
    access_logs = stack.named(f"{name}-access-logs").outputs["arn"]
    scope = access_logs.split(":log-group:")[0] + ":log-group:/aws/apigateway/inferstack-*"
    for action in ("logs:CreateLogGroup", "logs:DescribeLogStreams", "logs:FilterLogEvents"):
        assert granted[action] == [scope], action
    for action in ("logs:CreateLogStream", "logs:PutLogEvents", "logs:GetLogEvents"):
        assert granted[action] == [scope + ":log-stream:*"], action
    assert granted["logs:DescribeLogGroups"] == ["*"]


def test_trust_policies_name_one_principal_each(stack: Evaluation) -> None:
    for role in stack.of_type("aws:iam/role:Role"):
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        principal = statement["Principal"]
        if "Service" in principal:
            assert principal["Service"] in {
                "lambda.amazonaws.com",
                "apigateway.amazonaws.com",
                "codedeploy.amazonaws.com",
            }
            assert statement["Action"] == "sts:AssumeRole"
        else:
            # IRSA: only the endpoint's own service account may assume the pod role.
            assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
            conditions = statement["Condition"]["StringEquals"]
            subjects = [v for k, v in conditions.items() if k.endswith(":sub")]
            assert subjects == ["system:serviceaccount:inferstack-prod-digits-gpu:digits-gpu"]


def job_statements(stack: Evaluation, model: ModelConfig) -> list[dict[str, Any]]:
    """What a function with jobs (and batches) may do on its queue and the data bucket:
    its own queue, its own prefixes, nothing else."""
    name = f"inferstack-{stack.stack}-{model.name}"
    queue_arn = stack.named(f"{name}-jobs").outputs["arn"]
    data = f"arn:aws:s3:::{stack.outputs['jobsBucket']}"
    read_write = ["s3:GetObject", "s3:PutObject"]
    queue_actions = [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
    ]
    expected = [
        {"Effect": "Allow", "Action": queue_actions, "Resource": [queue_arn]},
        {"Effect": "Allow", "Action": read_write, "Resource": [f"{data}/jobs/{model.name}/*"]},
    ]
    # Listing (and so honest 404s for missing keys) only under its own prefixes.
    listed = [f"jobs/{model.name}/*"]
    batches = model.batch_prefix
    if batches is not None:
        expected += [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"{data}/{batches}/in/*"]},
            {"Effect": "Allow", "Action": read_write, "Resource": [f"{data}/{batches}/work/*"]},
            {"Effect": "Allow", "Action": read_write, "Resource": [f"{data}/{batches}/out/*"]},
        ]
        listed += [f"{batches}/in/*", f"{batches}/work/*", f"{batches}/out/*"]
    expected.append(
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [data],
            "Condition": {"StringLike": {"s3:prefix": listed}},
        }
    )
    return expected


def test_each_function_writes_only_its_log_group_and_reads_only_its_model(
    stack: Evaluation,
) -> None:
    """...and, with jobs, touches only its own queue and its own prefixes of the data
    bucket."""
    config = load_stack(stack.stack)
    bucket_arn = f"arn:aws:s3:::{stack.outputs['bucket']}"
    checked_jobs = 0
    for model in config.lambda_models:
        name = f"inferstack-{stack.stack}-{model.name}"
        log_group = stack.named(f"{name}-logs")
        granted = json.loads(stack.named(f"{name}-policy").inputs["policy"])["Statement"]
        expected = [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [log_group.outputs["arn"] + ":*"],
            }
        ]
        if model.delivery == "s3":
            uri = stack.outputs["modelUris"][model.name]
            prefix = uri.removeprefix(f"s3://{stack.outputs['bucket']}/")
            expected.append(
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": [f"{bucket_arn}/{prefix}/*"],
                }
            )
        if model.async_ is not None:
            checked_jobs += 1
            expected += job_statements(stack, model)
        for statement in expected:
            assert statement in granted, f"{name} lacks {statement}"
            granted.remove(statement)
        assert granted == [], f"{name} has more permissions than it needs: {granted}"
    assert checked_jobs == len(config.async_models)


def test_every_bucket_is_encrypted_private_and_tls_only(stack: Evaluation) -> None:
    """Every bucket, the artifact bucket (also versioned) and the data bucket of jobs and
    batches (not versioned: see test_jobs.py) alike."""
    buckets = stack.of_type("aws:s3/bucket:Bucket")
    assert buckets
    config = load_stack(stack.stack)
    (artifacts,) = [b for b in buckets if b.name == f"inferstack-{stack.stack}-artifacts"]
    assert len(buckets) == (2 if config.async_models else 1)

    def configs_of(type_: str, bucket: Registered) -> list[Registered]:
        return [r for r in stack.of_type(type_) if r.inputs["bucket"] == bucket.id]

    def config_of(type_: str, bucket: Registered) -> Registered:
        (found,) = configs_of(type_, bucket)
        return found

    for bucket in buckets:
        encryption = config_of(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            bucket,
        )
        (rule,) = encryption.inputs["rules"]
        algorithm = rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
        assert algorithm in {"AES256", "aws:kms"}
        assert algorithm == config.artifact_store.encryption
        versionings = configs_of("aws:s3/bucketVersioning:BucketVersioning", bucket)
        if bucket != artifacts:
            assert versionings == [], f"{bucket.name} is versioned"
        else:
            (versioning,) = versionings
            assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
        block = config_of("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        ):
            assert block.inputs[flag] is True, flag
        ownership = config_of("aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket)
        assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
        policy = json.loads(config_of("aws:s3/bucketPolicy:BucketPolicy", bucket).inputs["policy"])
        (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny["Principal"] == "*" and deny["Action"] == "s3:*"
        arn = bucket.outputs["arn"]
        assert sorted(deny["Resource"]) == [arn, arn + "/*"]
        lifecycle = config_of(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket
        )
        if bucket == artifacts:
            expiry = lifecycle.inputs["rules"][0]["noncurrentVersionExpiration"]
            assert expiry["noncurrentDays"] == config.artifact_store.noncurrent_version_expiry_days


def test_prod_buckets_use_kms(evaluations: dict[str, Evaluation]) -> None:
    encryptions = evaluations["prod"].of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    # The artifact bucket and the data bucket.
    assert len(encryptions) == 2
    for encryption in encryptions:
        (rule,) = encryption.inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        assert rule["bucketKeyEnabled"] is True


def operations(stack: Evaluation) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) of every operation in the REST API's OpenAPI body."""
    (api,) = stack.of_type("aws:apigateway/restApi:RestApi")
    for path, item in json.loads(api.inputs["body"])["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


def server_paths(stack: Evaluation) -> set[str]:
    """The API paths of the GPU-served models (their model servers answer them)."""
    models = load_stack(stack.stack).gpu_models
    return {
        path for m in models for path in (f"/v2/models/{m.name}", f"/v2/models/{m.name}/{{proxy+}}")
    }


def test_api_key_requirement_follows_the_config(stack: Evaluation) -> None:
    keyed = load_stack(stack.stack).api.keys is not None
    (api,) = stack.of_type("aws:apigateway/restApi:RestApi")
    body = json.loads(api.inputs["body"])
    checked = 0
    for path, method, operation in operations(stack):
        checked += 1
        integration = operation["x-amazon-apigateway-integration"]
        if method == "options":
            # CORS preflights carry no key by design; they are answered by API Gateway
            # itself (MOCK) and never reach a function.
            assert integration["type"] == "mock", path
            assert "security" not in operation, path
        else:
            assert method == "x-amazon-apigateway-any-method", (path, method)
            # A Lambda model's function, or a GPU-served model's server (HTTP proxy).
            served_over_http = path in server_paths(stack)
            assert integration["type"] == ("http_proxy" if served_over_http else "aws_proxy"), path
            assert operation.get("security") == ([{"api_key": []}] if keyed else None), path
    assert checked > 0
    if keyed:
        assert body["x-amazon-apigateway-api-key-source"] == "HEADER"
        assert body["components"]["securitySchemes"]["api_key"] == {
            "type": "apiKey",
            "name": "x-api-key",
            "in": "header",
        }
    assert "apiKeySource" not in api.inputs  # the body's source is the only one


def test_prod_api_requires_keys_under_a_usage_plan(evaluations: dict[str, Evaluation]) -> None:
    prod = evaluations["prod"]
    assert load_stack("prod").api.keys is not None
    (plan,) = prod.of_type("aws:apigateway/usagePlan:UsagePlan")
    (stage,) = prod.of_type("aws:apigateway/stage:Stage")
    (api,) = prod.of_type("aws:apigateway/restApi:RestApi")
    assert plan.inputs["apiStages"] == [{"apiId": api.id, "stage": stage.inputs["stageName"]}]
    assert plan.inputs["quotaSettings"] == {"limit": 1_000_000, "period": "MONTH"}
    keys = {k.id for k in prod.of_type("aws:apigateway/apiKey:ApiKey")}
    attached = {k.inputs["keyId"] for k in prod.of_type("aws:apigateway/usagePlanKey:UsagePlanKey")}
    assert keys == attached and len(keys) == 2
    proxies = [op for _p, m, op in operations(prod) if m == "x-amazon-apigateway-any-method"]
    assert proxies and all(op["security"] == [{"api_key": []}] for op in proxies)


def test_every_stage_is_throttled_and_access_logged(stack: Evaluation) -> None:
    config = load_stack(stack.stack).api
    (settings,) = stack.of_type("aws:apigateway/methodSettings:MethodSettings")
    assert settings.inputs["methodPath"] == "*/*"
    assert settings.inputs["settings"]["throttlingRateLimit"] == config.throttle_rate_rps
    assert settings.inputs["settings"]["throttlingBurstLimit"] == config.throttle_burst
    (stage,) = stack.of_type("aws:apigateway/stage:Stage")
    destination = stage.inputs["accessLogSettings"]["destinationArn"]
    (log_group,) = [
        g
        for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.outputs["arn"] == destination
    ]
    # Covered by the account logging role's scope.
    assert log_group.inputs["name"].startswith("/aws/apigateway/inferstack-")


def test_every_log_group_has_retention(stack: Evaluation) -> None:
    config = load_stack(stack.stack)
    log_groups = stack.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert len(log_groups) == len(config.lambda_models) + 1
    for log_group in log_groups:
        assert log_group.inputs["retentionInDays"] == config.log_retention_days
        assert log_group.inputs["retentionInDays"] in LOG_RETENTION_DAYS
    # Each function logs to a group the stack manages (Lambda's default name for it).
    names = {g.inputs["name"] for g in log_groups}
    for function in stack.of_type("aws:lambda/function:Function"):
        assert f"/aws/lambda/{function.inputs['name']}" in names


def test_provisioned_concurrency_never_exceeds_reserved(stack: Evaluation) -> None:
    functions = {f.inputs["name"]: f for f in stack.of_type("aws:lambda/function:Function")}

    def reserved(function_name: str) -> int:
        value = functions[function_name].inputs.get("reservedConcurrentExecutions")
        assert value is not None, f"{function_name} has provisioned but no reserved concurrency"
        return int(value)

    for config in stack.of_type(
        "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
    ):
        name = config.inputs["functionName"]
        assert config.inputs["provisionedConcurrentExecutions"] <= reserved(name)
    for target in stack.of_type("aws:appautoscaling/target:Target"):
        name = target.inputs["resourceId"].split(":")[1]
        assert target.inputs["maxCapacity"] <= reserved(name)
        for action in stack.of_type("aws:appautoscaling/scheduledAction:ScheduledAction"):
            if action.inputs["resourceId"] == target.inputs["resourceId"]:
                assert action.inputs["scalableTargetAction"]["maxCapacity"] <= reserved(name)


def _with_statement(stack: Evaluation, policy_name: str, statement: dict[str, Any]) -> Evaluation:
    policy = stack.named(policy_name)
    document = json.loads(policy.inputs["policy"])
    document["Statement"].append(statement)
    return Evaluation(
        stack=stack.stack,
        resources=[
            r
            if r is not policy
            else Registered(
                **{**r.__dict__, "inputs": {**r.inputs, "policy": json.dumps(document)}}
            )
            for r in stack.resources
        ],
        outputs=stack.outputs,
    )


def test_the_checks_above_can_fail(evaluations: dict[str, Evaluation]) -> None:
    """A wildcard smuggled into a policy is caught (guards against a vacuous suite)."""
    prod = evaluations["prod"]
    tampered = _with_statement(
        prod,
        "inferstack-prod-digits-policy",
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
    )
    with pytest.raises(AssertionError, match="wildcard action"):
        test_no_allow_statement_has_a_wildcard_action_or_resource(tampered)
    # Resource "*" is allowed only for the actions IAM cannot scope.
    tampered = _with_statement(
        prod,
        "inferstack-prod-api-logging-policy",
        {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "*"},
    )
    with pytest.raises(AssertionError, match=r"resource '\*' for \['logs:PutLogEvents'\]"):
        test_no_allow_statement_has_a_wildcard_action_or_resource(tampered)
