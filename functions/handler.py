"""AWS Lambda entry point: API Gateway, SQS and S3 events, served by the same engines
(routing in model_runtime.events.entry).

The engines load once per execution environment, at init, not per event; the HTTP app
around them is built by the first request that needs it (`app`, on first access).
"""

# ruff: noqa: E402 (the imports below are timed: they come after the clock starts)
import os
import time
from typing import Any

_started = time.perf_counter()  # the cold-start breakdown's imports are timed from here

# onnxruntime's telemetry persists a device ID under $HOME at session creation; Lambda
# allows writes only under /tmp, and the warning it logs otherwise is noise.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
# pydantic looks for plugins in every installed distribution's entry points when it
# builds its first model; the runtime layer ships none (~10 ms of the cold start).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# The model's session opens on a thread from here on, beside the imports below.
from model_runtime.early_open import EarlySession

early = EarlySession.from_env(os.environ)

from model_runtime.events.entry import LambdaEntry
from model_runtime.events.settings import JobsSettings
from model_runtime.settings import RuntimeSettings
from model_runtime.telemetry.coldstart import ColdStart

handler = LambdaEntry.from_settings(
    RuntimeSettings.from_env(), JobsSettings.from_env(), ColdStart.after_imports(_started), early
)


def __getattr__(name: str) -> Any:
    if name == "app":  # the FastAPI app, e.g. for `uvicorn functions.handler:app`
        return handler.app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
