"""Real Pulumi through its Automation API, where the `pulumi` CLI is installed.

The same program (Pulumi.yaml -> infra/), a local file backend under build/pulumi/ (no
cloud login), and the passphrase secrets provider: the passphrase comes from
INFERSTACK_PULUMI_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE, else one is generated once and
kept in build/pulumi/passphrase (mode 0600). This is the path to real AWS.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.errors import PulumiUnavailableError

PASSPHRASE_ENV = ("INFERSTACK_PULUMI_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE")


def available() -> bool:
    """Whether a Pulumi CLI (the engine the Automation API drives) is on PATH."""
    return shutil.which("pulumi") is not None


def backend_dir(root: Path) -> Path:
    return root / "build" / "pulumi"


def passphrase(root: Path) -> str:
    for key in PASSPHRASE_ENV:
        if os.environ.get(key):
            return os.environ[key]
    path = backend_dir(root) / "passphrase"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text(encoding="utf-8").strip()


def up(stack: str, root: Path, echo: Callable[[str], None]) -> dict[str, Any]:
    """`pulumi up` for `stack`; returns the stack outputs (secrets shown: local use)."""
    result = _stack(stack, root).up(on_output=echo, show_secrets=True)
    return {key: output.value for key, output in result.outputs.items()}


def down(stack: str, root: Path, echo: Callable[[str], None]) -> None:
    _stack(stack, root).destroy(on_output=echo)


def outputs(stack: str, root: Path) -> dict[str, Any]:
    return {key: output.value for key, output in _stack(stack, root).outputs().items()}


def _stack(name: str, root: Path) -> Any:
    from pulumi import automation as auto

    if not available():
        raise PulumiUnavailableError("the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/)")
    backend = backend_dir(root)
    backend.mkdir(parents=True, exist_ok=True)
    env = {
        "PULUMI_BACKEND_URL": backend.resolve().as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": passphrase(root),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    options = auto.LocalWorkspaceOptions(
        work_dir=str(root), env_vars=env, secrets_provider="passphrase"
    )
    return auto.create_or_select_stack(stack_name=name, work_dir=str(root), opts=options)
