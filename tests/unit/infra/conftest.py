"""Fixtures for the infrastructure tests: each stack's Pulumi program, evaluated once per
session under Pulumi's mock runtime (no engine, no cloud) against a staged project tree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from infra.evaluate import Evaluation, evaluate
from infra.program import define_stack
from infra.stack_loader import available_stacks, load_stack
from stacks.schema import StackConfig
from tests.support.project import stage_project

STACKS = ["local", "dev", "prod"]


@pytest.fixture(scope="session")
def project_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    return stage_project(root, [load_stack(name) for name in available_stacks()])


@pytest.fixture(scope="session")
def run_program(project_root: Path) -> Callable[[StackConfig, str], Evaluation]:
    """Evaluate any config as stack `name` (fresh mock runtime per call)."""

    def run(config: StackConfig, name: str) -> Evaluation:
        return evaluate(lambda: define_stack(config, name, project_root), name)

    return run


@pytest.fixture(scope="session")
def evaluations(run_program: Callable[[StackConfig, str], Evaluation]) -> dict[str, Evaluation]:
    return {name: run_program(load_stack(name), name) for name in STACKS}


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, evaluations: dict[str, Evaluation]) -> Evaluation:
    return evaluations[request.param]


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_aws warns about its own deprecated resource classes at import time.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws.*")
