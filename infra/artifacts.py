"""A model artifact on disk, checked before anything is deployed from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.errors import ArtifactMissingError, StackConfigError
from model_runtime.errors import ArtifactError
from model_runtime.manifest import MANIFEST_FILE, Manifest, verify_artifact
from stacks.schema import ModelConfig


@dataclass(frozen=True)
class Artifact:
    name: str
    directory: Path
    manifest: Manifest

    @property
    def key_prefix(self) -> str:
        """Content-addressed: a changed model gets new keys, an unchanged one the same."""
        return f"models/{self.name}/{self.manifest.content_hash()}"

    @property
    def files(self) -> list[str]:
        """Everything, for the bucket: GPU endpoints may serve the torch artifact too."""
        return [*sorted(self.manifest.files), MANIFEST_FILE]

    @property
    def layer_files(self) -> list[str]:
        """What a Lambda (onnxruntime) needs: no other backend's model in the layer."""
        return [*sorted(self.manifest.files_for("onnxruntime")), MANIFEST_FILE]


def load_artifact(root: Path, model: ModelConfig) -> Artifact:
    directory = root / model.artifact_dir
    if not (directory / MANIFEST_FILE).is_file():
        raise ArtifactMissingError(
            f"model {model.name!r}: no artifact at {directory} (expected {MANIFEST_FILE} there); "
            f"build it with `inferstack build {model.name}` or set the model's `artifact` path"
        )
    try:
        manifest = Manifest.load(directory)
        verify_artifact(directory, manifest)
    except ArtifactError as exc:
        raise ArtifactMissingError(f"model {model.name!r}: {exc}") from exc
    # A GPU-served model's server takes the name to serve under (INFERSTACK_MODEL_NAME);
    # a Lambda function serves its artifact under the manifest's name.
    if manifest.name != model.name and model.lambda_ is not None:
        raise StackConfigError(
            f"model {model.name!r}: the artifact at {directory} is named {manifest.name!r} in its "
            "manifest; the stack's model name must equal it (it is the name in /v2/models/{name})"
        )
    return Artifact(name=model.name, directory=directory, manifest=manifest)
