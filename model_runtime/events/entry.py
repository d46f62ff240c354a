"""The one Lambda entry point: SQS records to the worker, S3 records to the batches,
requests for another version of the model to that Lambda version (the version router),
plain inference requests to the direct infer path, everything else (API Gateway) to the
HTTP app through Mangum.

The FastAPI app is built on the first request that reaches it, not at init: importing
FastAPI and building its routes was most of a small model's cold start, and the direct
infer path answers inference requests without it. Jobs and batches are imported only by
a function that has them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote_plus

from mangum import Mangum
from starlette.types import Receive, Scope, Send

from model_runtime.dataplane import DataPlane
from model_runtime.events.direct_infer import DirectInfer
from model_runtime.events.settings import JobsSettings
from model_runtime.middleware import Served, serve
from model_runtime.settings import RuntimeSettings
from model_runtime.telemetry.coldstart import ColdStart
from model_runtime.telemetry.emf import EmfWriter
from model_runtime.telemetry.logs import install_json_logs
from model_runtime.versions.router import VersionRouter

if TYPE_CHECKING:
    from fastapi import FastAPI

    from model_runtime.early_open import EarlySession
    from model_runtime.events.batches import Batches
    from model_runtime.events.jobs import Jobs
    from model_runtime.events.worker import Worker

T = TypeVar("T")


class LazyApp:
    """The ASGI app over what `found` serves (with `jobs`' routes when given), built by
    the first request that needs it."""

    def __init__(self, found: Served, jobs: Jobs | None = None) -> None:
        self.found = found
        self._jobs = jobs
        self._app: FastAPI | None = None

    @property
    def app(self) -> FastAPI:
        if self._app is None:
            from model_runtime.app import build_app

            self._app = build_app(self.found, self._jobs)
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class LambdaEntry:
    """`handler(event, context)` for every event source the function is wired to."""

    def __init__(
        self,
        app: FastAPI | LazyApp,
        worker: Worker | None = None,
        batches: Batches | None = None,
        router: VersionRouter | None = None,
    ) -> None:
        self._app = app
        self.worker = worker
        self.batches = batches
        self.router = router
        # One loop for the life of the environment, shared with Mangum, which runs the
        # app on whatever loop is current (asyncio.run would close it under its feet).
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self.http = Mangum(app, lifespan="off")
        self.direct = DirectInfer(_served(app), self.http)

    @property
    def app(self) -> FastAPI:
        """The HTTP app (built now if no request has built it yet)."""
        return self._app.app if isinstance(self._app, LazyApp) else self._app

    @classmethod
    def from_settings(
        cls,
        settings: RuntimeSettings,
        jobs: JobsSettings | None,
        cold_start: ColdStart | None = None,
        early: EarlySession | None = None,
    ) -> LambdaEntry:
        """The models, app, jobs and batches the environment configures, on S3 and SQS
        (the model's session `early`'s, when it is the one); with metrics on, an EMF line
        per inference request, the first one carrying `cold_start`'s breakdown."""
        if settings.log_format == "json":
            install_json_logs()
        cold_start = cold_start if cold_start is not None else ColdStart()
        plane = DataPlane(settings.load_engines(cold_start=cold_start, early=early))
        service = worker = batches = None
        if jobs is not None:
            from model_runtime.events.aws import S3ObjectStore, SqsQueue
            from model_runtime.events.batches import Batches
            from model_runtime.events.jobs import Jobs
            from model_runtime.events.worker import Worker

            store, queue = S3ObjectStore(), SqsQueue()
            service = Jobs(plane, jobs, store, queue)
            if jobs.batch is not None:
                batches = Batches(
                    plane, jobs.model, jobs.batch, jobs.bucket, jobs.queue_url, store, queue
                )
            worker = Worker(service, batches)
        found = serve(
            plane,
            max_body_bytes=settings.max_body_bytes,
            cors_allow_origin=settings.cors_allow_origin,
            telemetry=EmfWriter(cold_start) if settings.metrics else None,
        )
        # Versioned routes need to know which model version this is: one model per function.
        engines = list(plane.engines.values())
        router = None
        if len(engines) == 1:
            (engine,) = engines
            router = VersionRouter(
                engine.name, engine.version, cors_allow_origin=settings.cors_allow_origin
            )
        entry = cls(LazyApp(found, service), worker, batches, router)
        cold_start.ready()
        return entry

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        records = event.get("Records") if isinstance(event, dict) else None
        source = records[0].get("eventSource") if records else None
        if source == "aws:sqs":
            if self.worker is None:
                raise RuntimeError("an SQS event, but jobs are not enabled for this function")
            return self._run(self.worker.handle(event))
        if source == "aws:s3":
            if self.batches is None:
                raise RuntimeError("an S3 event, but batches are not enabled for this function")
            self._run(self._uploads(records or []))
            return None
        if self.router is not None and isinstance(event, dict):
            answer = self.router(event, context)
            if answer is not None:
                return answer
        asyncio.set_event_loop(self._loop)  # ours, whatever ran since
        if isinstance(event, dict):
            answer = self.direct(event, context)
            if answer is not None:
                return answer
        return self.http(event, context)

    async def _uploads(self, records: list[dict[str, Any]]) -> None:
        assert self.batches is not None
        for record in records:
            s3 = record["s3"]
            # S3 event keys are URL-encoded, spaces as "+".
            key = unquote_plus(s3["object"]["key"])
            await self.batches.on_upload(s3["bucket"]["name"], key, s3["object"]["eTag"])

    def close(self) -> None:
        self._loop.close()
        # Leave no closed loop current: whatever runs next in this thread makes its own.
        asyncio.set_event_loop(None)

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(work)


def _served(app: FastAPI | LazyApp) -> Served:
    if isinstance(app, LazyApp):
        return app.found
    from model_runtime.app import served  # an app given: FastAPI is imported already

    return served(app)
