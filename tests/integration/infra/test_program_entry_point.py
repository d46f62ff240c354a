"""The Pulumi program as Pulumi's language host runs it: in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

from layers.package import project_root

REPO = project_root()


def test_pulumi_program_entry_point_rejects_an_unknown_stack() -> None:
    """`infra/` run as the Pulumi language host runs it (`runpy.run_path` of the directory,
    in a fresh interpreter) for `pulumi up -s qa`."""
    script = (
        "import runpy, sys\n"
        "from infra.evaluate import evaluate\n"
        "try:\n"
        "    evaluate(lambda: runpy.run_path('infra', run_name='__main__') and {}, 'qa')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "    print('infra dir on path:', any(p.endswith('/infra') for p in sys.path))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == [
        "StackConfigError no stack named 'qa': there is no stacks/qa.py;"
        " available stacks: dev, local, prod",
        "infra dir on path: False",
    ]
