"""The data plane: the served models and the protocol operations on them, without HTTP."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Protocol

from model_runtime.engine import Engine, Tensors
from model_runtime.errors import InvalidInput, ModelNotFound
from model_runtime.protocol import InferenceRequest, decode_request, encode_output
from model_runtime.telemetry.stages import StageTimes


class Runner(Protocol):
    """Runs one model's requests off the event loop: the container server's batcher."""

    async def infer(
        self, inputs: Tensors, output_names: Sequence[str] | None
    ) -> tuple[Tensors, dict[str, Any]]: ...


@dataclass(frozen=True)
class ValidRequest:
    """A request that passed validation: its engine, decoded inputs, requested outputs
    (None: all)."""

    engine: Engine
    inputs: Tensors
    outputs: list[str] | None


class DataPlane:
    def __init__(
        self, engines: Iterable[Engine], runners: Mapping[str, Runner] | None = None
    ) -> None:
        self._runners = dict(runners or {})
        self._engines: dict[str, Engine] = {}
        for engine in engines:
            if engine.name in self._engines:
                raise ValueError(f"two models are named {engine.name!r}")
            self._engines[engine.name] = engine

    @property
    def engines(self) -> dict[str, Engine]:
        return dict(self._engines)

    def ready(self) -> bool:
        return bool(self._engines)

    def engine(self, name: str, version: str | None = None) -> Engine:
        engine = self._engines.get(name)
        if engine is None:
            served = ", ".join(repr(n) for n in self._engines) or "none"
            raise ModelNotFound(f"model {name!r} is not served here; served models: {served}")
        if version is not None and version != engine.version:
            raise ModelNotFound(
                f"model {name!r} has no version {version!r}; served version: {engine.version!r}"
            )
        return engine

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        manifest = self.engine(name, version).manifest
        return {
            "name": manifest.name,
            "versions": [manifest.version],
            "platform": manifest.platform,
            "inputs": [spec.model_dump() for spec in manifest.inputs],
            "outputs": [spec.model_dump() for spec in manifest.outputs],
        }

    def validate(
        self, name: str, request: InferenceRequest, version: str | None = None
    ) -> ValidRequest:
        """Everything `infer` checks before the model runs: the model, the tensors, the
        requested outputs. Raises what `infer` would (ModelNotFound, InvalidInput, ...)."""
        valid = self._decode(name, request, version)
        valid.engine.resolve_outputs(valid.outputs)
        valid.engine.validate(valid.inputs)
        return valid

    async def infer(
        self,
        name: str,
        request: InferenceRequest,
        version: str | None = None,
        times: StageTimes | None = None,
    ) -> dict[str, Any]:
        """Decode, run and encode one request (the engine validates the tensors as it runs);
        with `times`, how long each stage took.

        A model with a runner (the container server's batcher) runs there, and the runner
        times pre-processing and inference itself; one without runs inline.
        """
        runner = self._runners.get(name)
        if runner is None:
            return self.infer_inline(name, request, version, times)
        valid = self._timed_decode(name, request, version, times)
        outputs, parameters = await runner.infer(valid.inputs, valid.outputs)
        return self._response(valid.engine, request, outputs, parameters, times)

    def infer_inline(
        self,
        name: str,
        request: InferenceRequest,
        version: str | None = None,
        times: StageTimes | None = None,
    ) -> dict[str, Any]:
        """`infer` in this thread, past any runner: in Lambda one environment serves one
        request at a time, so a thread hop, or even the event loop, would only add latency.
        """
        valid = self._timed_decode(name, request, version, times)
        engine = valid.engine
        decoded = perf_counter()
        # Engine.infer_with_parameters' steps, apart so that each can be timed.
        names = engine.resolve_outputs(valid.outputs)
        feed, parameters = engine.prepare(valid.inputs)
        prepared = perf_counter()
        if times is not None:
            times.preprocess_ms = (prepared - decoded) * 1000
            times.batch_size = int(next(iter(feed.values())).shape[0])
        outputs = engine.run(feed, names)
        engine.check_outputs(outputs)
        if times is not None:
            times.infer_ms = (perf_counter() - prepared) * 1000
        return self._response(engine, request, outputs, parameters, times)

    def _timed_decode(
        self, name: str, request: InferenceRequest, version: str | None, times: StageTimes | None
    ) -> ValidRequest:
        started = perf_counter()
        valid = self._decode(name, request, version)
        if times is not None:
            times.decode_ms = (perf_counter() - started) * 1000
        return valid

    def _response(
        self,
        engine: Engine,
        request: InferenceRequest,
        outputs: Tensors,
        parameters: dict[str, Any],
        times: StageTimes | None,
    ) -> dict[str, Any]:
        started = perf_counter()
        response: dict[str, Any] = {
            "model_name": engine.name,
            "model_version": engine.version,
            "outputs": [encode_output(out_name, array) for out_name, array in outputs.items()],
        }
        if request.id is not None:
            response["id"] = request.id
        if request.parameters or parameters:
            response["parameters"] = {**(request.parameters or {}), **parameters}
        if times is not None:
            times.encode_ms = (perf_counter() - started) * 1000
        return response

    def _decode(self, name: str, request: InferenceRequest, version: str | None) -> ValidRequest:
        engine = self.engine(name, version)
        inputs = decode_request(request)
        requested = [output.name for output in request.outputs or []]
        if len(set(requested)) != len(requested):
            raise InvalidInput("an output is requested more than once")
        return ValidRequest(engine, inputs, requested or None)
