"""The published versions of a function, from every page of ListVersionsByFunction, and
the version each versioned route invokes."""

from __future__ import annotations

from typing import Any

from model_runtime.manifest import PromotionGate
from model_runtime.versions.catalog import (
    PublishedVersion,
    model_versions,
    published_versions,
    route_target,
)
from model_runtime.versions.label import VersionLabel

FUNCTION = "inferstack-digits"
SHA = "ab" * 16


def _label(version: str, model: str = "digits") -> VersionLabel:
    return VersionLabel(model, version, SHA)


def _item(number: str, description: str) -> dict[str, Any]:
    return {
        "FunctionName": FUNCTION,
        "Version": number,
        "Description": description,
        "LastModified": f"2026-12-01T10:0{number if number.isdigit() else 0}:00.000+0000",
    }


class PagedVersions:
    """Stands in for Lambda's ListVersionsByFunction (a unit test cannot start
    LocalStack): `pages` in order, each with a NextMarker but the last."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def list_versions_by_function(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(arguments)
        index = int(arguments.get("Marker", "0"))
        page: dict[str, Any] = {"Versions": self.pages[index]}
        if index + 1 < len(self.pages):
            page["NextMarker"] = str(index + 1)
        return page


def test_every_page_is_read_latest_is_left_out_and_numbers_ascend() -> None:
    gated = VersionLabel("digits", "2", SHA, PromotionGate(metric="top1_agreement", minimum=0.99))
    client = PagedVersions(
        [
            [_item("$LATEST", gated.description()), _item("3", gated.description())],
            [_item("1", _label("1").description())],
            [_item("2", "deployed by hand")],
        ]
    )

    versions = published_versions(client, FUNCTION)

    assert client.calls == [
        {"FunctionName": FUNCTION},
        {"FunctionName": FUNCTION, "Marker": "1"},
        {"FunctionName": FUNCTION, "Marker": "2"},
    ]
    assert versions == [
        PublishedVersion(1, _label("1"), "2026-12-01T10:01:00.000+0000"),
        PublishedVersion(2, None, "2026-12-01T10:02:00.000+0000"),
        PublishedVersion(3, gated, "2026-12-01T10:03:00.000+0000"),
    ]


def test_a_function_without_published_versions_has_none() -> None:
    assert published_versions(PagedVersions([[_item("$LATEST", "")]]), FUNCTION) == []


VERSIONS = [
    PublishedVersion(1, _label("1"), "t1"),
    PublishedVersion(2, _label("2"), "t2"),
    PublishedVersion(3, None, "t3"),
    PublishedVersion(4, _label("1"), "t4"),  # version 1 redeployed
    PublishedVersion(5, _label("3", model="minilm"), "t5"),
    PublishedVersion(6, VersionLabel.parse("inferstack {not json"), "t6"),
]


def test_the_route_target_is_the_newest_lambda_version_with_that_label() -> None:
    assert route_target(VERSIONS, "digits", "1") == VERSIONS[3]
    assert route_target(VERSIONS, "digits", "2") == VERSIONS[1]
    assert route_target(list(reversed(VERSIONS)), "digits", "1") == VERSIONS[3]


def test_no_route_target_for_an_unknown_version_another_model_or_unlabelled_ones() -> None:
    assert route_target(VERSIONS, "digits", "9") is None
    assert route_target(VERSIONS, "digits", "3") is None
    assert route_target(VERSIONS, "minilm", "1") is None
    assert route_target([], "digits", "1") is None


def test_model_versions_are_each_named_once_in_lambda_version_order() -> None:
    assert model_versions(list(reversed(VERSIONS)), "digits") == ["1", "2"]
    assert model_versions(VERSIONS, "minilm") == ["3"]
    assert model_versions(VERSIONS, "other") == []
