"""The model server's environment (model_runtime/server.py's contract) for a GPU-served
model: one builder for the Kubernetes Deployment and the local stand-in process, so that
both run the server configured alike. Where the model comes from (MODEL_URI on the
cluster, MODEL_DIR locally) and the cloud settings are the caller's."""

from __future__ import annotations

from stacks.schema import GpuConfig


def server_environment(
    model: str,
    config: GpuConfig,
    *,
    manifest_name: str,
    port: int,
    shutdown_timeout_s: int,
) -> dict[str, str]:
    """The server's variables for `model` (the name it is served under), whose artifact's
    manifest names it `manifest_name`."""
    environment = {
        "INFERSTACK_PORT": str(port),
        "INFERSTACK_BACKEND": config.backend,
        "INFERSTACK_DTYPE": config.dtype,
        "INFERSTACK_MAX_BATCH_SIZE": str(config.max_batch_size),
        "INFERSTACK_MAX_DELAY_MS": str(config.max_batch_delay_ms),
        "INFERSTACK_SHUTDOWN_TIMEOUT_S": str(shutdown_timeout_s),
    }
    if model != manifest_name:
        environment["INFERSTACK_MODEL_NAME"] = model
    return environment
