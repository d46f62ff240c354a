"""One model server environment for the GPU endpoint's pods and for the local stand-in
(infra/server_env.py), and a GPU-served model under another name than its artifact's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.artifacts import load_artifact
from infra.errors import StackConfigError
from infra.evaluate import Evaluation
from infra.local_server import SHUTDOWN_TIMEOUT_S, preferred_port
from infra.server_env import server_environment
from infra.stack_loader import load_stack
from stacks.schema import GpuConfig, LambdaConfig, ModelConfig
from tests.support.project import write_artifact

GPU = GpuConfig(image="r/server:1.0", max_batch_size=16, max_batch_delay_ms=3)
LOCAL_SERVER = "pulumi-python:dynamic/inferstack:LocalModelServer"


def test_the_environment_is_the_servers_contract() -> None:
    assert server_environment(
        "digits", GPU, manifest_name="digits", port=8080, shutdown_timeout_s=50
    ) == {
        "INFERSTACK_PORT": "8080",
        "INFERSTACK_BACKEND": "onnxruntime",
        "INFERSTACK_DTYPE": "fp32",
        "INFERSTACK_MAX_BATCH_SIZE": "16",
        "INFERSTACK_MAX_DELAY_MS": "3",
        "INFERSTACK_SHUTDOWN_TIMEOUT_S": "50",
    }


def test_a_model_named_apart_from_its_artifact_is_served_under_its_own_name() -> None:
    environment = server_environment(
        "digits-gpu", GPU, manifest_name="digits", port=8080, shutdown_timeout_s=50
    )
    assert environment["INFERSTACK_MODEL_NAME"] == "digits-gpu"


def _env_of(deployment: Any) -> dict[str, str]:
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item["value"] for item in container["env"]}


def test_the_pods_and_the_local_process_get_the_same_server_settings(
    evaluations: dict[str, Evaluation],
) -> None:
    local = evaluations["local"]
    (model,) = load_stack("local").gpu_models
    assert model.gpu is not None and model.name == "digits-gpu"
    (deployment,) = local.of_type("kubernetes:apps/v1:Deployment")
    pods = _env_of(deployment)
    assert pods["INFERSTACK_MODEL_NAME"] == "digits-gpu"
    assert pods["MODEL_URI"] == local.outputs["modelUris"]["digits-gpu"]
    (server,) = local.of_type(LOCAL_SERVER)
    assert server.parent == local.named("inferstack-local-digits-gpu").urn
    assert server.inputs["standsIn"] == "inferstack-local-digits-gpu"
    assert server.inputs["environment"] == {
        **server_environment(
            "digits-gpu",
            model.gpu,
            manifest_name="digits",
            port=preferred_port("local", "digits-gpu"),
            shutdown_timeout_s=SHUTDOWN_TIMEOUT_S,
        ),
        "INFERSTACK_HOST": "127.0.0.1",
        "INFERSTACK_DEVICE": "cpu",
    }
    # The pods' settings, less where the model comes from and the port and drain time
    # (the cluster's and the process's own).
    own = {"MODEL_URI", "AWS_REGION", "INFERSTACK_PORT", "INFERSTACK_SHUTDOWN_TIMEOUT_S"}
    local_own = {"INFERSTACK_PORT", "INFERSTACK_SHUTDOWN_TIMEOUT_S", "INFERSTACK_HOST"}
    assert {k: v for k, v in pods.items() if k not in own} == {
        k: v
        for k, v in server.inputs["environment"].items()
        if k not in local_own | {"INFERSTACK_DEVICE"}
    }
    assert Path(server.inputs["modelDir"]).name == "digits"
    assert local.outputs["localServers"]["digits-gpu"]["url"].startswith("http://127.0.0.1:")


def test_only_a_gpu_served_model_may_be_named_apart_from_its_artifact(tmp_path: Path) -> None:
    write_artifact(tmp_path / "build" / "models" / "digits", "digits")
    served = load_artifact(
        tmp_path, ModelConfig(name="digits-gpu", artifact="build/models/digits", gpu=GPU)
    )
    assert (served.name, served.manifest.name) == ("digits-gpu", "digits")
    lambda_model = ModelConfig(
        name="digits-2", artifact="build/models/digits", lambda_=LambdaConfig()
    )
    with pytest.raises(StackConfigError, match="is named 'digits' in its manifest"):
        load_artifact(tmp_path, lambda_model)


def test_ports_are_stable_and_in_range() -> None:
    port = preferred_port("local", "digits-gpu")
    assert port == preferred_port("local", "digits-gpu")
    assert 20000 <= port <= 29999
    assert port != preferred_port("other", "digits-gpu")
