"""What localdev raises; each message is one line naming the stack, resource or setting."""


class LocalStackError(Exception):
    """A LocalStack problem the user can act on (install, start, stop, a taken port)."""


class DeployError(Exception):
    """A deploy problem the user can act on."""


class NotLocalStackError(DeployError):
    """The stack targets AWS: only the Pulumi CLI deploys there."""


class EndpointDownError(DeployError):
    """The stack's LocalStack endpoint does not answer."""


class ServerProcessError(Exception):
    """A local server process exited, was not ready in time, or answered an error."""
