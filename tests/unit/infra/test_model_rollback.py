"""Defect 5: a model change must not delete the objects an older Lambda version (or GPU
rollout) still loads. Keys are content-addressed, so each change replaces the object
resources; they are retained on delete instead of deleted."""

from __future__ import annotations

import pytest

from infra.evaluate import Evaluation

OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"


@pytest.mark.parametrize("name", ["local", "dev", "prod"])
def test_model_objects_outlive_their_replacement(
    evaluations: dict[str, Evaluation], name: str
) -> None:
    objects = evaluations[name].of_type(OBJECT)
    assert objects
    assert all(obj.options.retain_on_delete for obj in objects)
    # The buckets themselves are not retained: `down` removes them, and the prefixes
    # with them (the artifact bucket, and the data bucket where the stack has jobs).
    buckets = evaluations[name].of_type("aws:s3/bucket:Bucket")
    assert f"inferstack-{name}-artifacts" in {bucket.name for bucket in buckets}
    assert not any(bucket.options.retain_on_delete for bucket in buckets)
