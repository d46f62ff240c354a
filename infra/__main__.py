"""The Pulumi program: `pulumi up -s <name>` deploys the stack declared in stacks/<name>.py."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Pulumi runs this directory with `runpy.run_path("infra/")`, which puts infra/ itself
# first on sys.path: its modules would then shadow top-level packages of the same name.
# The project root goes there instead, so `infra` and `stacks` import as packages.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import pulumi  # noqa: E402

from infra.program import define_stack  # noqa: E402
from infra.stack_loader import load_stack  # noqa: E402

STACK = pulumi.get_stack()
for key, value in define_stack(load_stack(STACK), STACK, ROOT).items():
    pulumi.export(key, value)
