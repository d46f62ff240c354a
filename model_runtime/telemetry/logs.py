"""Structured logs: the `inferstack` logger as one JSON object per line on stdout, with
the request id, model and version of the request being served. Messages are what the
code logs; request data is never added."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar

# (request id, model, version) of the request being served; set by the request middleware.
request_context: ContextVar[tuple[str | None, str, str] | None] = ContextVar(
    "inferstack_request", default=None
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = request_context.get()
        if context is not None:
            entry["request_id"], entry["model"], entry["version"] = context
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def install_json_logs(name: str = "inferstack", level: int = logging.INFO) -> logging.Logger:
    """Give logger `name` a JSON handler on stdout, once. It stops propagating: the Lambda
    runtime's root handler would print each record a second time, as text."""
    logger = logging.getLogger(name)
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger
