"""The container server: `python -m model_runtime.server`.

The same Open Inference Protocol app as Lambda, served by uvicorn, with a dynamic
batcher per model and Prometheus metrics on `/metrics`. Configured by environment
variables, checked before anything loads; a bad value or a broken artifact stops the
process with one line on stderr naming the variable or the file.

| variable                     | allowed                          | default     |
|------------------------------|----------------------------------|-------------|
| MODEL_DIR or MODEL_URI       | as in `model_runtime.settings`   | (one of)    |
| INFERSTACK_MODEL_NAME        | the name to serve the one model  | its manifest|
|                              | under (routes, metrics, errors)  | name        |
| INFERSTACK_HOST              | an address to bind               | 0.0.0.0     |
| INFERSTACK_PORT              | 1..65535                         | 8080        |
| INFERSTACK_BACKEND           | onnxruntime, torch               | onnxruntime |
| INFERSTACK_DEVICE            | auto, cpu, cuda, cuda:N          | auto        |
| INFERSTACK_DTYPE             | fp32, fp16, bf16 (torch only)    | fp32        |
| INFERSTACK_MAX_BATCH_SIZE    | >= 1 (1: batching off)           | 32          |
| INFERSTACK_MAX_DELAY_MS      | 0..10000                         | 0           |
| INFERSTACK_QUEUE_SIZE        | >= 1 requests per model          | 256         |
| INFERSTACK_SHUTDOWN_TIMEOUT_S| >= 1                             | 25          |
| INFERSTACK_LOG_LEVEL         | debug, info, warning, error      | info        |
| INFERSTACK_THREADS           | model threads; >= 1              | CPUs - 1    |
| INFERSTACK_MAX_BODY_BYTES    | as in `model_runtime.settings`   | 6 MiB       |
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_runtime.app import create_app
from model_runtime.backends import BackendOptions
from model_runtime.batcher import BatchingConfig, DynamicBatcher
from model_runtime.dataplane import DataPlane
from model_runtime.datatypes import to_numpy
from model_runtime.engine import Engine
from model_runtime.errors import BackendUnavailable, ConfigError, InferstackError
from model_runtime.host import available_cpus
from model_runtime.metrics import Metrics
from model_runtime.settings import (
    BACKEND_ENV,
    RuntimeSettings,
    read_backend_options,
    read_choice,
    read_number,
    read_served_name,
    read_whole_number,
)

logger = logging.getLogger("inferstack.server")

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class ServerSettings:
    runtime: RuntimeSettings
    host: str
    port: int
    backend: BackendOptions
    batching: BatchingConfig
    shutdown_timeout_s: int
    log_level: str
    # INFERSTACK_MODEL_NAME: the one model is served under this name, not its manifest's.
    model_name: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        env = os.environ if environ is None else environ
        backend = read_backend_options(env)
        runtime = RuntimeSettings.from_env(env)
        return cls(
            runtime=runtime,
            host=env.get("INFERSTACK_HOST") or "0.0.0.0",
            port=read_whole_number(env, "INFERSTACK_PORT", 8080, 1, 65535),
            backend=backend,
            batching=BatchingConfig(
                max_batch_size=read_whole_number(env, "INFERSTACK_MAX_BATCH_SIZE", 32, 1, 1 << 16),
                max_delay_ms=read_number(env, "INFERSTACK_MAX_DELAY_MS", 0.0, 0, 10_000),
                queue_size=read_whole_number(env, "INFERSTACK_QUEUE_SIZE", 256, 1, 1 << 20),
            ),
            shutdown_timeout_s=read_whole_number(env, "INFERSTACK_SHUTDOWN_TIMEOUT_S", 25, 1, 3600),
            log_level=read_choice(env, "INFERSTACK_LOG_LEVEL", LOG_LEVELS, "info"),
            model_name=read_served_name(env, "INFERSTACK_MODEL_NAME", runtime),
        )


def build_app(settings: ServerSettings) -> FastAPI:
    """Load every model, then the app: OIP routes, batchers, /metrics, drain on shutdown."""
    runtime = settings.runtime
    if runtime.threads is None:
        # The event loop parses and encodes every request on one core; the model's
        # threads get the others (measured: 1.4-1.7x more req/s than all cores on 2).
        runtime = dataclasses.replace(runtime, threads=max(1, available_cpus() - 1))
    engines = runtime.load_engines(settings.backend)
    if settings.model_name is not None:
        (engine,) = engines
        # Everything names a model by its manifest's name (routes, metadata, batchers,
        # metrics labels, errors): the manifest is what carries the served name.
        engine.manifest = engine.manifest.model_copy(update={"name": settings.model_name})
    metrics = Metrics()
    batchers = {
        engine.name: DynamicBatcher(
            engine, _config_for(engine, settings.batching), metrics.for_model(engine.name)
        )
        for engine in engines
    }
    app = create_app(
        DataPlane(engines, batchers),
        max_body_bytes=runtime.max_body_bytes,
        telemetry=metrics.record_request,
    )

    async def metrics_endpoint() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.add_middleware(CancelOnDisconnect)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        await asyncio.gather(*(asyncio.to_thread(_warm_up, engine) for engine in engines))
        yield
        # uvicorn has stopped accepting connections and waited for open requests; the
        # batchers finish whatever is still queued before the process exits.
        await asyncio.gather(*(batcher.close() for batcher in batchers.values()))

    app.router.lifespan_context = lifespan
    app.state.batchers = batchers
    app.state.metrics = metrics
    return app


class CancelOnDisconnect:
    """Cancel a request's handler when its client goes away before the response starts.

    uvicorn does not cancel handlers on disconnect: without this, a request whose client
    is gone would still wait its turn in the batch queue and run.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        state = {"started": False, "disconnected": False}
        watcher: asyncio.Task[None] | None = None

        async def watch() -> None:
            # Once the body is read, the next message is http.disconnect: the client
            # left, or (harmless) the response is complete.
            message = await receive()
            if message["type"] == "http.disconnect" and not state["started"]:
                state["disconnected"] = True
                task.cancel()

        async def receive_body() -> Message:
            nonlocal watcher
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                watcher = asyncio.get_running_loop().create_task(watch())
            elif message["type"] == "http.disconnect":
                state["disconnected"] = True
            return message

        async def send_tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, receive_body, send_tracked)
        except asyncio.CancelledError:
            if not state["disconnected"]:
                raise
            task.uncancel()
        finally:
            if watcher is not None:
                watcher.cancel()


def _config_for(engine: Engine, config: BatchingConfig) -> BatchingConfig:
    limit = min(config.max_batch_size, engine.manifest.max_batch_size)
    return BatchingConfig(limit, config.max_delay_ms, config.queue_size, config.retry_after_s)


def _warm_up(engine: Engine) -> None:
    """One sample through the backend, so the first client does not pay for lazy init
    (CUDA kernels, allocator). Models with pre-processing warm up on first use."""
    if engine.manifest.preprocessing is not None:
        return
    feed = {
        spec.name: np.zeros([1 if d == -1 else d for d in spec.shape], to_numpy(spec.datatype))
        for spec in engine.manifest.inputs
    }
    try:
        engine.run(feed, engine.resolve_outputs(None))
    except InferstackError as exc:
        logger.warning("warm-up of %r failed (serving anyway): %s", engine.name, exc)


def main(environ: Mapping[str, str] | None = None) -> int:
    try:
        settings = ServerSettings.from_env(environ)
        logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s: %(message)s")
        app = build_app(settings)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    except BackendUnavailable as exc:
        return _fail(f"{BACKEND_ENV.get(exc.option, exc.option)}: {exc}", 2)
    except InferstackError as exc:
        return _fail(str(exc), 1)
    import uvicorn

    logger.info(
        "serving %s with %s on %s (max batch %d, max delay %g ms, queue %d)",
        ", ".join(app.state.batchers),
        settings.backend.backend,
        settings.backend.device,
        settings.batching.max_batch_size,
        settings.batching.max_delay_ms,
        settings.batching.queue_size,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )
    return 0


def _fail(message: str, code: int) -> int:
    print(f"inferstack server: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
