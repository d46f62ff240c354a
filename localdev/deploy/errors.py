"""What the deploy engine raises: each message names the stack, resource or setting."""


class DeployError(Exception):
    """A deploy problem the user can act on."""


class NotLocalStackError(DeployError):
    """The stack targets AWS: only the Pulumi CLI deploys there."""


class EndpointDownError(DeployError):
    """The stack's LocalStack endpoint does not answer."""
