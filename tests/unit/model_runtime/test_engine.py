"""The Engine: loading, request validation against the manifest, running."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from model_build.export import export_model
from model_build.spec import ModelSpec
from model_runtime.engine import Engine, available_cpus, create_session
from model_runtime.errors import BatchTooLarge, InvalidInput


class SumAndNanCount(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return a + b, torch.isnan(a).sum(dim=1)


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-input model: `sum` = a + b, `nan_count` = NaNs per row of a."""
    rng = np.random.default_rng(0)
    spec = ModelSpec(
        name="pair",
        module=SumAndNanCount(),
        example_inputs={
            "a": rng.uniform(-1, 1, (2, 4)).astype(np.float32),
            "b": rng.uniform(-1, 1, (2, 4)).astype(np.float32),
        },
        output_names=["sum", "nan_count"],
        max_batch_size=8,
    )
    out = tmp_path_factory.mktemp("models") / "pair"
    export_model(spec, out)
    return out


@pytest.fixture(scope="module")
def pair_engine(pair_dir: Path) -> Engine:
    return Engine.load(pair_dir)


def _images(batch: int = 2) -> np.ndarray:
    return np.random.default_rng(batch).uniform(0, 1, (batch, 1, 8, 8)).astype(np.float32)


def test_infer_equals_the_raw_session(digits_engine: Engine, digits_images: np.ndarray) -> None:
    session = create_session(digits_engine.directory / "model.onnx")
    images = digits_images[:17]

    outputs = digits_engine.infer({"image": images})

    probabilities, labels = session.run(["probabilities", "label"], {"image": images})
    assert list(outputs) == ["probabilities", "label"]
    np.testing.assert_array_equal(outputs["probabilities"], probabilities)
    np.testing.assert_array_equal(outputs["label"], labels)
    assert outputs["label"].dtype == np.int64


def test_requested_outputs_only(digits_engine: Engine) -> None:
    outputs = digits_engine.infer({"image": _images()}, ["label"])
    assert list(outputs) == ["label"]


def test_predictions_are_real(digits_engine: Engine, digits_spec: ModelSpec) -> None:
    assert digits_spec.eval_data is not None
    images, labels = digits_spec.eval_data.inputs["image"][:200], digits_spec.eval_data.labels[:200]
    predicted = digits_engine.infer({"image": images}, ["label"])["label"]
    assert np.mean(predicted == labels) >= 0.95


def test_batch_at_the_limit_is_accepted(digits_engine: Engine) -> None:
    outputs = digits_engine.infer({"image": _images(256)})
    assert outputs["probabilities"].shape == (256, 10)


BAD_INPUTS = [
    pytest.param(
        {},
        InvalidInput,
        "missing input(s) 'image'; model 'digits' expects 'image' FP32 [-1, 1, 8, 8]",
        id="missing",
    ),
    pytest.param(
        {"image": _images(), "mask": _images()},
        InvalidInput,
        "unknown input(s) 'mask'",
        id="unknown",
    ),
    pytest.param(
        {"image": _images().astype(np.float64)},
        InvalidInput,
        "input 'image' has datatype FP64, model expects FP32",
        id="fp64",
    ),
    pytest.param(
        {"image": _images().astype(np.int32)},
        InvalidInput,
        "has datatype INT32, model expects FP32",
        id="int32",
    ),
    pytest.param(
        {"image": np.full((1, 1, 8, 8), "x", dtype=object)},
        InvalidInput,
        "has datatype BYTES, model expects FP32",
        id="bytes",
    ),
    pytest.param(
        {"image": _images()[:, 0]},
        InvalidInput,
        "input 'image' has shape [2, 8, 8] (rank 3), model expects rank 4",
        id="rank",
    ),
    pytest.param(
        {"image": _images()[..., :7]},
        InvalidInput,
        "has shape [2, 1, 8, 7], model expects [-1, 1, 8, 8] (dimension 3 must be 8)",
        id="fixed-dim",
    ),
    pytest.param(
        {"image": np.zeros((2, 3, 8, 8), np.float32)},
        InvalidInput,
        "(dimension 1 must be 1)",
        id="channels",
    ),
    pytest.param(
        {"image": _images(0)},
        InvalidInput,
        "input 'image' has an empty batch (shape [0, 1, 8, 8])",
        id="empty",
    ),
    pytest.param(
        {"image": _images(257)},
        BatchTooLarge,
        "input 'image' has batch 257, over this model's limit of 256",
        id="batch-limit",
    ),
]


@pytest.mark.parametrize(("inputs", "error", "message"), BAD_INPUTS)
def test_bad_input(
    digits_engine: Engine, inputs: dict[str, np.ndarray], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        digits_engine.infer(inputs)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_input(digits_engine: Engine, value: float) -> None:
    images = _images()
    images[1, 0, 3, 4] = value
    with pytest.raises(InvalidInput, match="input 'image' contains NaN or infinite values"):
        digits_engine.infer({"image": images})


def test_non_finite_output_is_the_clients_problem(digits_engine: Engine) -> None:
    images = np.full((1, 1, 8, 8), 3e38, np.float32)
    with pytest.raises(InvalidInput, match="output 'probabilities' is not finite"):
        digits_engine.infer({"image": images})


def test_unknown_output(digits_engine: Engine) -> None:
    with pytest.raises(
        InvalidInput,
        match=re.escape("unknown output(s) 'logits'; model 'digits' has 'probabilities', 'label'"),
    ):
        digits_engine.infer({"image": _images()}, ["label", "logits"])


def test_validate_returns_the_feed(digits_engine: Engine) -> None:
    images = _images()
    feed = digits_engine.validate({"image": images})
    assert list(feed) == ["image"]
    assert feed["image"] is images


def test_inputs_must_agree_on_batch(pair_engine: Engine) -> None:
    a = np.zeros((2, 4), np.float32)
    b = np.zeros((3, 4), np.float32)
    with pytest.raises(InvalidInput, match="inputs disagree on batch size: 2 vs 3 for 'b'"):
        pair_engine.infer({"a": a, "b": b})


def test_missing_one_of_two_inputs(pair_engine: Engine) -> None:
    with pytest.raises(
        InvalidInput,
        match=re.escape(
            "missing input(s) 'b'; model 'pair' expects 'a' FP32 [-1, 4], 'b' FP32 [-1, 4]"
        ),
    ):
        pair_engine.infer({"a": np.zeros((1, 4), np.float32)})


def test_two_inputs_run(pair_engine: Engine) -> None:
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.ones((2, 4), np.float32)
    outputs = pair_engine.infer({"a": a, "b": b})
    np.testing.assert_array_equal(outputs["sum"], a + b)
    np.testing.assert_array_equal(outputs["nan_count"], [0, 0])


def test_manifest_may_allow_non_finite_inputs(pair_engine: Engine, pair_dir: Path) -> None:
    a = np.array([[np.nan, 1, np.inf, np.nan]], np.float32)
    b = np.zeros((1, 4), np.float32)
    with pytest.raises(InvalidInput, match="input 'a' contains NaN"):
        pair_engine.infer({"a": a, "b": b}, ["nan_count"])

    lenient = Engine(
        pair_engine.manifest.model_copy(update={"allow_non_finite": True}),
        create_session(pair_dir / "model.onnx"),
        pair_dir,
    )
    assert lenient.infer({"a": a, "b": b}, ["nan_count"])["nan_count"].tolist() == [2]


def test_session_is_sized_for_the_host(digits_dir: Path) -> None:
    session = create_session(digits_dir / "model.onnx")
    assert session.get_session_options().intra_op_num_threads == available_cpus()
    assert session.get_providers() == ["CPUExecutionProvider"]
    engine = Engine.load(digits_dir, threads=1)
    assert engine._session.get_session_options().intra_op_num_threads == 1


def test_available_cpus_respects_affinity() -> None:
    import os

    assert available_cpus() == len(os.sched_getaffinity(0))
