"""CloudWatch Embedded Metric Format: one JSON line per request on stdout, which Lambda
ships to the function's log group and CloudWatch turns into metrics. No API call.

The line is also the request's structured log (request id, model, version, status,
latency); it never carries request data. Only the metrics a line has values for are
declared in it: CloudWatch drops a declared metric that has no value. Every line carries
all three status metrics, its own class 1 and the others 0.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]

from model_runtime.telemetry.coldstart import ColdStart
from model_runtime.telemetry.record import RequestRecord

NAMESPACE = "inferstack"
DIMENSIONS = [["model"], ["model", "version"]]
UNITS = {
    "latency_ms": "Milliseconds",
    "decode_ms": "Milliseconds",
    "preprocess_ms": "Milliseconds",
    "infer_ms": "Milliseconds",
    "encode_ms": "Milliseconds",
    "batch_size": "Count",
    "payload_bytes": "Bytes",
    "requests": "Count",
    "status_2xx": "Count",
    "status_4xx": "Count",
    "status_5xx": "Count",
    "init_imports_ms": "Milliseconds",
    "init_artifact_ms": "Milliseconds",
    "init_session_ms": "Milliseconds",
    "init_first_inference_ms": "Milliseconds",
    "init_total_ms": "Milliseconds",
}


STATUS_METRICS = ("status_2xx", "status_4xx", "status_5xx")


def status_metric(status: int) -> str:
    """The one status metric of a response: 5xx for anything that is not 2xx or 4xx."""
    if 200 <= status < 300:
        return "status_2xx"
    if 400 <= status < 500:
        return "status_4xx"
    return "status_5xx"


def _stdout(line: str) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()


class EmfWriter:
    """A request-telemetry sink writing EMF lines; the first request that ran the model
    also carries `cold_start`'s init breakdown (once per execution environment).

    The request path pays for one `%` format per line: each combination of model,
    version, status class and measured metrics gets its line template once (a handful
    per environment), with the constant parts already serialized.
    """

    def __init__(
        self,
        cold_start: ColdStart | None = None,
        write: Callable[[str], object] = _stdout,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cold_start = cold_start
        self._write = write
        self._clock = clock
        self._templates: dict[tuple[str, str, str, tuple[str, ...]], str] = {}

    def __call__(self, record: RequestRecord) -> None:
        self._write(self.line(record))

    def line(self, record: RequestRecord) -> str:
        times = record.times
        names = ["latency_ms"]
        values: list[float] = [record.latency_ms]
        for name, value in (
            ("decode_ms", times.decode_ms),
            ("preprocess_ms", times.preprocess_ms),
            ("infer_ms", times.infer_ms),
            ("encode_ms", times.encode_ms),
            ("batch_size", times.batch_size),
        ):
            if value is not None:
                names.append(name)
                values.append(value)
        names.append("payload_bytes")
        values.append(record.payload_bytes)
        if self._cold_start is not None and times.infer_ms is not None:
            for name, value in self._cold_start.metrics(times.infer_ms).items():
                names.append(name)
                values.append(value)
            self._cold_start = None
        key = (record.model, record.version, status_metric(record.status), tuple(names))
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = _template(*key)
        request_id = "null" if record.request_id is None else _json_string(record.request_id)
        stamp = int(self._clock() * 1000)
        return template % (stamp, request_id, record.status, *values)


def _template(model: str, version: str, status: str, names: tuple[str, ...]) -> str:
    """The `%` template of a line: timestamp, request id (JSON), status, then `names`'
    values; `requests` and the line's status metric are the constant 1, the other two
    status metrics 0 (so a status metric's Average is the share of requests in its class,
    which a plain alarm can watch)."""
    declared = [*names, "requests", *STATUS_METRICS]
    directive = [
        {
            "Namespace": NAMESPACE,
            "Dimensions": DIMENSIONS,
            "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in declared],
        }
    ]
    constant = {"model": model, "version": version}
    head = _json(directive), _json(constant)[1:-1]
    fields = "".join(f',"{name}":{_FORMATS[UNITS[name]]}' for name in names)
    return (
        '{"_aws":{"Timestamp":%d,"CloudWatchMetrics":' + head[0].replace("%", "%%") + "},"
        + head[1].replace("%", "%%") + ',"request_id":%s,"status":%d' + fields
        + ',"requests":1'
        + "".join(f',"{name}":{int(name == status)}' for name in STATUS_METRICS)
        + "}\n"
    )  # fmt: skip


# Milliseconds to the microsecond; counts and bytes are whole numbers.
_FORMATS = {"Milliseconds": "%.3f", "Count": "%d", "Bytes": "%d"}


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _json_string(text: str) -> str:
    # json's own C string encoder: a fraction of json.dumps' per-call setup.
    return encode_basestring_ascii(text)
