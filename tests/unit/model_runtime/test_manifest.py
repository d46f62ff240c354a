"""Manifest hashing, verification and loading errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from model_runtime.engine import Engine
from model_runtime.errors import ArtifactError, ArtifactIntegrityError
from model_runtime.manifest import (
    MANIFEST_FILE,
    Manifest,
    hash_files,
    sha256_file,
    verify_artifact,
)


@pytest.fixture
def artifact(tiny_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model's artifact that a test may break."""
    return Path(shutil.copytree(tiny_dir, tmp_path / "tiny"))


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_sha256_file_matches_a_known_digest(tmp_path: Path) -> None:
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_manifest_lists_every_file_with_its_hash_and_size(artifact: Path) -> None:
    manifest = Manifest.load(artifact)
    listed = set(manifest.files)
    on_disk = {path.name for path in artifact.iterdir()} - {MANIFEST_FILE}
    assert listed == on_disk
    for name, entry in manifest.files.items():
        assert entry.sha256 == sha256_file(artifact / name)
        assert entry.size == (artifact / name).stat().st_size
    assert hash_files(artifact, sorted(listed)) == manifest.files


def test_verify_accepts_an_untouched_artifact(artifact: Path) -> None:
    verify_artifact(artifact, Manifest.load(artifact))


def test_tampered_model_file_names_file_and_both_hashes(artifact: Path) -> None:
    manifest = Manifest.load(artifact)
    model = artifact / manifest.model_file
    _flip_last_byte(model)

    with pytest.raises(ArtifactIntegrityError) as caught:
        verify_artifact(artifact, manifest)

    message = str(caught.value)
    assert str(model) in message
    assert manifest.files[manifest.model_file].sha256 in message
    assert sha256_file(model) in message
    with pytest.raises(ArtifactIntegrityError, match=re.escape(str(model))):
        Engine.load(artifact)


def test_truncated_model_file_is_refused(artifact: Path) -> None:
    model = artifact / "model.onnx"
    model.write_bytes(model.read_bytes()[:100])
    with pytest.raises(ArtifactIntegrityError, match="corrupt or was modified"):
        Engine.load(artifact)


def test_missing_model_file_is_named(artifact: Path) -> None:
    (artifact / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match=r"model\.onnx is listed in the manifest but missing"):
        Engine.load(artifact)


def test_missing_manifest_is_named(artifact: Path) -> None:
    (artifact / MANIFEST_FILE).unlink()
    with pytest.raises(ArtifactError, match=rf"cannot read model manifest .*{MANIFEST_FILE}"):
        Engine.load(artifact)


def test_manifest_that_is_not_json(artifact: Path) -> None:
    (artifact / MANIFEST_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ArtifactError, match="invalid model manifest"):
        Manifest.load(artifact)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda doc: doc.pop("opset"), "opset"),
        (lambda doc: doc.update(name="Not A Name!"), "name"),
        (lambda doc: doc["inputs"][0].update(datatype="FLOAT"), "inputs.0.datatype"),
        (lambda doc: doc["files"]["model.onnx"].update(sha256="xyz"), "files.model.onnx.sha256"),
        (lambda doc: doc.update(surprise=1), "surprise"),
        (lambda doc: doc.update(max_batch_size=0), "max_batch_size"),
    ],
)
def test_invalid_manifest_names_the_field(artifact: Path, change, field: str) -> None:
    path = artifact / MANIFEST_FILE
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document), encoding="utf-8")

    with pytest.raises(ArtifactError) as caught:
        Manifest.load(artifact)

    assert f": {field}: " in str(caught.value)
    assert str(path) in str(caught.value)


def test_manifest_must_list_its_model_file(artifact: Path) -> None:
    manifest = Manifest.load(artifact)
    stripped = manifest.model_copy(update={"files": {}})
    with pytest.raises(ArtifactError, match=r"does not list its model file 'model\.onnx'"):
        verify_artifact(artifact, stripped)


def test_write_then_load_round_trips(artifact: Path, tmp_path: Path) -> None:
    manifest = Manifest.load(artifact)
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    manifest.write(copy_dir)
    assert Manifest.load(copy_dir) == manifest


def test_content_hash_ignores_creation_time_but_not_content(artifact: Path) -> None:
    manifest = Manifest.load(artifact)
    later = manifest.model_copy(update={"created_at": manifest.created_at.replace(year=2001)})
    assert later.content_hash() == manifest.content_hash()

    entry = manifest.files["model.onnx"].model_copy(update={"sha256": "0" * 64})
    changed = manifest.model_copy(update={"files": {"model.onnx": entry}})
    assert changed.content_hash() != manifest.content_hash()
    renamed = manifest.model_copy(update={"version": "2"})
    assert renamed.content_hash() != manifest.content_hash()
