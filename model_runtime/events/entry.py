"""The one Lambda entry point: SQS records to the worker, S3 records to the batches,
requests for another version of the model to that Lambda version (the version router),
plain inference requests to the direct infer path, everything else (API Gateway) to the
HTTP app through Mangum."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from fastapi import FastAPI
from mangum import Mangum

from model_runtime.app import create_app
from model_runtime.dataplane import DataPlane
from model_runtime.events.aws import S3ObjectStore, SqsQueue
from model_runtime.events.batches import Batches
from model_runtime.events.direct_infer import DirectInfer
from model_runtime.events.jobs import Jobs
from model_runtime.events.settings import JobsSettings
from model_runtime.events.worker import Worker
from model_runtime.settings import RuntimeSettings
from model_runtime.telemetry.coldstart import ColdStart
from model_runtime.telemetry.emf import EmfWriter
from model_runtime.telemetry.logs import install_json_logs
from model_runtime.versions.router import VersionRouter

T = TypeVar("T")


class LambdaEntry:
    """`handler(event, context)` for every event source the function is wired to."""

    def __init__(
        self,
        app: FastAPI,
        worker: Worker | None = None,
        batches: Batches | None = None,
        router: VersionRouter | None = None,
    ) -> None:
        self.app = app
        self.worker = worker
        self.batches = batches
        self.router = router
        # One loop for the life of the environment, shared with Mangum, which runs the
        # app on whatever loop is current (asyncio.run would close it under its feet).
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self.http = Mangum(app, lifespan="off")
        self.direct = DirectInfer(app, self.http)

    @classmethod
    def from_settings(
        cls,
        settings: RuntimeSettings,
        jobs: JobsSettings | None,
        cold_start: ColdStart | None = None,
    ) -> LambdaEntry:
        """The models, app, jobs and batches the environment configures, on S3 and SQS;
        with metrics on, an EMF line per inference request, the first one carrying
        `cold_start`'s breakdown."""
        if settings.log_format == "json":
            install_json_logs()
        cold_start = cold_start if cold_start is not None else ColdStart()
        plane = DataPlane(settings.load_engines(cold_start=cold_start))
        service = worker = batches = None
        if jobs is not None:
            store, queue = S3ObjectStore(), SqsQueue()
            service = Jobs(plane, jobs, store, queue)
            if jobs.batch is not None:
                batches = Batches(
                    plane, jobs.model, jobs.batch, jobs.bucket, jobs.queue_url, store, queue
                )
            worker = Worker(service, batches)
        app = create_app(
            plane,
            max_body_bytes=settings.max_body_bytes,
            cors_allow_origin=settings.cors_allow_origin,
            jobs=service,
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
        entry = cls(app, worker, batches, router)
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
