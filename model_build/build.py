"""`inferstack build`: declared model -> fp32 artifact (+ int8), cached by source hash.

Progress goes to a callback (the CLI shows it as a spinner). What the exporters print
along the way (torch, onnx and onnxscript warnings and log records) goes to a log file
under build/logs/, so the build shows only its own steps.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from model_build.spec import ModelDeclaration, ModelSpec, resolve
from model_runtime.datatypes import from_numpy
from model_runtime.errors import ArtifactError
from model_runtime.manifest import Manifest, SourceInfo, verify_artifact

if TYPE_CHECKING:
    from model_build.export import Exporter

SAMPLES_DIR = Path("build/samples")
# Enough rows that one disagreement moves top-1 agreement by 0.5 %.
COMPARE_REQUESTS = 200
LOGS_DIR = Path("build/logs")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    directory: Path
    manifest: Manifest
    status: str  # "built" or "up to date"


@dataclass(frozen=True)
class BuildReport:
    artifacts: list[BuildResult]
    # The exporters' warnings and log records, when this build made any.
    log: Path | None


def build_model(
    reference: str,
    out: Path,
    *,
    quantize: bool,
    exporter: Exporter,
    force: bool,
    progress: Progress,
    task: str | None = None,
    name: str | None = None,
) -> BuildReport:
    """Build `reference` into `out/<name>/` (and `out/<name>-int8/`), naming each step to
    `progress` as it starts.

    An artifact whose manifest records the same declaration source hash and whose files
    verify is reused; anything else is rebuilt. `task` and `name` are for an `hf:PATH`
    reference.
    """
    from model_build.export import export_model
    from model_build.quantize import quantize_artifact

    declaration = resolve(reference, task=task, name=name)
    source = SourceInfo(reference=declaration.reference, sha256=declaration.source_sha256)
    cached = None if force else _cached(out, declaration, quantize)
    if cached is not None:
        return BuildReport(cached, None)

    with OutputLog(log_path(reference)) as log:
        progress(f"training / loading {declaration.reference}")
        with log.capture():
            spec = declaration.factory()
        fp32_dir = out / spec.name
        progress(f"exporting {spec.name} to ONNX and checking parity with torch")
        with log.capture():
            fp32 = export_model(spec, fp32_dir, source=source, exporter=exporter)
        results = [BuildResult(fp32_dir, fp32, "built")]
        if quantize:
            int8_dir = out / f"{spec.name}-int8"
            progress(f"quantizing {spec.name} to int8")
            with log.capture():
                int8 = quantize_artifact(fp32_dir, int8_dir, spec)
            results.append(BuildResult(int8_dir, int8, "built"))
    write_sample(spec)
    return BuildReport(results, log.path if log.written else None)


def log_path(reference: str) -> Path:
    """build/logs/build-<reference>.log, with ':' and a hf:PATH's '/' as '-'."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", reference).strip("-")
    return LOGS_DIR / f"build-{name}.log"


class OutputLog:
    """A file for what third-party code prints while a step runs inside `capture()`: its
    Python warnings (each once per place), its log records and whatever it writes to
    sys.stderr. Progress is reported between steps, so it reaches the terminal. The file
    is removed again when nothing was written to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = False
        self._stream: IO[str] | None = None

    def __enter__(self) -> OutputLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stream = self.path.open("w", encoding="utf-8")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._stream is not None
        self.written = self._stream.tell() > 0
        self._stream.close()
        if not self.written:
            self.path.unlink()

    @contextmanager
    def capture(self) -> Iterator[None]:
        stream = self._stream
        assert stream is not None
        stderr = sys.stderr
        # Handlers made before this step (torch's, once torch is imported) hold the
        # terminal's stderr; those made during it take the redirected one, i.e. this file.
        held = [h for h in _stream_handlers() if h.stream in (stderr, sys.__stderr__)]
        originals = [handler.setStream(stream) for handler in held]
        try:
            with warnings.catch_warnings(), redirect_stderr(stream):
                warnings.simplefilter("default")
                yield
        finally:
            for handler, original in zip(held, originals, strict=True):
                handler.setStream(original)
            for handler in _stream_handlers():
                if handler.stream is stream:
                    handler.setStream(stderr)
            stream.flush()


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    """The log handlers that hold a stream of their own (one that looks up sys.stderr
    as it writes, like logging's last resort, follows the redirection by itself)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
        and "stream" in vars(handler)
    ]


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
    if not fp32 or (quantize and not has_int8):
        return None
    name = fp32[0].manifest.name
    if not sample_path(name).is_file() or not compare_path(name).is_file():
        return None
    return results


def sample_path(name: str) -> Path:
    return SAMPLES_DIR / f"{name}.json"


def compare_path(name: str) -> Path:
    return SAMPLES_DIR / f"{name}.compare.jsonl"


def write_sample(spec: ModelSpec) -> Path:
    """Save an example request for `inferstack predict` and the demo: the model's sample
    inputs (raw text for a text model), else one held-out example with its true label.
    Beside it, the requests `inferstack compare` sends to two versions by default: one
    request per held-out example (the sample inputs, else the example inputs, when the
    model has no held-out set), COMPARE_REQUESTS at most."""
    if spec.sample_inputs is not None:
        inputs = spec.sample_inputs
    else:
        source = spec.eval_data.inputs if spec.eval_data else spec.example_inputs
        inputs = {name: array[:1] for name, array in source.items()}
    request = _request(inputs)
    if spec.eval_data is not None:
        request["parameters"] = {"expected_label": int(spec.eval_data.labels[0])}
    path = sample_path(spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(request) + "\n", encoding="utf-8")

    rows = spec.eval_data.inputs if spec.eval_data else (spec.sample_inputs or spec.example_inputs)
    count = min(COMPARE_REQUESTS, len(next(iter(rows.values()))))
    lines = [
        json.dumps(_request({name: array[row : row + 1] for name, array in rows.items()}))
        for row in range(count)
    ]
    compare_path(spec.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _request(inputs: dict[str, np.ndarray[Any, Any]]) -> dict[str, Any]:
    return {
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
