"""Helpers for tests/aws, acceptance on a real AWS account: what it needs, a project
tree to deploy, and what a stack left behind.

These tests create real resources (and cost a few cents): they run only when
INFERSTACK_AWS_ACCEPTANCE=1, AWS credentials and the `pulumi` CLI are all present.
Otherwise every test is reported as skipped with the reason. The check for credentials
comes last: the credential chain may ask the instance metadata service.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from layers.package import project_root

ENABLE = "INFERSTACK_AWS_ACCEPTANCE"
REPO = project_root()
# Copied into the staged project: infra/__main__.py finds the project root (and so the
# stack files) from where it lies, and the stack file of the acceptance stack is written
# into the copy's stacks/.
COPIED = ("infra", "stacks")
LINKED = (
    "functions",
    "model_runtime",
    "model_build",
    "layers",
    "localdev",
    "cli",
    "pyproject.toml",
    "Pulumi.yaml",
    ".venv",
)


def skip_reason() -> str | None:
    """Why the acceptance tests cannot run here, or None when they can."""
    if os.environ.get(ENABLE) != "1":
        return (
            f"acceptance on a real AWS account: set {ENABLE}=1 (it creates and destroys "
            "resources, a few cents)"
        )
    if shutil.which("pulumi") is None:
        return "needs the Pulumi CLI on PATH (https://www.pulumi.com/docs/install/)"
    import boto3

    if boto3.Session().get_credentials() is None:
        return "needs AWS credentials (environment, profile or role)"
    return None


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def stage_project(root: Path) -> Path:
    """A copy of the project that the Pulumi CLI runs as written, under `root`; its build
    cache is the repository's (built zips are shared, content-addressed)."""
    root.mkdir(parents=True)
    for name in COPIED:
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    (root / "build" / "models").mkdir(parents=True)
    (REPO / "build" / "package").mkdir(parents=True, exist_ok=True)
    (root / "build" / "package").symlink_to(REPO / "build" / "package")
    return root


def leftovers(stack: str, session: Any) -> dict[str, list[str]]:
    """Everything in the account and region that still belongs to `stack`: by the tag the
    provider puts on every taggable resource (`inferstack:stack`), and by name for what
    the tagging API does not list (IAM roles) or lists late."""
    prefix = f"inferstack-{stack}-"
    lam = session.client("lambda")
    gateway = session.client("apigateway")
    found = {
        "tagged": [
            item["ResourceARN"]
            for page in session.client("resourcegroupstaggingapi")
            .get_paginator("get_resources")
            .paginate(TagFilters=[{"Key": "inferstack:stack", "Values": [stack]}])
            for item in page["ResourceTagMappingList"]
        ],
        "functions": [
            fn["FunctionName"]
            for page in lam.get_paginator("list_functions").paginate()
            for fn in page["Functions"]
            if fn["FunctionName"].startswith(prefix)
        ],
        "layers": [
            layer["LayerName"]
            for page in lam.get_paginator("list_layers").paginate()
            for layer in page["Layers"]
            if layer["LayerName"].startswith(prefix)
        ],
        "roles": [
            role["RoleName"]
            for page in session.client("iam").get_paginator("list_roles").paginate()
            for role in page["Roles"]
            if role["RoleName"].startswith(prefix)
        ],
        "apis": [
            api["name"]
            for page in gateway.get_paginator("get_rest_apis").paginate()
            for api in page["items"]
            if api["name"].startswith(prefix)
        ],
        "api_keys": [
            key["name"]
            for page in gateway.get_paginator("get_api_keys").paginate()
            for key in page["items"]
            if key["name"].startswith(prefix)
        ],
        "usage_plans": [
            plan["name"]
            for page in gateway.get_paginator("get_usage_plans").paginate()
            for plan in page["items"]
            if plan["name"].startswith(prefix)
        ],
        "buckets": [
            bucket["Name"]
            for bucket in session.client("s3").list_buckets()["Buckets"]
            if bucket["Name"].startswith(prefix)
        ],
        "log_groups": [
            group["logGroupName"]
            for page in session.client("logs")
            .get_paginator("describe_log_groups")
            .paginate(logGroupNamePrefix=f"/aws/lambda/{prefix}")
            for group in page["logGroups"]
        ],
    }
    return {kind: names for kind, names in found.items() if names}


def wait_for_nothing_left(
    stack: str, session: Any, timeout_s: float = 300.0
) -> dict[str, list[str]]:
    """`leftovers`, asked again until empty or `timeout_s` (the tagging API lists a
    deleted resource for a while)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = leftovers(stack, session)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(15)
