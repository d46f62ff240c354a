"""Deploying stacks: `up`, `down`, `status` and `preview` with the in-process engine (LocalStack,
no Pulumi CLI needed), or through the Pulumi CLI's Automation API where it is installed."""

from localdev.deploy.engine import StackStatus, Summary, down, preview, status, up
from localdev.errors import DeployError, EndpointDownError, NotLocalStackError

__all__ = [
    "DeployError",
    "EndpointDownError",
    "NotLocalStackError",
    "StackStatus",
    "Summary",
    "down",
    "preview",
    "status",
    "up",
]
