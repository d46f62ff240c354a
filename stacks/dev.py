"""A shared development stack on AWS: small, cheap, keyed.

arm64 functions (about 20 % cheaper per GB-second), no provisioned concurrency, a
reserved-concurrency cap so a runaway client cannot take the account's pool, and one API
key per client.
"""

from stacks.schema import (
    AlarmSubscription,
    ApiConfig,
    ApiKeys,
    ArtifactStoreConfig,
    AwsTarget,
    LambdaConfig,
    ModelConfig,
    MonitoringConfig,
    StackConfig,
    StateConfig,
)

_FUNCTION = LambdaConfig(
    memory_mb=1024, timeout_s=10, architecture="arm64", reserved_concurrency=10, p99_ms=250
)
# MiniLM is a transformer: Lambda's vCPU share grows with memory.
_TEXT_FUNCTION = LambdaConfig(
    memory_mb=2048, timeout_s=15, architecture="arm64", reserved_concurrency=10, p99_ms=1000
)
# Who hears of the alarms (an email address confirms its subscription first).
ALARM_EMAIL = "inferstack-dev@example.com"

# Where Pulumi keeps this stack's state, and the KMS key that encrypts its secrets (the
# API keys): set both before `pulumi up -s dev` (README, "Deploying with Pulumi").
# Left as None, a deploy stops and names the field.
# e.g. "s3://<your-state-bucket>/inferstack?region=us-east-1" or "https://api.pulumi.com"
STATE_BACKEND: str | None = None
# e.g. "awskms://alias/<your-key-alias>?region=us-east-1"
SECRETS_PROVIDER: str | None = None

STACK = StackConfig(
    target=AwsTarget(
        region="us-east-1",
        state=StateConfig(backend_url=STATE_BACKEND, secrets_provider=SECRETS_PROVIDER),
    ),
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
        # prod owns API Gateway's account-wide CloudWatch role in us-east-1: deploy prod
        # first in a shared account, or set allowed_account_ids on both targets (different
        # accounts) and let each own its own.
        manage_account_logging_role=False,
    ),
    log_retention_days=14,
    # Three 5-minute periods in a row before a development stack tells anyone.
    monitoring=MonitoringConfig(
        period_s=300,
        evaluation_periods=3,
        error_rate_percent=10,
        subscriptions=[AlarmSubscription(protocol="email", endpoint=ALARM_EMAIL)],
    ),
    tags={"env": "dev"},
)
