"""The official Triton HTTP client talks to our server unchanged (JSON tensors)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from model_runtime.engine import Engine


@pytest.fixture(scope="module")
def client(server_url: str) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=server_url.removeprefix("http://"))
    yield client
    client.close()


def test_health(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("digits")
    assert not client.is_model_ready("no-such-model")


def test_model_metadata_matches_the_manifest(
    client: triton.InferenceServerClient, digits_engine: Engine
) -> None:
    metadata = client.get_model_metadata("digits")
    manifest = digits_engine.manifest
    assert metadata["name"] == "digits"
    assert metadata["versions"] == [manifest.version]
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    assert metadata["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "label", "datatype": "INT64", "shape": [-1]},
    ]


@pytest.mark.parametrize("batch", [1, 7, 32])
def test_infer_matches_the_engine(
    client: triton.InferenceServerClient,
    digits_engine: Engine,
    digits_images: np.ndarray,
    batch: int,
) -> None:
    images = digits_images[:batch]
    tensor = triton.InferInput("image", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images, binary_data=False)
    outputs = [
        triton.InferRequestedOutput("probabilities", binary_data=False),
        triton.InferRequestedOutput("label", binary_data=False),
    ]

    result = client.infer("digits", [tensor], outputs=outputs, request_id="req-1")

    expected = digits_engine.infer({"image": images})
    probabilities = result.as_numpy("probabilities")
    labels = result.as_numpy("label")
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (batch, 10)
    # JSON carries float32 exactly (repr round-trips), so the numbers are identical.
    np.testing.assert_array_equal(probabilities, expected["probabilities"])
    np.testing.assert_array_equal(labels, expected["label"])
    assert result.get_response()["id"] == "req-1"


def test_infer_one_requested_output(
    client: triton.InferenceServerClient, digits_engine: Engine, digits_images: np.ndarray
) -> None:
    images = digits_images[:3]
    tensor = triton.InferInput("image", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images, binary_data=False)

    result = client.infer(
        "digits", [tensor], outputs=[triton.InferRequestedOutput("label", binary_data=False)]
    )

    assert result.as_numpy("probabilities") is None
    np.testing.assert_array_equal(
        result.as_numpy("label"), digits_engine.infer({"image": images})["label"]
    )


def test_bad_request_surfaces_our_message(client: triton.InferenceServerClient) -> None:
    images = np.zeros((2, 1, 8, 7), dtype=np.float32)
    tensor = triton.InferInput("image", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images, binary_data=False)

    with pytest.raises(InferenceServerException) as caught:
        client.infer("digits", [tensor])

    assert caught.value.status() == "400"
    assert "dimension 3 must be 8" in caught.value.message()
