"""Real Pulumi through its Automation API, where the `pulumi` CLI is installed.

The same program (Pulumi.yaml -> infra/) for every stack; where its state lives and what
encrypts its secrets depends on the target:

- a LocalStack stack: a local file backend under build/pulumi/ (no cloud login) and the
  passphrase secrets provider; the passphrase comes from INFERSTACK_PULUMI_PASSPHRASE or
  PULUMI_CONFIG_PASSPHRASE, else one is generated once and kept in
  build/pulumi/passphrase (mode 0600);
- an AWS stack: the backend and secrets provider its config names (`target.state`), an
  S3 bucket or Pulumi Cloud and a KMS key, say. Nothing is generated: a field left unset
  stops the deploy and is named, and a local file backend needs `allow_local_state`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.errors import PulumiUnavailableError, StateBackendError
from stacks.schema import (
    SECRETS_PROVIDERS,
    STATE_BACKENDS,
    AwsTarget,
    LocalStackTarget,
    StackConfig,
)

PASSPHRASE_ENV = ("INFERSTACK_PULUMI_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE")


@dataclass(frozen=True)
class Workspace:
    """How the Automation API runs Pulumi for one stack."""

    backend_url: str
    # The provider a new stack is created with (`pulumi stack init --secrets-provider`).
    secrets_provider: str
    # Set for the Pulumi CLI on top of this process' environment.
    env: dict[str, str]


def available() -> bool:
    """Whether a Pulumi CLI (the engine the Automation API drives) is on PATH."""
    return shutil.which("pulumi") is not None


def backend_dir(root: Path) -> Path:
    return root / "build" / "pulumi"


def passphrase(root: Path, environ: Mapping[str, str] = os.environ) -> str:
    """A LocalStack stack's passphrase: from the environment, else generated once."""
    given = _given_passphrase(environ)
    if given is not None:
        return given
    path = backend_dir(root) / "passphrase"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text(encoding="utf-8").strip()


def workspace(
    stack: str, config: StackConfig, root: Path, environ: Mapping[str, str] = os.environ
) -> Workspace:
    """Where `stack`'s state lives and what encrypts its secrets; raises
    StateBackendError (naming the field of stacks/<stack>.py) for an AWS stack whose
    config leaves either unset."""
    env = {"PULUMI_SKIP_UPDATE_CHECK": "true"}
    target = config.target
    if isinstance(target, LocalStackTarget):
        url = backend_dir(root).resolve().as_uri()
        env.update(PULUMI_BACKEND_URL=url, PULUMI_CONFIG_PASSPHRASE=passphrase(root, environ))
        return Workspace(url, "passphrase", env)
    url, provider = _aws_state(stack, target)
    env["PULUMI_BACKEND_URL"] = url
    if provider == "passphrase":
        given = _given_passphrase(environ)
        if given is None:
            raise StateBackendError(
                f"stacks/{stack}.py: target.state.secrets_provider is 'passphrase' but no "
                f"passphrase is set: set {' or '.join(PASSPHRASE_ENV)} (an AWS stack's "
                "passphrase is never generated)"
            )
        env["PULUMI_CONFIG_PASSPHRASE"] = given
    return Workspace(url, provider, env)


def workspace_options(settings: Workspace, root: Path) -> Any:
    """The Automation API's LocalWorkspaceOptions for `settings`: the project in `root`
    (its Pulumi.yaml is used as written, never rewritten)."""
    from pulumi import automation as auto

    return auto.LocalWorkspaceOptions(
        work_dir=str(root), env_vars=settings.env, secrets_provider=settings.secrets_provider
    )


def up(stack: str, config: StackConfig, root: Path, echo: Callable[[str], None]) -> dict[str, Any]:
    """`pulumi up` for `stack`; returns the stack outputs (secrets shown: local use)."""
    result = _stack(stack, config, root).up(on_output=echo, show_secrets=True)
    return {key: output.value for key, output in result.outputs.items()}


def preview(stack: str, config: StackConfig, root: Path, echo: Callable[[str], None]) -> None:
    """`pulumi preview --diff` for `stack`: Pulumi's own plan, streamed to `echo`."""
    _stack(stack, config, root).preview(on_output=echo, diff=True)


def down(stack: str, config: StackConfig, root: Path, echo: Callable[[str], None]) -> None:
    _stack(stack, config, root).destroy(on_output=echo)


def outputs(stack: str, config: StackConfig, root: Path) -> dict[str, Any]:
    return {key: output.value for key, output in _stack(stack, config, root).outputs().items()}


def _aws_state(stack: str, target: AwsTarget) -> tuple[str, str]:
    state = target.state
    unset = [
        (field, allowed)
        for field, value, allowed in (
            ("backend_url", state.backend_url, STATE_BACKENDS),
            ("secrets_provider", state.secrets_provider, SECRETS_PROVIDERS),
        )
        if value is None
    ]
    if unset:
        field, allowed = unset[0]
        raise StateBackendError(
            f"stacks/{stack}.py: target.state.{field} is not set: an AWS stack's Pulumi "
            f"state and secrets need an explicit home; allowed {', '.join(allowed)} "
            "(see README, Deploying with Pulumi)"
        )
    assert state.backend_url is not None and state.secrets_provider is not None
    return state.backend_url, state.secrets_provider


def _given_passphrase(environ: Mapping[str, str]) -> str | None:
    return next((environ[key] for key in PASSPHRASE_ENV if environ.get(key)), None)


def _stack(name: str, config: StackConfig, root: Path) -> Any:
    from pulumi import automation as auto

    if not available():
        raise PulumiUnavailableError(
            "the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/)"
        )
    settings = workspace(name, config, root)
    if settings.backend_url.startswith("file://"):
        # A file backend's directory must exist before `pulumi login` can use it.
        Path(urllib.parse.urlparse(settings.backend_url).path).mkdir(parents=True, exist_ok=True)
    return auto.create_or_select_stack(
        stack_name=name, work_dir=str(root), opts=workspace_options(settings, root)
    )
