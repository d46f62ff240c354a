"""The `inferstack` command line, run as a real subprocess: predictions, and errors as one
readable line with a non-zero exit code, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def inferstack(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.app", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_predict_local_npy_matches_the_engine(
    digits_dir: Path, digits_engine, digits_images: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "image.npy"
    np.save(path, digits_images[:3])
    result = inferstack("predict", "--model-dir", str(digits_dir), "--input", str(path), "--json")
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    labels = next(o for o in response["outputs"] if o["name"] == "label")["data"]
    expected = digits_engine.infer({"image": digits_images[:3]})["label"].tolist()
    assert labels == expected


def test_predict_named_arrays_json(
    digits_dir: Path, digits_images: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"image": digits_images[:1].tolist()}))
    result = inferstack("predict", "--model-dir", str(digits_dir), "--input", str(path))
    assert result.returncode == 0, result.stderr
    assert "probabilities" in result.stdout and "label" in result.stdout


def test_predict_missing_artifact(tmp_path: Path) -> None:
    sample = tmp_path / "x.json"
    sample.write_text('{"inputs": []}')
    result = inferstack("predict", "--model-dir", str(tmp_path / "nope"), "--input", str(sample))
    assert_one_line_error(result, "manifest", "nope")


def test_predict_bad_input_names_the_problem(digits_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"pixels": [[0.0]]}))
    result = inferstack("predict", "--model-dir", str(digits_dir), "--input", str(path))
    assert_one_line_error(result, "pixels", "image")


def test_predict_invalid_json(digits_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    result = inferstack("predict", "--model-dir", str(digits_dir), "--input", str(path))
    assert_one_line_error(result, "invalid JSON")


def test_predict_unreachable_server(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text(
        '{"inputs": [{"name": "image", "shape": [1], "datatype": "FP32", "data": [0]}]}'
    )
    result = inferstack(
        "predict", "--url", "http://127.0.0.1:9", "--model", "digits", "--input", str(path)
    )
    assert_one_line_error(result, "cannot reach http://127.0.0.1:9")


def test_predict_needs_exactly_one_target(tmp_path: Path) -> None:
    result = inferstack("predict", "--input", str(tmp_path / "x.json"))
    assert_one_line_error(result, "--url", "--model-dir")


def test_serve_tampered_artifact_refuses_to_start(digits_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "digits"
    shutil.copytree(digits_dir, copy)
    model = copy / "model.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    result = inferstack("serve", str(copy), "--port", "9")
    assert_one_line_error(result, str(model), "expected", "actual")


def test_build_rejects_an_unknown_exporter() -> None:
    result = inferstack("build", "digits", "--exporter", "tflite")
    assert_one_line_error(result, "--exporter", "tflite", "torchscript, dynamo")


@pytest.mark.parametrize("reference", ["no_such_module:spec", "model_build.spec:nothing", "bad"])
def test_build_rejects_a_bad_model_reference(reference: str, tmp_path: Path) -> None:
    result = inferstack("build", reference, "--out", str(tmp_path))
    assert_one_line_error(result, reference)


def test_package_rejects_an_unknown_delivery(digits_dir: Path) -> None:
    result = inferstack("package", str(digits_dir), "--delivery", "ftp")
    assert_one_line_error(result, "--delivery", "ftp", "layer, s3")


def test_package_rejects_an_unknown_architecture(digits_dir: Path) -> None:
    result = inferstack("package", str(digits_dir), "--arch", "sparc")
    assert_one_line_error(result, "--arch", "sparc", "x86_64, arm64")


def test_build_shows_its_progress_and_logs_the_exporters_warnings(tmp_path: Path) -> None:
    # The torchscript exporter warns (DeprecationWarning) on every export.
    result = inferstack(
        "build", "digits", "--out", str(tmp_path / "models"), cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "warn(" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == ["exporter warnings logged to build/logs/build-digits.log"]
    log = (tmp_path / "build" / "logs" / "build-digits.log").read_text()
    assert "DeprecationWarning" in log
    assert "built" in result.stdout and "digits-int8" in result.stdout

    again = inferstack("build", "digits", "--out", str(tmp_path / "models"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""  # up to date: nothing exported, nothing logged
    assert "up to date" in again.stdout
