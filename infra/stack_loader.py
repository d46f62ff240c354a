"""Find `stacks/<name>.py` for a Pulumi stack name and return its validated `STACK`."""

from __future__ import annotations

import importlib
import re
import traceback
from pathlib import Path
from types import ModuleType

from pydantic import ValidationError

from infra.errors import StackConfigError
from stacks.schema import STACK_NAME_PATTERN, LocalStackTarget, StackConfig

STACKS_PACKAGE = "stacks"
# Modules in the stacks package that are not stacks.
_NOT_STACKS = {"__init__", "schema"}


def available_stacks(package: str = STACKS_PACKAGE) -> list[str]:
    directory = _package_dir(package)
    return sorted(
        path.stem
        for path in directory.glob("*.py")
        if path.stem not in _NOT_STACKS and not path.stem.startswith("_")
    )


def load_stack(name: str, package: str = STACKS_PACKAGE) -> StackConfig:
    available = available_stacks(package)
    if name not in available:
        raise StackConfigError(
            f"no stack named {name!r}: there is no {package}/{name}.py; "
            f"available stacks: {', '.join(available) or '(none)'}"
        )
    if not re.fullmatch(STACK_NAME_PATTERN, name):
        raise StackConfigError(
            f"stack name {name!r} is not allowed (must match {STACK_NAME_PATTERN}: it becomes "
            "part of AWS and Kubernetes resource names)"
        )
    stack = _load_file(name, package)
    if stack.manages_account_logging_role:
        _check_sole_account_setting_owner(name, stack, package)
    return stack


def _check_sole_account_setting_owner(name: str, stack: StackConfig, package: str) -> None:
    """API Gateway's CloudWatch role is one setting per account and region, and deleting it
    resets it: two stacks owning it would overwrite it, and either's destroy would end
    the other's logging. Refused here, with every stack file read."""
    where = _account_of(stack)
    owners = [name] + [
        other
        for other in available_stacks(package)
        if other != name
        and (config := _load_file(other, package)).manages_account_logging_role
        and _same_account(where, _account_of(config))
    ]
    if len(owners) > 1:
        raise StackConfigError(
            f"api.manage_account_logging_role: stacks {', '.join(sorted(owners))} each manage "
            f"API Gateway's account-wide CloudWatch role, in one account and region "
            f"({where[1]}); "
            "set it True in exactly one of them (the others' access logs need that stack "
            "deployed), or give them disjoint target.allowed_account_ids"
        )


def _load_file(name: str, package: str) -> StackConfig:
    """`stacks/<name>.py`'s STACK, without the checks across stacks."""
    module_name = f"{package}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ValidationError as exc:
        raise StackConfigError(
            f"{_where(exc, module_name)}: {describe_validation_error(exc)}"
        ) from exc
    return _stack_of(module, f"{package}/{name}.py")


# (LocalStack endpoint or "aws", region, the allowed AWS accounts; None: any account)
_Account = tuple[str, str, frozenset[str] | None]


def _account_of(stack: StackConfig) -> _Account:
    target = stack.target
    if isinstance(target, LocalStackTarget):
        return (target.endpoint.rstrip("/"), target.region, None)
    accounts = target.allowed_account_ids
    return ("aws", target.region, frozenset(accounts) if accounts is not None else None)


def _same_account(one: _Account, other: _Account) -> bool:
    """Whether two stacks may deploy into the same account and region: an AWS stack
    without allowed_account_ids may be in any account."""
    if one[:2] != other[:2]:
        return False
    return one[2] is None or other[2] is None or bool(one[2] & other[2])


def describe_validation_error(exc: ValidationError) -> str:
    """Each error as `field.path: message`, the path starting at the config's own title
    (`lambda`, `api`, ...) so an error in a nested constructor still names its field."""
    prefix = "" if exc.title == "stack" else exc.title
    lines = []
    for error in exc.errors():
        if not error["loc"]:
            # Whole-object checks write the field paths into their own message.
            lines.append(error["msg"])
            continue
        path = prefix
        for part in error["loc"]:
            if isinstance(part, int):
                path = (path.removesuffix("[]") or "") + f"[{part}]"
            else:
                path = f"{path}.{part}" if path else str(part)
        lines.append(f"{path}: {error['msg']}")
    return "; ".join(lines)


def _stack_of(module: ModuleType, path: str) -> StackConfig:
    stack = getattr(module, "STACK", None)
    if not isinstance(stack, StackConfig):
        raise StackConfigError(
            f"{path} must define STACK = StackConfig(...); found {type(stack).__name__}"
        )
    return stack


def _where(exc: BaseException, module_name: str) -> str:
    """`stacks/dev.py:23`: the line of the stack file where validation failed."""
    module_file = module_name.replace(".", "/") + ".py"
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).as_posix().endswith(module_file):
            line = frame.lineno
    return f"{module_file}:{line}" if line else module_file


def _package_dir(package: str) -> Path:
    module = importlib.import_module(package)
    if module.__file__ is None:
        raise StackConfigError(f"{package} is not a package with a directory")
    return Path(module.__file__).parent
