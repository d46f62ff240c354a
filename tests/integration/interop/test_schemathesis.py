"""Property-based fuzzing of the app from its own OpenAPI schema: no input makes a 5xx."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from model_runtime.app import create_app
from model_runtime.datatypes import NUMPY_DTYPES
from model_runtime.engine import Engine

EXAMPLES_PER_OPERATION = 250
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Most generated requests name the served model and its input, so they get past the
# 404 and reach decoding and the Engine's validation; the rest stay random.
CONFIG = schemathesis.Config.from_dict(
    {
        "dictionaries": {
            "models": {"values": ["digits"]},
            "versions": {"values": ["1"]},
            "inputs": {"values": ["image"]},
            "outputs": {"values": ["probabilities", "label"]},
            "datatypes": {"values": ["FP32"]},
        },
        "parameters": {
            "path.model_name": {"dictionary": "models", "probability": 0.8},
            "path.model_version": {"dictionary": "versions", "probability": 0.8},
            "body.inputs[*].name": {"dictionary": "inputs", "probability": 0.8},
            "body.inputs[*].datatype": {"dictionary": "datatypes", "probability": 0.5},
            "body.outputs[*].name": {"dictionary": "outputs", "probability": 0.8},
        },
    }
)

# The schema does not depend on the models served, so it is loaded at collection time
# from a model-less app; the requests go to an app serving the digits model.
# (schemathesis.pytest.from_fixture would avoid this, but it breaks on pytest 9.)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app([]), config=CONFIG)


@pytest.fixture(scope="module")
def digits_app(digits_engine: Engine) -> FastAPI:
    return create_app([digits_engine])


def test_schema_is_the_served_apps(digits_app: FastAPI) -> None:
    assert digits_app.openapi() == create_app([]).openapi()
    paths = {operation.ok().path for operation in schema.get_all_operations()}
    assert {"/v2/models/{model_name}", "/v2/models/{model_name}/infer"} <= paths


def errors_are_json_that_names_the_problem(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    if response.status_code < 400:
        return
    body = json.loads(response.content)
    assert list(body) == ["error"], body
    assert isinstance(body["error"], str) and body["error"], body


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_server_errors(case: schemathesis.Case, digits_app: FastAPI) -> None:
    response = case.call(app=digits_app)
    case.validate_response(
        response, checks=[not_a_server_error, errors_are_json_that_names_the_problem]
    )


# Schema-driven bodies rarely have the right shape; these are nearly valid requests, so
# that the Engine's checks and the model itself see odd shapes, datatypes and values.
_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)


@st.composite
def _near_valid_input(draw: st.DrawFn) -> dict[str, Any]:
    shape = draw(
        st.one_of(
            st.integers(0, 3).map(lambda batch: [batch, 1, 8, 8]),
            st.lists(st.integers(0, 4), max_size=5),
        )
    )
    size = max(int(np.prod(shape)) + draw(st.sampled_from([0, 0, 0, 0, 1, -1])), 0)
    odd = draw(st.integers(0, 3)) == 0
    element = _values if odd else st.floats(0, 1, width=32)
    data: list[Any] = draw(st.lists(element, min_size=size, max_size=size))
    if shape and size == np.prod(shape) and draw(st.booleans()):
        data = np.array(data, dtype=object).reshape(shape).tolist()
    return {
        "name": draw(st.sampled_from(["image", "image", "image", "x"])),
        "datatype": draw(st.sampled_from(["FP32"] * 4 + list(NUMPY_DTYPES))),
        "shape": shape,
        "data": data,
    }


def _name(tensor: dict[str, Any]) -> str:
    return str(tensor["name"])


_near_valid_request = st.fixed_dictionaries(
    {"inputs": st.lists(_near_valid_input(), min_size=1, max_size=2, unique_by=_name)},
    optional={
        "outputs": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["label", "probabilities", "z"])}),
            max_size=2,
            unique_by=_name,
        ),
        "parameters": st.dictionaries(st.text(max_size=3), _values, max_size=2),
    },
)


@FUZZ_SETTINGS
@given(request=_near_valid_request)
def test_nearly_valid_requests_never_5xx(request: dict[str, Any], digits_app: FastAPI) -> None:
    with TestClient(digits_app, raise_server_exceptions=False) as client:
        response = client.post("/v2/models/digits/infer", json=request)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert list(response.json()) == ["error"]
