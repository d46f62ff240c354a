"""What goes into each Lambda function and its layers: the zips the layers/ builders made.

The program only looks the zips up (deterministic, content-addressed, under
build/package/); it never builds them, so a `pulumi up` needs no pip and no network.
`inferstack up` (or `inferstack package`) builds them first. A zip that is not built
for the current sources, or a function whose code and layers exceed Lambda's limits,
stops the program before it declares anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi

from infra.artifacts import Artifact
from infra.errors import ArtifactMissingError, PackageBudgetError
from layers.budget import Budget
from layers.errors import BudgetError, NotBuiltError
from layers.model import MOUNT
from stacks.schema import LambdaConfig, ModelConfig


@dataclass(frozen=True)
class FunctionBundle:
    code: pulumi.FileArchive
    runtime_layer: pulumi.FileArchive
    # None when the model is delivered from S3.
    model_layer: pulumi.FileArchive | None
    budget: Budget


def function_bundle(
    root: Path, model: ModelConfig, function: LambdaConfig, artifact: Artifact, stack: str
) -> FunctionBundle:
    """The built zips of `model`'s function, checked against Lambda's size limits."""
    from layers.package import package

    try:
        result = package(
            artifact.directory,
            function.runtime,
            function.architecture,
            model.delivery,
            root=root,
            build=False,
        )
    except NotBuiltError as exc:
        raise ArtifactMissingError(
            f"model {model.name!r}: {exc}. `inferstack up --stack {stack}` builds what is "
            "missing before it deploys"
        ) from exc
    except BudgetError as exc:
        raise PackageBudgetError(f"model {model.name!r}: {exc}") from exc
    return FunctionBundle(
        code=pulumi.FileArchive(str(result.function.path)),
        runtime_layer=pulumi.FileArchive(str(result.runtime_layer.path)),
        model_layer=(
            pulumi.FileArchive(str(result.model_layer.path)) if result.model_layer else None
        ),
        budget=result.budget,
    )


def model_dir(name: str) -> str:
    return f"{MOUNT}/{name}"
