"""Structured logs: one JSON object a line, with the request's id, model and version."""

from __future__ import annotations

import io
import json
import logging

from model_runtime.telemetry.logs import JsonFormatter, install_json_logs, request_context


def _format(record: logging.LogRecord) -> dict[str, object]:
    entry: dict[str, object] = json.loads(JsonFormatter().format(record))
    return entry


def _record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("inferstack", logging.ERROR, __file__, 1, message, args, exc_info)


def test_a_record_outside_a_request_has_no_request_fields() -> None:
    entry = _format(_record("loaded %s", "tiny"))
    assert entry["level"] == "ERROR" and entry["logger"] == "inferstack"
    assert entry["message"] == "loaded tiny"
    assert str(entry["time"]).endswith("Z")
    assert not {"request_id", "model", "version"} & set(entry)


def test_a_record_inside_a_request_names_it() -> None:
    token = request_context.set(("req-9", "tiny", "1"))
    try:
        entry = _format(_record("inference failed: %s", "boom"))
    finally:
        request_context.reset(token)
    assert (entry["request_id"], entry["model"], entry["version"]) == ("req-9", "tiny", "1")


def test_an_exception_is_one_field_of_the_same_line() -> None:
    try:
        raise ValueError("bad")
    except ValueError as exc:
        line = JsonFormatter().format(_record("unexpected error", exc=exc))
    assert "\n" not in line
    assert "ValueError: bad" in str(json.loads(line)["exception"])


def test_install_is_once_and_stops_propagation() -> None:
    name = "inferstack.test-json-logs"
    logger = install_json_logs(name)
    try:
        install_json_logs(name)
        (handler,) = logger.handlers
        assert isinstance(handler.formatter, JsonFormatter)
        assert logger.propagate is False
        stream = io.StringIO()
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        logger.info("ready")
        assert json.loads(stream.getvalue())["message"] == "ready"
    finally:
        logger.handlers.clear()
        logger.propagate = True
