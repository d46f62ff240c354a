"""Moves of `live` through CodeDeploy, for models declared with `alarm_rollback` (AWS
stacks, infra/alias_deployments.py): a deployment shifts the alias in the group's steps
and CodeDeploy moves it back when one of the model's alarms fires.

A Lambda deployment's revision is an AppSpec naming the function, the alias and the two
versions; CodeDeploy reads it from the request itself (revision type AppSpecContent).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cli.errors import UserError

# What `inferstack rollback` asks for when no deployment is running: all at once.
ALL_AT_ONCE = "CodeDeployDefault.LambdaAllAtOnce"
# The statuses of a deployment that has not ended (CodeDeploy runs one per group).
ACTIVE = ["Created", "Queued", "InProgress", "Ready"]


@dataclass(frozen=True)
class DeploymentGroup:
    stack: str
    application: str
    group: str
    client: Any  # a botocore codedeploy client


def appspec(function: str, alias: str, current: int, target: int) -> str:
    """The AppSpec of a deployment that moves `alias` of `function` from `current` to
    `target` (CodeDeploy's Lambda AppSpec, version 0.0)."""
    return json.dumps(
        {
            "version": 0.0,
            "Resources": [
                {
                    function: {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {
                            "Name": function,
                            "Alias": alias,
                            "CurrentVersion": str(current),
                            "TargetVersion": str(target),
                        },
                    }
                }
            ],
        },
        sort_keys=True,
    )


def start(
    group: DeploymentGroup,
    function: str,
    alias: str,
    current: int,
    target: int,
    *,
    description: str,
    all_at_once: bool = False,
) -> str:
    """Start a deployment of `target` (the group's own steps, else all at once); its id."""
    content = appspec(function, alias, current, target)
    request: dict[str, Any] = {
        "applicationName": group.application,
        "deploymentGroupName": group.group,
        "revision": {
            "revisionType": "AppSpecContent",
            "appSpecContent": {
                "content": content,
                "sha256": hashlib.sha256(content.encode()).hexdigest(),
            },
        },
        "description": description,
    }
    if all_at_once:
        request["deploymentConfigName"] = ALL_AT_ONCE
    with codedeploy_calls(group):
        answer = group.client.create_deployment(**request)
    return str(answer["deploymentId"])


def active(group: DeploymentGroup) -> str | None:
    """The group's deployment that has not ended yet, if any."""
    with codedeploy_calls(group):
        answer = group.client.list_deployments(
            applicationName=group.application,
            deploymentGroupName=group.group,
            includeOnlyStatuses=ACTIVE,
        )
    running = answer.get("deployments") or []
    return str(running[0]) if running else None


def stop(group: DeploymentGroup, deployment_id: str) -> None:
    """Stop a deployment; CodeDeploy moves the alias back to where it started."""
    with codedeploy_calls(group):
        group.client.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)


@contextmanager
def codedeploy_calls(group: DeploymentGroup) -> Iterator[None]:
    """CodeDeploy's errors as one line each, by code."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code in ("ApplicationDoesNotExistException", "DeploymentGroupDoesNotExistException"):
            raise UserError(
                f"CodeDeploy group {group.group} is not in the cloud of stack {group.stack}:"
                f" run `inferstack up --stack {group.stack}`"
            ) from exc
        if code == "DeploymentLimitExceededException":
            raise UserError(
                f"a deployment of CodeDeploy group {group.group} is running: wait for it, or"
                " `inferstack rollback` stops it"
            ) from exc
        message = exc.response["Error"].get("Message", "")
        raise UserError(
            f"CodeDeploy refused a call on group {group.group}: {code}: {message}"
        ) from exc
    except BotoCoreError as exc:  # unreachable endpoint, no credentials
        raise UserError(f"cannot call CodeDeploy for stack {group.stack}: {exc}") from exc
