"""Build what a stack deploys and is missing: model artifacts and Lambda runtime layers.

Both are cached by their builders (a model by its declaration's source hash, a layer zip
by its wheels), so on a built tree this costs a few file hashes.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from infra import bundles
from model_runtime.manifest import MANIFEST_FILE
from model_runtime.spec import BUILTIN_MODELS
from stacks.schema import StackConfig

Echo = Callable[[str], None]
QUANTIZED_SUFFIX = "-int8"
_LAYER_STAMP = ".inferstack-zip-sha256"


def prepare(config: StackConfig, root: Path, echo: Echo, console: Console) -> list[str]:
    """Build the stack's missing artifacts and layers; returns what was built."""
    built = build_models(config, root, echo, console)
    built += build_runtime_layers(config, root, echo)
    return built


def build_models(config: StackConfig, root: Path, echo: Echo, console: Console) -> list[str]:
    from infra.commands.build import build_model

    built: list[str] = []
    for model in config.models:
        directory = root / model.artifact_dir
        if (directory / MANIFEST_FILE).is_file() or model.artifact is not None:
            # A custom artifact path is the user's to build; load_artifact says how if missing.
            continue
        base = model.name.removesuffix(QUANTIZED_SUFFIX)
        if base not in BUILTIN_MODELS:
            continue
        echo(f"building model {base} (fp32 and int8) into {directory.parent}")
        results = build_model(
            base,
            directory.parent,
            quantize=True,
            exporter="torchscript",
            force=False,
            console=console,
        )
        built += [result.manifest.name for result in results if result.status == "built"]
    return built


def build_runtime_layers(config: StackConfig, root: Path, echo: Echo) -> list[str]:
    """The runtime layer zip (layers/ builder), and while infra/bundles.py still takes the
    layer as a directory, that zip unpacked where bundles looks for it."""
    from layers.runtime import build_runtime_layer
    from layers.targets import Target

    targets = sorted(
        {(m.lambda_.runtime, m.lambda_.architecture) for m in config.models if m.lambda_}
    )
    built: list[str] = []
    for runtime, arch in targets:
        layer = build_runtime_layer(Target.of(runtime, arch), root, root / "build" / "package")
        if not layer.cached:
            built.append(layer.name)
        layer_dir = getattr(bundles, "runtime_layer_dir", None)
        if layer_dir is None:
            continue
        directory = Path(layer_dir(root, runtime, arch))
        stamp = directory / _LAYER_STAMP
        if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == layer.sha256:
            continue
        echo(f"unpacking the {runtime}/{arch} runtime layer into {directory}")
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
        try:
            with zipfile.ZipFile(layer.path) as archive:
                archive.extractall(staging)
            (staging / _LAYER_STAMP).write_text(layer.sha256 + "\n", encoding="utf-8")
            shutil.rmtree(directory, ignore_errors=True)
            staging.rename(directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        built.append(f"{layer.name} (unpacked)")
    return built
