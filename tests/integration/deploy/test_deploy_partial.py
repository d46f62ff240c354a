"""An `up` that fails half-way keeps a record of what it created: the next `up` finishes
the job without duplicating anything, and `down` still removes everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.stack_loader import load_stack
from localdev.deploy import DeployError, down, status, up
from localdev.deploy.realizers import REALIZERS
from tests.support.deploy import leftovers, stage_root

STACK = "t-partial"


def test_a_failed_up_is_finished_by_the_next(
    endpoint: str,
    digits_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = load_stack("local")
    config = local.model_copy(update={"models": local.models[:1]})
    root = stage_root(tmp_path_factory.mktemp(STACK) / "root", config, {"digits": digits_dir})
    alias = REALIZERS["aws:lambda/alias:Alias"]

    def refuse(*_args: Any) -> Any:
        raise RuntimeError("injected: alias creation failed")

    try:
        with monkeypatch.context() as patch:
            patch.setattr(alias, "create", refuse)
            with pytest.raises(DeployError, match=r"digits-live.*injected: alias creation failed"):
                up(STACK, config=config, root=root)
        partial = status(STACK, root=root)
        assert partial.deployed and partial.missing == []
        created_before = {resource.name for resource in partial.resources}
        assert f"inferstack-{STACK}-digits" in created_before  # the function exists

        finished = up(STACK, config=config, root=root)
        assert finished.names("create") & created_before == set()
        assert f"inferstack-{STACK}-digits-live" in finished.names("create")
        assert finished.names("same") == created_before
        assert finished.outputs["url"]
    finally:
        summary = down(STACK, root=root)
    layers = {c.name for c in summary.changes if c.type.startswith("aws:lambda/layer")}
    left = leftovers(endpoint, STACK, layers)
    assert left.empty, left
