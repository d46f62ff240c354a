"""Versioned routes in the Lambda: a request for another version of the model is invoked
on the Lambda version labelled with it, once; everything else is the app's, and never
makes a Lambda client."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from localdev.lambda_runner import api_gateway_event, response_json
from model_runtime.app import create_app
from model_runtime.dataplane import DataPlane
from model_runtime.engine import Engine
from model_runtime.events.entry import LambdaEntry
from model_runtime.settings import RuntimeSettings
from model_runtime.versions import router as router_module
from model_runtime.versions.label import VersionLabel
from model_runtime.versions.router import CACHE_SECONDS, FORWARDED_FROM, VersionRouter
from tests.support.tiny_model import tiny_images

FUNCTION = "inferstack-digits"
CONTEXT = SimpleNamespace(function_name=FUNCTION, function_version="2", aws_request_id="r")
PROXY_RESPONSE = {
    "statusCode": 200,
    "headers": {"content-type": "application/json"},
    "multiValueHeaders": {},
    "body": json.dumps({"model_name": "digits", "model_version": "1", "outputs": []}),
    "isBase64Encoded": False,
}


def _published(number: int, description: str) -> dict[str, Any]:
    return {"Version": str(number), "Description": description, "LastModified": f"t{number}"}


def _labelled(number: int, version: str, model: str = "digits") -> dict[str, Any]:
    return _published(number, VersionLabel(model, version, "ab" * 16).description())


class FakeLambda:
    """Stands in for Lambda (a unit test cannot start LocalStack): ListVersionsByFunction
    over `versions`, `page_size` at a time; Invoke answers `answer` (raw payload bytes),
    with `function_error` as Lambda's FunctionError, or raises `error`."""

    def __init__(self, versions: list[dict[str, Any]], page_size: int = 50) -> None:
        self.versions = versions
        self.page_size = page_size
        self.answer = json.dumps(PROXY_RESPONSE).encode()
        self.function_error: str | None = None
        self.error: Exception | None = None
        self.list_error: Exception | None = None
        self.listings: list[dict[str, Any]] = []
        self.invocations: list[dict[str, Any]] = []

    def list_versions_by_function(
        self, FunctionName: str, Marker: str | None = None
    ) -> dict[str, Any]:
        self.listings.append({"FunctionName": FunctionName, "Marker": Marker})
        if self.list_error is not None:
            raise self.list_error
        everything = [{"Version": "$LATEST", "Description": ""}, *self.versions]
        start = int(Marker or 0)
        page: dict[str, Any] = {"Versions": everything[start : start + self.page_size]}
        if start + self.page_size < len(everything):
            page["NextMarker"] = str(start + self.page_size)
        return page

    def invoke(self, FunctionName: str, Qualifier: str, Payload: bytes) -> dict[str, Any]:
        self.invocations.append(
            {"FunctionName": FunctionName, "Qualifier": Qualifier, "event": json.loads(Payload)}
        )
        if self.error is not None:
            raise self.error
        answer: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(self.answer)}
        if self.function_error is not None:
            answer["FunctionError"] = self.function_error
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _outside_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_VERSION", raising=False)


@pytest.fixture
def no_client(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused() -> Any:
        raise AssertionError("a Lambda client was made")

    monkeypatch.setattr(router_module, "default_client", refused)


@pytest.fixture
def lambda_() -> FakeLambda:
    return FakeLambda([_labelled(1, "1"), _labelled(2, "2"), _published(3, "by hand")])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def router(lambda_: FakeLambda, clock: Clock) -> VersionRouter:
    # This environment serves digits version 2 (Lambda version 2).
    return VersionRouter("digits", "2", client=lambda_, clock=clock)


def _event(path: str) -> dict[str, Any]:
    return api_gateway_event("POST", path, {"inputs": []})


def _error(answer: dict[str, Any] | None) -> tuple[int, str]:
    assert answer is not None
    assert answer["headers"] == {"content-type": "application/json"}
    assert answer["isBase64Encoded"] is False
    return answer["statusCode"], json.loads(answer["body"])["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/digits/infer",
        "/v2/models/digits",
        "/v2/health/ready",
        "/v2/models/digits/versions/2/infer",  # its own version
        "/v2/models/digits/versions/2",
        "/v2/models/minilm/versions/1/infer",  # not its model: the app says so
        "/v2/models/digits/versions//infer",
        "/v2/models/digits/jobs",
    ],
)
def test_what_is_not_another_version_is_left_to_the_app(
    no_client: None, path: str, clock: Clock
) -> None:
    router = VersionRouter("digits", "2", clock=clock)
    assert router(_event(path), CONTEXT) is None


def test_outside_lambda_nothing_is_routed(no_client: None, clock: Clock) -> None:
    router = VersionRouter("digits", "2", clock=clock)
    assert router(_event("/v2/models/digits/versions/1/infer"), None) is None
    assert router(_event("/v2/models/digits/versions/1/infer"), SimpleNamespace()) is None


def test_another_version_is_invoked_on_its_lambda_version_marked_as_forwarded(
    router: VersionRouter, lambda_: FakeLambda
) -> None:
    event = _event("/v2/models/digits/versions/1/infer")

    answer = router(event, CONTEXT)

    assert answer == PROXY_RESPONSE
    (invocation,) = lambda_.invocations
    assert (invocation["FunctionName"], invocation["Qualifier"]) == (FUNCTION, "1")
    forwarded = invocation["event"]
    assert forwarded["headers"] == event["headers"] | {FORWARDED_FROM: "2"}
    assert forwarded["multiValueHeaders"] == event["multiValueHeaders"] | {FORWARDED_FROM: ["2"]}
    assert {k: v for k, v in forwarded.items() if "eaders" not in k} == {
        k: v for k, v in event.items() if "eaders" not in k
    }
    assert FORWARDED_FROM not in event["headers"]  # the caller's event is left alone


@pytest.mark.parametrize(
    "path", ["/v2/models/digits/versions/1", "/v2/models/digits/versions/1/ready"]
)
def test_metadata_and_readiness_of_another_version_are_forwarded_too(
    router: VersionRouter, lambda_: FakeLambda, path: str
) -> None:
    assert router(api_gateway_event("GET", path), CONTEXT) == PROXY_RESPONSE
    assert [call["Qualifier"] for call in lambda_.invocations] == ["1"]


def test_an_event_without_headers_gets_the_mark_in_both_maps(
    router: VersionRouter, lambda_: FakeLambda
) -> None:
    event = _event("/v2/models/digits/versions/1/infer") | {
        "headers": None,
        "multiValueHeaders": None,
    }
    router(event, CONTEXT)
    forwarded = lambda_.invocations[0]["event"]
    assert forwarded["headers"] == {FORWARDED_FROM: "2"}
    assert forwarded["multiValueHeaders"] == {FORWARDED_FROM: ["2"]}


def test_the_function_name_and_version_come_from_the_environment_without_a_context(
    router: VersionRouter, lambda_: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "from-env")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "7")
    assert router(_event("/v2/models/digits/versions/1/infer"), None) == PROXY_RESPONSE
    (invocation,) = lambda_.invocations
    assert invocation["FunctionName"] == "from-env"
    assert invocation["event"]["headers"][FORWARDED_FROM] == "7"


def test_the_newest_lambda_version_of_a_model_version_is_invoked(
    router: VersionRouter, lambda_: FakeLambda
) -> None:
    lambda_.versions.append(_labelled(4, "1"))
    router(_event("/v2/models/digits/versions/1/infer"), CONTEXT)
    assert [call["Qualifier"] for call in lambda_.invocations] == ["4"]


def test_an_unknown_version_is_a_404_naming_the_versions(
    router: VersionRouter, lambda_: FakeLambda
) -> None:
    lambda_.versions += [_labelled(4, "1"), _labelled(5, "7", model="minilm")]
    status, message = _error(router(_event("/v2/models/digits/versions/9/infer"), CONTEXT))
    assert status == 404
    assert message == "model 'digits' has no version '9'; versions: '1', '2'"
    assert lambda_.invocations == []


def test_the_routers_own_answers_carry_the_apps_cors_header(
    lambda_: FakeLambda, clock: Clock
) -> None:
    router = VersionRouter(
        "digits", "2", client=lambda_, clock=clock, cors_allow_origin="https://app.example"
    )
    answer = router(_event("/v2/models/digits/versions/9/infer"), CONTEXT)
    assert answer is not None and answer["statusCode"] == 404
    assert answer["headers"] == {
        "content-type": "application/json",
        "access-control-allow-origin": "https://app.example",
    }


def test_versions_not_labelled_by_inferstack_are_not_routes(clock: Clock) -> None:
    lambda_ = FakeLambda(
        [_published(1, "by hand"), _published(2, "inferstack {broken"), _published(3, "")]
    )
    router = VersionRouter("digits", "2", client=lambda_, clock=clock)
    status, message = _error(router(_event("/v2/models/digits/versions/1/infer"), CONTEXT))
    assert status == 404
    assert message == "model 'digits' has no version '1'; versions: none"
    assert lambda_.invocations == []


def test_every_page_of_versions_is_read(clock: Clock) -> None:
    lambda_ = FakeLambda([_labelled(number, str(number)) for number in range(1, 8)], page_size=3)
    router = VersionRouter("digits", "2", client=lambda_, clock=clock)
    assert router(_event("/v2/models/digits/versions/7/infer"), CONTEXT) == PROXY_RESPONSE
    assert [listing["Marker"] for listing in lambda_.listings] == [None, "3", "6"]
    assert {listing["FunctionName"] for listing in lambda_.listings} == {FUNCTION}
    assert [call["Qualifier"] for call in lambda_.invocations] == ["7"]


def test_versions_are_listed_once_per_cache_period(
    router: VersionRouter, lambda_: FakeLambda, clock: Clock
) -> None:
    event = _event("/v2/models/digits/versions/1/infer")
    router(event, CONTEXT)
    clock.now += CACHE_SECONDS - 0.5
    router(event, CONTEXT)
    assert len(lambda_.listings) == 1
    clock.now += 0.5
    router(event, CONTEXT)
    assert len(lambda_.listings) == 2
    assert len(lambda_.invocations) == 3


def test_a_miss_in_the_cache_lists_again_once(
    router: VersionRouter, lambda_: FakeLambda, clock: Clock
) -> None:
    router(_event("/v2/models/digits/versions/1/infer"), CONTEXT)
    lambda_.versions.append(_labelled(4, "3"))  # deployed since the listing

    assert router(_event("/v2/models/digits/versions/3/infer"), CONTEXT) == PROXY_RESPONSE
    assert len(lambda_.listings) == 2
    assert [call["Qualifier"] for call in lambda_.invocations] == ["1", "4"]

    status, _ = _error(router(_event("/v2/models/digits/versions/9/infer"), CONTEXT))
    assert (status, len(lambda_.listings)) == (404, 3)


def test_a_fresh_listing_is_not_repeated_on_a_miss(
    router: VersionRouter, lambda_: FakeLambda
) -> None:
    status, _ = _error(router(_event("/v2/models/digits/versions/9/infer"), CONTEXT))
    assert (status, len(lambda_.listings)) == (404, 1)


@pytest.mark.parametrize("spelling", [FORWARDED_FROM, "X-Inferstack-Forwarded-From"])
def test_a_forwarded_request_for_another_version_is_a_404_never_forwarded_again(
    router: VersionRouter, lambda_: FakeLambda, spelling: str
) -> None:
    event = _event("/v2/models/digits/versions/1/infer")
    event["multiValueHeaders"][spelling] = ["3"]

    status, message = _error(router(event, CONTEXT))

    assert status == 404
    assert message == "model 'digits' has no version '1'; served version: '2'"
    assert (lambda_.listings, lambda_.invocations) == ([], [])


def test_a_forwarded_request_for_its_own_version_is_the_apps(router: VersionRouter) -> None:
    event = _event("/v2/models/digits/versions/2/infer")
    event["headers"][FORWARDED_FROM] = "1"
    assert router(event, CONTEXT) is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            ClientError(
                {"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}},
                "Invoke",
            ),
            "An error occurred (TooManyRequestsException) when calling the Invoke operation:"
            " Rate exceeded",
        ),
        (
            EndpointConnectionError(endpoint_url="https://lambda"),
            'Could not connect to the endpoint URL: "https://lambda"',
        ),
    ],
)
def test_an_invoke_that_fails_is_a_502_naming_the_version(
    router: VersionRouter, lambda_: FakeLambda, error: Exception, reason: str
) -> None:
    lambda_.error = error
    status, message = _error(router(_event("/v2/models/digits/versions/1/infer"), CONTEXT))
    assert status == 502
    assert message == f"version '1' of model 'digits' (Lambda version 1) failed: {reason}"


def test_a_listing_that_fails_is_a_502(router: VersionRouter, lambda_: FakeLambda) -> None:
    lambda_.list_error = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}},
        "ListVersionsByFunction",
    )
    status, message = _error(router(_event("/v2/models/digits/versions/1/infer"), CONTEXT))
    assert status == 502
    assert message == (
        f"version '1' of model 'digits' could not be looked up: listing the versions of"
        f" {FUNCTION} failed: An error occurred (AccessDeniedException) when calling the"
        " ListVersionsByFunction operation: not allowed"
    )
    assert lambda_.invocations == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            {"errorMessage": "boom", "errorType": "Runtime.ExitError", "stackTrace": ["x"]},
            "Runtime.ExitError",
        ),
        ({"errorMessage": "no type"}, "Unhandled function error"),
    ],
)
def test_a_version_that_raised_is_a_502_naming_the_error_type(
    router: VersionRouter, lambda_: FakeLambda, payload: dict[str, Any], reason: str
) -> None:
    lambda_.function_error = "Unhandled"
    lambda_.answer = json.dumps(payload).encode()
    status, message = _error(router(_event("/v2/models/digits/versions/1/infer"), CONTEXT))
    assert status == 502
    assert message == f"version '1' of model 'digits' (Lambda version 1) failed: {reason}"
    assert "boom" not in message and "stackTrace" not in message


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"<html>", "its answer is not JSON"),
        (b'"ok"', "its answer is not an API Gateway proxy response"),
        (b'{"body": "{}"}', "its answer is not an API Gateway proxy response"),
        (b'{"statusCode": "200"}', "its answer is not an API Gateway proxy response"),
    ],
)
def test_an_answer_that_is_not_a_proxy_response_is_a_502(
    router: VersionRouter, lambda_: FakeLambda, payload: bytes, reason: str
) -> None:
    lambda_.answer = payload
    status, message = _error(router(_event("/v2/models/digits/versions/1/infer"), CONTEXT))
    assert (status, message) == (
        502,
        f"version '1' of model 'digits' (Lambda version 1) failed: {reason}",
    )


def test_the_default_client_is_made_once_on_the_first_forwarded_request(
    monkeypatch: pytest.MonkeyPatch, lambda_: FakeLambda, clock: Clock
) -> None:
    made: list[FakeLambda] = []

    def make() -> FakeLambda:
        made.append(lambda_)
        return lambda_

    monkeypatch.setattr(router_module, "default_client", make)
    router = VersionRouter("digits", "2", clock=clock)
    router(_event("/v2/models/digits/infer"), CONTEXT)
    assert made == []
    router(_event("/v2/models/digits/versions/1/infer"), CONTEXT)
    router(_event("/v2/models/digits/versions/1/infer"), CONTEXT)
    assert len(made) == 1 and len(lambda_.invocations) == 2


# The router in the Lambda entry, in front of the app.


@pytest.fixture
def entry(tiny_engine: Engine, lambda_: FakeLambda, clock: Clock) -> Iterator[LambdaEntry]:
    router = VersionRouter(tiny_engine.name, tiny_engine.version, client=lambda_, clock=clock)
    entry = LambdaEntry(create_app(DataPlane([tiny_engine])), router=router)
    yield entry
    entry.close()


def _tiny_request() -> dict[str, Any]:
    images = tiny_images(1)
    tensor = {
        "name": "image",
        "shape": list(images.shape),
        "datatype": "FP32",
        "data": images.ravel().tolist(),
    }
    return {"inputs": [tensor]}


def test_the_entry_answers_its_own_version_with_the_app(
    entry: LambdaEntry, lambda_: FakeLambda, tiny_engine: Engine
) -> None:
    for path in (f"/v2/models/tiny/versions/{tiny_engine.version}/infer", "/v2/models/tiny/infer"):
        answer = entry(api_gateway_event("POST", path, _tiny_request()), CONTEXT)
        assert answer["statusCode"] == 200
        assert response_json(answer)["model_version"] == tiny_engine.version
    assert (lambda_.listings, lambda_.invocations) == ([], [])


def test_the_entry_forwards_another_version(entry: LambdaEntry, lambda_: FakeLambda) -> None:
    lambda_.versions.append(_labelled(4, "0", model="tiny"))
    event = api_gateway_event("POST", "/v2/models/tiny/versions/0/infer", _tiny_request())
    assert entry(event, CONTEXT) == PROXY_RESPONSE
    assert [call["Qualifier"] for call in lambda_.invocations] == ["4"]


def test_the_entry_from_settings_routes_for_its_one_model(
    tiny_dir: Path, tiny_engine: Engine
) -> None:
    entry = LambdaEntry.from_settings(RuntimeSettings.from_env({"MODEL_DIR": str(tiny_dir)}), None)
    try:
        assert entry.router is not None
        assert (entry.router.model, entry.router.version) == (tiny_engine.name, tiny_engine.version)
    finally:
        entry.close()
