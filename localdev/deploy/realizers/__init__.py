"""Which resource types the engine realizes, and why the others are not emulated."""

from __future__ import annotations

from localdev.deploy.realizers import apigateway, cloudwatch, iam, lambda_, logs, s3, sns, sqs
from localdev.deploy.realizers.base import Realizer
from localdev.deploy.realizers.dynamic import TYPE_PREFIX, Dynamic

REALIZERS: dict[str, Realizer] = {
    realizer.type: realizer
    for module in (s3, iam, logs, lambda_, apigateway, sqs, cloudwatch, sns)
    for realizer in module.REALIZERS
}

# Type prefix -> why resources of it are declared but not emulated.
NOT_EMULATED: dict[str, str] = {
    "aws:appautoscaling/": "Application Auto Scaling is not in LocalStack community",
    "kubernetes:": "no Kubernetes cluster: GPU endpoints deploy with the Pulumi CLI",
}


def realizer_for(type_: str) -> Realizer | None:
    """The realizer of `type_`: its own, the dynamic resources' one, or None."""
    realizer = REALIZERS.get(type_)
    if realizer is None and type_.startswith(TYPE_PREFIX):
        return Dynamic(type_)
    return realizer


def stand_in_reason(stand_in: str) -> str:
    """Why a GPU endpoint's Kubernetes objects are not emulated on a stack that serves
    the model with a local process (`stand_in`, a LocalModelServer) instead."""
    return f"no Kubernetes cluster: served by a local process instead: {stand_in}"


def not_emulated_reason(type_: str) -> str | None:
    """None if the engine realizes `type_`; else why it is declared but not emulated."""
    if realizer_for(type_) is not None:
        return None
    for prefix, reason in NOT_EMULATED.items():
        if type_.startswith(prefix):
            return reason
    return "the in-process engine has no realizer for this type"
