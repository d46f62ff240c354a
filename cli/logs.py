"""`inferstack logs --stack S --model M [--follow]`: the log lines of a model's Lambda
function, from its CloudWatch Logs group (the EMF line of each request among them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from cli import deployment
from cli.console import console, note
from cli.errors import UserError

StackOption = Annotated[str, typer.Option("--stack", "-s", help="The deployed stack's name.")]
ModelOption = Annotated[str, typer.Option("--model", "-m", help="The model's name.")]
MinutesOption = Annotated[int, typer.Option(help="How far back to read, in minutes.")]
FOLLOW_POLL_S = 2.0


def check_minutes(minutes: int) -> int:
    if minutes < 1:
        raise UserError(f"--minutes has value {minutes}; allowed: a whole number >= 1")
    return minutes


def log_group(function: str) -> str:
    """The group Lambda writes a function's output to (the stack declares it so)."""
    return f"/aws/lambda/{function}"


def deployed_functions(stack: str) -> dict[str, str]:
    """model -> its Lambda function's name in the deployed stack; a UserError when the stack
    is unknown or not deployed."""
    from infra.stack_loader import load_stack

    load_stack(stack)  # an unknown stack stops here, naming the known ones
    outputs = deployment.outputs(stack)
    if not isinstance(outputs.get("url"), str):
        raise UserError(f"stack {stack} is not deployed: run `inferstack up --stack {stack}`")
    return dict(outputs.get("functions") or {})


def function_of(stack: str, model: str) -> str:
    """The model's function, or a UserError listing the stack's models that have one."""
    functions = deployed_functions(stack)
    if model not in functions:
        known = ", ".join(sorted(functions)) or "(none)"
        raise UserError(f"stack {stack} has no Lambda model {model!r}; its models: {known}")
    return functions[model]


def read_events(
    client: Any, group: str, start_ms: int, end_ms: int | None = None
) -> Iterator[dict[str, Any]]:
    """The group's events from `start_ms` (to `end_ms`), oldest first, every page; none
    when the group does not exist yet (no invocation so far)."""
    request: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
    if end_ms is not None:
        request["endTime"] = end_ms
    while True:
        try:
            answer = client.filter_log_events(**request)
        except client.exceptions.ResourceNotFoundException:
            return
        yield from answer.get("events", [])
        token = answer.get("nextToken")
        if not token or token == request.get("nextToken"):
            return
        request["nextToken"] = token


def follow_events(
    client: Any,
    group: str,
    start_ms: int,
    *,
    sleep: Callable[[float], None] = time.sleep,
    polls: int | None = None,
) -> Iterator[dict[str, Any]]:
    """`read_events`, then every FOLLOW_POLL_S the events since the last one, each once
    (until Ctrl-C, or `polls` polls)."""
    seen: set[str] = set()
    since = start_ms
    done = 0
    while polls is None or done < polls:
        for event in read_events(client, group, since):
            if event["eventId"] in seen:
                continue
            seen.add(event["eventId"])
            since = max(since, int(event["timestamp"]))
            yield event
        done += 1
        if polls is None or done < polls:
            sleep(FOLLOW_POLL_S)


def format_event(event: dict[str, Any]) -> str:
    stamp = datetime.fromtimestamp(int(event["timestamp"]) / 1000, UTC).strftime("%H:%M:%S")
    return f"{stamp} {str(event['message']).rstrip()}"


def logs(
    stack: StackOption,
    model: ModelOption,
    follow: Annotated[bool, typer.Option(help="Keep printing new lines (Ctrl-C ends).")] = False,
    minutes: MinutesOption = 15,
) -> None:
    """Print the log lines of a model's Lambda function (the last 15 minutes by default)."""
    check_minutes(minutes)
    group = log_group(function_of(stack, model))
    client = deployment.aws_client(stack, "logs")
    start_ms = int((time.time() - minutes * 60) * 1000)
    events = (
        follow_events(client, group, start_ms) if follow else read_events(client, group, start_ms)
    )
    printed = 0
    try:
        for event in events:
            console.print(escape(format_event(event)), highlight=False, soft_wrap=True)
            printed += 1
    except KeyboardInterrupt:
        return
    if not printed and not follow:
        note(f"no log lines in {group} in the last {minutes} minutes")
