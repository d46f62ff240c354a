"""Kubernetes objects as a Pulumi program under mocks registered them.

Each registered Kubernetes resource's inputs are the manifest pulumi-kubernetes would
apply; `manifest()` gives it as YAML would hold it.
"""

from __future__ import annotations

import copy
from typing import Any

from infra.evaluate import Evaluation, Registered


def manifest(resource: Registered) -> dict[str, Any]:
    """The object as YAML would hold it: the mock wire format carries every number as a
    float (protobuf Struct), which a schema's `integer` rejects."""

    def ints(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {key: ints(item) for key, item in value.items()}
        if isinstance(value, list):
            return [ints(item) for item in value]
        return value

    rendered: dict[str, Any] = ints(copy.deepcopy(resource.inputs))
    return rendered


def kubernetes_objects(evaluation: Evaluation) -> list[Registered]:
    return [r for r in evaluation.resources if r.type.startswith("kubernetes:")]


def one(evaluation: Evaluation, type_: str) -> dict[str, Any]:
    (resource,) = evaluation.of_type(type_)
    return manifest(resource)
