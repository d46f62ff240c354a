"""One backend per model on the API: a model declares lambda_ or gpu, not both."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stacks.schema import GpuConfig, LambdaConfig, ModelConfig


def test_a_model_with_lambda_and_gpu_is_refused_naming_it_and_the_way_out() -> None:
    with pytest.raises(ValidationError) as caught:
        ModelConfig(name="digits", lambda_=LambdaConfig(), gpu=GpuConfig(image="r/gpu:1"))
    (error,) = caught.value.errors()
    assert error["msg"] == (
        "models[digits]: declare lambda_ or gpu, not both: /v2/models/digits goes to one"
        " backend; serve the other under another name, e.g. ModelConfig(name='digits-gpu',"
        " artifact='build/models/digits', gpu=...)"
    )


def test_either_alone_is_fine() -> None:
    assert ModelConfig(name="digits", lambda_=LambdaConfig()).gpu is None
    gpu = ModelConfig(
        name="digits-gpu", artifact="build/models/digits", gpu=GpuConfig(image="r/gpu:1")
    )
    assert gpu.lambda_ is None and gpu.artifact_dir == "build/models/digits"
