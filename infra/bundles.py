"""What goes into the Lambda function and its layers, as Pulumi archives.

The one place to swap for the packaging issue's builders (deterministic, size-checked
zips). Until then: the function is a plain archive of the `functions/` and
`model_runtime/` sources, the model layer is the artifact's listed files, and the runtime
layer is a directory built elsewhere (`python/` with the runtime's dependencies).
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from infra.artifacts import Artifact
from infra.errors import ArtifactMissingError

HANDLER = "functions.handler.handler"
CODE_PACKAGES = ("functions", "model_runtime")
# Layers are extracted under /opt, so the model lands in /opt/models/<name>.
MODEL_MOUNT = "/opt/models"


def function_code(root: Path) -> pulumi.AssetArchive:
    # Source files only, listed one by one: a FileArchive of the directory would also pick
    # up __pycache__, whose bytes change between machines and would redeploy every time.
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {}
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                assets[path.relative_to(root).as_posix()] = pulumi.FileAsset(str(path))
    if not assets:
        raise ArtifactMissingError(
            f"no Lambda code found under {root} ({', '.join(CODE_PACKAGES)})"
        )
    return pulumi.AssetArchive(assets)


def model_layer(artifact: Artifact) -> pulumi.AssetArchive:
    return pulumi.AssetArchive(
        {
            f"models/{artifact.name}/{name}": pulumi.FileAsset(str(artifact.directory / name))
            for name in artifact.layer_files
        }
    )


def model_dir(name: str) -> str:
    return f"{MODEL_MOUNT}/{name}"


def runtime_layer_dir(root: Path, runtime: str, architecture: str) -> Path:
    return root / "build" / "layers" / f"runtime-{runtime}-{architecture}"


def runtime_layer(root: Path, runtime: str, architecture: str) -> pulumi.FileArchive:
    directory = runtime_layer_dir(root, runtime, architecture)
    if not (directory / "python").is_dir():
        raise ArtifactMissingError(
            f"the {runtime}/{architecture} runtime layer is not built: expected {directory}/python "
            "(the model runtime's dependencies as manylinux wheels for that runtime)"
        )
    return pulumi.FileArchive(str(directory))
