"""The real digits model through the Engine: its predictions are the held-out labels."""

from __future__ import annotations

import numpy as np

from model_build.spec import ModelSpec
from model_runtime.engine import Engine


def test_predictions_are_real(digits_engine: Engine, digits_spec: ModelSpec) -> None:
    assert digits_spec.eval_data is not None
    images, labels = digits_spec.eval_data.inputs["image"][:200], digits_spec.eval_data.labels[:200]
    predicted = digits_engine.infer({"image": images}, ["label"])["label"]
    assert np.mean(predicted == labels) >= 0.95
