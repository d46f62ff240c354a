"""Find `stacks/<name>.py` for a Pulumi stack name and return its validated `STACK`."""

from __future__ import annotations

import importlib
import re
import traceback
from pathlib import Path
from types import ModuleType

from pydantic import ValidationError

from infra.errors import StackConfigError
from stacks.schema import STACK_NAME_PATTERN, StackConfig

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
    module_name = f"{package}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ValidationError as exc:
        raise StackConfigError(
            f"{_where(exc, module_name)}: {describe_validation_error(exc)}"
        ) from exc
    return _stack_of(module, f"{package}/{name}.py")


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
