"""Zips over Lambda's 50 MB direct-upload limit go through the artifact bucket.

Lambda refuses a zip over 50 MB in the CreateFunction/PublishLayerVersion call itself
(functions and layers alike); bigger ones must be put in S3 first and named by
S3Bucket/S3Key. A staged project's zips are small, so each test files one under a
faked size: the build cache's record of it says it is bigger, as a real big build would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest

from infra import bundles
from infra.evaluate import Evaluation, Registered, evaluate
from infra.program import define_stack
from infra.stack_loader import load_stack
from layers.budget import MAX_DIRECT_ZIP_BYTES
from stacks.schema import StackConfig
from tests.support.project import package_dir, stage_project

STACK = "big"
OVER = MAX_DIRECT_ZIP_BYTES + 1
LAYER = "aws:lambda/layerVersion:LayerVersion"
FUNCTION = "aws:lambda/function:Function"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"


def local_config() -> StackConfig:
    return load_stack("local")


def fake_size(root: Path, zip_name: str, zipped_bytes: int) -> Path:
    """Record the built zip `zip_name` as `zipped_bytes` big; returns the zip's path."""
    (info_path,) = package_dir(root).glob(f"{zip_name}-*.json")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["zipped_bytes"] = zipped_bytes
    info["unzipped_bytes"] = max(info["unzipped_bytes"], zipped_bytes)
    info_path.write_text(json.dumps(info), encoding="utf-8")
    return info_path.with_suffix(".zip")


def run(root: Path, config: StackConfig) -> Evaluation:
    return evaluate(lambda: define_stack(config, STACK, root), STACK)


def layer_named(evaluation: Evaluation, layer_name: str) -> Registered:
    return next(r for r in evaluation.of_type(LAYER) if r.inputs["layerName"] == layer_name)


def function_named(evaluation: Evaluation, name: str) -> Registered:
    return next(r for r in evaluation.of_type(FUNCTION) if r.inputs["name"] == name)


def upload_of(evaluation: Evaluation, resource: Registered) -> Registered:
    """The bucket object `resource` takes its code from (it must depend on it)."""
    key = resource.inputs["s3Key"]
    (upload,) = [r for r in evaluation.of_type(OBJECT) if r.inputs["key"] == key]
    assert resource.depends_on(upload)
    return upload


def sha256_of(zip_path: Path) -> str:
    return str(json.loads(zip_path.with_suffix(".json").read_text(encoding="utf-8"))["sha256"])


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return stage_project(tmp_path / "project", [local_config()])


def test_a_runtime_layer_over_50_mb_is_uploaded_to_the_artifact_bucket_first(root: Path) -> None:
    zip_path = fake_size(root, "runtime-python3.12-x86_64", OVER)
    evaluation = run(root, local_config())
    (bucket,) = [
        b for b in evaluation.of_type("aws:s3/bucket:Bucket") if b.name.endswith("-artifacts")
    ]
    layer = layer_named(evaluation, f"inferstack-{STACK}-runtime-python312-x86_64")
    assert "code" not in layer.inputs
    assert layer.inputs["s3Bucket"] == bucket.id
    key = f"code/runtime-python3.12-x86_64/{sha256_of(zip_path)}.zip"
    assert layer.inputs["s3Key"] == key
    upload = upload_of(evaluation, layer)
    assert upload.inputs["bucket"] == bucket.id
    assert isinstance(upload.inputs["source"], pulumi.FileAsset)
    assert Path(upload.inputs["source"].path) == zip_path
    # Uploaded once the bucket encrypts and versions what it is given.
    for setting in ("encryption", "versioning"):
        assert upload.depends_on(evaluation.named(f"inferstack-{STACK}-artifacts-{setting}"))
    # The function code and the model layers are small: still in the call itself.
    function = function_named(evaluation, f"inferstack-{STACK}-digits")
    assert isinstance(function.inputs["code"], pulumi.FileArchive)
    assert "s3Key" not in function.inputs
    model_layer = layer_named(evaluation, f"inferstack-{STACK}-digits-model")
    assert isinstance(model_layer.inputs["code"], pulumi.FileArchive)


def test_a_model_layer_and_function_code_over_50_mb_go_the_same_way(root: Path) -> None:
    model_zip = fake_size(root, "model-digits", OVER)
    code_zip = fake_size(root, "function-python3.12", OVER)
    evaluation = run(root, local_config())
    model_layer = layer_named(evaluation, f"inferstack-{STACK}-digits-model")
    assert "code" not in model_layer.inputs
    assert model_layer.inputs["s3Key"] == f"code/model-digits/{sha256_of(model_zip)}.zip"
    assert Path(upload_of(evaluation, model_layer).inputs["source"].path) == model_zip
    # Every function runs the same code zip: uploaded once, one object all of them name
    # (not one per function: a key has one owner, so removing a model deletes no code
    # another function names).
    functions = [
        function_named(evaluation, f"inferstack-{STACK}-{model.name}")
        for model in local_config().lambda_models
    ]
    uploads = {upload_of(evaluation, function).urn for function in functions}
    assert len(uploads) == 1
    # At the stack's top level, not inside one model's component.
    assert evaluation.by_urn(uploads.pop()).parent.endswith(
        f"pulumi:pulumi:Stack::inferstack-{STACK}"
    )
    for function in functions:
        assert "code" not in function.inputs
        assert function.inputs["s3Key"] == f"code/function-python3.12/{sha256_of(code_zip)}.zip"
    # The minilm model layer stayed small: direct.
    assert "code" in layer_named(evaluation, f"inferstack-{STACK}-minilm-int8-model").inputs


def test_a_zip_of_exactly_50_mb_is_still_uploaded_directly(root: Path) -> None:
    fake_size(root, "runtime-python3.12-x86_64", MAX_DIRECT_ZIP_BYTES)
    evaluation = run(root, local_config())
    layer = layer_named(evaluation, f"inferstack-{STACK}-runtime-python312-x86_64")
    assert isinstance(layer.inputs["code"], pulumi.FileArchive)
    assert not [r for r in evaluation.of_type(OBJECT) if r.inputs["key"].startswith("code/")]


def test_the_program_and_the_budget_table_use_one_limit(root: Path) -> None:
    """`inferstack package` prints "via S3 (zip > 50 MB)" for exactly the zips the
    program uploads through the bucket."""
    zip_path = fake_size(root, "runtime-python3.12-x86_64", OVER)
    assert bundles.DIRECT_UPLOAD_LIMIT == MAX_DIRECT_ZIP_BYTES
    model = local_config().models[0]
    assert model.lambda_ is not None
    from infra.artifacts import load_artifact

    bundle = bundles.function_bundle(root, model, model.lambda_, load_artifact(root, model), STACK)
    assert bundle.runtime_layer.path == zip_path and bundle.runtime_layer.via_s3
    (runtime_part,) = [p for p in bundle.budget.parts if p.name.startswith("runtime")]
    assert runtime_part.upload == "via S3 (zip > 50 MB)"
    assert not bundle.code.via_s3
    (code_part,) = [p for p in bundle.budget.parts if p.kind == "function"]
    assert code_part.upload == "direct"
