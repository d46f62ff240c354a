"""A declared model as the estimate sees it, and its artifact's bytes in the bucket."""

from __future__ import annotations

import shutil
from pathlib import Path

from model_runtime.manifest import Manifest
from pricing.latency import from_cloudwatch
from pricing.usage import NOT_NEEDED, artifact_bytes, usage_of
from stacks.schema import GpuConfig, LambdaConfig, ModelConfig, ProvisionedConcurrency


def test_artifact_bytes_are_the_manifests_files_and_the_manifest(
    tiny_dir: Path, tmp_path: Path
) -> None:
    manifest = Manifest.load(tiny_dir)
    listed = sum(entry.size for entry in manifest.files.values())
    assert listed > 0
    assert artifact_bytes(tiny_dir) == listed + (tiny_dir / "manifest.json").stat().st_size
    assert artifact_bytes(tmp_path / "not-built") is None


def test_usage_of_a_declared_model(tiny_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_dir, tmp_path / "build" / "models" / "tiny")
    model = ModelConfig(
        name="tiny",
        lambda_=LambdaConfig(
            memory_mb=2048,
            architecture="arm64",
            reserved_concurrency=10,
            provisioned=ProvisionedConcurrency(min=3, max=5),
        ),
    )
    deployed = from_cloudwatch(7.0, "fn", 24)
    usage = usage_of(model, tmp_path, deployed)
    assert usage.latency == deployed
    assert usage.artifact_bytes == artifact_bytes(tiny_dir)
    assert usage.lambda_ is not None
    assert (usage.lambda_.memory_mb, usage.lambda_.architecture) == (2048, "arm64")
    assert usage.lambda_.provisioned_min == 3
    assert usage.gpu is None


def test_a_gpu_only_model_needs_no_latency(tmp_path: Path) -> None:
    model = ModelConfig(
        name="tiny", gpu=GpuConfig(image="r/gpu:1", min_replicas=2, gpus_per_replica=2)
    )
    usage = usage_of(model, tmp_path, None)
    assert usage.latency == NOT_NEEDED
    assert usage.lambda_ is None
    assert usage.artifact_bytes is None
    assert usage.gpu is not None
    assert (usage.gpu.min_replicas, usage.gpu.gpus_per_replica) == (2, 2)
