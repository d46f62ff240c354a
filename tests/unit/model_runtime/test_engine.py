"""The Engine: loading, request validation against the manifest, running."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.engine import Engine
from model_runtime.errors import BatchTooLarge, InvalidInput
from model_runtime.host import available_cpus
from tests.support.tiny_model import MAX_BATCH_SIZE, build_pair_model, reference_outputs


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-input model: `sum` = a + b, `nan_count` = NaNs per row of a."""
    return build_pair_model(tmp_path_factory.mktemp("models") / "pair")


@pytest.fixture(scope="module")
def pair_engine(pair_dir: Path) -> Engine:
    return Engine.load(pair_dir)


def _images(batch: int = 2) -> np.ndarray:
    return np.random.default_rng(batch).uniform(0, 1, (batch, 1, 8, 8)).astype(np.float32)


def test_infer_equals_the_raw_session(tiny_engine: Engine, tiny_inputs: np.ndarray) -> None:
    session = create_session(tiny_engine.directory / "model.onnx")
    images = tiny_inputs[:17]

    outputs = tiny_engine.infer({"image": images})

    probabilities, labels = session.run(["probabilities", "label"], {"image": images})
    assert list(outputs) == ["probabilities", "label"]
    np.testing.assert_array_equal(outputs["probabilities"], probabilities)
    np.testing.assert_array_equal(outputs["label"], labels)
    assert outputs["label"].dtype == np.int64
    # And what the graph computes: the answers are right, not only the same.
    expected = reference_outputs(images)
    np.testing.assert_array_equal(outputs["label"], expected["label"])
    np.testing.assert_allclose(
        outputs["probabilities"], expected["probabilities"], rtol=1e-5, atol=1e-7
    )


def test_requested_outputs_only(tiny_engine: Engine) -> None:
    outputs = tiny_engine.infer({"image": _images()}, ["label"])
    assert list(outputs) == ["label"]


def test_batch_at_the_limit_is_accepted(tiny_engine: Engine) -> None:
    outputs = tiny_engine.infer({"image": _images(MAX_BATCH_SIZE)})
    assert outputs["probabilities"].shape == (MAX_BATCH_SIZE, 10)


BAD_INPUTS = [
    pytest.param(
        {},
        InvalidInput,
        "missing input(s) 'image'; model 'tiny' expects 'image' FP32 [-1, 1, 8, 8]",
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
        {"image": _images(MAX_BATCH_SIZE + 1)},
        BatchTooLarge,
        f"input 'image' has batch {MAX_BATCH_SIZE + 1}, over this model's limit"
        f" of {MAX_BATCH_SIZE}",
        id="batch-limit",
    ),
]


@pytest.mark.parametrize(("inputs", "error", "message"), BAD_INPUTS)
def test_bad_input(
    tiny_engine: Engine, inputs: dict[str, np.ndarray], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        tiny_engine.infer(inputs)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_input(tiny_engine: Engine, value: float) -> None:
    images = _images()
    images[1, 0, 3, 4] = value
    with pytest.raises(InvalidInput, match="input 'image' contains NaN or infinite values"):
        tiny_engine.infer({"image": images})


def test_non_finite_output_is_the_clients_problem(tiny_engine: Engine) -> None:
    images = np.full((1, 1, 8, 8), 3e38, np.float32)
    with pytest.raises(InvalidInput, match="output 'probabilities' is not finite"):
        tiny_engine.infer({"image": images})


def test_unknown_output(tiny_engine: Engine) -> None:
    with pytest.raises(
        InvalidInput,
        match=re.escape("unknown output(s) 'logits'; model 'tiny' has 'probabilities', 'label'"),
    ):
        tiny_engine.infer({"image": _images()}, ["label", "logits"])


def test_validate_returns_the_feed(tiny_engine: Engine) -> None:
    images = _images()
    feed = tiny_engine.validate({"image": images})
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


def test_session_is_sized_for_the_host(tiny_dir: Path) -> None:
    session = create_session(tiny_dir / "model.onnx")
    assert session.get_session_options().intra_op_num_threads == available_cpus()
    assert session.get_providers() == ["CPUExecutionProvider"]
    engine = Engine.load(tiny_dir, threads=1)
    assert engine._session.session.get_session_options().intra_op_num_threads == 1


def test_available_cpus_respects_affinity() -> None:
    import os

    assert available_cpus() == len(os.sched_getaffinity(0))
