"""LocalStack on this machine: the whole Lambda path, no cloud account.

Both delivery paths are exercised: `digits` ships as a Lambda layer, `digits-int8` is
downloaded from the artifact bucket at cold start. `minilm-int8` (text in, sentence
embeddings out) ships as a layer too: ~37 MB unzipped beside the ~115 MB runtime layer,
well inside Lambda's 250 MB. `digits` also takes jobs (its SQS queue, polled by an event
source mapping) and batches (JSONL files under `batches/digits/in/` in the data bucket):
SQS, S3 notifications and event source mappings are in LocalStack community. No
provisioned concurrency: LocalStack community does not emulate Application Auto Scaling.
`digits-gpu` is the digits artifact served by the batching model server under another
name: its GPU endpoint (Kubernetes objects) is declared, not emulated, and a local process
(the container server on the CPU) stands in for it behind the same API. The alarms fire
after one breaching minute (one period) and notify a topic nobody subscribes to: read
their states with the AWS CLI.
"""

from stacks.schema import (
    ApiConfig,
    ArtifactStoreConfig,
    AsyncConfig,
    BatchConfig,
    GpuConfig,
    KubernetesConfig,
    LambdaConfig,
    LocalStackTarget,
    ModelConfig,
    MonitoringConfig,
    StackConfig,
)

STACK = StackConfig(
    target=LocalStackTarget(),
    models=[
        ModelConfig(
            name="digits",
            delivery="layer",
            lambda_=LambdaConfig(memory_mb=1024, p99_ms=500),
            # A message whose invocation died comes back after the queue's visibility
            # timeout: 6 times the function's 10 s timeout, one minute.
            async_=AsyncConfig(batch_size=10, max_receives=3, result_retention_days=1),
            # A queued invocation gets up to 10 chunks: 10 x 250 lines stays well inside
            # the 10 s timeout on a loaded 2-core machine (~0.3-1 ms a line).
            batch=BatchConfig(chunk_lines=250),
        ),
        ModelConfig(
            name="digits-int8", delivery="s3", lambda_=LambdaConfig(memory_mb=1024, p99_ms=500)
        ),
        # A transformer: more memory is more vCPU on Lambda; cold start loads ~37 MB.
        ModelConfig(
            name="minilm-int8",
            delivery="layer",
            lambda_=LambdaConfig(memory_mb=2048, timeout_s=15, p99_ms=2000),
        ),
        # The GPU path, tried on this machine: requests wait up to 5 ms to share a batch.
        ModelConfig(
            name="digits-gpu",
            artifact="build/models/digits",
            gpu=GpuConfig(image="inferstack-gpu:0.1.0", max_batch_size=32, max_batch_delay_ms=5),
        ),
    ],
    # Declared for the GPU endpoint's objects; no cluster is contacted on LocalStack.
    kubernetes=KubernetesConfig(),
    artifact_store=ArtifactStoreConfig(force_destroy=True),
    api=ApiConfig(stage="local", throttle_rate_rps=1000, throttle_burst=2000),
    log_retention_days=1,
    monitoring=MonitoringConfig(evaluation_periods=1),
)
