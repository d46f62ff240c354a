"""A staged checkout the `inferstack` CLI runs in, as a real subprocess.

The CLI finds a stack by name (stacks/<name>.py) and its outputs in the project's
build/deploy/, both under the checkout it runs from. So a test deploys from a staged
checkout: the repository's packages linked in, `layers/` copied (the project root is
where layers/package.py lies, links resolved) and a `stacks/` holding only the test's
stack file; the CLI runs there, so a developer's own deployments are left alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from stacks.schema import StackConfig
from tests.support.deploy import REPO, stage_root

LINKED = ("cli", "infra", "localdev", "model_build", "plugins")


def staged_checkout(
    root: Path, stack: str, stack_file: str, config: StackConfig, artifacts: Mapping[str, Path]
) -> Path:
    """`stage_root` plus what the CLI needs; `stack_file` must declare `config`. The
    repository's stacks/local.py is there as stacks/_local.py, a module that is not a
    stack, so that two stacks do not both claim the account's API Gateway logging role."""
    root = stage_root(root, config, artifacts)
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "layers", root / "layers", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "stacks").mkdir()
    for name in ("__init__.py", "schema.py"):
        shutil.copyfile(REPO / "stacks" / name, root / "stacks" / name)
    shutil.copyfile(REPO / "stacks" / "local.py", root / "stacks" / "_local.py")
    (root / "stacks" / f"{stack}.py").write_text(stack_file, encoding="utf-8")
    loaded = run_python(
        root,
        "from infra.stack_loader import load_stack;"
        f" print(load_stack({stack!r}).model_dump_json())",
    )
    assert json.loads(loaded) == json.loads(config.model_dump_json())
    return root


def run_python(root: Path, code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True
    )
    return result.stdout


def inferstack(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`inferstack ARGS` run in the checkout at `root`, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "cli.app", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
