"""`inferstack package`: the function zip, the runtime layer and the model (layer or S3
objects) for one model and target, checked against Lambda's limits.

`package()` is the work behind the command; cli/app.py wires it to typer and prints
`result.budget.rows()` (or `result.budget.table()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from layers.archive import Built
from layers.budget import Budget, Part, check_budget, ephemeral_storage_mb, plan_delivery
from layers.budget import Delivery as Delivery  # re-exported: the CLI's --delivery
from layers.errors import NotBuiltError, PackagingError
from layers.function import build_function_zip, find_function_zip
from layers.model import MOUNT, build_model_layer, find_model_layer, s3_objects
from layers.runtime import build_runtime_layer, find_runtime_layer
from layers.targets import DEFAULT_ARCH, DEFAULT_RUNTIME, Target
from model_runtime.manifest import MANIFEST_FILE, Manifest

DELIVERIES: tuple[Delivery, ...] = ("layer", "s3")


@dataclass(frozen=True)
class PackageResult:
    target: Target
    model: Manifest
    function: Built
    runtime_layer: Built
    # delivery="layer": the model layer zip; delivery="s3": the objects to upload.
    model_layer: Built | None
    s3_objects: dict[str, Path] | None
    # The function's MODEL_URI ("s3://<bucket>/..." with the bucket to fill in).
    model_uri: str
    budget: Budget
    # The delivery asked for, or planned (layer when it fits, else s3).
    delivery: Delivery
    # The /tmp the function needs (MB): sized from the files for delivery="s3".
    ephemeral_storage_mb: int

    @property
    def layers(self) -> list[Built]:
        return [self.runtime_layer, *([self.model_layer] if self.model_layer else [])]


def package(
    model_dir: Path,
    runtime: str = DEFAULT_RUNTIME,
    arch: str = DEFAULT_ARCH,
    delivery: Delivery | None = "layer",
    *,
    root: Path | None = None,
    cache_dir: Path | None = None,
    force: bool = False,
    build: bool = True,
) -> PackageResult:
    """Build (or find in the cache) everything one Lambda function needs.

    `delivery=None` plans it: a model layer when function, runtime layer and model fit
    Lambda's limits, else S3 (a model over the layer budget). With `build=False` the
    zips are only looked up, never built (no pip, no network): what a deploy does with
    packages built beforehand; NotBuiltError names what is missing. Raises
    PackagingError for a bad target, delivery or artifact, and BudgetError (its message
    is the size table and what to change) when Lambda's limits are exceeded.
    """
    if delivery is not None and delivery not in DELIVERIES:
        raise PackagingError(f"delivery {delivery!r} is unknown; allowed: {', '.join(DELIVERIES)}")
    target = Target.of(runtime, arch)
    root = root or project_root()
    cache_dir = cache_dir or root / "build" / "package"
    model_dir = Path(model_dir)
    manifest = Manifest.load(model_dir)
    # The manifest's sizes: the files are hashed once, by the layer or S3 objects below.
    model_bytes = (model_dir / MANIFEST_FILE).stat().st_size + sum(
        manifest.files[name].size for name in manifest.files_for("onnxruntime")
    )
    if build:
        function = build_function_zip(target, root, cache_dir, force=force)
        runtime_layer = build_runtime_layer(target, root, cache_dir, force=force)
        delivery = delivery or plan_delivery(_code_parts(function, runtime_layer), model_bytes)
        model_layer = (
            build_model_layer(model_dir, cache_dir, force=force) if delivery == "layer" else None
        )
    else:
        function, runtime_layer, model_layer, delivery = _look_up(
            target, root, cache_dir, model_dir, manifest.name, delivery, model_bytes
        )
    parts = _code_parts(function, runtime_layer)
    objects = None
    if model_layer is not None:
        parts.append(_part(model_layer.name, "layer", model_layer))
        model_uri = f"{MOUNT}/{manifest.name}"
    else:
        prefix = f"models/{manifest.name}/{manifest.content_hash()}"
        objects = s3_objects(model_dir, prefix)
        size = sum(path.stat().st_size for path in objects.values())
        parts.append(Part(f"model-{manifest.name} (S3)", "s3", size, size, "objects"))
        model_uri = f"s3://<bucket>/{prefix}"
    budget = check_budget(parts, model_quantized=manifest.quantization is not None)
    return PackageResult(
        target,
        manifest,
        function,
        runtime_layer,
        model_layer,
        objects,
        model_uri,
        budget,
        delivery,
        ephemeral_storage_mb(delivery, model_bytes),
    )


def _look_up(
    target: Target,
    root: Path,
    cache_dir: Path,
    model_dir: Path,
    name: str,
    delivery: Delivery | None,
    model_bytes: int,
) -> tuple[Built, Built, Built | None, Delivery]:
    function = find_function_zip(target, root, cache_dir)
    runtime_layer = find_runtime_layer(target, root, cache_dir)
    if delivery is None and function is not None and runtime_layer is not None:
        delivery = plan_delivery(_code_parts(function, runtime_layer), model_bytes)
    model_layer = find_model_layer(model_dir, cache_dir) if delivery == "layer" else None
    missing = [
        what
        for what, built in (
            ("the function zip", function),
            (f"the {target} runtime layer", runtime_layer),
            (f"the model layer of {name}", model_layer or delivery != "layer"),
        )
        if not built
    ]
    if missing:
        # Unplanned (the code is missing too): the command plans the delivery itself.
        option = f" --delivery {delivery}" if delivery is not None else ""
        raise NotBuiltError(
            f"not built for the current sources in {cache_dir}: {', '.join(missing)}; build"
            f" them with `inferstack package {model_dir} --runtime {target.runtime} --arch"
            f" {target.arch}{option}`"
        )
    assert function is not None and runtime_layer is not None and delivery is not None
    return function, runtime_layer, model_layer, delivery


def _code_parts(function: Built, runtime_layer: Built) -> list[Part]:
    return [
        _part("function code", "function", function),
        _part(runtime_layer.name, "layer", runtime_layer),
    ]


def project_root() -> Path:
    """The checkout holding functions/ and model_runtime/ (this package's parent)."""
    return Path(__file__).resolve().parent.parent


def _part(name: str, kind: Literal["function", "layer"], built: Built) -> Part:
    return Part(name, kind, built.zipped_bytes, built.unzipped_bytes, built.status)
