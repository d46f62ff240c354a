"""Which resource types the engine realizes, and why the others are not emulated."""

from __future__ import annotations

from localdev.deploy.realizers import apigateway, cloudwatch, iam, lambda_, logs, s3, sns, sqs
from localdev.deploy.realizers.base import Realizer

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


def not_emulated_reason(type_: str) -> str | None:
    """None if the engine realizes `type_`; else why it is declared but not emulated."""
    if type_ in REALIZERS:
        return None
    for prefix, reason in NOT_EMULATED.items():
        if type_.startswith(prefix):
            return reason
    return "the in-process engine has no realizer for this type"
