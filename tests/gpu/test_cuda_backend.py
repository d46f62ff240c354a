"""The torch backend on CUDA: correctness, batching, fp16/bf16 parity, the real server.

Stated tolerances, against onnxruntime fp32 on CPU over 256 held-out digits:
- fp32 on CUDA: probabilities within 1e-3 (cuDNN may run convolutions in TF32), labels
  agree on >= 99.5 % (only near-ties may flip).
- fp16: probabilities within 1e-2, labels agree on >= 99 %.
- bf16: probabilities within 5e-2, labels agree on >= 98 %.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_runtime.backends import BackendOptions, Precision
from model_runtime.batcher import BatchingConfig, DynamicBatcher
from model_runtime.engine import Engine
from tests.support.server import infer_body, outputs_of, request

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

TOLERANCES = {"fp32": (1e-3, 0.995), "fp16": (1e-2, 0.99), "bf16": (5e-2, 0.98)}


@pytest.fixture(scope="module")
def images(digits_images: np.ndarray) -> np.ndarray:
    return digits_images[:256]  # the model's max batch


@pytest.fixture(scope="module")
def reference(digits_dir: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    return Engine.load(digits_dir).infer({"image": images})


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_cuda_parity_with_onnxruntime(
    dtype: Precision, digits_dir: Path, images: np.ndarray, reference: dict[str, np.ndarray]
) -> None:
    engine = Engine.load(digits_dir, options=BackendOptions("torch", "cuda", dtype))
    got = engine.infer({"image": images})
    atol, agreement = TOLERANCES[dtype]
    error = float(np.abs(got["probabilities"] - reference["probabilities"]).max())
    agree = float(np.mean(got["label"] == reference["label"]))
    print(f"\n{dtype} on CUDA: max abs error {error:.2e}, label agreement {agree:.4f}")
    assert got["probabilities"].dtype == np.float32
    assert error <= atol
    assert agree >= agreement


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_batched_equals_unbatched_on_cuda(
    dtype: Precision, digits_dir: Path, digits_images: np.ndarray
) -> None:
    engine = Engine.load(digits_dir, options=BackendOptions("torch", "cuda", dtype))
    sizes = [1, 3, 2, 5, 1, 4, 1, 2, 7, 1, 1, 3] * 4
    bounds = list(itertools.accumulate(sizes, initial=0))
    requests = [digits_images[a:b] for a, b in itertools.pairwise(bounds)]

    async def main() -> list[Any]:
        batcher = DynamicBatcher(engine, BatchingConfig(max_batch_size=32, max_delay_ms=20))
        results = await asyncio.gather(*(batcher.infer({"image": r}) for r in requests))
        await batcher.close()
        return [outputs for outputs, _ in results]

    # Different batch sizes may pick different kernels: equal up to float rounding.
    atol = 1e-5 if dtype == "fp32" else 2e-3
    for request_images, batched in zip(requests, asyncio.run(main()), strict=True):
        alone = engine.infer({"image": request_images})
        np.testing.assert_allclose(batched["probabilities"], alone["probabilities"], atol=atol)
        close = np.sort(alone["probabilities"], axis=1)[:, -2:]
        decided = close[:, 1] - close[:, 0] > 2 * atol  # labels of near-ties may flip
        np.testing.assert_array_equal(batched["label"][decided], alone["label"][decided])


def test_server_on_cuda_in_fp16(
    start_server: Any, digits_dir: Path, digits_images: np.ndarray
) -> None:
    server = start_server(
        {
            "MODEL_DIR": str(digits_dir),
            "INFERSTACK_BACKEND": "torch",
            "INFERSTACK_DEVICE": "cuda",
            "INFERSTACK_DTYPE": "fp16",
            "INFERSTACK_MAX_BATCH_SIZE": "64",
            "INFERSTACK_MAX_DELAY_MS": "10",
        }
    )
    engine = Engine.load(digits_dir, options=BackendOptions("torch", "cuda", "fp16"))
    sizes = [1, 2, 4, 1, 3, 8, 1, 1] * 4
    bounds = list(itertools.accumulate(sizes, initial=0))

    async def burst() -> list[tuple[int, bytes]]:
        return list(
            await asyncio.gather(
                *(
                    request(
                        server.port,
                        "POST",
                        "/v2/models/digits/infer",
                        infer_body({"image": digits_images[a:b]}),
                    )
                    for a, b in itertools.pairwise(bounds)
                )
            )
        )

    for (status, body), (a, b) in zip(
        asyncio.run(burst()), itertools.pairwise(bounds), strict=True
    ):
        assert status == 200
        got = outputs_of(body)
        alone = engine.infer({"image": digits_images[a:b]})
        np.testing.assert_allclose(got["probabilities"], alone["probabilities"], atol=2e-3)
    metrics = server.metrics()
    assert metrics["inferstack_batch_size_sum"] >= sum(sizes)
    assert metrics["inferstack_batch_size_count"] < len(sizes)  # requests shared batches
