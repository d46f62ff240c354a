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
from stacks.schema import LOG_RETENTION_DAYS

POLICY_INPUTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:iam/role:Role": "assumeRolePolicy",
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
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{resource.name}: wildcard action {action}"
        for arn in as_list(statement["Resource"]):
            assert arn != "*", f"{resource.name}: resource '*'"
            # Wildcards only inside a named scope (log streams of a group, keys under a
            # prefix): never in the service, region or account part.
            assert arn.startswith("arn:aws:"), arn
            service, region, account = arn.split(":")[2:5]
            assert "*" not in service + region + account, f"{resource.name}: {arn}"
    assert checked > 0


def test_trust_policies_name_one_principal_each(stack: Evaluation) -> None:
    for role in stack.of_type("aws:iam/role:Role"):
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        principal = statement["Principal"]
        if "Service" in principal:
            assert principal["Service"] in {"lambda.amazonaws.com", "apigateway.amazonaws.com"}
            assert statement["Action"] == "sts:AssumeRole"
        else:
            # IRSA: only the endpoint's own service account may assume the pod role.
            assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
            conditions = statement["Condition"]["StringEquals"]
            subjects = [v for k, v in conditions.items() if k.endswith(":sub")]
            assert subjects == ["system:serviceaccount:inferstack-prod-digits:digits"]


def test_each_function_writes_only_its_log_group_and_reads_only_its_model(
    stack: Evaluation,
) -> None:
    config = load_stack(stack.stack)
    bucket_arn = f"arn:aws:s3:::{stack.outputs['bucket']}"
    for model in config.lambda_models:
        name = f"inferstack-{stack.stack}-{model.name}"
        log_group = stack.named(f"{name}-logs")
        policy = json.loads(stack.named(f"{name}-policy").inputs["policy"])
        by_action = {tuple(s["Action"]): s["Resource"] for s in policy["Statement"]}
        assert by_action.pop(("logs:CreateLogStream", "logs:PutLogEvents")) == [
            log_group.outputs["arn"] + ":*"
        ]
        if model.delivery == "s3":
            uri = stack.outputs["modelUris"][model.name]
            prefix = uri.removeprefix(f"s3://{stack.outputs['bucket']}/")
            assert by_action.pop(("s3:GetObject",)) == [f"{bucket_arn}/{prefix}/*"]
        assert by_action == {}, f"{name} has more permissions than it needs: {by_action}"


def test_every_bucket_is_encrypted_versioned_private_and_tls_only(stack: Evaluation) -> None:
    buckets = stack.of_type("aws:s3/bucket:Bucket")
    assert buckets

    def config_of(type_: str, bucket: Registered) -> Registered:
        (found,) = [r for r in stack.of_type(type_) if r.inputs["bucket"] == bucket.id]
        return found

    for bucket in buckets:
        encryption = config_of(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            bucket,
        )
        (rule,) = encryption.inputs["rules"]
        algorithm = rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
        assert algorithm in {"AES256", "aws:kms"}
        versioning = config_of("aws:s3/bucketVersioning:BucketVersioning", bucket)
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
        expiry = lifecycle.inputs["rules"][0]["noncurrentVersionExpiration"]["noncurrentDays"]
        assert expiry == load_stack(stack.stack).artifact_store.noncurrent_version_expiry_days


def test_prod_bucket_uses_kms(evaluations: dict[str, Evaluation]) -> None:
    (encryption,) = evaluations["prod"].of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    (rule,) = encryption.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert rule["bucketKeyEnabled"] is True


def test_api_key_requirement_follows_the_config(stack: Evaluation) -> None:
    keyed = load_stack(stack.stack).api.keys is not None
    methods = stack.of_type("aws:apigateway/method:Method")
    for method in methods:
        if method.inputs["httpMethod"] == "OPTIONS":
            # CORS preflights carry no key by design; they are answered by API Gateway
            # itself (MOCK) and never reach a function.
            (integration,) = [
                i
                for i in stack.of_type("aws:apigateway/integration:Integration")
                if i.depends_on(method)
            ]
            assert integration.inputs["type"] == "MOCK"
            assert method.inputs["apiKeyRequired"] is False
        else:
            assert method.inputs["apiKeyRequired"] is keyed, method.name


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
    proxies = [
        m for m in prod.of_type("aws:apigateway/method:Method") if m.inputs["httpMethod"] == "ANY"
    ]
    assert proxies and all(m.inputs["apiKeyRequired"] is True for m in proxies)


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


def test_the_checks_above_can_fail(evaluations: dict[str, Evaluation]) -> None:
    """A wildcard smuggled into a policy is caught (guards against a vacuous suite)."""
    prod = evaluations["prod"]
    policy = prod.named("inferstack-prod-digits-policy")
    document = json.loads(policy.inputs["policy"])
    document["Statement"].append({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    tampered = Evaluation(
        stack="prod",
        resources=[
            r
            if r is not policy
            else Registered(
                **{**r.__dict__, "inputs": {**r.inputs, "policy": json.dumps(document)}}
            )
            for r in prod.resources
        ],
        outputs=prod.outputs,
    )
    with pytest.raises(AssertionError, match="wildcard action"):
        test_no_allow_statement_has_a_wildcard_action_or_resource(tampered)
