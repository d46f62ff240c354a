"""The work behind `inferstack up|down|status|preview --stack NAME`; the commands (cli/deploy.py)
and the demo print what these return. Progress goes to `echo`.

With the Pulumi CLI on PATH these drive real Pulumi (Automation API, local backend under
build/pulumi/). Without it, the in-process engine deploys LocalStack stacks; an AWS stack
stops with a message to install the Pulumi CLI. `DeployEngine` picks one explicitly.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localdev.errors import DeployError

if TYPE_CHECKING:
    from localdev.deploy.engine import StackStatus, Summary
    from localdev.deploy.state import NotEmulated
    from stacks.schema import StackConfig

Echo = Callable[[str], None]


class DeployEngine(StrEnum):
    auto = "auto"
    pulumi = "pulumi"
    local = "local"


@dataclass(frozen=True)
class Deployment:
    """What `up` deployed: the stack's outputs, and the in-process engine's changes
    (`summary` is None when Pulumi deployed it)."""

    stack: str
    outputs: dict[str, Any]
    seconds: float
    summary: Summary | None

    @property
    def not_emulated(self) -> Sequence[NotEmulated]:
        return self.summary.not_emulated if self.summary is not None else ()


@dataclass(frozen=True)
class Teardown:
    """What `down` did: the in-process engine's deletions (`summary`), or, LocalStack being
    down, how many resources it cleared from the deploy state (`forgotten`); both None
    when Pulumi destroyed the stack."""

    stack: str
    summary: Summary | None = None
    forgotten: int | None = None


def up(
    stack: str, engine: DeployEngine = DeployEngine.auto, *, build: bool = True, echo: Echo
) -> Deployment:
    """Build what is missing, start LocalStack if the stack targets it, and deploy."""
    from cli.prepare import prepare
    from infra import automation

    started = time.monotonic()
    root = _root()
    config = _config(stack)
    use_pulumi = _use_pulumi(engine, config)
    if use_pulumi:
        # An AWS stack without its state backend set stops here, before any build.
        automation.workspace(stack, config, root)
    if build:
        prepare(config, root, echo)
    endpoint = _ensure_localstack(config, echo)
    if use_pulumi:
        outputs = automation.up(stack, config, root, echo)
        if endpoint is not None:
            outputs = _localstack_urls(outputs, endpoint)
        return Deployment(stack, outputs, time.monotonic() - started, None)
    from localdev.deploy import engine as local_engine

    summary = local_engine.up(stack, config=config, root=root, echo=echo)
    return Deployment(stack, summary.outputs, time.monotonic() - started, summary)


def down(stack: str, engine: DeployEngine = DeployEngine.auto, *, echo: Echo) -> Teardown:
    """Delete everything the stack's `up` created (safe to re-run)."""
    from infra import automation

    root = _root()
    config = _config(stack)
    if _use_pulumi(engine, config):
        automation.down(stack, config, root, echo)
        return Teardown(stack)
    from localdev.deploy import engine as local_engine
    from localdev.localstack import manager

    endpoint = local_engine.localstack_endpoint(config)
    if _is_managed(endpoint) and not manager.status().running:
        # LocalStack community keeps nothing across restarts: what the state file
        # lists died with the process that held it.
        return Teardown(stack, forgotten=local_engine.forget(stack, root=root))
    return Teardown(stack, summary=local_engine.down(stack, root=root, echo=echo))


def status(stack: str, engine: DeployEngine = DeployEngine.auto) -> StackStatus | dict[str, Any]:
    """The in-process engine's view of the stack (is LocalStack up, does each resource
    still exist), or, deployed by Pulumi, the stack's outputs."""
    from infra import automation

    root = _root()
    config = _config(stack)
    if _use_pulumi(engine, config):
        return automation.outputs(stack, config, root)
    from localdev.deploy import engine as local_engine

    return local_engine.status(stack, root=root)


def preview(
    stack: str, engine: DeployEngine = DeployEngine.auto, *, build: bool = True, echo: Echo
) -> Summary | None:
    """What `up` would create, update, replace, delete or retain, and why, changing nothing
    in the cloud. It builds what is missing first, as `up` does, so that it compares the
    content `up` would deploy. With the Pulumi CLI, Pulumi's own preview (`--diff`) is
    streamed to `echo` and None returned."""
    from cli.prepare import prepare
    from infra import automation

    root = _root()
    config = _config(stack)
    use_pulumi = _use_pulumi(engine, config)
    if use_pulumi:
        automation.workspace(stack, config, root)  # a missing state backend stops here
    if build:
        prepare(config, root, echo)
    if use_pulumi:
        automation.preview(stack, config, root, echo)
        return None
    from localdev.deploy import engine as local_engine

    return local_engine.preview(stack, config=config, root=root)


def outputs(stack: str, engine: DeployEngine = DeployEngine.auto) -> dict[str, Any]:
    """The outputs the stack's last `up` recorded, its URLs reachable from this machine;
    empty when it is not deployed. Asks the cloud nothing."""
    from infra import automation
    from stacks.schema import LocalStackTarget

    root = _root()
    config = _config(stack)
    if _use_pulumi(engine, config):
        found = automation.outputs(stack, config, root)
        if isinstance(config.target, LocalStackTarget):
            found = _localstack_urls(found, config.target.endpoint)
        return found
    from localdev.deploy import engine as local_engine

    return local_engine.status(stack, root=root, verify=False).outputs


def s3_client(stack: str) -> Any:
    return aws_client(stack, "s3")


def aws_client(stack: str, service: str) -> Any:
    """A boto3 client of `service` ("s3", "logs", ...) for the stack's cloud: LocalStack's
    endpoint with its test credentials, or AWS in the stack's region with its profile (else
    the default credential chain)."""
    from stacks.schema import LocalStackTarget

    target = _config(stack).target
    if isinstance(target, LocalStackTarget):
        from infra.providers import LOCALSTACK_CREDENTIALS
        from localdev.deploy.aws import Clients, ProviderConfig

        access_key, secret_key = LOCALSTACK_CREDENTIALS
        endpoints = {service: target.endpoint.rstrip("/")}
        return Clients(ProviderConfig(target.region, endpoints, access_key, secret_key))(service)
    import boto3

    session = boto3.session.Session(profile_name=target.profile, region_name=target.region)
    return session.client(service)


def localstack_url(url: str, endpoint: str) -> str:
    """https://<api>.execute-api.<region>.amazonaws.com/<stage>[/path] -> the same URL on
    LocalStack (real Pulumi computes the AWS hostname, which resolves nowhere locally)."""
    parsed = urllib.parse.urlparse(url)
    host = parsed.hostname or ""
    if ".execute-api." not in host:
        return url
    api = host.split(".", 1)[0]
    stage, _, path = parsed.path.strip("/").partition("/")
    rest = f"/{path}" if path else ""
    return f"{endpoint.rstrip('/')}/restapis/{api}/{stage}/_user_request_{rest}"


def _localstack_urls(outputs: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """`outputs` with the API URL and each model's jobs URL as LocalStack serves them."""
    found = dict(outputs)
    if isinstance(found.get("url"), str):
        found["url"] = localstack_url(found["url"], endpoint)
    if isinstance(found.get("jobs"), dict):
        found["jobs"] = {
            model: {**jobs, "jobsUrl": localstack_url(jobs["jobsUrl"], endpoint)}
            if isinstance(jobs.get("jobsUrl"), str)
            else jobs
            for model, jobs in found["jobs"].items()
        }
    return found


def _root() -> Path:
    from layers.package import project_root

    return project_root()


def _config(stack: str) -> StackConfig:
    from infra.stack_loader import load_stack

    return load_stack(stack)


def _use_pulumi(engine: DeployEngine, config: StackConfig) -> bool:
    from infra import automation
    from stacks.schema import LocalStackTarget

    if engine is DeployEngine.pulumi or (engine is DeployEngine.auto and automation.available()):
        if not automation.available():
            raise DeployError(
                "--engine pulumi needs the Pulumi CLI (https://www.pulumi.com/docs/install/)"
            )
        return True
    if not isinstance(config.target, LocalStackTarget):
        raise DeployError(
            f"this stack deploys to AWS ({config.target.region}), which needs the Pulumi CLI: "
            "install it (https://www.pulumi.com/docs/install/) and run this again. Without it, "
            "inferstack deploys only LocalStack stacks (e.g. --stack local)"
        )
    return False


def _is_managed(endpoint: str) -> bool:
    """Whether `endpoint` is where `inferstack localstack start` runs LocalStack."""
    from localdev.localstack import manager

    parsed = urllib.parse.urlparse(endpoint)
    return (parsed.hostname, parsed.port) == (manager.DEFAULT_HOST, manager.DEFAULT_PORT)


def _ensure_localstack(config: StackConfig, echo: Echo) -> str | None:
    """Start LocalStack for a LocalStack stack (or reuse the running one)."""
    from localdev.deploy.aws import reachable
    from localdev.deploy.engine import localstack_endpoint
    from localdev.localstack import manager
    from stacks.schema import LocalStackTarget

    if not isinstance(config.target, LocalStackTarget):
        return None
    endpoint = localstack_endpoint(config)
    if _is_managed(endpoint):
        current = manager.start(echo=echo)
        if not current.reused:
            echo(f"LocalStack started (pid {current.pid})")
    elif not reachable(endpoint):
        raise DeployError(f"LocalStack is not answering at {endpoint}")
    return endpoint
