"""A shared development stack on AWS: small, cheap, keyed.

arm64 functions (about 20 % cheaper per GB-second), no provisioned concurrency, a
reserved-concurrency cap so a runaway client cannot take the account's pool, and one API
key per client.
"""

from stacks.schema import (
    ApiConfig,
    ApiKeys,
    ArtifactStoreConfig,
    AwsTarget,
    LambdaConfig,
    ModelConfig,
    StackConfig,
)

_FUNCTION = LambdaConfig(
    memory_mb=1024, timeout_s=10, architecture="arm64", reserved_concurrency=10
)
# MiniLM is a transformer: Lambda's vCPU share grows with memory.
_TEXT_FUNCTION = LambdaConfig(
    memory_mb=2048, timeout_s=15, architecture="arm64", reserved_concurrency=10
)

STACK = StackConfig(
    target=AwsTarget(region="us-east-1"),
    models=[
        ModelConfig(name="digits", delivery="layer", lambda_=_FUNCTION),
        ModelConfig(name="digits-int8", delivery="s3", lambda_=_FUNCTION),
        ModelConfig(name="minilm-int8", delivery="layer", lambda_=_TEXT_FUNCTION),
    ],
    artifact_store=ArtifactStoreConfig(force_destroy=True, noncurrent_version_expiry_days=7),
    api=ApiConfig(
        stage="dev",
        throttle_rate_rps=20,
        throttle_burst=40,
        keys=ApiKeys(clients=["dev-team"]),
    ),
    log_retention_days=14,
    tags={"env": "dev"},
)
