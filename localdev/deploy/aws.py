"""boto3 clients built from a Pulumi AWS provider's settings, for LocalStack only."""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from localdev.errors import DeployError, NotLocalStackError

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class ProviderConfig:
    """What a `pulumi:providers:aws` resource says about where and as whom to deploy."""

    region: str
    # Service (the provider's endpoint key, e.g. "lambda") -> URL.
    endpoints: dict[str, str]
    access_key: str
    secret_key: str
    default_tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_inputs(cls, name: str, inputs: dict[str, Any]) -> ProviderConfig:
        # Provider inputs reach the mock monitor as strings, nested ones JSON-encoded.
        endpoints: dict[str, str] = {}
        for block in _json(inputs.get("endpoints"), []):
            endpoints.update({("lambda" if k == "lambda_" else k): v for k, v in block.items()})
        if not endpoints:
            raise NotLocalStackError(
                f"provider {name} has no custom endpoints: it deploys to AWS, and the in-process "
                "engine deploys only to LocalStack; install the Pulumi CLI to deploy to AWS"
            )
        tags = _json(inputs.get("defaultTags"), {}).get("tags") or {}
        return cls(
            region=str(inputs.get("region") or "us-east-1"),
            endpoints=endpoints,
            access_key=str(inputs.get("accessKey") or "test"),
            secret_key=str(inputs.get("secretKey") or "test"),
            default_tags={str(k): str(v) for k, v in tags.items()},
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProviderConfig:
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def endpoint(self) -> str:
        """The LocalStack gateway (every service endpoint of one LocalStack is the same)."""
        return sorted(self.endpoints.values())[0].rstrip("/")

    def endpoint_for(self, service: str) -> str:
        try:
            return self.endpoints[service]
        except KeyError:
            raise NotLocalStackError(
                f"the provider has no endpoint for {service!r}: those calls would go to AWS, and "
                "the in-process engine deploys only to LocalStack; add the service to "
                "infra/providers.py services_used() or deploy with the Pulumi CLI"
            ) from None


# botocore's loader caches the service models it parses: one for the process, so every
# Clients (a deploy, its status check, preview) parses each model once.
_SERVICE_MODELS = botocore.loaders.create_loader()


class Clients:
    """Thread-safe, lazily created boto3 clients for one provider."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._account: str | None = None
        core = botocore.session.Session()
        core.register_component("data_loader", _SERVICE_MODELS)
        self._session = boto3.session.Session(
            botocore_session=core,
            aws_access_key_id=config.access_key,
            aws_secret_access_key=config.secret_key,
            region_name=config.region,
        )

    def __call__(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                endpoint_key = "sts" if service == "sts" else service
                client = self._session.client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.config.endpoint_for(endpoint_key),
                    config=Config(
                        connect_timeout=3,
                        read_timeout=120,
                        retries={"mode": "standard", "max_attempts": 3},
                        s3={"addressing_style": "path"},
                    ),
                )
                self._clients[service] = client
            return client

    @property
    def region(self) -> str:
        return self.config.region

    @property
    def account(self) -> str:
        if self._account is None:
            self._account = str(self("sts").get_caller_identity()["Account"])
        return self._account


def error_code(exc: BaseException) -> str:
    """The AWS error code of a failed call ("" for anything but a ClientError)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def reachable(endpoint: str, timeout_s: float = 2.0) -> bool:
    """Whether a LocalStack answers its health check at `endpoint`."""
    url = urllib.parse.urljoin(endpoint.rstrip("/") + "/", "_localstack/health")
    try:
        with _NO_PROXY.open(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _json(value: Any, default: Any) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise DeployError(f"provider setting is not JSON: {value[:80]!r}") from exc
    return value
