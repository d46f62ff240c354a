"""A declared model as the estimate sees it: its function's memory, architecture and
provisioned minimum, its GPU replicas, and its artifact's bytes in the bucket."""

from __future__ import annotations

from pathlib import Path

from model_runtime.manifest import MANIFEST_FILE, Manifest
from pricing.estimate import GpuUsage, LambdaUsage, ModelUsage
from pricing.latency import WarmLatency, warm_latency
from stacks.schema import GpuConfig, ModelConfig

NOT_NEEDED = WarmLatency(None, "not needed: no Lambda function")


def usage_of(
    model: ModelConfig, root: Path, deployed: WarmLatency | None, twin: ModelConfig | None = None
) -> ModelUsage:
    """`deployed`: CloudWatch's latency for the model, when the stack is deployed; `twin`:
    the stack's GPU-served model of the same artifact (see `gpu_twins`)."""
    function = model.lambda_
    return ModelUsage(
        name=model.name,
        latency=NOT_NEEDED if function is None else warm_latency(model.name, root, deployed),
        artifact_bytes=artifact_bytes(root / model.artifact_dir),
        lambda_=None
        if function is None
        else LambdaUsage(
            memory_mb=function.memory_mb,
            architecture=function.architecture,
            provisioned_min=function.provisioned.min if function.provisioned else 0,
        ),
        gpu=None if model.gpu is None else _gpu_usage(model.gpu),
        gpu_twin=None if twin is None or twin.gpu is None else (twin.name, _gpu_usage(twin.gpu)),
    )


def gpu_twins(models: list[ModelConfig]) -> dict[str, ModelConfig]:
    """Lambda model name -> the GPU-served model serving the same artifact (a model has one
    backend, so the same model on both is two names), to compare their costs."""
    served = {m.artifact_dir: m for m in models if m.gpu is not None and m.lambda_ is None}
    return {
        m.name: served[m.artifact_dir]
        for m in models
        if m.lambda_ is not None and m.artifact_dir in served
    }


def _gpu_usage(gpu: GpuConfig) -> GpuUsage:
    return GpuUsage(min_replicas=gpu.min_replicas, gpus_per_replica=gpu.gpus_per_replica)


def artifact_bytes(directory: Path) -> int | None:
    """What the artifact bucket holds for the model: every file the manifest lists, and the
    manifest (infra/artifacts.py uploads all of them); None when it is not built."""
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        return None
    manifest = Manifest.load(directory)
    return sum(entry.size for entry in manifest.files.values()) + manifest_path.stat().st_size
