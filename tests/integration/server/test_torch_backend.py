"""The torch backend serving the trained digits model: the same answers as onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_runtime.backends import BackendOptions
from model_runtime.engine import Engine

TORCH = BackendOptions(backend="torch", device="cpu")


def test_torch_backend_matches_onnxruntime(digits_dir: Path, digits_images: np.ndarray) -> None:
    onnx = Engine.load(digits_dir)
    torch = Engine.load(digits_dir, options=TORCH)
    for size in (1, 7, 64):
        batch = {"image": digits_images[:size]}
        want, got = onnx.infer(batch), torch.infer(batch)
        np.testing.assert_array_equal(got["label"], want["label"])
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-5)
        assert got["probabilities"].dtype == np.float32


def test_torch_backend_in_bf16_answers_in_the_manifest_dtype(
    digits_dir: Path, digits_images: np.ndarray
) -> None:
    engine = Engine.load(digits_dir, options=BackendOptions("torch", "cpu", "bf16"))
    got = engine.infer({"image": digits_images[:32]})
    want = Engine.load(digits_dir).infer({"image": digits_images[:32]})
    assert got["probabilities"].dtype == np.float32
    # bf16 keeps 8 bits of mantissa: probabilities agree to ~1e-2, labels nearly always.
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=5e-2)
    assert np.mean(got["label"] == want["label"]) >= 0.9
