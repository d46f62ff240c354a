"""The packaged function, run as Lambda would run it: function zip in var/task, layers
in opt, pyenv's python3.12 in isolated mode with only those on sys.path, HOME
read-only, writes only under tmp. Its answers must be the in-process Engine's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from layers.archive import Built
from layers.function import build_function_zip
from layers.model import build_model_layer
from layers.package import package, project_root
from layers.targets import Target
from localdev.lambda_runner import (
    Invocation,
    LambdaTree,
    api_gateway_event,
    invoke,
    response_json,
)
from model_runtime.engine import Engine

TARGET = Target.of("python3.12", "x86_64")


def lambda_tree(root: Path, cache_dir: Path, runtime_layer: Built, model_dir: Path) -> LambdaTree:
    function = build_function_zip(TARGET, project_root(), cache_dir)
    model = build_model_layer(model_dir, cache_dir)
    return LambdaTree.extract(root, function.path, [runtime_layer.path, model.path])


def infer_event(
    model: str, name: str, datatype: str, data: Any, shape: list[int]
) -> dict[str, Any]:
    body = {"inputs": [{"name": name, "datatype": datatype, "shape": shape, "data": data}]}
    return api_gateway_event("POST", f"/v2/models/{model}/infer", body)


def assert_nothing_pruned_was_wanted(invocation: Invocation, runtime_layer: Built) -> None:
    """An import that found nothing must not be one the layer build removed."""
    removed = set(runtime_layer.info["pruned_modules"]) | set(
        runtime_layer.info["excluded_modules"]
    )
    wanted = {name for missing in invocation.missing_imports for name in _parents(missing)}
    assert not wanted & removed, sorted(wanted & removed)


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@pytest.fixture(scope="module")
def digits_run(
    tmp_path_factory: pytest.TempPathFactory,
    cache_dir: Path,
    runtime_layer: Built,
    digits_dir: Path,
    digits_images: np.ndarray,
    python312: Path,
) -> Invocation:
    tree = lambda_tree(
        tmp_path_factory.mktemp("lambda") / "digits", cache_dir, runtime_layer, digits_dir
    )
    images = digits_images[:5]
    events = [
        infer_event("digits", "image", "FP32", images.ravel().tolist(), list(images.shape)),
        api_gateway_event("GET", "/v2/health/ready"),
        infer_event("digits", "image", "FP32", [float("nan")] * 64, [1, 1, 8, 8]),
    ]
    return invoke(tree, python312, events, {"MODEL_URI": str(tree.opt / "models" / "digits")})


def test_digits_prediction_equals_the_in_process_engine(
    digits_run: Invocation, digits_engine: Engine, digits_images: np.ndarray
) -> None:
    response = digits_run.responses[0]
    assert response["statusCode"] == 200, response
    outputs = {o["name"]: o for o in response_json(response)["outputs"]}
    expected = digits_engine.infer({"image": digits_images[:5]})
    probabilities = np.reshape(outputs["probabilities"]["data"], outputs["probabilities"]["shape"])
    np.testing.assert_allclose(probabilities, expected["probabilities"], rtol=1e-5, atol=1e-7)
    assert outputs["label"]["data"] == expected["label"].tolist()


def test_digits_run_is_isolated_and_lean(digits_run: Invocation, runtime_layer: Built) -> None:
    assert digits_run.responses[1]["statusCode"] == 200
    assert digits_run.responses[2]["statusCode"] == 400  # NaN: a client error, not a 500
    loaded = {name.split(".")[0] for name in digits_run.loaded_from_opt}
    assert {"onnxruntime", "numpy", "fastapi", "pydantic", "mangum"} <= loaded
    # A model without a tokenizer never pays for importing one.
    assert "tokenizers" not in loaded
    assert_nothing_pruned_was_wanted(digits_run, runtime_layer)
    # onnxruntime did not try to persist telemetry under the read-only HOME.
    assert "telemetry" not in digits_run.stderr


def test_read_only_mounts_when_root(digits_run: Invocation) -> None:
    import os

    # As root the tree is really mounted read-only; either way `invoke` has already
    # checked that nothing outside tmp changed.
    if os.geteuid() == 0:
        assert digits_run.read_only_mounts


@pytest.fixture(scope="module")
def minilm_run(
    tmp_path_factory: pytest.TempPathFactory,
    cache_dir: Path,
    runtime_layer: Built,
    minilm_int8_dir: Path,
    python312: Path,
) -> Invocation:
    root = tmp_path_factory.mktemp("lambda") / "minilm"
    tree = lambda_tree(root, cache_dir, runtime_layer, minilm_int8_dir)
    texts = ["A man is eating food.", "How do I reset my password?", "word " * 400]
    events = [
        infer_event("minilm-int8", "text", "BYTES", texts, [3]),
        infer_event("minilm-int8", "text", "BYTES", ["fine", ""], [2]),
    ]
    return invoke(tree, python312, events, {"MODEL_URI": str(tree.opt / "models" / "minilm-int8")})


def test_minilm_embeddings_equal_the_in_process_engine(
    minilm_run: Invocation, minilm_int8_dir: Path
) -> None:
    response = minilm_run.responses[0]
    assert response["statusCode"] == 200, response
    body = response_json(response)
    texts = ["A man is eating food.", "How do I reset my password?", "word " * 400]
    expected = Engine.load(minilm_int8_dir).infer({"text": np.array(texts, dtype=object)})
    np.testing.assert_allclose(
        np.reshape(body["outputs"][0]["data"], (3, 384)), expected["embedding"], atol=1e-6
    )
    assert body["parameters"]["truncated"] is True
    assert body["parameters"]["truncated_items"] == "2"


def test_minilm_bad_text_is_a_400_and_tokenizers_came_from_the_layer(
    minilm_run: Invocation, runtime_layer: Built
) -> None:
    assert minilm_run.responses[1]["statusCode"] == 400
    assert "item 1 is empty" in response_json(minilm_run.responses[1])["error"]
    assert any(name.startswith("tokenizers") for name in minilm_run.loaded_from_opt)
    assert_nothing_pruned_was_wanted(minilm_run, runtime_layer)


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_package_prints_the_size_table_for_both_models(
    arch: str, digits_dir: Path, minilm_int8_dir: Path, cache_dir: Path
) -> None:
    for model_dir in (digits_dir, minilm_int8_dir):
        result = package(model_dir, "python3.12", arch, cache_dir=cache_dir)
        table = result.budget.table()
        assert result.budget.ok and result.model_uri == f"/opt/models/{model_dir.name}"
        for part in ("function code", f"runtime-python3.12-{arch}", f"model-{model_dir.name}"):
            assert part in table
    s3 = package(minilm_int8_dir, "python3.12", arch, "s3", cache_dir=cache_dir)
    assert s3.model_layer is None and s3.s3_objects and s3.budget.layers == 1
    assert s3.model_uri.startswith("s3://<bucket>/models/minilm-int8/")
