"""The published versions of a Lambda function, read from Lambda itself, and the one a
versioned route (`/v2/models/{m}/versions/{v}/...`) invokes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from model_runtime.versions.label import VersionLabel

UNPUBLISHED = "$LATEST"


@dataclass(frozen=True)
class PublishedVersion:
    number: int
    # None: published without an inferstack label (by hand, or before labels existed).
    label: VersionLabel | None
    # The version's LastModified, as Lambda gives it.
    created: str


def published_versions(client: Any, function_name: str) -> list[PublishedVersion]:
    """Every published version of the function (ListVersionsByFunction, all pages), by
    number ascending; $LATEST is not a published version. `client` is a botocore lambda
    client; its errors are left to the caller."""
    versions: list[PublishedVersion] = []
    arguments: dict[str, Any] = {"FunctionName": function_name}
    while True:
        page = client.list_versions_by_function(**arguments)
        versions.extend(
            PublishedVersion(
                number=int(item["Version"]),
                label=VersionLabel.parse(item.get("Description")),
                created=str(item.get("LastModified", "")),
            )
            for item in page.get("Versions", [])
            if item["Version"] != UNPUBLISHED
        )
        marker = page.get("NextMarker")
        if not marker:
            break
        arguments["Marker"] = marker
    return sorted(versions, key=lambda published: published.number)


def route_target(
    versions: Sequence[PublishedVersion], model: str, version: str
) -> PublishedVersion | None:
    """The highest-numbered version labelled (model, version): a redeploy of the same
    model version publishes a newer Lambda version, and the newest one is what serves it."""
    return max(
        (
            published
            for published in versions
            if published.label is not None
            and published.label.model == model
            and published.label.version == version
        ),
        key=lambda published: published.number,
        default=None,
    )


def model_versions(versions: Sequence[PublishedVersion], model: str) -> list[str]:
    """The model versions that route_target can reach for `model`, each once, in the
    order of the first Lambda version that carries it."""
    return list(
        dict.fromkeys(
            published.label.version
            for published in sorted(versions, key=lambda published: published.number)
            if published.label is not None and published.label.model == model
        )
    )
