"""The session a Lambda cold start opens beside its imports (model_runtime.early_open):
taken by the Engine only when it is exactly the session the Engine would open, never
opened on a file that does not match its manifest."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import model_runtime.engine as engine_module
from model_runtime.backends.onnxruntime_backend import CPU
from model_runtime.early_open import EarlySession
from model_runtime.engine import Engine
from model_runtime.errors import ArtifactIntegrityError
from model_runtime.host import available_cpus
from model_runtime.manifest import Manifest
from model_runtime.settings import RuntimeSettings
from tests.support.tiny_model import tiny_images


def test_from_env_opens_the_one_local_model(tiny_dir: Path) -> None:
    early = EarlySession.from_env({"MODEL_URI": str(tiny_dir), "INFERSTACK_THREADS": "1"})
    assert early is not None
    assert (early.directory, early.threads) == (tiny_dir, 1)
    assert EarlySession.from_env({"MODEL_DIR": str(tiny_dir)}) is not None


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"MODEL_URI": "s3://bucket/models/tiny"},
        {"MODEL_URI": "/opt/models/a,/opt/models/b"},
        {"MODEL_DIR": "/opt/models/a:/opt/models/b"},
        {"MODEL_URI": "/opt/models/a", "MODEL_DIR": "/opt/models/b"},
    ],
)
def test_from_env_opens_nothing_but_one_local_model(env: dict[str, str]) -> None:
    assert EarlySession.from_env(env) is None


def test_threads_that_are_not_a_whole_number_are_left_to_the_settings(tiny_dir: Path) -> None:
    early = EarlySession.from_env({"MODEL_DIR": str(tiny_dir), "INFERSTACK_THREADS": "two"})
    assert early is not None and early.threads is None


def test_the_engine_takes_the_session_and_does_not_hash_the_model_again(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = Manifest.load(tiny_dir)
    hashed: list[str] = []
    verify = engine_module.verify_artifact

    def recording(directory: Path, found: Manifest, names: list[str]) -> None:
        hashed.extend(names)
        verify(directory, found, names)

    monkeypatch.setattr(engine_module, "verify_artifact", recording)
    early = EarlySession(tiny_dir, None)
    assert (
        early.verified(tiny_dir, manifest.model_file) == manifest.files[manifest.model_file].sha256
    )
    engine = Engine.load(tiny_dir, options=None, early=early)
    assert early.taken
    assert manifest.model_file not in hashed
    # Taken: nothing is left to take, and the engine answers as one that opened its own.
    assert early.take(tiny_dir / manifest.model_file, None, [CPU]) is None
    images = tiny_images(4)
    reference = Engine.load(tiny_dir)
    assert (
        engine.infer({"image": images})["label"] == reference.infer({"image": images})["label"]
    ).all()


@pytest.mark.parametrize(
    "threads, providers, relative",
    [
        (1, [CPU], None),  # other threads than the early session's
        (None, ["CUDAExecutionProvider", CPU], None),  # other providers
        (None, [CPU], "other.onnx"),  # another file
    ],
)
def test_a_session_with_other_options_is_not_taken(
    tiny_dir: Path, threads: int | None, providers: list[Any], relative: str | None
) -> None:
    manifest = Manifest.load(tiny_dir)
    early = EarlySession(tiny_dir, None)
    path = tiny_dir / (relative or manifest.model_file)
    assert early.take(path, threads, providers) is None
    assert not early.taken
    assert early.take(tiny_dir / manifest.model_file, None, [CPU]) is None  # discarded


def test_the_early_session_has_the_engines_default_threads(tiny_dir: Path) -> None:
    manifest = Manifest.load(tiny_dir)
    early = EarlySession(tiny_dir, None)
    session = early.take(tiny_dir / manifest.model_file, None, [CPU])
    assert session is not None
    assert session.get_session_options().intra_op_num_threads == available_cpus()


def test_a_corrupt_model_is_never_opened_and_the_engine_names_it(
    tmp_path: Path, tiny_dir: Path
) -> None:
    directory = tmp_path / "tiny"
    shutil.copytree(tiny_dir, directory)
    manifest = Manifest.load(directory)
    model = directory / manifest.model_file
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    early = EarlySession(directory, None)
    assert early.verified(directory, manifest.model_file) is None
    assert early.take(model, None, [CPU]) is None
    with pytest.raises(ArtifactIntegrityError, match=str(model)):
        Engine.load(directory, early=early)


def test_a_missing_manifest_only_means_no_early_session(tmp_path: Path) -> None:
    early = EarlySession(tmp_path, None)
    assert early.take(tmp_path / "model.onnx", None, [CPU]) is None


@pytest.mark.parametrize("variable", ["MODEL_URI", "MODEL_DIR"])
def test_the_settings_engines_take_the_session_the_environment_names(
    tiny_dir: Path, variable: str
) -> None:
    env = {variable: str(tiny_dir)}
    early = EarlySession.from_env(env)
    assert early is not None
    (engine,) = RuntimeSettings.from_env(env).load_engines(early=early)
    assert early.taken
    assert engine.name == Manifest.load(tiny_dir).name
