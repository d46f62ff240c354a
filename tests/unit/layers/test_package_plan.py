"""`package(delivery=None)` plans the delivery: a model layer when everything fits Lambda's
limits, else S3 objects, with /tmp sized from the files; an asked delivery is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

import layers.budget
from layers.budget import Delivery
from layers.errors import BudgetError, NotBuiltError
from layers.package import package
from layers.targets import Target
from tests.support.project import package_dir, stage_packages, write_artifact

MB = 1_048_576


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for directory in ("functions", "model_runtime"):
        (root / directory).mkdir(parents=True)
        (root / directory / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text('[project]\nname = "staged"\ndependencies = []\n')
    write_artifact(root / "build/models/big", "big")
    stage_packages(root, Target.of("python3.12", "x86_64"), root / "build/models/big", "layer")
    return root


def planned(root: Path, delivery: Delivery | None = None) -> tuple[str, int, bool]:
    result = package(root / "build/models/big", delivery=delivery, root=root, build=False)
    return result.delivery, result.ephemeral_storage_mb, result.model_layer is not None


def test_a_model_that_fits_gets_its_layer(root: Path) -> None:
    assert planned(root) == ("layer", 512, True)


def test_a_model_over_the_budget_goes_to_s3_with_tmp_for_it(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_layer = package(root / "build/models/big", root=root, build=False).budget.unzipped_bytes
    model = (root / "build/models/big/model.onnx").stat().st_size
    # The code (and a manifest's worth) fits; the code with the model does not.
    monkeypatch.setattr(layers.budget, "MAX_UNZIPPED_BYTES", with_layer - model + 1)
    monkeypatch.setattr(layers.budget, "TMP_HEADROOM_BYTES", 600 * MB)
    result = package(root / "build/models/big", delivery=None, root=root, build=False)
    assert result.delivery == "s3" and result.model_layer is None
    assert result.s3_objects is not None and result.model_uri.startswith("s3://<bucket>/")
    assert result.budget.ok
    assert result.ephemeral_storage_mb == 601  # a few bytes of model + 600 MB headroom
    # Asked for a layer, the same model is over the budget, as before.
    with pytest.raises(BudgetError, match="deliver the model from S3"):
        package(root / "build/models/big", delivery="layer", root=root, build=False)


def test_an_unbuilt_layer_of_a_planned_layer_is_named(root: Path) -> None:
    for info in package_dir(root).glob("model-big-*"):
        info.unlink()
    with pytest.raises(NotBuiltError, match="the model layer of big"):
        planned(root)
