"""Production on AWS: warm functions, keys with quotas, a GPU endpoint on EKS behind the same
API (`digits-gpu`: the `digits` artifact on the batching server), and jobs and batches
(SQS, S3) for `digits-int8`.

Set the values below to your account's before `pulumi up -s prod`.
"""

from stacks.schema import (
    AlarmRollbackConfig,
    AlarmSubscription,
    ApiConfig,
    ApiKeys,
    ArtifactStoreConfig,
    AsyncConfig,
    AwsTarget,
    BatchConfig,
    ClusterNetwork,
    Cors,
    GpuConfig,
    KubernetesConfig,
    LambdaConfig,
    ModelConfig,
    MonitoringConfig,
    PodMonitorConfig,
    ProvisionedConcurrency,
    Quota,
    ScheduledScaling,
    StackConfig,
    StateConfig,
)

# The GPU model-server image (the GPU issue's Dockerfile), pushed to your registry.
GPU_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/inferstack-gpu:0.1.0"
# The kubeconfig context of your EKS cluster with NVIDIA GPU nodes.
KUBE_CONTEXT = "inferstack-prod"
# Your cluster's IAM OIDC provider, so GPU pods get their own least-privilege IAM role.
OIDC_PROVIDER_ARN = (
    "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
)
# The Helm release of the cluster's kube-prometheus-stack: its Prometheus scrapes the
# PodMonitors labelled `release: <this>`, and prometheus-adapter serves the HPA's metric.
PROMETHEUS_RELEASE = "kube-prometheus-stack"
# Your cluster's network: its VPC, the private subnets the API's internal load balancer
# goes in (one per Availability Zone, routable to the pods), and the security group on
# the pods' network interfaces (EKS's cluster security group unless your pods have their
# own): it lets the load balancer in on the model server's port only.
CLUSTER_VPC = "vpc-0123456789abcdef0"
CLUSTER_SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
CLUSTER_SECURITY_GROUP = "sg-0123456789abcdef0"
# Who hears of the alarms: the on-call address (it confirms its subscription first) and
# your paging service's HTTPS integration URL.
ALARM_EMAIL = "oncall@example.com"
ALARM_WEBHOOK = "https://events.example.com/integration/inferstack-prod"

# Where Pulumi keeps this stack's state, and the KMS key that encrypts its secrets (the
# API keys): set both before `pulumi up -s prod` (README, "Deploying with Pulumi").
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
        ModelConfig(
            name="digits",
            delivery="layer",
            # `inferstack promote` shifts 10 % for 10 minutes, then the rest; the 5xx and
            # p99 alarms roll it back (CodeDeploy).
            alarm_rollback=AlarmRollbackConfig(traffic="canary", percent=10, interval_minutes=10),
            lambda_=LambdaConfig(
                memory_mb=2048,
                timeout_s=15,
                reserved_concurrency=100,
                p99_ms=200,
                provisioned=ProvisionedConcurrency(
                    min=2,
                    max=20,
                    target_utilization=0.7,
                    schedules=[
                        # Business hours: keep more environments warm.
                        ScheduledScaling(
                            name="weekday-peak",
                            schedule="cron(0 8 ? * MON-FRI *)",
                            min=10,
                            max=50,
                            timezone="Europe/Berlin",
                        ),
                        ScheduledScaling(
                            name="weekday-night",
                            schedule="cron(0 20 ? * MON-FRI *)",
                            min=2,
                            max=20,
                            timezone="Europe/Berlin",
                        ),
                    ],
                ),
            ),
        ),
        # The same artifact on GPUs, behind the same API and keys: /v2/models/digits-gpu.
        ModelConfig(
            name="digits-gpu",
            artifact="build/models/digits",
            gpu=GpuConfig(
                image=GPU_IMAGE,
                gpus_per_replica=1,
                min_replicas=2,
                max_replicas=8,
                scale_on="inflight_requests",
                target_per_replica=32,
                max_batch_size=64,
                max_batch_delay_ms=5,
            ),
        ),
        ModelConfig(
            name="digits-int8",
            delivery="s3",
            lambda_=LambdaConfig(memory_mb=1024, timeout_s=15, reserved_concurrency=50, p99_ms=300),
            # Nightly scoring: jobs and batches in large SQS batches, gathered for up to 5 s,
            # by at most 20 concurrent invocations (inside the 50 reserved).
            async_=AsyncConfig(
                batch_size=100,
                max_batching_window_s=5,
                max_receives=5,
                result_retention_days=30,
                max_concurrency=20,
            ),
            batch=BatchConfig(chunk_lines=5000),
        ),
        ModelConfig(
            name="minilm-int8",
            delivery="layer",
            lambda_=LambdaConfig(
                memory_mb=2048, timeout_s=15, reserved_concurrency=50, p99_ms=1000
            ),
        ),
    ],
    artifact_store=ArtifactStoreConfig(encryption="aws:kms", noncurrent_version_expiry_days=90),
    api=ApiConfig(
        stage="prod",
        throttle_rate_rps=500,
        throttle_burst=1000,
        keys=ApiKeys(clients=["web", "batch"], quota=Quota(limit=1_000_000, period="MONTH")),
        cors=Cors(allow_origin="https://app.example.com"),
        # This stack owns API Gateway's account-wide CloudWatch role in its region (dev
        # does not): destroying prod resets it, and other stacks' access logs need it.
        manage_account_logging_role=True,
    ),
    kubernetes=KubernetesConfig(
        context=KUBE_CONTEXT,
        oidc_provider_arn=OIDC_PROVIDER_ARN,
        pod_monitor=PodMonitorConfig(labels={"release": PROMETHEUS_RELEASE}),
        network=ClusterNetwork(
            vpc_id=CLUSTER_VPC,
            subnet_ids=CLUSTER_SUBNETS,
            cluster_security_group_id=CLUSTER_SECURITY_GROUP,
        ),
    ),
    log_retention_days=90,
    monitoring=MonitoringConfig(
        period_s=60,
        evaluation_periods=3,
        error_rate_percent=1,
        subscriptions=[
            AlarmSubscription(protocol="email", endpoint=ALARM_EMAIL),
            AlarmSubscription(protocol="https", endpoint=ALARM_WEBHOOK),
        ],
    ),
    tags={"env": "prod"},
)
