"""The executor plugin's fix of LocalStack's UpdateAlias with weighted routing, without
LocalStack: on a stand-in provider that has LocalStack 2026.3.0's methods and its bug."""

from __future__ import annotations

import importlib.util
import logging
import sys
from types import ModuleType
from typing import Any

import pytest

from localdev.localstack import manager

PACKAGE = manager.EXECUTOR_SOURCE / "inferstack_localstack_executor"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_executor_{name}", PACKAGE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


alias_routing = _load("alias_routing")


class Invalid(Exception):
    """What the stand-in's routing checks raise."""


def _provider() -> type:
    """A fresh class with LocalStack 2026.3.0's two methods (their parameters, and
    update_alias's call without the version) and an alias `live` on version 1."""

    class Provider:
        def __init__(self) -> None:
            self.alias = {"function_version": "1", "routing": None}

        def _create_routing_config_model(
            self, routing_config_dict: dict[str, float], function_version: str
        ) -> dict[str, float]:
            (version, weight), *more = routing_config_dict.items()
            if more or not 0 <= weight < 1 or version == function_version:
                raise Invalid(f"{routing_config_dict} on version {function_version}")
            return dict(routing_config_dict)

        def update_alias(
            self,
            context: Any,
            function_name: str,
            name: str,
            function_version: str | None = None,
            description: str | None = None,
            routing_config: dict[str, Any] | None = None,
            revision_id: str | None = None,
            **kwargs: Any,
        ) -> dict[str, Any]:
            changes: dict[str, Any] = {}
            if function_version is not None:
                changes["function_version"] = function_version
            if routing_config is not None:
                routing = None
                if weights := routing_config.get("AdditionalVersionWeights"):
                    routing = self._create_routing_config_model(weights)  # type: ignore[call-arg]
                changes["routing"] = routing
            self.alias = {**self.alias, **changes}
            return self.alias

    return Provider


# The calls _target was asked about.
targets: list[dict[str, Any]] = []


def _target(provider: Any, call: dict[str, Any]) -> str:
    """The version the call points the alias to: its FunctionVersion, else the alias's."""
    targets.append(call)
    return str(call.get("function_version") or provider.alias["function_version"])


@pytest.fixture(autouse=True)
def _no_targets() -> None:
    targets.clear()


def _weights(weights: dict[str, float]) -> dict[str, Any]:
    return {"AdditionalVersionWeights": weights}


def test_the_stand_in_has_localstacks_bug() -> None:
    with pytest.raises(TypeError, match="function_version"):
        _provider()().update_alias(None, "f", "live", routing_config=_weights({"2": 0.3}))


def test_weights_are_checked_against_the_alias_version_when_the_call_names_none() -> None:
    provider = _provider()
    assert alias_routing.fix_update_alias(provider, "2026.3.0", _target)
    alias = provider()

    updated = alias.update_alias(None, "f", "live", routing_config=_weights({"2": 0.3}))
    assert updated == {"function_version": "1", "routing": {"2": 0.3}}
    assert targets[0]["function_name"] == "f" and targets[0]["name"] == "live"
    with pytest.raises(Invalid, match="on version 1"):
        alias.update_alias(None, "f", "live", routing_config=_weights({"1": 0.3}))
    with pytest.raises(Invalid):
        alias.update_alias(None, "f", "live", routing_config=_weights({"2": 1.5}))
    assert alias.alias["routing"] == {"2": 0.3}  # a refused update changes nothing


def test_weights_are_checked_against_the_version_the_call_points_the_alias_to() -> None:
    provider = _provider()
    alias_routing.fix_update_alias(provider, "2026.3.0", _target)
    alias = provider()

    updated = alias.update_alias(
        None, "f", "live", function_version="2", routing_config=_weights({"1": 0.1})
    )
    assert updated == {"function_version": "2", "routing": {"1": 0.1}}
    with pytest.raises(Invalid, match="on version 3"):
        alias.update_alias(None, "f", "live", "3", routing_config=_weights({"3": 0.1}))


def test_no_version_is_looked_up_without_weights_and_empty_weights_clear_the_routing() -> None:
    provider = _provider()
    alias_routing.fix_update_alias(provider, "2026.3.0", _target)
    alias = provider()
    alias.update_alias(None, "f", "live", routing_config=_weights({"2": 0.3}))
    targets.clear()

    assert alias.update_alias(None, "f", "live", description="d")["routing"] == {"2": 0.3}
    assert alias.update_alias(None, "f", "live", routing_config=_weights({}))["routing"] is None
    assert targets == []


def test_fixing_twice_wraps_once() -> None:
    provider = _provider()
    assert alias_routing.fix_update_alias(provider, "2026.3.0", _target)
    fixed = provider.update_alias  # type: ignore[attr-defined]
    assert alias_routing.fix_update_alias(provider, "2026.3.0", _target)
    assert provider.update_alias is fixed  # type: ignore[attr-defined]

    provider().update_alias(None, "f", "live", routing_config=_weights({"2": 0.3}))
    assert len(targets) == 1


def test_a_localstack_with_other_methods_is_left_alone_with_an_error_naming_its_version(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = _provider()
    original = provider.update_alias  # type: ignore[attr-defined]

    def update_alias(self: Any, context: Any, request: dict[str, Any]) -> None: ...

    changed = type("Changed", (provider,), {"update_alias": update_alias})
    missing = type("Missing", (), {"update_alias": original})
    with caplog.at_level(logging.ERROR):
        assert not alias_routing.fix_update_alias(changed, "2027.1.0", _target)
        assert not alias_routing.fix_update_alias(missing, "2027.2.0", _target)

    assert changed.update_alias is update_alias  # type: ignore[attr-defined]
    assert provider.update_alias is original  # type: ignore[attr-defined]
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 2
    assert "NOT fixed on LocalStack 2027.1.0" in errors[0]
    assert "NOT fixed on LocalStack 2027.2.0" in errors[1]
