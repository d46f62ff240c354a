"""The reference models' artifacts for tests, built once and reused across sessions.

Training digits takes tens of seconds, but its artifact only changes when the model's
declaration, the build code or the exporting libraries do. Artifacts live under
build/test-models/<declaration source hash>/, beside a record of the build code and
library versions they were made with: a session reuses an artifact whose record is
current and whose every file's sha256 verifies, and rebuilds anything else.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

from layers.package import project_root
from model_build.spec import ModelDeclaration
from model_runtime.errors import ArtifactError
from model_runtime.manifest import MANIFEST_FILE, Manifest, verify_artifact

CACHE = project_root() / "build" / "test-models"
RECORD = "built-with.txt"
LOCK = ".lock"
# The packages whose versions shape an exported artifact.
EXPORTERS = ("torch", "onnx", "onnxruntime")


def cached_artifact(
    declaration: ModelDeclaration,
    name: str,
    build: Callable[[Path], object],
    *,
    quantized_from: Path | None = None,
) -> Path:
    """`build/test-models/<hash>/<name>`: reused if it verifies (and, for an int8
    artifact, was quantized from the fp32 one in `quantized_from`), else made by
    `build(path)`."""
    home = CACHE / declaration.source_sha256[:12]
    directory = home / name
    home.mkdir(parents=True, exist_ok=True)
    # Sessions running at once (two terminals, CI steps) build it once, not twice.
    with _locked(home / LOCK):
        record = home / RECORD
        built_with = build_code_hash()
        if not record.is_file() or record.read_text() != built_with:
            for stale in home.iterdir():
                if stale.is_dir():
                    shutil.rmtree(stale)
            record.write_text(built_with)
        current = intact(directory) and (
            quantized_from is None or _quantized_from(directory, quantized_from)
        )
        if not current:
            shutil.rmtree(directory, ignore_errors=True)
            build(directory)
    return directory


def build_code_hash() -> str:
    """The build code (model_build/*.py) and the exporting libraries' versions."""
    digest = hashlib.sha256()
    for path in sorted((project_root() / "model_build").glob("*.py")):
        digest.update(f"{path.name}\n".encode() + path.read_bytes())
    for package in EXPORTERS:
        digest.update(f"{package}=={version(package)}\n".encode())
    return digest.hexdigest()


def intact(directory: Path) -> bool:
    """Whether `directory` holds its manifest, every file it lists, and nothing else."""
    try:
        manifest = Manifest.load(directory)
        verify_artifact(directory, manifest)
    except ArtifactError:
        return False
    return {path.name for path in directory.iterdir()} == {*manifest.files, MANIFEST_FILE}


def check_untouched(directory: Path) -> None:
    """At the end of a session: the shared artifact is as it was built."""
    if not intact(directory):
        shutil.rmtree(directory, ignore_errors=True)
        raise AssertionError(
            f"a test changed the cached artifact {directory} (now removed, so the next"
            " session rebuilds it): a test that modifies an artifact must copy it first"
        )


def _quantized_from(directory: Path, fp32_dir: Path) -> bool:
    quantization = Manifest.load(directory).quantization
    fp32 = Manifest.load(fp32_dir)
    return quantization is not None and (
        quantization.source_sha256 == fp32.files[fp32.model_file].sha256
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
