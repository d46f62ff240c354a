"""`inferstack build`: declared model -> fp32 artifact (+ int8), cached by source hash."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from model_build.spec import ModelDeclaration, ModelSpec, resolve
from model_runtime.datatypes import from_numpy
from model_runtime.errors import ArtifactError
from model_runtime.manifest import Manifest, SourceInfo, verify_artifact

SAMPLES_DIR = Path("build/samples")


@dataclass(frozen=True)
class BuildResult:
    directory: Path
    manifest: Manifest
    status: str  # "built" or "up to date"


def build_model(
    reference: str,
    out: Path,
    *,
    quantize: bool,
    exporter: str,
    force: bool,
    console: Console,
) -> list[BuildResult]:
    """Build `reference` into `out/<name>/` (and `out/<name>-int8/`).

    An artifact whose manifest records the same declaration source hash and whose files
    verify is reused; anything else is rebuilt.
    """
    from model_build.export import export_model
    from model_build.quantize import quantize_artifact

    declaration = resolve(reference)
    source = SourceInfo(reference=declaration.reference, sha256=declaration.source_sha256)
    cached = None if force else _cached(out, declaration, quantize)
    if cached is not None:
        return cached

    with console.status(f"training / loading {declaration.reference}"):
        spec = declaration.factory()
    fp32_dir = out / spec.name
    with console.status(f"exporting {spec.name} to ONNX and checking parity with torch"):
        fp32 = export_model(spec, fp32_dir, source=source, exporter=exporter)  # type: ignore[arg-type]
    results = [BuildResult(fp32_dir, fp32, "built")]
    if quantize:
        int8_dir = out / f"{spec.name}-int8"
        with console.status(f"quantizing {spec.name} to int8"):
            int8 = quantize_artifact(fp32_dir, int8_dir, spec)
        results.append(BuildResult(int8_dir, int8, "built"))
    write_sample(spec)
    return results


def _cached(out: Path, declaration: ModelDeclaration, quantize: bool) -> list[BuildResult] | None:
    """The existing artifacts for this declaration, if all are current and intact."""
    candidates = [path for path in sorted(out.glob("*")) if (path / "manifest.json").is_file()]
    results = []
    for directory in candidates:
        try:
            manifest = Manifest.load(directory)
            verify_artifact(directory, manifest)
        except ArtifactError:
            continue
        if (
            manifest.source
            and manifest.source.sha256 == declaration.source_sha256
            and (manifest.source.reference == declaration.reference)
        ):
            results.append(BuildResult(directory, manifest, "up to date"))
    has_int8 = any(result.manifest.quantization for result in results)
    fp32 = [result for result in results if not result.manifest.quantization]
    if not fp32 or (quantize and not has_int8) or not sample_path(fp32[0].manifest.name).is_file():
        return None
    return results


def sample_path(name: str) -> Path:
    return SAMPLES_DIR / f"{name}.json"


def write_sample(spec: ModelSpec) -> Path:
    """Save an example request for `inferstack predict` and the demo: the model's sample
    inputs (raw text for a text model), else one held-out example with its true label."""
    if spec.sample_inputs is not None:
        inputs = spec.sample_inputs
    else:
        source = spec.eval_data.inputs if spec.eval_data else spec.example_inputs
        inputs = {name: array[:1] for name, array in source.items()}
    request: dict[str, Any] = {
        "inputs": [
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": from_numpy(array.dtype),
                "data": array.ravel().tolist(),
            }
            for name, array in inputs.items()
        ]
    }
    if spec.eval_data is not None:
        request["parameters"] = {"expected_label": int(spec.eval_data.labels[0])}
    path = sample_path(spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(request) + "\n", encoding="utf-8")
    return path
