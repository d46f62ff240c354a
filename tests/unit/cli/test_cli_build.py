"""`inferstack build hf:PATH --task ...`: what the user gets wrong is one line, before
anything loads (typer's CliRunner; the builds themselves are integration tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli.app import app


def build(*args: str) -> Result:
    return CliRunner().invoke(app, ["build", *args], terminal_width=200)


def assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def hf_dir(tmp_path: Path) -> Path:
    """A directory that passes the file checks (its weights are not loaded here)."""
    directory = tmp_path / "my-model"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (directory / "model.safetensors").write_bytes(b"")
    (directory / "tokenizer.json").write_text("{}")
    return directory


def test_hf_needs_a_task(hf_dir: Path, tmp_path: Path) -> None:
    result = build(f"hf:{hf_dir}", "--out", str(tmp_path / "models"))
    assert_one_line_error(result, "needs a task (--task)", "embeddings, sequence-classification")


def test_a_wrong_task_names_the_allowed_ones(hf_dir: Path, tmp_path: Path) -> None:
    result = build(f"hf:{hf_dir}", "--task", "ner", "--out", str(tmp_path / "models"))
    assert_one_line_error(
        result, "--task has value 'ner'; allowed: embeddings, sequence-classification"
    )


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = build(f"hf:{missing}", "--task", "embeddings", "--out", str(tmp_path / "models"))
    assert_one_line_error(result, f"Hugging Face directory {missing} does not exist")


def test_a_missing_tokenizer_is_named(hf_dir: Path, tmp_path: Path) -> None:
    (hf_dir / "tokenizer.json").unlink()
    result = build(f"hf:{hf_dir}", "--task", "embeddings", "--out", str(tmp_path / "models"))
    assert_one_line_error(result, f"{hf_dir} has no tokenizer.json")


def test_a_bad_name_is_refused(hf_dir: Path, tmp_path: Path) -> None:
    result = build(
        f"hf:{hf_dir}", "--task", "embeddings", "--name", "My Model", "--out", str(tmp_path)
    )
    assert_one_line_error(result, "model name 'My Model' is not allowed")


def test_a_task_is_only_for_hf(tmp_path: Path) -> None:
    result = build("digits", "--task", "embeddings", "--out", str(tmp_path))
    assert_one_line_error(result, "'digits' takes no task or name")
