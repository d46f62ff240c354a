"""Versioned routes on Lambda: `/v2/models/{m}/versions/{v}/...` answered by the published
Lambda version labelled (m, v), through a qualified invocation of the same function.

API Gateway sends every request to the `live` alias, whichever version that is. A request
for the version this environment serves is the app's; a request for another is forwarded
once, marked with FORWARDED_FROM so that a mislabelled version answers 404 instead of
forwarding again. Other paths are looked at no further than their prefix, and boto3 is
imported on the first forwarded request only (as model_runtime.s3_reader does: Lambda
provides it).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from model_runtime.versions.catalog import (
    PublishedVersion,
    model_versions,
    published_versions,
    route_target,
)

FORWARDED_FROM = "x-inferstack-forwarded-from"
MODELS_PREFIX = "/v2/models/"
# How long a listing of the published versions is trusted: a deploy or a rollout shows
# within this long, and a burst of versioned requests costs one ListVersionsByFunction.
CACHE_SECONDS = 10.0
# A synchronous invocation waits for the version to answer: up to Lambda's 15 minutes.
INVOKE_READ_TIMEOUT = 900

logger = logging.getLogger("inferstack.versions")


@dataclass(frozen=True)
class RunningFunction:
    """The Lambda function this environment runs as."""

    name: str
    # "$LATEST" or the published version's number.
    version: str

    @classmethod
    def of(cls, context: Any) -> RunningFunction | None:
        """From the handler's context, else the Lambda runtime's environment; None outside
        Lambda (`inferstack serve`, tests calling the app)."""
        name = getattr(context, "function_name", None)
        if not isinstance(name, str) or not name:
            name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        if not name:
            return None
        version = getattr(context, "function_version", None)
        if not isinstance(version, str) or not version:
            version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION") or "$LATEST"
        return cls(name, version)


@dataclass(frozen=True)
class _Listing:
    fetched_at: float
    versions: list[PublishedVersion]


class VersionRouter:
    """Answers the versioned requests for another version of the model this environment
    serves (`model`, `version`); None for every other request: the app answers those.

    Lambda runs one event at a time per environment, so the cache needs no lock. `client`
    is a botocore lambda client, made on first use by default.
    """

    def __init__(
        self,
        model: str,
        version: str,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
        cors_allow_origin: str | None = None,
    ) -> None:
        self.model = model
        self.version = version
        # The app's CORS header, on the router's own answers too (a browser reads none
        # without it).
        self._headers = {"content-type": "application/json"}
        if cors_allow_origin:
            self._headers["access-control-allow-origin"] = cors_allow_origin
        self._client = client
        self._clock = clock
        self._listing: _Listing | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = default_client()
        return self._client

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any] | None:
        requested = _requested_version(event.get("path"))
        if requested is None:
            return None
        model, version = requested
        if model != self.model or version == self.version:
            return None
        function = RunningFunction.of(context)
        if function is None:
            return None
        if _forwarded(event):
            return self._answer(
                404,
                f"model {model!r} has no version {version!r}; served version: {self.version!r}",
            )
        return self._forward(event, function, version)

    def _forward(
        self, event: dict[str, Any], function: RunningFunction, version: str
    ) -> dict[str, Any]:
        from botocore import exceptions as boto

        try:
            target, versions = self._target(function.name, version)
        except (boto.ClientError, boto.BotoCoreError) as exc:
            logger.warning("listing the versions of %s failed: %s", function.name, exc)
            return self._answer(
                502,
                f"version {version!r} of model {self.model!r} could not be looked up:"
                f" listing the versions of {function.name} failed: {exc}",
            )
        if target is None:
            known = ", ".join(repr(known) for known in model_versions(versions, self.model))
            return self._answer(
                404,
                f"model {self.model!r} has no version {version!r}; versions: {known or 'none'}",
            )
        try:
            answer = self.client.invoke(
                FunctionName=function.name,
                Qualifier=str(target.number),
                Payload=json.dumps(_marked(event, function.version)).encode(),
            )
            payload = answer["Payload"].read()
        except (boto.ClientError, boto.BotoCoreError) as exc:
            return self._failed(version, target, str(exc))
        if answer.get("FunctionError"):
            return self._failed(version, target, _function_error(answer["FunctionError"], payload))
        try:
            response = json.loads(payload)
        except ValueError:
            return self._failed(version, target, "its answer is not JSON")
        if not isinstance(response, dict) or not isinstance(response.get("statusCode"), int):
            return self._failed(version, target, "its answer is not an API Gateway proxy response")
        return response

    def _target(
        self, function_name: str, version: str
    ) -> tuple[PublishedVersion | None, list[PublishedVersion]]:
        """The route target of `version`, and the versions it was looked up in: from the
        cache while fresh; a miss in a cached listing lists again once (a deploy may have
        published it since)."""
        listing = self._listing
        cached = listing is not None and self._clock() - listing.fetched_at < CACHE_SECONDS
        if listing is None or not cached:
            listing = self._refresh(function_name)
        target = route_target(listing.versions, self.model, version)
        if target is None and cached:
            listing = self._refresh(function_name)
            target = route_target(listing.versions, self.model, version)
        return target, listing.versions

    def _refresh(self, function_name: str) -> _Listing:
        self._listing = _Listing(self._clock(), published_versions(self.client, function_name))
        return self._listing

    def _failed(self, version: str, target: PublishedVersion, reason: str) -> dict[str, Any]:
        message = (
            f"version {version!r} of model {self.model!r} (Lambda version {target.number})"
            f" failed: {reason}"
        )
        logger.warning("%s", message)
        return self._answer(502, message)

    def _answer(self, status: int, message: str) -> dict[str, Any]:
        """An API Gateway proxy response with the app's error body."""
        return {
            "statusCode": status,
            "headers": dict(self._headers),
            "body": json.dumps({"error": message}),
            "isBase64Encoded": False,
        }


def default_client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=INVOKE_READ_TIMEOUT,
    )
    return boto3.client("lambda", config=config)


def _requested_version(path: object) -> tuple[str, str] | None:
    """(model, version) of a `/v2/models/{m}/versions/{v}[/...]` path, else None."""
    if not isinstance(path, str) or not path.startswith(MODELS_PREFIX):
        return None
    parts = path[len(MODELS_PREFIX) :].split("/", 3)
    if len(parts) < 3 or parts[1] != "versions" or not parts[0] or not parts[2]:
        return None
    return parts[0], parts[2]


def _forwarded(event: dict[str, Any]) -> bool:
    # Header names are case-insensitive; API Gateway passes them as the client spelled them.
    return any(
        name.lower() == FORWARDED_FROM
        for headers in (event.get("headers"), event.get("multiValueHeaders"))
        if isinstance(headers, dict)
        for name in headers
    )


def _marked(event: dict[str, Any], forwarder: str) -> dict[str, Any]:
    """The event with FORWARDED_FROM: `forwarder` in both of its header maps."""
    return event | {
        "headers": (event.get("headers") or {}) | {FORWARDED_FROM: forwarder},
        "multiValueHeaders": (event.get("multiValueHeaders") or {}) | {FORWARDED_FROM: [forwarder]},
    }


def _function_error(kind: str, payload: bytes) -> str:
    """The error type the version's runtime reported (its payload's errorType), else
    Lambda's FunctionError ("Unhandled")."""
    try:
        error = json.loads(payload)
    except ValueError:
        error = None
    if isinstance(error, dict) and isinstance(error.get("errorType"), str):
        return str(error["errorType"])
    return f"{kind} function error"
