"""Prometheus metrics of the container server.

The names are a contract: the Kubernetes HPA scales on `inferstack_queue_depth`.
`inferstack_stage_latency_seconds` has the stages of the Lambda handler's EMF metrics
(label `stage`): decode and encode per request, preprocess per request, infer per batch.
Each server has its own registry, so several apps can live in one process (tests).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from model_runtime.telemetry.record import RequestRecord
from model_runtime.telemetry.stages import STAGES

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
OUTCOMES = ("ok", "error", "rejected", "cancelled")


@dataclass(frozen=True)
class ModelMetrics:
    """One model's series (label values bound)."""

    queue_depth: Gauge
    inflight: Gauge
    batch_size: Histogram
    latency: Histogram
    # stage -> its latency histogram (seconds)
    stages: dict[str, Histogram]
    _requests: Counter
    model: str

    def requests(self, outcome: str) -> Counter:
        return self._requests.labels(model=self.model, outcome=outcome)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queue_depth = Gauge(
            "inferstack_queue_depth",
            "Requests waiting in the model's batching queue.",
            ["model"],
            registry=self.registry,
        )
        self.inflight = Gauge(
            "inferstack_inflight_requests",
            "Requests accepted for the model and not yet answered (queued or running).",
            ["model"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "inferstack_batch_size",
            "Samples (rows of the batch axis) in each batch the model ran.",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "inferstack_request_latency_seconds",
            "Seconds from a request's queueing to its result (queue wait and inference).",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "inferstack_requests",
            "Requests by outcome: ok, error, rejected (queue full), cancelled (client gone).",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.stage_latency = Histogram(
            "inferstack_stage_latency_seconds",
            "Seconds per stage: decode, preprocess, encode per request; infer per batch run.",
            ["model", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._models: dict[str, ModelMetrics] = {}

    def for_model(self, model: str) -> ModelMetrics:
        # Touch every series so that it is exported (as 0) before the first request.
        for outcome in OUTCOMES:
            self.requests.labels(model=model, outcome=outcome)
        found = ModelMetrics(
            queue_depth=self.queue_depth.labels(model=model),
            inflight=self.inflight.labels(model=model),
            batch_size=self.batch_size.labels(model=model),
            latency=self.latency.labels(model=model),
            stages={stage: self.stage_latency.labels(model=model, stage=stage) for stage in STAGES},
            _requests=self.requests,
            model=model,
        )
        self._models[model] = found
        return found

    def record_request(self, record: RequestRecord) -> None:
        """A request-telemetry sink: the stages the app measured (decode, encode)."""
        found = self._models.get(record.model)
        if found is None:
            return
        for name, ms in record.times.measured().items():
            found.stages[name.removesuffix("_ms")].observe(ms / 1000)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
