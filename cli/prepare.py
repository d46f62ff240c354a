"""Build what a stack deploys and is missing: model artifacts, then each function's
packages (function zip, runtime layer, model layer), checked against Lambda's limits.

Everything is cached by its builder (a model by its declaration's source hash, a zip by
its inputs), so on a built tree this costs a few file hashes. The Pulumi program then
finds these zips (infra/bundles.py); it never builds them itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cli.render import exporter_log_note
from model_build.spec import BUILTIN_MODELS
from model_runtime.manifest import MANIFEST_FILE
from stacks.schema import StackConfig

Echo = Callable[[str], None]
QUANTIZED_SUFFIX = "-int8"


def prepare(config: StackConfig, root: Path, echo: Echo) -> list[str]:
    """Build the stack's missing artifacts and packages, saying what to `echo`; returns
    what was built."""
    built = build_models(config, root, echo)
    built += build_packages(config, root, echo)
    return built


def build_models(config: StackConfig, root: Path, echo: Echo) -> list[str]:
    from model_build.build import build_model

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
        report = build_model(
            base,
            directory.parent,
            quantize=True,
            exporter="torchscript",
            force=False,
            progress=echo,
        )
        if report.log is not None:
            echo(exporter_log_note(report.log))
        built += [result.manifest.name for result in report.artifacts if result.status == "built"]
    return built


def build_packages(config: StackConfig, root: Path, echo: Echo) -> list[str]:
    """Each Lambda function's zips (layers/ builders, cached), and its size budget: a
    function over Lambda's limits stops here (BudgetError), before anything deploys."""
    from layers.package import package

    built: dict[str, None] = {}
    for model, function in config.lambda_functions:
        directory = root / model.artifact_dir
        if not (directory / MANIFEST_FILE).is_file():
            continue  # the program's load_artifact names the artifact and how to build it
        result = package(
            directory,
            function.runtime,
            function.architecture,
            model.delivery,
            root=root,
        )
        for part in [result.function, *result.layers]:
            if not part.cached and part.name not in built:
                echo(f"built {part.name} ({part.zipped_bytes / 1_048_576:.1f} MB zipped)")
                built[part.name] = None
    return list(built)
