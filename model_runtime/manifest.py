"""The artifact manifest: what a model directory holds and how it was made.

An artifact directory is `{model.onnx, manifest.json, ...}`. Every file but the
manifest is listed with its sha256, so a loader can refuse a tampered or truncated
model before it serves a single request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Re-exported: they live where the early session can read them without pydantic.
from model_runtime.artifact_files import MANIFEST_FILE as MANIFEST_FILE
from model_runtime.artifact_files import MODEL_FILE as MODEL_FILE
from model_runtime.artifact_files import external_data_name as external_data_name
from model_runtime.artifact_files import sha256_file as sha256_file
from model_runtime.datatypes import Datatype
from model_runtime.errors import ArtifactError, ArtifactIntegrityError

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    name: str
    datatype: Datatype
    # -1 marks a dynamic dimension; the first one is the batch axis.
    shape: list[int]


class FileEntry(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class ExporterInfo(_Strict):
    name: str
    torch_version: str
    onnx_version: str
    onnxruntime_version: str


class OutputParity(_Strict):
    max_abs_error: float
    max_rel_error: float
    # Integer outputs (class labels) are compared exactly.
    mismatches: int = 0


class ParityReport(_Strict):
    reference: str
    batch_sizes: list[int]
    samples: int
    atol: float
    rtol: float
    max_abs_error: float
    max_rel_error: float
    outputs: dict[str, OutputParity]
    passed: bool


class Evaluation(_Strict):
    dataset: str
    samples: int
    accuracy: float


class PromotionGate(_Strict):
    """How close a new version's outputs must stay to the live one's before `inferstack
    promote` moves traffic to it: top-1 agreement (classifiers) or the smallest row-wise
    cosine (embeddings), on the same requests."""

    metric: Literal["top1_agreement", "min_cosine"]
    minimum: float = Field(ge=0.0, le=1.0)


class QuantizationReport(_Strict):
    """How an int8 artifact was made; its `parity` is measured against the fp32 model."""

    method: Literal["dynamic-int8"]
    per_channel: bool
    source_sha256: str
    top1_agreement: float | None = None
    accuracy_fp32: float | None = None
    # The fewest nodes left in fp32 (by name) that the search found to meet `gate`
    # against the fp32 model; `gate_measured` is the value the artifact reached.
    kept_fp32: list[str] = Field(default_factory=list)
    gate: PromotionGate | None = None
    gate_measured: float | None = None
    # Candidate graphs quantized and measured to find `kept_fp32`.
    search_evaluations: int | None = None


class OptimizationReport(_Strict):
    """How the exported graph was optimized before parity: onnxruntime's transformer
    optimizer, and how many of each fused op it made."""

    method: Literal["onnxruntime-transformers"]
    model_type: str
    opt_level: int
    fused_ops: dict[str, int]
    onnxruntime_version: str


class SourceInfo(_Strict):
    """Where the model came from: the declaration and a hash of its module's source."""

    reference: str
    sha256: str


class TokenizerStage(_Strict):
    """Pre-processing: text in `input` (BYTES) becomes the ONNX graph's `model_inputs`
    through the `tokenizers` tokenizer in `file`; longer texts are cut to `max_length`."""

    kind: Literal["tokenizer"] = "tokenizer"
    file: str
    input: str
    max_length: int = Field(ge=2)
    model_inputs: list[TensorSpec] = Field(min_length=1)


class BackendArtifact(_Strict):
    """The file one backend runs. `parity` compares it with the ONNX model (onnxruntime)
    on the export's parity batches; the ONNX model's own parity is `Manifest.parity`."""

    backend: Literal["onnxruntime", "torch"]
    file: str
    format: Literal["onnx", "torch_export", "torchscript"]
    parity: ParityReport | None = None


class Manifest(_Strict):
    format_version: Literal[1] = 1
    name: str = Field(pattern=NAME_PATTERN)
    version: str = Field(min_length=1, max_length=64)
    created_at: datetime
    platform: Literal["onnxruntime_onnx"] = "onnxruntime_onnx"
    model_file: str = MODEL_FILE
    files: dict[str, FileEntry]
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)
    opset: int = Field(ge=1)
    exporter: ExporterInfo
    max_batch_size: int = Field(ge=1)
    allow_non_finite: bool = False
    parity: ParityReport
    # Absent for graphs exported as torch.onnx wrote them (no transformer optimizer).
    optimization: OptimizationReport | None = None
    quantization: QuantizationReport | None = None
    evaluation: Evaluation | None = None
    labels: list[str] | None = None
    source: SourceInfo | None = None
    # When set, `inputs` are what clients send and the stage makes the model's inputs.
    preprocessing: TokenizerStage | None = None
    # Absent in manifests written before the torch backend: onnxruntime only.
    backends: list[BackendArtifact] | None = None
    # Absent in manifests written before versions were compared: promote checks no gate.
    promotion_gate: PromotionGate | None = None

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        """Read `<directory>/manifest.json`; errors name the file and what is wrong."""
        path = Path(directory) / MANIFEST_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ArtifactError(f"cannot read model manifest {path}: {exc.strerror}") from exc
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str | bytes, source: str) -> Manifest:
        """Validate manifest JSON; errors name `source` (a path or URI) and the field."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(root)"
            raise ArtifactError(
                f"invalid model manifest {source}: {where}: {first['msg']}"
                f" ({exc.error_count()} error(s))"
            ) from exc

    def write(self, directory: Path) -> Path:
        path = Path(directory) / MANIFEST_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    def content_hash(self) -> str:
        """One sha256 for the artifact's content (files and their hashes), for cache keys
        and content-addressed object keys. Independent of `created_at`."""
        listing = json.dumps(
            {name: entry.sha256 for name, entry in sorted(self.files.items())}, sort_keys=True
        )
        return hashlib.sha256(f"{self.name}\n{self.version}\n{listing}".encode()).hexdigest()

    def backend_artifacts(self) -> list[BackendArtifact]:
        if self.backends is not None:
            return list(self.backends)
        return [BackendArtifact(backend="onnxruntime", file=self.model_file, format="onnx")]

    def backend_artifact(self, backend: str) -> BackendArtifact | None:
        return next((a for a in self.backend_artifacts() if a.backend == backend), None)

    def files_for(self, backend: str) -> list[str]:
        """The files serving with `backend` needs: all but the other backends' models and
        their external data (the Lambda layer ships no torch artifact; a torch server
        downloads no ONNX weights)."""
        own = self.backend_artifact(backend)
        keep = {own.file, external_data_name(own.file)} if own is not None else set()
        others = {
            name
            for artifact in self.backend_artifacts()
            if artifact.backend != backend
            for name in (artifact.file, external_data_name(artifact.file))
        } - keep
        return [name for name in self.files if name not in others]

    def input(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)


def hash_files(directory: Path, names: list[str]) -> dict[str, FileEntry]:
    directory = Path(directory)
    return {
        name: FileEntry(
            sha256=sha256_file(directory / name), size=(directory / name).stat().st_size
        )
        for name in sorted(names)
    }


def verify_artifact(
    directory: Path, manifest: Manifest, names: Iterable[str] | None = None
) -> None:
    """Check every listed file against its sha256; raise naming the file and both hashes."""
    directory = Path(directory)
    if manifest.model_file not in manifest.files:
        raise ArtifactError(
            f"model manifest {directory / MANIFEST_FILE} does not list its model file"
            f" {manifest.model_file!r}"
        )
    for name in manifest.files if names is None else names:
        entry = manifest.files[name]
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"model file {path} is listed in the manifest but missing")
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise ArtifactIntegrityError(
                f"model file {path} is corrupt or was modified: sha256 expected"
                f" {entry.sha256}, actual {actual}"
            )
